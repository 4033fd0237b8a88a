// Package httphead parses and checks HTTP/1.1 header fields strictly: the
// common, well-formed case, at the cost of as few allocations as possible.
// Its callers (frontdoor's HTTP server and upstream client) give anything it
// refuses to net/http, so refusing is always safe; accepting is a promise
// that net/http would have read the same fields.
package httphead

import (
	"net/http"
	"strings"
)

// ParseFields parses the header fields of a head: s holds the field lines
// and then the blank line ending the head, each line ending in CRLF. A
// field is a token, a colon, optional whitespace, a value of visible ASCII,
// spaces and tabs, and optional whitespace. Names are canonicalised as
// textproto does; values keep their order. ok is false for anything else
// (obs-fold, bare CR or LF, control or non-ASCII bytes, a space before the
// colon, a name over 64 bytes).
//
// Values and canonical names are substrings of s, so parsing allocates the
// map and one slice of values however many fields there are, and more only
// for a name that repeats.
func ParseFields(s string) (h http.Header, ok bool) {
	n := strings.Count(s, "\r\n") - 1
	if n < 0 || !strings.HasSuffix(s, "\r\n\r\n") && s != "\r\n" {
		return nil, false
	}
	h = make(http.Header, n)
	values := make([]string, n)
	var key [64]byte
	i := 0
	for pos := 0; ; {
		next := strings.Index(s[pos:], "\r\n")
		if next == 0 {
			break
		}
		line := s[pos : pos+next]
		start := pos
		pos += next + 2
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || colon > len(key) || !IsToken(line[:colon]) {
			return nil, false
		}
		lo, hi := colon+1, len(line)
		for lo < hi && (line[lo] == ' ' || line[lo] == '\t') {
			lo++
		}
		for hi > lo && (line[hi-1] == ' ' || line[hi-1] == '\t') {
			hi--
		}
		if !visibleASCII(line[lo:hi]) {
			return nil, false
		}
		name := canonicalKey(s[start:start+colon], &key)
		value := s[start+lo : start+hi]
		values[i] = value
		if vv, ok := h[name]; ok {
			h[name] = append(vv, value)
		} else {
			h[name] = values[i : i+1 : i+1]
		}
		i++
	}
	return h, true
}

// canonicalKey returns the canonical form of name, a token, as
// textproto.CanonicalMIMEHeaderKey would: a common name without
// allocating, name itself when it is canonical already, a new string
// otherwise.
func canonicalKey(name string, buf *[64]byte) string {
	canonical := true
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
			canonical = false
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			canonical = false
		}
		buf[i] = c
		upper = c == '-'
	}
	if canonical {
		return name
	}
	k := buf[:len(name)]
	if common, ok := commonKeys[string(k)]; ok {
		return common
	}
	return string(k)
}

// commonKeys interns the canonical names clients commonly send in lower
// case (HTTP/2-minded libraries do), so canonicalising them costs nothing.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type",
		"Cookie", "Date", "Host", "If-Modified-Since", "If-None-Match",
		"Origin", "Referer", "Server", "Set-Cookie", "Te", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "X-Requested-With",
	} {
		m[k] = k
	}
	return m
}()

// IsToken reports whether s is an RFC 9110 token, the syntax of methods
// and header names.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ParseLength parses a Content-Length value of plain digits, as net/http
// accepts it, up to 18 digits.
func ParseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// HasToken reports whether the comma-separated list in the values vv
// contains token (lower-case), ignoring case and surrounding whitespace:
// the check for "close" in Connection.
func HasToken(vv []string, token string) bool {
	for _, v := range vv {
		for len(v) > 0 {
			var item string
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, ""
			}
			if asciiEqualFold(strings.Trim(item, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// HasBareLF reports whether a line in b ends in LF alone. net/http accepts
// such lines; callers waiting for a CRLF CRLF head end must stop waiting
// and leave the head to it.
func HasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// asciiEqualFold is strings.EqualFold for ASCII only: "clo\u017fe" (a long
// s) is not "close" on the wire.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// visibleASCII reports whether v holds only visible ASCII, spaces and tabs. It
// checks eight bytes at a time: header values include bearer tokens of a
// kilobyte, and this check was the largest part of parsing a request.
func visibleASCII(v string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		// A byte below 0x20, at or above 0x7f (0x7f+1 sets its high bit):
		// only then look at each byte, which also lets tabs through.
		if (w-0x20*ones)&^w&highs != 0 || (w+ones)&highs != 0 || w&highs != 0 {
			if !visibleBytes(v[i : i+8]) {
				return false
			}
		}
	}
	return visibleBytes(v[i:])
}

func visibleBytes(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}
