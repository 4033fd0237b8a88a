package h1

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"frontdoor/internal/httphead"
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
	eol := strings.Index(s, "\r\n")
	line := s[:eol]
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 || !httphead.IsToken(line[:sp]) {
		return head{}, false
	}
	h.method = line[:sp]
	if h.method == "CONNECT" || h.method == "PRI" {
		return head{}, false
	}
	rest := line[sp+1:]
	sp2 := strings.IndexByte(rest, ' ')
	if sp2 <= 0 || rest[0] != '/' || rest[sp2+1:] != "HTTP/1.1" {
		return head{}, false
	}
	h.target = rest[:sp2]
	for i := 0; i < len(h.target); i++ {
		if c := h.target[i]; c <= ' ' || c >= 0x7f {
			return head{}, false
		}
	}
	u, err := url.ParseRequestURI(h.target)
	if err != nil {
		return head{}, false
	}
	h.url = u

	h.header, ok = httphead.ParseFields(s[eol+2:])
	if !ok {
		return head{}, false
	}
	for _, k := range [...]string{"Transfer-Encoding", "Expect", "Upgrade", "Pragma", "Http2-Settings"} {
		if _, ok := h.header[k]; ok {
			return head{}, false
		}
	}
	hosts := h.header["Host"]
	if len(hosts) != 1 || !validHost(hosts[0]) {
		return head{}, false
	}
	h.host = hosts[0]
	// net/http keeps the Host header out of Request.Header.
	delete(h.header, "Host")
	switch cl := h.header["Content-Length"]; len(cl) {
	case 0:
	case 1:
		n, ok := httphead.ParseLength(cl[0])
		if !ok || n > maxFastBody {
			return head{}, false
		}
		h.contentLength = n
	default:
		return head{}, false
	}
	h.close = httphead.HasToken(h.header["Connection"], "close")
	return h, true
}

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
