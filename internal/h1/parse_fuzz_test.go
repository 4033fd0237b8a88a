package h1

import (
	"bytes"
	"testing"
)

// FuzzParseHead holds parseHead to its contract: whatever it accepts,
// net/http parses the same way and its server would serve.
func FuzzParseHead(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n"))
	f.Add([]byte("GET /?a=b HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any input: no panic, and an accepted head is consistent.
		if h, ok := parseHead(data); ok {
			checkAccepted(t, data, h)
		}
		// The server passes the bytes through the first blank line.
		if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
			b := data[:i+4]
			if h, ok := parseHead(b); ok {
				checkAccepted(t, b, h)
				if err := agreeWithNetHTTP(b, h); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func checkAccepted(t *testing.T, b []byte, h head) {
	t.Helper()
	if h.url == nil || h.header == nil || h.method == "" || len(h.target) == 0 || h.target[0] != '/' {
		t.Fatalf("%q: accepted with incomplete head %+v", b, h)
	}
	if h.contentLength < 0 || h.contentLength > maxFastBody {
		t.Fatalf("%q: accepted Content-Length %d", b, h.contentLength)
	}
	if !validHostHeader(h.host) || h.host == "" {
		t.Fatalf("%q: accepted Host %q", b, h.host)
	}
	for k, vv := range h.header {
		if !validFieldName(k) || k == "Host" {
			t.Fatalf("%q: header name %q", b, k)
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				t.Fatalf("%q: header value %q", b, v)
			}
		}
	}
}

// FuzzHeadFields fuzzes the parts of a head separately, so that most
// inputs are heads parseHead might accept, and checks the same property.
func FuzzHeadFields(f *testing.F) {
	f.Add("GET", "/a?b=c", "example.com:80", "X-User-Id", " 42 ", "Connection", "close")
	f.Add("post", "//x/%2F", "[::1]", "content-length", "0010", "x_y", "a\tb")
	f.Add("PURGE", "/", "h", "Te", "trailers", "Pragma", "no-cache")
	f.Fuzz(func(t *testing.T, method, target, host, k1, v1, k2, v2 string) {
		b := []byte(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" +
			k1 + ":" + v1 + "\r\n" + k2 + ":" + v2 + "\r\n\r\n")
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			b = b[:i+4]
		}
		h, ok := parseHead(b)
		if !ok {
			return
		}
		checkAccepted(t, b, h)
		if err := agreeWithNetHTTP(b, h); err != nil {
			t.Fatal(err)
		}
	})
}
