package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkServe compares h1 with net/http for a small GET on one kept-alive
// loopback connection. Allocations count the client's too (the same for
// both).
func BenchmarkServe(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, world\n")
	})
	const req = "GET /v1/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nAuthorization: Bearer xyz\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"h1", func(b *testing.B) string { return startH1(b, h).addr }},
		{"net-http", func(b *testing.B) string { return startNetHTTP(b, h) }},
	}
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			c, err := net.Dial("tcp", s.start(b))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			get := &http.Request{Method: "GET"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := io.WriteString(c, req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, get)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
