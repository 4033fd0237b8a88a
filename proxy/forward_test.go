package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"frontdoor/internal/apierror"
	"frontdoor/internal/clientip"
)

// These tests pin forward, the plain-request path that replaced
// httputil.ReverseProxy, to what ReverseProxy did, over real loopback
// connections on both sides.

// waitLimit bounds every wait, so that a regression fails instead of
// hanging; it is never what a test asserts.
const waitLimit = 10 * time.Second

// observeLog sends f's access log and warnings to an observer. The
// Handler is changed before a new front server starts serving it, so that
// no request goroutine races with the change; make any other change to f.h
// before calling it.
func observeLog(t *testing.T, f *fixture) *observer.ObservedLogs {
	core, logs := observer.New(zap.DebugLevel)
	f.h.log = zap.New(core)
	f.front.Close()
	f.front = httptest.NewServer(f.h)
	t.Cleanup(f.front.Close)
	return logs
}

// requestLines closes f's front server, which waits for every handler to
// return (the access-log line is written after the response), and returns
// the access-log lines.
func requestLines(f *fixture, logs *observer.ObservedLogs) []observer.LoggedEntry {
	f.front.Close()
	return logs.FilterMessage("request").AllUntimed()
}

func logField(e observer.LoggedEntry, key string) any { return e.ContextMap()[key] }

// rawUpstream is an upstream that answers each request on a connection of
// its own by running serve on it, then closes the connection: for
// responses net/http's server would not write.
func rawUpstream(t *testing.T, serve func(conn net.Conn, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(waitLimit))
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				serve(conn, req)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// chunked hides a reader's length, so the client sends it chunked.
func chunked(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

func TestForwardRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Named-A", " x-named-b ,,"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Connection":    {"keep-alive"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"Basic eA=="},
		"Te":                  {"trailers"},
		"Trailer":             {"X-T"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Named-A":           {"1"},
		"X-Named-B":           {"2"},
		"X-Kept":              {"a", "b"},
		"Content-Type":        {"text/plain"},
	}
	removeHopByHop(h)
	want := http.Header{"X-Kept": {"a", "b"}, "Content-Type": {"text/plain"}}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("after removeHopByHop: %v, want %v", h, want)
	}
}

func TestForwardAcceptsTrailers(t *testing.T) {
	for _, tc := range []struct {
		te   []string
		want bool
	}{
		{nil, false},
		{[]string{"trailers"}, true},
		{[]string{"Trailers"}, true},
		{[]string{"deflate;q=0.5, trailers"}, true},
		{[]string{"gzip", " Trailers "}, true},
		{[]string{"deflate, gzip"}, false},
		{[]string{"trailersx"}, false},
	} {
		if got := acceptsTrailers(tc.te); got != tc.want {
			t.Errorf("acceptsTrailers(%q) = %v, want %v", tc.te, got, tc.want)
		}
	}
}

