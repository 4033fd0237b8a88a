package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"frontdoor/internal/httphead"
)

// parseCase is one request head for parseHead. want is nil for a head
// parseHead must reject (hand to net/http).
type parseCase struct {
	name string
	in   string
	want *wantHead
}

type wantHead struct {
	method, target, path, query, host string
	header                            http.Header
	contentLength                     int64
	close                             bool
}

func accept(name, in string, w wantHead) parseCase { return parseCase{name, in, &w} }
func reject(name, in string) parseCase             { return parseCase{name, in, nil} }

const crlf = "\r\n"

// req builds a head from a request line and header lines.
func req(line string, fields ...string) string {
	var b strings.Builder
	b.WriteString(line + crlf)
	for _, f := range fields {
		b.WriteString(f + crlf)
	}
	b.WriteString(crlf)
	return b.String()
}

var parseCases = []parseCase{
	// Accepted.
	accept("minimal", req("GET / HTTP/1.1", "Host: example.com"),
		wantHead{method: "GET", target: "/", path: "/", host: "example.com", header: http.Header{}}),
	accept("query", req("GET /a/b?x=1&y=%20 HTTP/1.1", "Host: example.com"),
		wantHead{method: "GET", target: "/a/b?x=1&y=%20", path: "/a/b", query: "x=1&y=%20", host: "example.com", header: http.Header{}}),
	accept("double slash path", req("GET //evil.example/x HTTP/1.1", "Host: a"),
		wantHead{method: "GET", target: "//evil.example/x", path: "//evil.example/x", host: "a", header: http.Header{}}),
	accept("escaped slash", req("GET /a%2Fb HTTP/1.1", "Host: a"),
		wantHead{method: "GET", target: "/a%2Fb", path: "/a/b", host: "a", header: http.Header{}}),
	accept("custom method", req("PURGE /x HTTP/1.1", "Host: a"),
		wantHead{method: "PURGE", target: "/x", path: "/x", host: "a", header: http.Header{}}),
	accept("lower-case method kept as is", req("get /x HTTP/1.1", "Host: a"),
		wantHead{method: "get", target: "/x", path: "/x", host: "a", header: http.Header{}}),
	accept("host with port", req("GET / HTTP/1.1", "Host: example.com:8443"),
		wantHead{method: "GET", target: "/", path: "/", host: "example.com:8443", header: http.Header{}}),
	accept("ipv6 host", req("GET / HTTP/1.1", "Host: [::1]:8080"),
		wantHead{method: "GET", target: "/", path: "/", host: "[::1]:8080", header: http.Header{}}),
	accept("host lower-case name", req("GET / HTTP/1.1", "hOsT: a"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{}}),
	accept("canonicalised names", req("POST /api HTTP/1.1",
		"host: a", "x-user-id: 42", "CONTENT-TYPE: application/json", "x_user_id: 7",
		"content-length: 2", "aCCEPT-enCODING: gzip", "x-forwarded-for: 1.2.3.4"),
		wantHead{method: "POST", target: "/api", path: "/api", host: "a", contentLength: 2, header: http.Header{
			"X-User-Id": {"42"}, "Content-Type": {"application/json"}, "X_user_id": {"7"},
			"Content-Length": {"2"}, "Accept-Encoding": {"gzip"}, "X-Forwarded-For": {"1.2.3.4"},
		}}),
	accept("repeated headers keep order", req("GET / HTTP/1.1",
		"X-Forwarded-For: 1.1.1.1", "Host: a", "x-forwarded-for: 2.2.2.2", "Accept: a", "X-FORWARDED-FOR: 3.3.3.3"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X-Forwarded-For": {"1.1.1.1", "2.2.2.2", "3.3.3.3"}, "Accept": {"a"},
		}}),
	accept("ows trimmed", req("GET / HTTP/1.1", "Host:a", "X-A:   v  ", "X-B:\t\tv\t", "X-C: \t v \t "),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X-A": {"v"}, "X-B": {"v"}, "X-C": {"v"},
		}}),
	accept("inner tabs and spaces kept", req("GET / HTTP/1.1", "Host: a", "X-A: a\tb  c", "User-Agent: Mozilla/5.0 (X11; Linux)"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X-A": {"a\tb  c"}, "User-Agent": {"Mozilla/5.0 (X11; Linux)"},
		}}),
	accept("empty values", req("GET / HTTP/1.1", "Host: a", "X-Empty:", "X-Blank:   "),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X-Empty": {""}, "X-Blank": {""},
		}}),
	accept("visible punctuation", req("GET / HTTP/1.1", "Host: a", `Cookie: a="b"; c=d`, `X-A: !#$%&'()*+,-./:;<=>?@[\]^_{|}~`),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"Cookie": {`a="b"; c=d`}, "X-A": {`!#$%&'()*+,-./:;<=>?@[\]^_{|}~`},
		}}),
	accept("token name punctuation", req("GET / HTTP/1.1", "Host: a", "x!#$%&'*+.^_`|~-1: v"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X!#$%&'*+.^_`|~-1": {"v"},
		}}),
	accept("name of 64 bytes", req("GET / HTTP/1.1", "Host: a", "X-"+strings.Repeat("a", 62)+": v"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{
			"X-A" + strings.Repeat("a", 61): {"v"},
		}}),
	accept("content-length zero", req("POST / HTTP/1.1", "Host: a", "Content-Length: 0"),
		wantHead{method: "POST", target: "/", path: "/", host: "a", header: http.Header{"Content-Length": {"0"}}}),
	accept("content-length leading zeros", req("POST / HTTP/1.1", "Host: a", "Content-Length: 007"),
		wantHead{method: "POST", target: "/", path: "/", host: "a", contentLength: 7, header: http.Header{"Content-Length": {"007"}}}),
	accept("content-length 64 KiB", req("POST / HTTP/1.1", "Host: a", "Content-Length: 65536"),
		wantHead{method: "POST", target: "/", path: "/", host: "a", contentLength: 65536, header: http.Header{"Content-Length": {"65536"}}}),
	accept("connection close", req("GET / HTTP/1.1", "Host: a", "Connection: close"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", close: true, header: http.Header{"Connection": {"close"}}}),
	accept("connection close in list", req("GET / HTTP/1.1", "Host: a", "Connection: keep-alive", "connection: x-foo ,\tClose"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", close: true, header: http.Header{"Connection": {"keep-alive", "x-foo ,\tClose"}}}),
	accept("connection closed-not-close", req("GET / HTTP/1.1", "Host: a", "Connection: closed, cl ose"),
		wantHead{method: "GET", target: "/", path: "/", host: "a", header: http.Header{"Connection": {"closed, cl ose"}}}),
	accept("fragment-like target", req("GET /a#b HTTP/1.1", "Host: a"),
		wantHead{method: "GET", target: "/a#b", path: "/a#b", host: "a", header: http.Header{}}),

	// Rejected: versions.
	reject("HTTP/1.0", req("GET / HTTP/1.0", "Host: a")),
	reject("HTTP/2.0", req("GET / HTTP/2.0", "Host: a")),
	reject("HTTP/1.10", req("GET / HTTP/1.10", "Host: a")),
	reject("lower-case version", req("GET / http/1.1", "Host: a")),
	reject("no version", req("GET /", "Host: a")),
	reject("trailing space after version", req("GET / HTTP/1.1 ", "Host: a")),
	// Rejected: request line shape and target form.
	reject("absolute form", req("GET http://a/x HTTP/1.1", "Host: a")),
	reject("asterisk form", req("OPTIONS * HTTP/1.1", "Host: a")),
	reject("authority form", req("CONNECT a:443 HTTP/1.1", "Host: a")),
	reject("CONNECT with path", req("CONNECT /x HTTP/1.1", "Host: a")),
	reject("PRI", req("PRI / HTTP/1.1", "Host: a")),
	reject("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
	reject("double space", req("GET  / HTTP/1.1", "Host: a")),
	reject("space in target", req("GET /a b HTTP/1.1", "Host: a")),
	reject("tab separator", req("GET\t/ HTTP/1.1", "Host: a")),
	reject("empty method", req(" / HTTP/1.1", "Host: a")),
	reject("non-token method", req("GE(T / HTTP/1.1", "Host: a")),
	reject("non-ASCII target", req("GET /\xc3\xa9 HTTP/1.1", "Host: a")),
	reject("DEL in target", req("GET /\x7f HTTP/1.1", "Host: a")),
	reject("bad escape in target", req("GET /%zz HTTP/1.1", "Host: a")),
	reject("leading blank line", crlf+req("GET / HTTP/1.1", "Host: a")),
	// Rejected: line endings and folding.
	reject("no blank line", "GET / HTTP/1.1\r\nHost: a\r\n"),
	reject("bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n"),
	reject("bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"),
	reject("bare LF header line", "GET / HTTP/1.1\r\nX: a\nHost: a\r\n\r\n"),
	reject("bare CR in value", req("GET / HTTP/1.1", "Host: a", "X: a\rb")),
	reject("CR before CRLF", req("GET / HTTP/1.1", "Host: a", "X: a\r")),
	reject("obs-fold", req("GET / HTTP/1.1", "Host: a", "X: a", " b")),
	reject("obs-fold tab", req("GET / HTTP/1.1", "Host: a", "X: a", "\tb")),
	reject("first line folded", req("GET / HTTP/1.1", " X: a", "Host: a")),
	// Rejected: odd bytes.
	reject("space before colon", req("GET / HTTP/1.1", "Host: a", "X-A : b")),
	reject("space in name", req("GET / HTTP/1.1", "Host: a", "X A: b")),
	reject("no colon", req("GET / HTTP/1.1", "Host: a", "X-A b")),
	reject("empty name", req("GET / HTTP/1.1", "Host: a", ": b")),
	reject("non-token name", req("GET / HTTP/1.1", "Host: a", "X(A): b")),
	reject("name longer than 64", req("GET / HTTP/1.1", "Host: a", "X-"+strings.Repeat("a", 63)+": v")),
	reject("NUL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x00b")),
	reject("CTL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x01b")),
	reject("DEL in value", req("GET / HTTP/1.1", "Host: a", "X: a\x7fb")),
	reject("obs-text in value", req("GET / HTTP/1.1", "Host: a", "X: caf\xc3\xa9")),
	// Rejected: fields with a meaning net/http acts on.
	reject("transfer-encoding", req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")),
	reject("transfer-encoding identity", req("POST / HTTP/1.1", "Host: a", "transfer-encoding: identity")),
	reject("te and cl", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked")),
	reject("expect", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Expect: 100-continue")),
	reject("upgrade", req("GET / HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket")),
	reject("pragma", req("GET / HTTP/1.1", "Host: a", "Pragma: no-cache")),
	reject("http2-settings", req("GET / HTTP/1.1", "Host: a", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")),
	// Rejected: Host.
	reject("no host", req("GET / HTTP/1.1", "X: a")),
	reject("empty host", req("GET / HTTP/1.1", "Host:")),
	reject("blank host", req("GET / HTTP/1.1", "Host:   ")),
	reject("two hosts", req("GET / HTTP/1.1", "Host: a", "Host: a")),
	reject("two hosts different case", req("GET / HTTP/1.1", "Host: a", "host: b")),
	reject("host with space", req("GET / HTTP/1.1", "Host: a b")),
	reject("host with slash", req("GET / HTTP/1.1", "Host: a/b")),
	reject("host with userinfo", req("GET / HTTP/1.1", "Host: u@a")),
	reject("host with comma", req("GET / HTTP/1.1", "Host: a,b")),
	reject("host with percent", req("GET / HTTP/1.1", "Host: a%20")),
	// Rejected: Content-Length.
	reject("two content-lengths", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Content-Length: 3")),
	reject("content-length list", req("POST / HTTP/1.1", "Host: a", "Content-Length: 3, 3")),
	reject("content-length too large", req("POST / HTTP/1.1", "Host: a", "Content-Length: 65537")),
	reject("content-length huge", req("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999")),
	reject("content-length negative", req("POST / HTTP/1.1", "Host: a", "Content-Length: -1")),
	reject("content-length plus", req("POST / HTTP/1.1", "Host: a", "Content-Length: +1")),
	reject("content-length hex", req("POST / HTTP/1.1", "Host: a", "Content-Length: 0x10")),
	reject("content-length empty", req("POST / HTTP/1.1", "Host: a", "Content-Length:")),
	reject("content-length inner space", req("POST / HTTP/1.1", "Host: a", "Content-Length: 1 2")),
	// Rejected: not a head.
	reject("empty", ""),
	reject("only CRLFs", "\r\n\r\n"),
}

func TestParseHead(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := parseHead([]byte(tc.in))
			if tc.want == nil {
				if ok {
					t.Fatalf("parseHead accepted %q: %+v", tc.in, h)
				}
				return
			}
			if !ok {
				t.Fatalf("parseHead rejected %q", tc.in)
			}
			w := tc.want
			if h.method != w.method || h.target != w.target || h.host != w.host ||
				h.contentLength != w.contentLength || h.close != w.close {
				t.Errorf("got method=%q target=%q host=%q cl=%d close=%v; want %q %q %q %d %v",
					h.method, h.target, h.host, h.contentLength, h.close,
					w.method, w.target, w.host, w.contentLength, w.close)
			}
			if h.url == nil || h.url.Path != w.path || h.url.RawQuery != w.query {
				t.Errorf("url = %#v; want path %q query %q", h.url, w.path, w.query)
			}
			if !reflect.DeepEqual(h.header, w.header) {
				t.Errorf("header = %#v\nwant     %#v", h.header, w.header)
			}
			if err := agreeWithNetHTTP([]byte(tc.in), h); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestParseHeadRepeatedAppend checks that the values of a repeated header,
// and appends to another header's values, do not overwrite each other (the
// values are sub-slices of one array).
func TestParseHeadRepeatedAppend(t *testing.T) {
	in := req("GET / HTTP/1.1", "A: 1", "B: 2", "A: 3", "Host: h", "C: 4", "A: 5")
	h, ok := parseHead([]byte(in))
	if !ok {
		t.Fatal("rejected")
	}
	h.header["B"] = append(h.header["B"], "x")
	want := http.Header{"A": {"1", "3", "5"}, "B": {"2", "x"}, "C": {"4"}}
	if !reflect.DeepEqual(h.header, want) {
		t.Fatalf("header = %v, want %v", h.header, want)
	}
}

// agreeWithNetHTTP checks the contract: net/http's parser accepts b with the
// same meaning parseHead gave it, and the checks net/http's server applies
// after parsing pass too.
func agreeWithNetHTTP(b []byte, h head) error {
	br := bufio.NewReader(bytes.NewReader(b))
	r, err := http.ReadRequest(br)
	if err != nil {
		return fmt.Errorf("parseHead accepted %q, http.ReadRequest rejected it: %v", b, err)
	}
	if n := br.Buffered(); n != 0 {
		return fmt.Errorf("%q: http.ReadRequest's head ends %d bytes before parseHead's", b, n)
	}
	var diffs []string
	diff := func(field string, got, want any) {
		if !reflect.DeepEqual(got, want) {
			diffs = append(diffs, fmt.Sprintf("%s: parseHead %#v, net/http %#v", field, got, want))
		}
	}
	diff("Method", h.method, r.Method)
	diff("RequestURI", h.target, r.RequestURI)
	if h.url == nil {
		diffs = append(diffs, "URL: nil")
	} else {
		diff("URL", *h.url, *r.URL)
	}
	diff("Host", h.host, r.Host)
	diff("ContentLength", h.contentLength, r.ContentLength)
	diff("Close", h.close, r.Close)
	diff("Proto", "HTTP/1.1", r.Proto)
	diff("TransferEncoding", []string(nil), r.TransferEncoding)
	// What net/http's server checks after parsing. (http.ReadRequest has
	// already rejected a repeated Host and removed Host from Header; for
	// an origin-form target r.Host is the one Host field's value.)
	if _, ok := r.Header["Host"]; ok {
		diffs = append(diffs, "http.ReadRequest left Host in Header")
	}
	if r.Host == "" || !validHostHeader(r.Host) {
		diffs = append(diffs, fmt.Sprintf("net/http server: missing or invalid Host %q", r.Host))
	}
	for k, vv := range r.Header {
		if !validFieldName(k) {
			diffs = append(diffs, fmt.Sprintf("net/http server: invalid name %q", k))
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				diffs = append(diffs, fmt.Sprintf("net/http server: invalid value %q", v))
			}
		}
	}
	if r.Method == "CONNECT" || r.Method == "PRI" {
		diffs = append(diffs, "method "+r.Method)
	}
	if r.URL.Scheme != "" || r.URL.Host != "" || !strings.HasPrefix(r.RequestURI, "/") {
		diffs = append(diffs, fmt.Sprintf("not origin-form: %q", r.RequestURI))
	}
	diff("Header", h.header, r.Header)
	if _, ok := h.header["Host"]; ok {
		diffs = append(diffs, "Host left in header")
	}
	if diffs != nil {
		return fmt.Errorf("%q:\n\t%s", b, strings.Join(diffs, "\n\t"))
	}
	return nil
}

// validFieldName, validFieldValue and validHostHeader are
// golang.org/x/net/http/httpguts's checks, which net/http's server applies.
func validFieldName(k string) bool { return httphead.IsToken(k) }

func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < ' ' || c == 0x7f) && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$&'()*+,;=-._~:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// TestParseHeadCanonicalKeys compares parseHead's
// canonicalisation with http.CanonicalHeaderKey for odd spellings.
func TestParseHeadCanonicalKeys(t *testing.T) {
	names := []string{
		"x-user-id", "X-USER-ID", "x_user_id", "X_USER_ID", "x--y", "-x", "x-", "1a-2b",
		"content-type", "CONTENT-TYPE", "accept", "te", "TE", "x-real-ip", "X-Real-IP",
		"sec-fetch-mode", "x.y.z", "a~b|c", "WWW-authenticate", "x-b3-traceid",
	}
	for _, n := range names {
		in := req("GET / HTTP/1.1", "Host: h", n+": v")
		h, ok := parseHead([]byte(in))
		if !ok {
			t.Errorf("%q rejected", n)
			continue
		}
		want := http.CanonicalHeaderKey(n)
		if vv := h.header[want]; len(vv) != 1 || vv[0] != "v" || len(h.header) != 1 {
			t.Errorf("%q: header %v, want key %q", n, h.header, want)
		}
	}
}
