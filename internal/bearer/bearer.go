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
	sp := strings.IndexByte(v, ' ')
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
	if raw == "" || !isToken68(raw) {
		return "", false, "malformed bearer token"
	}
	return raw, true, ""
}

// isToken68 checks RFC 7235's token68 syntax (what a JWS compact
// serialization uses), which also rules out extra spaces.
func isToken68(s string) bool {
	eq := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			eq = true
		case eq:
			return false // '=' only as trailing padding
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