// TestForwardResponseHopByHopHeaders: the upstream's connection-specific
// headers, and those its Connection header names, stay on its side.
func TestForwardResponseHopByHopHeaders(t *testing.T) {
	const common = "Connection: X-Hop-Named, keep-alive, X-Request-Id\r\n" +
		"Keep-Alive: timeout=5, max=100\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Proxy-Authenticate: Basic realm=\"up\"\r\n" +
		"Te: trailers\r\n" +
		"Upgrade: h2c\r\n" +
		"X-Hop-Named: secret\r\n" +
		"X-Request-Id: upstream-id\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Cache-Control: private, max-age=0\r\n" +
		"X-Multi: a\r\n" +
		"X-Multi: b, c\r\n" +
		"Set-Cookie: a=1; Path=/\r\n" +
		"Set-Cookie: b=2; HttpOnly\r\n"
	tests := []struct{ name, response string }{
		{"content-length",
			// A Trailer header without chunking stays in the parsed
			// response's Header (Go issue 27197), so the proxy must drop it.
			"HTTP/1.1 200 OK\r\n" + common + "Trailer: X-Bogus\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked",
			"HTTP/1.1 200 OK\r\n" + common + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := rawUpstream(t, func(conn net.Conn, _ *http.Request) {
				io.WriteString(conn, tc.response)
			})
			f := newFixture(t, legacy(up), testRoutes())
			req, _ := http.NewRequest("GET", f.front.URL+"/public/x", nil)
			req.Header.Set("X-Request-Id", "client-id-1")
			resp, err := f.front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "hello" || resp.StatusCode != 200 {
				t.Fatalf("status %d, body %q, %v", resp.StatusCode, body, err)
			}
			for _, k := range []string{
				"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
				"Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Hop-Named",
			} {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("client received hop-by-hop %s: %q", k, v)
				}
			}
			if len(resp.Trailer) != 0 {
				t.Errorf("client received trailers %v", resp.Trailer)
			}
			want := http.Header{
				"Content-Type":  {"text/plain; charset=utf-8"},
				"Cache-Control": {"private, max-age=0"},
				"X-Multi":       {"a", "b, c"},
				"Set-Cookie":    {"a=1; Path=/", "b=2; HttpOnly"},
				// The upstream's own was named in its Connection header.
				"X-Request-Id": {"client-id-1"},
			}
			for k, v := range want {
				if got := resp.Header[k]; fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("%s: client got %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestForwardRequestHeaders: what reaches the upstream of the client's
// request line and headers.
func TestForwardRequestHeaders(t *testing.T) {
	up := newRecordingUpstream(t)
	plain := newFixture(t, legacy(up.URL), testRoutes())
	withAuth := newFixture(t, map[string]UpstreamConfig{"legacy": {URLs: []string{up.URL}, ForwardAuthorization: true}}, testRoutes())
	tests := []struct {
		name      string
		forwardAz bool   // the upstream has forward_authorization
		target    string // request target; /public/x when empty
		headers   string
		want      http.Header // exact values the upstream must see
		absent    []string
		query     string
		body      string // a chunked body, sent with POST (the fallback transport)
	}{
		{
			name: "hop-by-hop and Connection-named headers removed",
			headers: "Connection: keep-alive, X-Hop-Req, X-Other-Hop\r\nX-Hop-Req: 1\r\nX-Other-Hop: 2\r\n" +
				"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n" +
				"Trailer: X-Foo\r\nUpgrade: foo/1\r\nX-Custom: kept\r\nX-Custom: twice\r\nUser-Agent: MiniProgram/8.0\r\n",
			want: http.Header{"X-Custom": {"kept", "twice"}, "User-Agent": {"MiniProgram/8.0"}},
			absent: []string{"Connection", "X-Hop-Req", "X-Other-Hop", "Keep-Alive", "Proxy-Connection",
				"Proxy-Authorization", "Trailer", "Upgrade", "Te"},
		},
		{
			name:    "client Connection: close stays on the client's hop",
			headers: "Connection: close\r\n",
			absent:  []string{"Connection"},
		},
		{
			name:    "Te: trailers passes as Te: trailers",
			headers: "Te: deflate;q=0.5, trailers\r\n",
			want:    http.Header{"Te": {"trailers"}},
		},
		{
			name:    "Te: trailers in a second field, case folded",
			headers: "Te: gzip\r\nTe: TRAILERS\r\n",
			want:    http.Header{"Te": {"trailers"}},
		},
		{
			name:    "Te without trailers is dropped",
			headers: "Te: deflate, gzip;q=0.5\r\n",
			absent:  []string{"Te"},
		},
		{
			name:   "no User-Agent stays none",
			absent: []string{"User-Agent"},
		},
		{
			name:   "no User-Agent stays none through the fallback transport",
			body:   "5\r\nhello\r\n0\r\n\r\n",
			absent: []string{"User-Agent"},
		},
		{
			name:    "client User-Agent passes",
			headers: "User-Agent: Mozilla/5.0 (iPhone) MicroMessenger/8.0.50\r\n",
			want:    http.Header{"User-Agent": {"Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"}},
		},
		{
			name:   "query passes byte for byte",
			target: "/public/x?a=%2F&b=c;d&e=%zz&f=+%20&&g=%e4%B8%AD&h",
			query:  "a=%2F&b=c;d&e=%zz&f=+%20&&g=%e4%B8%AD&h",
		},
		{
			name:    "Authorization removed",
			headers: "Authorization: Bearer reader\r\n",
			absent:  []string{"Authorization"},
		},
		{
			name:      "Authorization kept with forward_authorization",
			forwardAz: true,
			headers:   "Authorization: Bearer reader\r\n",
			want:      http.Header{"Authorization": {"Bearer reader"}},
		},
		{
			name:      "Authorization named in Connection is still hop-by-hop",
			forwardAz: true,
			headers:   "Connection: Authorization\r\nAuthorization: Bearer reader\r\n",
			absent:    []string{"Authorization"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := plain
			if tc.forwardAz {
				f = withAuth
			}
			target := tc.target
			if target == "" {
				target = "/public/x"
			}
			method, framing := "GET", ""
			if tc.body != "" {
				method, framing = "POST", "Transfer-Encoding: chunked\r\n"
			}
			hits := up.hits.Load()
			resp := rawRequest(t, f.front.Listener.Addr().String(),
				method+" "+target+" HTTP/1.1\r\nHost: front.example\r\n"+framing+tc.headers+"\r\n"+tc.body)
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 || up.hits.Load() != hits+1 {
				t.Fatalf("status %d, upstream hits %d", resp.StatusCode, up.hits.Load()-hits)
			}
			s := up.seen()
			for k, v := range tc.want {
				if got := s.Header[k]; fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("upstream got %s: %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := s.Header[k]; ok {
					t.Errorf("upstream got %s: %q, want none", k, v)
				}
			}
			if s.Query != tc.query {
				t.Errorf("upstream query %q, want %q", s.Query, tc.query)
			}
			if s.Path != "/public/x" || s.Method != method {
				t.Errorf("upstream got %s %s", s.Method, s.Path)
			}
		})
	}
}

// TestForwardResponseTrailers: trailers the upstream declares, and those it
// sends undeclared, reach a real client.
func TestForwardResponseTrailers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/public/declared", "/public/declared-empty":
			h["Trailer"] = []string{"X-Checksum", "X-Count"}
		case "/public/mixed":
			h["Trailer"] = []string{"X-Checksum"}
		}
		if !strings.HasSuffix(r.URL.Path, "-empty") {
			io.WriteString(w, "body")
		}
		// Sends the headers: net/http's server would otherwise send values
		// set after this as headers, and drop undeclared trailers of a
		// response it can still give a length.
		w.(http.Flusher).Flush()
		switch r.URL.Path {
		case "/public/declared", "/public/declared-empty":
			h.Set("X-Checksum", "abc")
			h["X-Count"] = []string{"1", "2"}
		case "/public/undeclared":
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/public/mixed":
			h.Set("X-Checksum", "abc")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		}
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, legacy(up.URL), testRoutes())
	tests := []struct {
		path string
		body string
		want http.Header
	}{
		{"/public/declared", "body", http.Header{"X-Checksum": {"abc"}, "X-Count": {"1", "2"}}},
		{"/public/declared-empty", "", http.Header{"X-Checksum": {"abc"}, "X-Count": {"1", "2"}}},
		{"/public/undeclared", "body", http.Header{"X-Late": {"late"}}},
		{"/public/mixed", "body", http.Header{"X-Checksum": {"abc"}, "X-Late": {"late"}}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.path, "/public/"), func(t *testing.T) {
			resp, err := f.front.Client().Get(f.front.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.body {
				t.Fatalf("body %q, %v", body, err)
			}
			if fmt.Sprint(resp.Trailer) != fmt.Sprint(tc.want) {
				t.Errorf("client trailers %v, want %v", resp.Trailer, tc.want)
			}
			for k := range tc.want {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("trailer %s arrived as a header: %q", k, v)
				}
			}
		})
	}
}

