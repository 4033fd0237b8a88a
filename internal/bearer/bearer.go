// Package bearer reads RFC 6750 bearer tokens from the Authorization header,
// strictly: the proxy and the /auth/ API must agree on what counts as a
// token, and an ambiguous header must be refused rather than guessed at.
package bearer

import (
	"net/http"
	"strings"
)

// Parse extracts the token of "Authorization: Bearer <token>". A
// missing header, or one with another scheme, means no token. More than one
// Authorization header, or a Bearer header that is not exactly
// "Bearer <token68>", is a problem (401), never a silent anonymous request.
func Parse(h http.Header) (raw string, present bool, problem string) {
	values := h["Authorization"]
	if len(values) == 0 {
		return "", false, ""
	}
	if len(values) > 1 {
		return "", false, "more than one Authorization header"
	}
	v := values[0]
	// The scheme ends at the first space or tab: "Bearer<TAB>token" is a
	// mangled bearer token to refuse, not another scheme to ignore.
	sp := strings.IndexAny(v, " \t")
	if sp < 0 {
		if strings.EqualFold(v, "Bearer") {
			return "", false, "empty bearer token"
		}
		return "", false, ""
	}
	if !strings.EqualFold(v[:sp], "Bearer") {
		return "", false, ""
	}
	raw = v[sp+1:]
	if v[sp] != ' ' || raw == "" || !isToken68(raw) {
		return "", false, "malformed bearer token"
	}
	return raw, true, ""
}

// isToken68 checks RFC 7235's token68 syntax (what a JWS compact
// serialization uses), which also rules out extra spaces. It runs on every
// request over the whole token, so the character class is a table.
func isToken68(s string) bool {
	i := 0
	for ; i < len(s) && token68Byte[s[i]]; i++ {
	}
	// '=' only as trailing padding.
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Byte marks the token68 characters other than '=': a table
// lookup per byte, since access tokens run to a kilobyte and are checked
// on every request.
var token68Byte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()
