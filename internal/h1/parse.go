package h1

import (
	"bytes"
	"net/http"
	"net/url"
)

// maxFastBody is the largest request body, by Content-Length, this server
// reads itself. It matches the body proxy.Transport writes in one piece, so
// a fast request's body is never read after its handler returned.
const maxFastBody = 64 << 10

// head is a request head in the subset of HTTP/1.1 this server parses:
// what parseHead accepts, net/http's parser accepts with the same meaning.
type head struct {
	method, target string
	url            *url.URL
	header         http.Header
	host           string
	contentLength  int64
	close          bool
}

// parseHead parses b, a request head ending in the blank line. ok is false
// for anything outside the subset (another HTTP version, an absolute or
// asterisk target, folded or bare-LF lines, bytes net/http would reject or
// treat specially, Transfer-Encoding, Expect, Upgrade, Pragma, a missing or
// repeated Host, a repeated or large Content-Length): the connection then
// goes to net/http, which answers it, or rejects it, as it always did.
//
// The head is copied into one string, and the method, target, header names
// and values are slices of it, so a request costs one allocation for its
// text however many headers it has.
func parseHead(b []byte) (h head, ok bool) {
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		return head{}, false
	}
	s := string(b)
	// Request line: method SP origin-form SP HTTP/1.1.
	eol := bytes.Index(b, []byte("\r\n"))
	line := b[:eol]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return head{}, false
	}
	h.method = s[:sp]
	if h.method == "CONNECT" || h.method == "PRI" {
		return head{}, false
	}
	rest := line[sp+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || rest[0] != '/' || string(rest[sp2+1:]) != "HTTP/1.1" {
		return head{}, false
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c >= 0x7f {
			return head{}, false
		}
	}
	h.target = s[sp+1 : sp+1+sp2]
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return head{}, false
	}
	h.url = u

	// Header fields: a token, a colon, optional whitespace, a value of
	// visible ASCII, spaces and tabs, optional whitespace.
	fields := bytes.Count(b, []byte("\r\n")) - 2
	h.header = make(http.Header, fields)
	values := make([]string, fields)
	n, hosts, lengths := 0, 0, 0
	var key [64]byte
	for pos := eol + 2; ; {
		next := bytes.Index(b[pos:], []byte("\r\n"))
		if next == 0 {
			break
		}
		line := b[pos : pos+next]
		start := pos
		pos += next + 2
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || colon > len(key) || !isToken(line[:colon]) {
			return head{}, false
		}
		lo, hi := colon+1, len(line)
		for lo < hi && (line[lo] == ' ' || line[lo] == '\t') {
			lo++
		}
		for hi > lo && (line[hi-1] == ' ' || line[hi-1] == '\t') {
			hi--
		}
		for _, c := range line[lo:hi] {
			if (c < ' ' && c != '\t') || c >= 0x7f {
				return head{}, false
			}
		}
		name := canonicalKey(s, start, line[:colon], &key)
		value := s[start+lo : start+hi]
		switch name {
		case "Host":
			hosts++
			if !validHost(value) {
				return head{}, false
			}
			h.host = value
		case "Content-Length":
			lengths++
			n, ok := parseLength(value)
			if !ok || n > maxFastBody {
				return head{}, false
			}
			h.contentLength = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Pragma", "Http2-Settings":
			return head{}, false
		case "Connection":
			if hasCloseToken(value) {
				h.close = true
			}
		}
		values[n] = value
		if vv, ok := h.header[name]; ok {
			h.header[name] = append(vv, value)
		} else {
			h.header[name] = values[n : n+1 : n+1]
		}
		n++
	}
	if hosts != 1 || h.host == "" || lengths > 1 {
		return head{}, false
	}
	// net/http keeps the Host header out of Request.Header.
	delete(h.header, "Host")
	return h, true
}

// canonicalKey returns the canonical form of name (a token), as
// textproto.CanonicalMIMEHeaderKey would: a common key without allocating,
// name's own text in s when it is canonical already, a new string
// otherwise.
func canonicalKey(s string, start int, name []byte, buf *[64]byte) string {
	canonical := true
	upper := true
	for i, c := range name {
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
	k := buf[:len(name)]
	if common, ok := commonKeys[string(k)]; ok {
		return common
	}
	if canonical {
		return s[start : start+len(name)]
	}
	return string(k)
}

// commonKeys interns the header names mini-program clients and proxies
// send, so their canonical forms cost nothing.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type",
		"Cookie", "Host", "If-Modified-Since", "If-None-Match", "Origin",
		"Referer", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Te", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "X-Requested-With",
	} {
		m[k] = k
	}
	return m
}()

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenByte[c] {
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

// validHost accepts a reg-name or IPv4 host, or a bracketed IPv6 one, with
// an optional port: a strict subset of what net/http's ValidHostHeader
// allows.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length of plain digits.
func parseLength(v string) (int64, bool) {
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

// hasCloseToken reports whether a Connection value lists "close".
func hasCloseToken(v string) bool {
	for len(v) > 0 {
		var tok string
		if i := indexComma(v); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, ""
		}
		if equalFoldTrim(tok, "close") {
			return true
		}
	}
	return false
}

func indexComma(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return i
		}
	}
	return -1
}

// equalFoldTrim reports whether s, without surrounding spaces and tabs,
// equals the lower-case ASCII word ignoring case.
func equalFoldTrim(s, word string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(word) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}