// TestForwardStreams: an event stream and a response of unknown length
// reach the client as the upstream sends them. The upstream sends its
// second event only once the client has the first, so a proxy that buffers
// stalls and the bounded wait fails the test.
func TestForwardStreams(t *testing.T) {
	const first, second = "data: one\n\n", "data: two\n\n"
	tests := []struct {
		name, contentType string
		length            bool // the upstream sends a Content-Length
	}{
		{"event stream chunked", "text/event-stream", false},
		{"event stream with length", "Text/Event-Stream; charset=utf-8", true},
		{"unknown length", "application/octet-stream", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := make(chan struct{})
			var once sync.Once
			release := func() { once.Do(func() { close(next) }) }
			t.Cleanup(release)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(second)))
				}
				io.WriteString(w, first)
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, second)
			}))
			t.Cleanup(up.Close)
			f := newFixture(t, legacy(up.URL), testRoutes())

			type result struct {
				data string
				err  error
			}
			firstCh, restCh := make(chan result, 1), make(chan result, 1)
			go func() {
				resp, err := f.front.Client().Get(f.front.URL + "/public/events")
				if err != nil {
					firstCh <- result{err: err}
					return
				}
				defer resp.Body.Close()
				buf := make([]byte, len(first))
				_, err = io.ReadFull(resp.Body, buf)
				firstCh <- result{string(buf), err}
				if err != nil {
					return
				}
				rest, err := io.ReadAll(resp.Body)
				restCh <- result{string(rest), err}
			}()
			select {
			case r := <-firstCh:
				if r.err != nil || r.data != first {
					t.Fatalf("first event %q, %v", r.data, r.err)
				}
			case <-time.After(waitLimit):
				release()
				t.Fatal("the first event did not reach the client before the upstream sent the second: the response is buffered")
			}
			release()
			select {
			case r := <-restCh:
				if r.err != nil || r.data != second {
					t.Fatalf("rest %q, %v", r.data, r.err)
				}
			case <-time.After(waitLimit):
				t.Fatal("the rest of the stream never arrived")
			}
		})
	}
}

