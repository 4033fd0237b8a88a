package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRequestMatchesRequestWrite checks that writeRequest puts on the
// wire what Request.Write does: both outputs are parsed back as a server
// would and compared field by field (header order may differ).
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	type tc struct {
		name   string
		method string
		target string
		header http.Header
		body   string
		close  bool
	}
	tests := []tc{
		{name: "GET", method: "GET", target: "http://up.test:8080/api/items/1?a=%2F&b=c;d",
			header: http.Header{"X-User-Id": {"42"}, "X-User-Roles": {"author,reader"}, "Accept": {"*/*"}, "User-Agent": {""}}},
		{name: "method defaults to GET", method: "", target: "http://up.test/x"},
		{name: "HEAD", method: "HEAD", target: "http://up.test/x", header: http.Header{"User-Agent": {"curl/8"}}},
		{name: "DELETE without a body", method: "DELETE", target: "http://up.test/x/1"},
		{name: "OPTIONS without a body", method: "OPTIONS", target: "http://up.test/x"},
		{name: "POST without a body", method: "POST", target: "http://up.test/x"},
		{name: "PATCH without a body", method: "PATCH", target: "http://up.test/x"},
		{name: "a method clients invent", method: "PURGE", target: "http://up.test/x"},
		{name: "POST with a body", method: "POST", target: "http://up.test/x",
			header: http.Header{"Content-Type": {"application/json"}}, body: `{"a":1}`},
		{name: "PUT with a body", method: "PUT", target: "http://up.test/x", body: strings.Repeat("b", 70000)},
		{name: "several values and names", method: "GET", target: "http://up.test/x",
			header: http.Header{"Cookie": {"a=1", "b=2"}, "X-Forwarded-For": {"203.0.113.7, 127.0.0.1"}, "Te": {"trailers"}}},
		{name: "line breaks in a value cannot start a field", method: "GET", target: "http://up.test/x",
			header: http.Header{"X-User-Id": {"7\r\nX-User-Roles: administrator"}, "X-Note": {" padded\t"}}},
		{name: "excluded fields in the map", method: "POST", target: "http://up.test/x", body: "hi",
			header: http.Header{"Content-Length": {"999"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "Host": {"evil.test"}}},
		{name: "no User-Agent field at all", method: "GET", target: "http://up.test/x", header: http.Header{}},
		{name: "Close", method: "GET", target: "http://up.test/x", close: true},
		{name: "IPv6 host", method: "GET", target: "http://[::1]:8080/x"},
	}
	build := func(c tc) *http.Request {
		u, err := url.Parse(c.target)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{Method: c.method, URL: u, Header: c.header.Clone(), Close: c.close}
		if r.Header == nil {
			r.Header = http.Header{}
		}
		if c.body != "" {
			r.Body = io.NopCloser(strings.NewReader(c.body))
			r.ContentLength = int64(len(c.body))
		}
		return r
	}
	wire := func(t *testing.T, write func(*bufio.Writer, *http.Request) error, r *http.Request) ([]byte, *http.Request, []byte) {
		t.Helper()
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := write(bw, r); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		raw := buf.Bytes()
		parsed, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%v parsing:\n%s", err, raw)
		}
		body, err := io.ReadAll(parsed.Body)
		if err != nil {
			t.Fatal(err)
		}
		return raw, parsed, body
	}
	stdWrite := func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) }
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			rawOurs, ours, ourBody := wire(t, writeRequest, build(c))
			rawStd, std, stdBody := wire(t, stdWrite, build(c))
			if len(rawOurs) != len(rawStd) {
				t.Errorf("%d bytes, Request.Write %d:\n%q\n%q", len(rawOurs), len(rawStd), rawOurs, rawStd)
			}
			for _, f := range []struct {
				name      string
				got, want any
			}{
				{"method", ours.Method, std.Method},
				{"request URI", ours.RequestURI, std.RequestURI},
				{"host", ours.Host, std.Host},
				{"header", ours.Header, std.Header},
				{"content length", ours.ContentLength, std.ContentLength},
				{"close", ours.Close, std.Close},
				{"body", string(ourBody), string(stdBody)},
			} {
				if !reflect.DeepEqual(f.got, f.want) {
					t.Errorf("%s: %v, Request.Write gives %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

// closeCounter records that a request body was closed.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestWriteRequestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*http.Request)
		want   string
	}{
		{"invalid field name", func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} }, "invalid header field name"},
		{"control byte in the URL", func(r *http.Request) { r.URL.RawQuery = "a=\x01" }, "control character"},
		{"body shorter than its length", func(r *http.Request) { r.ContentLength = 10 }, "ContentLength=10 with Body length 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &closeCounter{Reader: strings.NewReader("hi")}
			r := &http.Request{Method: "POST", URL: &url.URL{Scheme: "http", Host: "up.test", Path: "/x"},
				Header: http.Header{}, Body: body, ContentLength: 2}
			tc.modify(r)
			err := writeRequest(bufio.NewWriter(io.Discard), r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if body.closed == 0 {
				t.Error("the body was not closed")
			}
		})
	}
}

// BenchmarkWriteRequest compares writeRequest with Request.Write on a
// request shaped like the ones forward sends.
func BenchmarkWriteRequest(b *testing.B) {
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:8081", Path: "/api/items/42"},
		Header: http.Header{
			"Accept": {"*/*"}, "User-Agent": {"Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"},
			"X-User-Id": {"42"}, "X-User-Roles": {"subscriber"}, "X-Request-Id": {"3f0c9a3e5d1b4e7a9c2f6b8d0e1a2c3b"},
			"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"api.example.com"}, "X-Forwarded-Proto": {"https"},
		}}
	bw := bufio.NewWriter(io.Discard)
	for _, bc := range []struct {
		name  string
		write func(*bufio.Writer, *http.Request) error
	}{
		{"writeRequest", writeRequest},
		{"Request.Write", func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.write(bw, req); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
			}
		})
	}
}