// TestForwardInterruptedResponse: an upstream response cut short must not
// reach the client as a complete one, and is still logged.
func TestForwardInterruptedResponse(t *testing.T) {
	tests := []struct {
		name         string
		length, sent int // declared length (0: chunked), bytes sent
	}{
		// With a declared length the client could tell on its own; a
		// chunked response cut short looks complete unless the proxy breaks
		// the connection.
		{"content-length", 1000, 10},
		{"content-length, partly relayed", 200 << 10, 100 << 10},
		{"chunked", 0, 10},
		{"chunked, partly relayed", 0, 100 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := bytes.Repeat([]byte("0123456789"), tc.sent/10)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.length > 0 {
					w.Header().Set("Content-Length", strconv.Itoa(tc.length))
				}
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(200)
				w.Write(sent)
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				conn.Close()
			}))
			t.Cleanup(up.Close)
			f := newFixture(t, legacy(up.URL), testRoutes())
			logs := observeLog(t, f)

			resp, err := f.front.Client().Get(f.front.URL + "/public/download")
			if err != nil {
				// The headers of a response of known length are still in
				// the server's buffer when the proxy gives up on it.
				t.Logf("no response at all: %v", err)
			} else {
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatalf("client read %d bytes and a clean end: an interrupted response passed as complete", len(body))
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Logf("client read error (not ErrUnexpectedEOF, still a failure): %v", err)
				}
				if resp.StatusCode != 200 || !bytes.HasPrefix(sent, body) {
					t.Errorf("status %d, partial body of %d bytes is not what the upstream sent", resp.StatusCode, len(body))
				}
			}

			lines := requestLines(f, logs)
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines, want 1: %v", len(lines), lines)
			}
			if st := logField(lines[0], "status"); st != int64(200) {
				t.Errorf("logged status %v", st)
			}
			if logs.FilterMessage("upstream response interrupted").Len() != 1 {
				t.Error("no warning for the interrupted upstream response")
			}
		})
	}
}

// TestForwardResponseBodies: bodies larger than the copy buffer, and the
// bodiless responses, pass intact.
func TestForwardResponseBodies(t *testing.T) {
	big := randomBytes(t, 1<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/public/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			if r.Method != "HEAD" {
				w.Write(big)
			}
		case "/public/big-unknown":
			for b := big; len(b) > 0; b = b[min(len(b), 50000):] {
				w.Write(b[:min(len(b), 50000)])
				w.(http.Flusher).Flush()
			}
		case "/public/204":
			w.Header().Set("X-Done", "yes")
			w.WriteHeader(204)
		case "/public/304":
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(304)
		}
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, legacy(up.URL), testRoutes())
	tests := []struct {
		path   string
		status int
		body   []byte
		header http.Header
	}{
		{"/public/big", 200, big, http.Header{"Content-Length": {strconv.Itoa(len(big))}}},
		{"/public/big-unknown", 200, big, nil},
		{"/public/204", 204, nil, http.Header{"X-Done": {"yes"}}},
		{"/public/304", 304, nil, http.Header{"Etag": {`"v1"`}}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.path, "/public/"), func(t *testing.T) {
			resp, err := f.front.Client().Get(f.front.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %d bytes, want %d, or different bytes", len(body), len(tc.body))
			}
			for k, v := range tc.header {
				if got := resp.Header[k]; fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		conn, err := net.Dial("tcp", f.front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(waitLimit))
		io.WriteString(conn, "HEAD /public/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(big)) {
			t.Errorf("status %d, Content-Length %q, want the upstream's %d", resp.StatusCode, resp.Header.Get("Content-Length"), len(big))
		}
		// The server closes the connection after the response: anything
		// before that would be a body.
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Errorf("%d bytes after the HEAD response's headers (%v)", len(rest), err)
		}
	})
}

// TestForwardRequestBodies: request bodies of every framing arrive whole,
// through the direct client and its fallback alike.
func TestForwardRequestBodies(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	small, large := randomBytes(t, 1<<10), randomBytes(t, 100<<10)
	tests := []struct {
		name string
		body io.Reader
		want []byte
	}{
		{"empty", http.NoBody, nil},
		{"small", bytes.NewReader(small), small},
		{"larger than the direct client takes", bytes.NewReader(large), large},
		{"chunked", chunked(small), small},
		{"chunked large", chunked(large), large},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := up.hits.Load()
			resp, err := f.front.Client().Post(f.front.URL+"/public/upload", "application/octet-stream", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || up.hits.Load() != hits+1 {
				t.Fatalf("status %d, upstream hits %d", resp.StatusCode, up.hits.Load()-hits)
			}
			s := up.seen()
			if s.Method != "POST" || s.Body != string(tc.want) {
				t.Errorf("upstream got %s with %d bytes, want POST with %d (or different bytes)", s.Method, len(s.Body), len(tc.want))
			}
		})
	}
}

// TestForwardTruncatedRequestBody: a client that sends less body than it
// declared is answered 400 (or its connection closed), never 502: the
// upstream did nothing wrong.
func TestForwardTruncatedRequestBody(t *testing.T) {
	up := newRecordingUpstream(t)
	for _, length := range []int{100, 100 << 10} { // direct client, fallback
		t.Run(strconv.Itoa(length), func(t *testing.T) {
			f := newFixture(t, legacy(up.URL), testRoutes())
			logs := observeLog(t, f)
			conn, err := net.Dial("tcp", f.front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(waitLimit))
			fmt.Fprintf(conn, "POST /public/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n0123456789", length)
			// Closing the sending half ends the body early while the
			// answer can still be read.
			conn.(*net.TCPConn).CloseWrite()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400 or a closed connection", resp.StatusCode)
				}
				if code := decodeErr(t, resp).Error; code != apierror.InvalidRequest {
					t.Errorf("error %q, want %q", code, apierror.InvalidRequest)
				}
			} else {
				t.Logf("connection closed without an answer: %v", err)
			}
			lines := requestLines(f, logs)
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines, want 1", len(lines))
			}
			if st, kind := logField(lines[0], "status"), logField(lines[0], "error"); st != int64(400) || kind != "client_body" {
				t.Errorf("logged status %v, error %v; want 400, client_body", st, kind)
			}
		})
	}
}

// TestForwardRequestTrailersDropped: trailers arrive after the headers were
// checked, so none reaches the upstream with a value.
func TestForwardRequestTrailersDropped(t *testing.T) {
	type got struct {
		body            string
		header, trailer http.Header
	}
	seenCh := make(chan got, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the trailer is read with the body's end
		seenCh <- got{string(body), r.Header.Clone(), r.Trailer.Clone()}
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, legacy(up.URL), testRoutes())
	resp := rawRequest(t, f.front.Listener.Addr().String(),
		"POST /public/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Foo\r\nConnection: close\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Foo: smuggled\r\nX-User-Id: 1\r\nX-User-Roles: administrator\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var s got
	select {
	case s = <-seenCh:
	case <-time.After(waitLimit):
		t.Fatal("the upstream never got the request")
	}
	if s.body != "hello" {
		t.Errorf("upstream body %q", s.body)
	}
	for k, v := range s.trailer {
		for _, x := range v {
			if x != "" {
				t.Errorf("upstream received request trailer %s: %q", k, x)
			}
		}
	}
	for _, k := range []string{"X-Foo", "X-User-Id", "X-User-Roles", "Trailer"} {
		if v, ok := s.header[k]; ok {
			t.Errorf("upstream received header %s: %q", k, v)
		}
	}
}

// TestForwardUpstream101: a 101 to a request that asked for no upgrade is a
// broken upstream, not a tunnel.
func TestForwardUpstream101(t *testing.T) {
	up := rawUpstream(t, func(conn net.Conn, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\ntunnel bytes")
	})
	f := newFixture(t, legacy(up), testRoutes())
	tests := []struct {
		name, request string
	}{
		{"direct client", "GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"fallback transport", "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawRequest(t, f.front.Listener.Addr().String(), tc.request)
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", resp.StatusCode)
			}
			if code := decodeErr(t, resp).Error; code != apierror.BadGateway {
				t.Errorf("error %q, want %q", code, apierror.BadGateway)
			}
		})
	}
}

// TestForwardUpstreamErrors: an upstream that cannot be reached is a 502,
// one that does not answer in time a 504, whichever client sends.
func TestForwardUpstreamErrors(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server sees the proxy's connection close only once the body
		// has been read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs first
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	refused := newFixture(t, legacy(deadURL), testRoutes())
	routeTimeout := newFixture(t, legacy(slow.URL), testRoutes())
	poolTimeout := newFixture(t, map[string]UpstreamConfig{"legacy": {URLs: []string{slow.URL}, Timeout: 150 * time.Millisecond}}, testRoutes())
	tests := []struct {
		name   string
		f      *fixture
		path   string
		body   io.Reader
		status int
		code   string
	}{
		{"refused", refused, "/public/x", nil, 502, apierror.BadGateway},
		{"refused with a body", refused, "/public/x", strings.NewReader("hello"), 502, apierror.BadGateway},
		{"refused chunked", refused, "/public/x", chunked([]byte("hello")), 502, apierror.BadGateway},
		{"route timeout", routeTimeout, "/slow/x", nil, 504, apierror.UpstreamTimeout},
		{"route timeout chunked", routeTimeout, "/slow/x", chunked([]byte("hello")), 504, apierror.UpstreamTimeout},
		{"pool timeout", poolTimeout, "/public/x", nil, 504, apierror.UpstreamTimeout},
		{"pool timeout with a body", poolTimeout, "/public/x", strings.NewReader("hello"), 504, apierror.UpstreamTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.body != nil {
				method = "POST"
			}
			req, _ := http.NewRequest(method, tc.f.front.URL+tc.path, tc.body)
			resp, err := tc.f.front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if code := decodeErr(t, resp).Error; code != tc.code {
				t.Errorf("error %q, want %q", code, tc.code)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("error response without X-Request-Id")
			}
		})
	}
}

// TestForwardLogRemote: forward rewrites the inbound header map in place,
// X-Forwarded-For included, so the access log's client address must be
// taken before. Only a header the trusted proxy names in Connection tells
// the two apart (appending the trusted peer to X-Forwarded-For does not
// change the right-most untrusted address).
func TestForwardLogRemote(t *testing.T) {
	trusted, err := clientip.New([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		trusted  bool
		headers  string
		remote   string // the access log's
		upstream string // the upstream's X-Forwarded-For
	}{
		{"trusted proxy", true, "X-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1"},
		{"trusted proxy chain", true, "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-For: 127.0.0.2\r\n",
			"203.0.113.7", "198.51.100.1, 203.0.113.7, 127.0.0.2, 127.0.0.1"},
		{"trusted proxy, no X-Forwarded-For", true, "", "127.0.0.1", "127.0.0.1"},
		{"untrusted peer", false, "X-Forwarded-For: 203.0.113.7\r\n", "127.0.0.1", "127.0.0.1"},
		{"trusted proxy names X-Forwarded-For in Connection", true,
			"Connection: X-Forwarded-For\r\nX-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newRecordingUpstream(t)
			f := newFixture(t, legacy(up.URL), testRoutes())
			if tc.trusted {
				f.h.clientIP = trusted
			}
			logs := observeLog(t, f)
			resp := rawRequest(t, f.front.Listener.Addr().String(),
				"GET /public/x HTTP/1.1\r\nHost: x\r\n"+tc.headers+"\r\n")
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			lines := requestLines(f, logs)
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines, want 1", len(lines))
			}
			if got := logField(lines[0], "remote"); got != tc.remote {
				t.Errorf("logged remote %v, want %s", got, tc.remote)
			}
			got := up.seen().Header.Get("X-Forwarded-For")
			if got != tc.upstream {
				t.Errorf("upstream X-Forwarded-For %q, want %q", got, tc.upstream)
			}
		})
	}
}

// TestFoldsToMatchesIdentityKey: the allocation-free comparison used on
// every request agrees with identityKey.
func TestFoldsToMatchesIdentityKey(t *testing.T) {
	folded := []string{"x-user-id", "x-user-roles"}
	names := []string{
		"X-User-Id", "x-user-id", "X_USER_ID", "x.user.id", "X-User_Id", "X-User-Idx", "X-User-I",
		"X-User-Roles", "x_user_roles", "Content-Type", "X-Real-Ip", "Y-User-Id", "X-User-İd",
		"X-User-\u212Aey", "", "-", "X-User-Id ",
	}
	for _, name := range names {
		for _, f := range folded {
			want := len(name) == len(f) && identityKey(name) == f
			if got := foldsTo(name, f); got != want {
				t.Errorf("foldsTo(%q, %q) = %v, identityKey says %v", name, f, got, want)
			}
		}
	}
}

// TestIsHopByHopMatchesList keeps the switch and the list in step.
func TestIsHopByHopMatchesList(t *testing.T) {
	for _, k := range hopByHop {
		if !isHopByHop(k) {
			t.Errorf("isHopByHop(%q) = false", k)
		}
	}
	for _, k := range []string{"Content-Type", "Content-Length", "X-User-Id", "Connections", "Te2", ""} {
		if isHopByHop(k) {
			t.Errorf("isHopByHop(%q) = true", k)
		}
	}
	n := 0
	for range hopByHop {
		n++
	}
	if n != 9 {
		t.Errorf("hopByHop has %d names; update isHopByHop with it", n)
	}
}
