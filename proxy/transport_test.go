package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Test helpers: upstreams, transports, requests.

// countingServer is an httptest server that counts the connections it
// accepted and the ones that ended.
type countingServer struct {
	*httptest.Server
	opened atomic.Int64
	closed atomic.Int64
}

func newCountingServer(t *testing.T, useTLS bool, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// rawAction is what a rawServer connection does after a reply.
type rawAction int

const (
	rawKeep  rawAction = iota // read the next request on the connection
	rawClose                  // close the connection
	rawStall                  // read and discard until the client closes
)

// rawReq is a request a rawServer received.
type rawReq struct {
	Conn   int // index of the connection, in accept order
	N      int // index of the request on its connection
	Method string
	URI    string
	Header http.Header
	Body   string
	Close  bool
}

// rawServer is an upstream with byte-level control over its replies: for
// every request it writes what reply returns, verbatim.
type rawServer struct {
	addr     string
	url      string
	accepted atomic.Int64
	ended    atomic.Int64 // connections whose handler returned (closed)

	mu    sync.Mutex
	reqs  []rawReq
	conns []net.Conn
	done  bool
	wg    sync.WaitGroup
}

func newRawServer(t *testing.T, reply func(c net.Conn, r rawReq) (string, rawAction)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	s.url = "http://" + s.addr
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			idx := int(s.accepted.Add(1)) - 1
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				c.Close()
				continue
			}
			s.conns = append(s.conns, c)
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				defer s.ended.Add(1)
				defer c.Close()
				s.serve(c, idx, reply)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.done = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) serve(c net.Conn, idx int, reply func(net.Conn, rawReq) (string, rawAction)) {
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		r := rawReq{Conn: idx, N: n, Method: req.Method, URI: req.RequestURI, Header: req.Header, Body: string(body), Close: req.Close}
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		out, act := reply(c, r)
		if out != "" {
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
		}
		switch act {
		case rawClose:
			return
		case rawStall:
			_, _ = io.Copy(io.Discard, c)
			return
		}
	}
}

func (s *rawServer) requests() []rawReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rawReq(nil), s.reqs...)
}

// count returns how many requests with method the server received.
func (s *rawServer) count(method string) int {
	n := 0
	for _, r := range s.requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

// okReply is a keep-alive 200 with body.
func okReply(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// okReplyTo is okReply, without the body when answering a HEAD.
func okReplyTo(r rawReq, body string) string {
	if r.Method == http.MethodHead {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
	}
	return okReply(body)
}

func newTestTransport(t *testing.T) *Transport {
	t.Helper()
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// idleConns is the number of connections in the direct client's pool.
func idleConns(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, conns := range tr.idle {
		n += len(conns)
	}
	return n
}

// idleConnList returns a copy of the pooled connections to addr.
func idleConnList(tr *Transport, addr string) []*upstreamConn {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]*upstreamConn(nil), tr.idle[addr]...)
}

// testContext bounds every request of a test, so that a transport that
// hangs fails the test instead of blocking it.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// readBody reads resp's body to EOF and closes it.
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// get sends a GET and returns its status and body.
func get(t *testing.T, tr *Transport, url string) (int, string) {
	t.Helper()
	resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, url, nil))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// canPeek reports whether a probe can see a closed idle connection on this
// platform (it cannot outside unix, where it always reports open).
func canPeek() bool {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		return false
	}
	return true
}

// waitIdleClosedByPeer waits until every pooled connection to addr is seen
// closed (or sent data) by the upstream, so that the next request finds
// it stale.
func waitIdleClosedByPeer(t *testing.T, tr *Transport, addr string) {
	t.Helper()
	conns := idleConnList(tr, addr)
	if len(conns) == 0 {
		t.Fatal("no idle connection to wait on")
	}
	waitFor(t, "the upstream's close to reach the idle connection", func() bool {
		for _, c := range conns {
			if c.open() {
				return false
			}
		}
		return true
	})
}

// barrier releases its callers once n of them have arrived (or after a
// generous timeout, so a broken test fails instead of hanging).
type barrier struct {
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(10 * time.Second):
	}
}

// parallelGets sends n concurrent GETs and reads every body.
func parallelGets(t *testing.T, tr *Transport, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, url, nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

// ---------------------------------------------------------------------------
// Routing and helpers.

func TestTransportDirectDecision(t *testing.T) {
	tr := NewTransport()
	tr.MaxDirectBody = 10
	body := func(n int64) (io.ReadCloser, int64) {
		return io.NopCloser(strings.NewReader(strings.Repeat("x", int(n)))), n
	}
	tests := []struct {
		name   string
		build  func(r *http.Request)
		direct bool
	}{
		{"GET no body", func(r *http.Request) {}, true},
		{"POST NoBody", func(r *http.Request) { r.Method = "POST"; r.Body = http.NoBody }, true},
		{"POST 1 byte", func(r *http.Request) { r.Method = "POST"; r.Body, r.ContentLength = body(1) }, true},
		{"POST at MaxDirectBody", func(r *http.Request) { r.Method = "POST"; r.Body, r.ContentLength = body(10) }, true},
		{"POST above MaxDirectBody", func(r *http.Request) { r.Method = "POST"; r.Body, r.ContentLength = body(11) }, false},
		{"POST unknown length", func(r *http.Request) { r.Method = "POST"; r.Body, _ = body(3); r.ContentLength = -1 }, false},
		{"POST body with length 0 (unknown)", func(r *http.Request) { r.Method = "POST"; r.Body, _ = body(3); r.ContentLength = 0 }, false},
		{"POST chunked transfer encoding", func(r *http.Request) {
			r.Method = "POST"
			r.Body, r.ContentLength = body(3)
			r.TransferEncoding = []string{"chunked"}
		}, false},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }, false},
		{"Upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket"); r.Header.Set("Connection", "Upgrade") }, false},
		{"Expect", func(r *http.Request) {
			r.Method = "POST"
			r.Body, r.ContentLength = body(3)
			r.Header.Set("Expect", "100-continue")
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://upstream.test/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.build(req)
			if got := tr.direct(req); got != tc.direct {
				t.Errorf("direct = %v, want %v", got, tc.direct)
			}
		})
	}
}

func TestTransportReplayable(t *testing.T) {
	tests := []struct {
		method string
		body   bool
		header string
		want   bool
	}{
		{"GET", false, "", true},
		{"HEAD", false, "", true},
		{"OPTIONS", false, "", true},
		{"TRACE", false, "", true},
		{"POST", false, "", false},
		{"PUT", false, "", false},
		{"PATCH", false, "", false},
		{"POST", false, "Idempotency-Key", true},
		{"POST", false, "X-Idempotency-Key", true},
		{"POST", true, "Idempotency-Key", false},
		{"GET", true, "", false},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s body=%v %s", tc.method, tc.body, tc.header)
		t.Run(name, func(t *testing.T) {
			var body io.Reader
			if tc.body {
				body = strings.NewReader("payload")
			}
			req, err := http.NewRequest(tc.method, "http://upstream.test/", body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set(tc.header, "k1")
			}
			if got := replayable(req); got != tc.want {
				t.Errorf("replayable = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTransportHostPort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com:80"},
		{"example.com:8080", "example.com:8080"},
		{"127.0.0.1", "127.0.0.1:80"},
		{"127.0.0.1:1", "127.0.0.1:1"},
		{"[::1]", "[::1]:80"},
		{"[::1]:9000", "[::1]:9000"},
	}
	for _, tc := range tests {
		if got := hostPort(tc.in); got != tc.want {
			t.Errorf("hostPort(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------
// 1. Keep-alive reuse.

func TestTransportKeepAliveReuse(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		status  int
		body    func(path string) string
		chunked bool
	}{
		{
			name: "content-length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				b := "hello " + r.URL.Path
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				io.WriteString(w, b)
			},
			status: 200,
			body:   func(p string) string { return "hello " + p },
		},
		{
			name: "chunked",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello ")
				w.(http.Flusher).Flush()
				io.WriteString(w, r.URL.Path)
			},
			status:  200,
			body:    func(p string) string { return "hello " + p },
			chunked: true,
		},
		{
			name:    "empty",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			status:  200,
			body:    func(string) string { return "" },
		},
		{
			name: "256 KiB",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(large)))
				w.Write(large)
			},
			status: 200,
			body:   func(string) string { return string(large) },
		},
		{
			name: "404 with body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "missing "+r.URL.Path, http.StatusNotFound)
			},
			status: 404,
			body:   func(p string) string { return "missing " + p + "\n" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Path", r.URL.Path)
				w.Header().Set("X-Query", r.URL.RawQuery)
				w.Header().Set("X-Echo", r.Header.Get("X-Req"))
				tc.handler(w, r)
			})
			tr := newTestTransport(t)
			for i := 0; i < 50; i++ {
				path := fmt.Sprintf("/item/%d", i)
				req := newRequest(t, http.MethodGet, srv.URL+path+"?n="+strconv.Itoa(i), nil)
				req.Header.Set("X-Req", "r"+strconv.Itoa(i))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body := readBody(t, resp)
				if resp.StatusCode != tc.status {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
				}
				if got := resp.Header.Get("X-Path"); got != path {
					t.Fatalf("request %d: X-Path %q, want %q", i, got, path)
				}
				if got, want := resp.Header.Get("X-Query"), "n="+strconv.Itoa(i); got != want {
					t.Fatalf("request %d: X-Query %q, want %q", i, got, want)
				}
				if got, want := resp.Header.Get("X-Echo"), "r"+strconv.Itoa(i); got != want {
					t.Fatalf("request %d: request header arrived as %q, want %q", i, got, want)
				}
				if want := tc.body(path); body != want {
					t.Fatalf("request %d: body of %d bytes, want %d bytes (%.40q)", i, len(body), len(want), body)
				}
				if chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"; chunked != tc.chunked {
					t.Fatalf("request %d: chunked %v, want %v", i, chunked, tc.chunked)
				}
			}
			if n := srv.opened.Load(); n != 1 {
				t.Errorf("upstream saw %d connections for 50 sequential requests, want 1", n)
			}
			if n := idleConns(tr); n != 1 {
				t.Errorf("%d idle connections, want 1", n)
			}
		})
	}
}

func TestTransportRequestLineAndHost(t *testing.T) {
	type got struct{ host, uri, proto, ua string }
	seenc := make(chan got, 1)
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		seenc <- got{r.Host, r.RequestURI, r.Proto, r.Header.Get("User-Agent")}
	})
	tr := newTestTransport(t)
	tests := []struct {
		name     string
		path     string
		host     string
		wantHost string
		wantURI  string
	}{
		{"default host", "/a/b?x=1&y=2", "", srv.Listener.Addr().String(), "/a/b?x=1&y=2"},
		{"explicit Host", "/", "app.example.test", "app.example.test", "/"},
		{"escaped path", "/a%2Fb/c%20d", "", srv.Listener.Addr().String(), "/a%2Fb/c%20d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, srv.URL+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			g := <-seenc
			if g.host != tc.wantHost || g.uri != tc.wantURI || g.proto != "HTTP/1.1" {
				t.Errorf("upstream saw host %q uri %q proto %q; want %q %q HTTP/1.1", g.host, g.uri, g.proto, tc.wantHost, tc.wantURI)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Body closed before EOF.

func TestTransportEarlyBodyCloseClosesConn(t *testing.T) {
	mib := bytes.Repeat([]byte("x"), 1<<20)
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"1 MiB content-length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(mib)))
			w.Write(mib)
		}},
		{"endless chunked", func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("y"), 32<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				default:
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/small" {
					io.WriteString(w, "small")
					return
				}
				tc.handler(w, r)
			})
			tr := newTestTransport(t)
			resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.URL+"/big", nil))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1024)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			go func() {
				resp.Body.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return: it must not drain the body")
			}
			if n := idleConns(tr); n != 0 {
				t.Errorf("%d idle connections after an early Close, want 0", n)
			}
			waitFor(t, "the upstream to see the connection closed", func() bool { return srv.closed.Load() == 1 })
			if code, body := get(t, tr, srv.URL+"/small"); code != 200 || body != "small" {
				t.Fatalf("next request: %d %q", code, body)
			}
			if n := srv.opened.Load(); n != 2 {
				t.Errorf("upstream saw %d connections, want 2 (the early-closed one must not be reused)", n)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3. Chunked response with trailers.

func TestTransportChunkedTrailers(t *testing.T) {
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Checksum", "sum-"+r.URL.Path)
		w.Header().Set(http.TrailerPrefix+"X-Late", "late-"+r.URL.Path)
	})
	tr := newTestTransport(t)
	for i := 0; i < 3; i++ {
		path := "/t" + strconv.Itoa(i)
		resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.URL+path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
			t.Fatalf("TransferEncoding %v, want chunked", resp.TransferEncoding)
		}
		if _, declared := resp.Trailer["X-Checksum"]; !declared {
			t.Fatalf("declared trailer missing before the body is read: %v", resp.Trailer)
		}
		if body := readBody(t, resp); body != "part one, part two" {
			t.Fatalf("body %q", body)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "sum-"+path {
			t.Errorf("trailer X-Checksum %q, want %q", got, "sum-"+path)
		}
		if got := resp.Trailer.Get("X-Late"); got != "late-"+path {
			t.Errorf("trailer X-Late %q, want %q", got, "late-"+path)
		}
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1", n)
	}
	if n := idleConns(tr); n != 1 {
		t.Errorf("%d idle connections, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// 4. HEAD, 204, 304.

func TestTransportNoBodyResponses(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		status     int
		handler    http.HandlerFunc
		wantLength int64
	}{
		{"HEAD with Content-Length", http.MethodHead, 200, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1234")
		}, 1234},
		{"HEAD chunked", http.MethodHead, 200, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
		}, -1},
		{"204", http.MethodGet, 204, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, 0},
		{"304", http.MethodGet, 304, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}, 0},
		{"200 Content-Length 0", http.MethodGet, 200, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "0")
		}, 0},
	}
	for _, tc := range tests {
		for _, readFirst := range []bool{true, false} {
			name := tc.name + "/close only"
			if readFirst {
				name = tc.name + "/read to EOF"
			}
			t.Run(name, func(t *testing.T) {
				srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/after" {
						io.WriteString(w, "after")
						return
					}
					tc.handler(w, r)
				})
				tr := newTestTransport(t)
				for i := 0; i < 3; i++ {
					resp, err := tr.RoundTrip(newRequest(t, tc.method, srv.URL+"/x", nil))
					if err != nil {
						t.Fatal(err)
					}
					if resp.StatusCode != tc.status {
						t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
					}
					if resp.ContentLength != tc.wantLength {
						t.Errorf("ContentLength %d, want %d", resp.ContentLength, tc.wantLength)
					}
					if readFirst {
						if body := readBody(t, resp); body != "" {
							t.Fatalf("body %q, want none", body)
						}
					} else {
						resp.Body.Close()
					}
				}
				if code, body := get(t, tr, srv.URL+"/after"); code != 200 || body != "after" {
					t.Fatalf("following request: %d %q", code, body)
				}
				if n := srv.opened.Load(); n != 1 {
					t.Errorf("upstream saw %d connections, want 1", n)
				}
			})
		}
	}
}

// ---------------------------------------------------------------------------
// 5. Responses that end the connection.

func TestTransportConnectionCloseNotReused(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		// act is what the upstream does after replying; rawKeep lets a
		// (wrongly) reused connection carry the next request, which the
		// per-connection request count catches.
		act  rawAction
		body string
	}{
		{"Connection: close with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", rawKeep, "hello"},
		{"Connection: close then closed", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", rawClose, "hello"},
		{"HTTP/1.0 with length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", rawKeep, "hello"},
		{"HTTP/1.0 close-delimited", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, close-delimited world", rawClose, "hello, close-delimited world"},
		{"HTTP/1.1 without length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nunbounded body", rawClose, "unbounded body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) { return tc.reply, tc.act })
			tr := newTestTransport(t)
			for i := 0; i < 2; i++ {
				resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.url+"/", nil))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if !resp.Close {
					t.Errorf("request %d: resp.Close false", i)
				}
				if body := readBody(t, resp); body != tc.body {
					t.Fatalf("request %d: body %q, want %q", i, body, tc.body)
				}
				if n := idleConns(tr); n != 0 {
					t.Fatalf("request %d: %d idle connections, want 0", i, n)
				}
			}
			for _, r := range srv.requests() {
				if r.N != 0 {
					t.Errorf("connection %d carried a request after its Connection: close response", r.Conn)
				}
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
	t.Run("request Close", func(t *testing.T) {
		srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) { return okReply("ok"), rawKeep })
		tr := newTestTransport(t)
		for i := 0; i < 2; i++ {
			req := newRequest(t, http.MethodGet, srv.url+"/", nil)
			req.Close = true
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if body := readBody(t, resp); body != "ok" {
				t.Fatalf("body %q", body)
			}
		}
		for _, r := range srv.requests() {
			if !r.Close {
				t.Errorf("upstream did not see Connection: close")
			}
			if r.N != 0 {
				t.Errorf("connection %d reused after a request with Close", r.Conn)
			}
		}
		if n := idleConns(tr); n != 0 {
			t.Errorf("%d idle connections, want 0", n)
		}
	})
}

// ---------------------------------------------------------------------------
// 6. Stale idle connections.

// The upstream closes a kept-alive connection while it sits idle; the peek
// at reuse finds it closed and the request goes out on a new connection,
// exactly once, whatever its method.
func TestTransportStaleIdleConnPeek(t *testing.T) {
	if !canPeek() {
		t.Skip("probes cannot peek on " + runtime.GOOS)
	}
	tests := []struct {
		method string
		body   string
	}{
		{http.MethodGet, ""},
		{http.MethodHead, ""},
		{http.MethodPost, "payload=1"},
		{http.MethodPut, "put body"},
		{http.MethodDelete, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			// Every connection serves one keep-alive-looking response, then
			// the upstream closes it.
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
				return okReplyTo(r, "served "+r.Method), rawClose
			})
			tr := newTestTransport(t)
			if _, body := get(t, tr, srv.url+"/warm"); body != "served GET" {
				t.Fatalf("warm-up body %q", body)
			}
			if n := idleConns(tr); n != 1 {
				t.Fatalf("%d idle connections after warm-up, want 1", n)
			}
			waitIdleClosedByPeer(t, tr, srv.addr)

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, err := tr.RoundTrip(newRequest(t, tc.method, srv.url+"/x", body))
			if err != nil {
				t.Fatalf("%s after the idle connection closed: %v", tc.method, err)
			}
			got := readBody(t, resp)
			if tc.method != http.MethodHead && got != "served "+tc.method {
				t.Errorf("body %q", got)
			}
			sent := 0
			for _, r := range srv.requests() {
				if r.URI == "/x" {
					sent++
					if r.Method != tc.method || r.Body != tc.body {
						t.Errorf("upstream received %s with body %q, want %s with %q", r.Method, r.Body, tc.method, tc.body)
					}
				}
			}
			if sent != 1 {
				t.Errorf("upstream received the %s %d times, want 1", tc.method, sent)
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

// The upstream closes a kept-alive connection on receiving the next request,
// without answering (the race the peek cannot see). Only requests that
// cannot have taken effect twice are sent again.
func TestTransportStaleConnRetry(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		body      string
		header    string
		wantRetry bool
	}{
		{"GET", http.MethodGet, "", "", true},
		{"HEAD", http.MethodHead, "", "", true},
		{"OPTIONS", http.MethodOptions, "", "", true},
		{"POST with body", http.MethodPost, "amount=10", "", false},
		{"PUT with body", http.MethodPut, "doc", "", false},
		{"POST without body", http.MethodPost, "", "", false},
		{"POST without body, Idempotency-Key", http.MethodPost, "", "Idempotency-Key", true},
		{"POST with body, Idempotency-Key", http.MethodPost, "amount=10", "Idempotency-Key", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
				if r.Conn == 0 && r.N == 1 {
					return "", rawClose // received, not answered
				}
				return okReplyTo(r, "ok"), rawKeep
			})
			tr := newTestTransport(t)
			if _, body := get(t, tr, srv.url+"/warm"); body != "ok" {
				t.Fatalf("warm-up body %q", body)
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := newRequest(t, tc.method, srv.url+"/x", body)
			if tc.header != "" {
				req.Header.Set(tc.header, "key-1")
			}
			resp, err := tr.RoundTrip(req)
			sent := 0
			for _, r := range srv.requests() {
				if r.URI == "/x" {
					sent++
					if r.Body != tc.body {
						t.Errorf("upstream received body %q, want %q", r.Body, tc.body)
					}
				}
			}
			if tc.wantRetry {
				if err != nil {
					t.Fatalf("want a retry on a new connection, got %v", err)
				}
				readBody(t, resp)
				if sent != 2 {
					t.Errorf("upstream received the request %d times, want 2 (one lost, one retried)", sent)
				}
				if n := srv.accepted.Load(); n != 2 {
					t.Errorf("upstream accepted %d connections, want 2", n)
				}
				return
			}
			if err == nil {
				readBody(t, resp)
				t.Fatalf("want an error: a %s the upstream may have processed must not be sent again", tc.method)
			}
			if sent != 1 {
				t.Errorf("upstream received the %s %d times, want exactly 1", tc.method, sent)
			}
			if isConnectError(err) {
				t.Errorf("error %v counts as a connect error; the Pool would send the request to another target", err)
			}
			if errors.Is(err, ErrUpstreamTimeout) {
				t.Errorf("error %v reported as a timeout", err)
			}
		})
	}

	t.Run("new connection is not retried", func(t *testing.T) {
		srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) { return "", rawClose })
		tr := newTestTransport(t)
		_, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.url+"/", nil))
		if err == nil {
			t.Fatal("want an error")
		}
		if n := srv.count(http.MethodGet); n != 1 {
			t.Errorf("upstream received the GET %d times, want 1 (a failure on a new connection is not stale)", n)
		}
	})

	t.Run("several stale connections", func(t *testing.T) {
		const stale = 3
		arrive := newBarrier(stale)
		srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
			if r.Conn < stale {
				if r.N == 0 {
					arrive.wait() // make the warm-up open 3 connections
					return okReply("ok"), rawKeep
				}
				return "", rawClose
			}
			return okReply("fresh"), rawKeep
		})
		tr := newTestTransport(t)
		parallelGets(t, tr, srv.url+"/warm", stale)
		if n := idleConns(tr); n != stale {
			t.Fatalf("%d idle connections, want %d", n, stale)
		}
		if code, body := get(t, tr, srv.url+"/x"); code != 200 || body != "fresh" {
			t.Fatalf("got %d %q", code, body)
		}
		if n := srv.accepted.Load(); n != stale+1 {
			t.Errorf("upstream accepted %d connections, want %d", n, stale+1)
		}
	})
}

// The upstream sends bytes nobody asked for; the connection is not in a
// state to carry a request and must not be reused.
func TestTransportUnaskedDataNotReused(t *testing.T) {
	later := make(chan struct{})
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit) })
	tests := []struct {
		name  string
		reply func(c net.Conn) string
		wait  bool
	}{
		{"extra response in the same write", func(net.Conn) string {
			return okReply("first") + okReply("bogus")
		}, false},
		{"204 with a stray body", func(net.Conn) string {
			return "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nbogus"
		}, false},
		{"data while idle", func(c net.Conn) string {
			go func() {
				select {
				case <-later:
					io.WriteString(c, okReply("bogus"))
				case <-quit:
				}
			}()
			return okReply("first")
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, r rawReq) (string, rawAction) {
				if r.Conn == 0 && r.N == 0 {
					return tc.reply(c), rawKeep
				}
				return okReply("right"), rawKeep
			})
			tr := newTestTransport(t)
			get(t, tr, srv.url+"/1")
			if tc.wait {
				if !canPeek() {
					t.Skip("probes cannot peek on " + runtime.GOOS)
				}
				close(later)
				waitIdleClosedByPeer(t, tr, srv.addr)
			}
			if _, body := get(t, tr, srv.url+"/2"); body != "right" {
				t.Fatalf("second request read %q, want %q", body, "right")
			}
			if n := srv.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

func TestTransportIdleTimeout(t *testing.T) {
	t.Run("expired idle connection is not reused", func(t *testing.T) {
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		tr := newTestTransport(t)
		tr.IdleTimeout = 50 * time.Millisecond
		get(t, tr, srv.URL)
		time.Sleep(80 * time.Millisecond)
		get(t, tr, srv.URL)
		if n := srv.opened.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2", n)
		}
		waitFor(t, "the expired connection to be closed", func() bool { return srv.closed.Load() == 1 })
	})
	t.Run("expired oldest connection is closed when another is returned", func(t *testing.T) {
		arrive := newBarrier(2)
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/burst" {
				arrive.wait()
			}
			io.WriteString(w, "ok")
		})
		tr := newTestTransport(t)
		tr.IdleTimeout = 100 * time.Millisecond
		parallelGets(t, tr, srv.URL+"/burst", 2)
		if n := idleConns(tr); n != 2 {
			t.Fatalf("%d idle connections after the burst, want 2", n)
		}
		// Keep one connection busy; the other one ages at the front of
		// the idle list and is closed when the busy one comes back.
		waitFor(t, "the unused idle connection to be closed", func() bool {
			get(t, tr, srv.URL+"/one")
			return srv.closed.Load() == 1
		})
		if n := idleConns(tr); n != 1 {
			t.Errorf("%d idle connections, want 1", n)
		}
		if n := srv.opened.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2", n)
		}
	})
	t.Run("idle connections to an upstream with no more traffic are closed", func(t *testing.T) {
		ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
		gone := newCountingServer(t, false, ok) // as if removed by a reload
		busy := newCountingServer(t, false, ok)
		tr := newTestTransport(t)
		tr.IdleTimeout = 100 * time.Millisecond
		get(t, tr, gone.URL)
		// Only the other upstream is used from now on; its returned
		// connections let the transport sweep the forgotten one.
		waitFor(t, "the forgotten upstream's connection to be closed", func() bool {
			get(t, tr, busy.URL)
			return gone.closed.Load() == 1
		})
		if n := busy.closed.Load(); n != 0 {
			t.Errorf("the busy upstream's connection was closed %d times", n)
		}
		if n := idleConns(tr); n != 1 {
			t.Errorf("%d idle connections, want the busy upstream's 1", n)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Timeouts.

func TestTransportTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name   string
		warmUp bool
		reply  string
	}{
		{"no response", false, ""},
		{"partial status line", false, "HTTP/1.1 200"},
		{"headers never finish", false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"},
		{"100 Continue then nothing", false, "HTTP/1.1 100 Continue\r\n\r\n"},
		{"reused connection, no response", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
				if r.URI == "/warm" {
					return okReply("ok"), rawKeep
				}
				return tc.reply, rawStall
			})
			tr := newTestTransport(t)
			if tc.warmUp {
				get(t, tr, srv.url+"/warm")
			}
			start := time.Now()
			resp, err := tr.roundTrip(newRequest(t, http.MethodGet, srv.url+"/slow", nil), timeout)
			elapsed := time.Since(start)
			if err == nil {
				resp.Body.Close()
				t.Fatal("want a timeout")
			}
			if !errors.Is(err, ErrUpstreamTimeout) {
				t.Fatalf("err = %v, want ErrUpstreamTimeout", err)
			}
			if elapsed < timeout/2 || elapsed > 5*time.Second {
				t.Errorf("timed out after %s with a %s timeout", elapsed, timeout)
			}
			if n := srv.count(http.MethodGet) - btoi(tc.warmUp); n != 1 {
				t.Errorf("upstream received the request %d times, want 1", n)
			}
			if n := idleConns(tr); n != 0 {
				t.Errorf("%d idle connections, want 0", n)
			}
			waitFor(t, "the timed-out connection to be closed", func() bool { return srv.ended.Load() == 1 })
		})
	}

	t.Run("dial", func(t *testing.T) {
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
		tr := newTestTransport(t)
		tr.Dialer.ControlContext = func(ctx context.Context, _, _ string, _ syscall.RawConn) error {
			<-ctx.Done() // a dial that never completes
			return ctx.Err()
		}
		start := time.Now()
		_, err := tr.roundTrip(newRequest(t, http.MethodGet, srv.URL, nil), timeout)
		if !errors.Is(err, ErrUpstreamTimeout) {
			t.Fatalf("err = %v, want ErrUpstreamTimeout", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("timed out after %s", elapsed)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The timeout bounds the wait for headers only: a body that starts in time
// streams as long as it takes, and the deadline does not linger on the
// connection.
func TestTransportTimeoutDoesNotCutBody(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trickle":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			for _, s := range []string{"b", "c", "d"} {
				time.Sleep(timeout)
				io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		case "/late-headers":
			time.Sleep(2 * timeout)
			io.WriteString(w, "late")
		default:
			io.WriteString(w, "fast")
		}
	})
	tr := newTestTransport(t)
	start := time.Now()
	resp, err := tr.roundTrip(newRequest(t, http.MethodGet, srv.URL+"/trickle", nil), timeout)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); body != "abcd" {
		t.Fatalf("body %q, want abcd", body)
	}
	if elapsed := time.Since(start); elapsed < 2*timeout {
		t.Fatalf("body took %s; the test needs it to outlast the %s timeout", elapsed, timeout)
	}
	// The same connection, now without a timeout, waits for slow headers:
	// the previous request's deadline must be gone.
	resp, err = tr.RoundTrip(newRequest(t, http.MethodGet, srv.URL+"/late-headers", nil))
	if err != nil {
		t.Fatalf("request without a timeout on the reused connection: %v", err)
	}
	if body := readBody(t, resp); body != "late" {
		t.Fatalf("body %q", body)
	}
	resp, err = tr.roundTrip(newRequest(t, http.MethodGet, srv.URL+"/fast", nil), timeout)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); body != "fast" {
		t.Fatalf("body %q", body)
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// 8. Context cancellation.

func TestTransportContextCancel(t *testing.T) {
	t.Run("while waiting for headers", func(t *testing.T) {
		received := make(chan struct{}, 1)
		srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
			received <- struct{}{}
			return "", rawStall
		})
		tr := newTestTransport(t)
		cause := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(testContext(t))
		go func() {
			<-received
			cancel(cause)
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/", nil)
		start := time.Now()
		resp, err := tr.roundTrip(req, 30*time.Second)
		if err == nil {
			resp.Body.Close()
			t.Fatal("want an error")
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("returned after %s", elapsed)
		}
		if !errors.Is(err, cause) {
			t.Errorf("err = %v, want it to carry the context's cause", err)
		}
		if errors.Is(err, ErrUpstreamTimeout) {
			t.Errorf("err = %v: a cancellation is not a timeout", err)
		}
		if n := idleConns(tr); n != 0 {
			t.Errorf("%d idle connections, want 0", n)
		}
		waitFor(t, "the connection to be closed", func() bool { return srv.ended.Load() == 1 })
	})

	t.Run("while reading the body", func(t *testing.T) {
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/next" {
				io.WriteString(w, "next")
				return
			}
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		tr := newTestTransport(t)
		ctx, cancel := context.WithCancel(testContext(t))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
			t.Fatalf("read %q, %v", buf, err)
		}
		cancel()
		readErr := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(make([]byte, 10))
			readErr <- err
		}()
		select {
		case err := <-readErr:
			if err == nil || err == io.EOF {
				t.Fatalf("Read after cancel returned %v, want an error", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read did not fail after the context was cancelled")
		}
		resp.Body.Close()
		if n := idleConns(tr); n != 0 {
			t.Errorf("%d idle connections, want 0", n)
		}
		if code, body := get(t, tr, srv.URL+"/next"); code != 200 || body != "next" {
			t.Fatalf("next request: %d %q", code, body)
		}
		if n := srv.opened.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2", n)
		}
	})

	t.Run("already cancelled, idle connection available", func(t *testing.T) {
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		tr := newTestTransport(t)
		get(t, tr, srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("want an error")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if code, body := get(t, tr, srv.URL); code != 200 || body != "ok" {
			t.Fatalf("next request: %d %q", code, body)
		}
	})
}

// A client that goes away while the proxy dials says nothing about the
// upstream's health: the Pool must not mark the target down.
func TestTransportDialCancelIsNotConnectError(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "direct"
		if useTLS {
			name = "fallback (https)"
		}
		t.Run(name, func(t *testing.T) {
			srv := newCountingServer(t, useTLS, func(w http.ResponseWriter, r *http.Request) {})
			tr := newTestTransport(t)
			tr.Fallback.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			dialing := make(chan struct{}, 1)
			// tr.Dialer is shared with Fallback.DialContext.
			tr.Dialer.ControlContext = func(ctx context.Context, _, _ string, _ syscall.RawConn) error {
				select {
				case dialing <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return ctx.Err()
			}
			pool, err := NewPool("p", []string{srv.URL}, 0, tr, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(testContext(t))
			go func() {
				<-dialing
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://frontdoor.test/x", nil)
			resp, err := pool.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("want an error")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if isConnectError(err) {
				t.Errorf("err = %v counts as a connect error", err)
			}
			if !pool.Targets[0].Healthy(time.Now()) {
				t.Errorf("target marked down because the client cancelled")
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 9. Informational responses.

func TestTransportInformational(t *testing.T) {
	final := "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok"
	cont := "HTTP/1.1 100 Continue\r\nX-Info: 1\r\n\r\n"
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nX-Info: 1\r\n\r\n"
	tests := []struct {
		name    string
		prefix  string
		wantErr bool
	}{
		{"none", "", false},
		{"100 Continue", cont, false},
		{"102 Processing", "HTTP/1.1 102 Processing\r\n\r\n", false},
		{"103 Early Hints", hints, false},
		{"100 and 103", cont + hints, false},
		{"five 1xx", strings.Repeat(hints, 5), false},
		{"six 1xx", strings.Repeat(hints, 6), true},
		{"unasked 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) {
				return tc.prefix + final, rawKeep
			})
			tr := newTestTransport(t)
			for i := 0; i < 2; i++ {
				resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.url+"/", nil))
				if tc.wantErr {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("want an error, got %d", resp.StatusCode)
					}
					if n := idleConns(tr); n != 0 {
						t.Fatalf("%d idle connections after the error, want 0", n)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || resp.Header.Get("X-Final") != "yes" || resp.Header.Get("X-Info") != "" {
					t.Fatalf("got %d %v; want the final response's status and headers only", resp.StatusCode, resp.Header)
				}
				if body := readBody(t, resp); body != "ok" {
					t.Fatalf("body %q", body)
				}
			}
			want := int64(1)
			if tc.wantErr {
				want = 2
			}
			if n := srv.accepted.Load(); n != want {
				t.Errorf("upstream accepted %d connections, want %d", n, want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 10. Response header limit and malformed responses.

func TestTransportBadResponses(t *testing.T) {
	const limit = 4096
	big := bytes.Repeat([]byte("b"), 1<<20)
	many := ""
	for i := 0; i < 100; i++ {
		many += fmt.Sprintf("X-H%03d: %s\r\n", i, strings.Repeat("v", 90))
	}
	tests := []struct {
		name    string
		reply   string
		act     rawAction
		wantErr string // "" for success
		body    string
	}{
		{"one 8 KiB header", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\nContent-Length: 0\r\n\r\n", rawStall, "exceed", ""},
		{"many headers", "HTTP/1.1 200 OK\r\n" + many + "Content-Length: 0\r\n\r\n", rawStall, "exceed", ""},
		{"endless status line", "HTTP/1.1 200 " + strings.Repeat("A", 10<<10), rawStall, "exceed", ""},
		{"headers just under the limit", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 3000) + "\r\nContent-Length: 2\r\n\r\nok", rawKeep, "", "ok"},
		{"small headers, 1 MiB body", "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + string(big), rawKeep, "", string(big)},
		{"garbage", "this is not HTTP at all\r\n\r\n", rawStall, "malformed", ""},
		{"bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", rawStall, "status code", ""},
		{"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", rawStall, "Content-Length", ""},
		{"truncated headers", "HTTP/1.1 200 OK\r\nX-A: b\r\n", rawClose, "EOF", ""},
		{"empty reply", "", rawClose, "EOF", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ net.Conn, r rawReq) (string, rawAction) { return tc.reply, tc.act })
			tr := newTestTransport(t)
			tr.MaxResponseHeaderBytes = limit
			resp, err := tr.RoundTrip(newRequest(t, http.MethodGet, srv.url+"/", nil))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if body := readBody(t, resp); body != tc.body {
					t.Fatalf("body of %d bytes, want %d", len(body), len(tc.body))
				}
				if n := idleConns(tr); n != 1 {
					t.Errorf("%d idle connections, want 1", n)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("want an error, got status %d", resp.StatusCode)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrUpstreamTimeout) {
				t.Errorf("err = %v reported as a timeout", err)
			}
			if n := idleConns(tr); n != 0 {
				t.Errorf("%d idle connections, want 0", n)
			}
			waitFor(t, "the connection to be closed", func() bool { return srv.ended.Load() == 1 })
		})
	}
}

// ---------------------------------------------------------------------------
// 11. Request bodies and the fallback.

func TestTransportRequestBodies(t *testing.T) {
	const maxDirect = 1024
	type seenReq struct {
		method, body, te, upgrade string
		contentLength             int64
		tls                       bool
	}
	handler := func(seen chan<- seenReq) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			seen <- seenReq{
				method: r.Method, body: string(b), te: strings.Join(r.TransferEncoding, ","),
				upgrade:       r.Header.Get("Upgrade"),
				contentLength: r.ContentLength, tls: r.TLS != nil,
			}
			io.WriteString(w, "got "+strconv.Itoa(len(b)))
		}
	}
	type streamOnly struct{ io.Reader } // hides the length from NewRequest

	tests := []struct {
		name       string
		tls        bool
		method     string
		body       func() (io.Reader, string)
		header     map[string]string
		wantDirect bool
		wantLength int64
		wantTE     string
	}{
		{"GET without body", false, "GET", nil, nil, true, 0, ""},
		{"small POST", false, "POST", func() (io.Reader, string) { return strings.NewReader("a=1&b=2"), "a=1&b=2" }, nil, true, 7, ""},
		{"POST of MaxDirectBody", false, "POST", func() (io.Reader, string) {
			s := strings.Repeat("m", maxDirect)
			return strings.NewReader(s), s
		}, nil, true, maxDirect, ""},
		{"POST above MaxDirectBody", false, "POST", func() (io.Reader, string) {
			s := strings.Repeat("L", maxDirect+1)
			return strings.NewReader(s), s
		}, nil, false, maxDirect + 1, ""},
		{"POST of 1 MiB", false, "POST", func() (io.Reader, string) {
			s := strings.Repeat("H", 1<<20)
			return strings.NewReader(s), s
		}, nil, false, 1 << 20, ""},
		{"chunked POST", false, "POST", func() (io.Reader, string) {
			return streamOnly{strings.NewReader("streamed body")}, "streamed body"
		}, nil, false, -1, "chunked"},
		{"Expect: 100-continue", false, "POST", func() (io.Reader, string) { return strings.NewReader("expect"), "expect" },
			map[string]string{"Expect": "100-continue"}, false, 6, ""},
		{"Upgrade header", false, "GET", nil, map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, false, 0, ""},
		{"https GET", true, "GET", nil, nil, false, 0, ""},
		{"https small POST", true, "POST", func() (io.Reader, string) { return strings.NewReader("tls"), "tls" }, nil, false, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan seenReq, 1)
			srv := newCountingServer(t, tc.tls, handler(seen))
			tr := newTestTransport(t)
			tr.MaxDirectBody = maxDirect
			tr.Fallback.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			var fallbackDials atomic.Int64
			tr.Fallback.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				fallbackDials.Add(1)
				return tr.Dialer.DialContext(ctx, network, addr)
			}
			var body io.Reader
			want := ""
			if tc.body != nil {
				body, want = tc.body()
			}
			req := newRequest(t, tc.method, srv.URL+"/upload", body)
			if _, ok := body.(streamOnly); ok {
				req.ContentLength = -1 // unknown
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := readBody(t, resp); resp.StatusCode != 200 || got != "got "+strconv.Itoa(len(want)) {
				t.Fatalf("response %d %q", resp.StatusCode, got)
			}
			s := <-seen
			if s.method != tc.method || s.body != want {
				t.Errorf("upstream saw %s with a %d-byte body, want %s with %d bytes", s.method, len(s.body), tc.method, len(want))
			}
			if s.contentLength != tc.wantLength || s.te != tc.wantTE {
				t.Errorf("upstream saw Content-Length %d, Transfer-Encoding %q; want %d, %q", s.contentLength, s.te, tc.wantLength, tc.wantTE)
			}
			if s.tls != tc.tls {
				t.Errorf("upstream TLS %v, want %v", s.tls, tc.tls)
			}
			if v := tc.header["Upgrade"]; s.upgrade != v {
				t.Errorf("upstream saw Upgrade %q, want %q", s.upgrade, v)
			}
			direct := idleConns(tr) == 1
			if direct != tc.wantDirect {
				t.Errorf("sent direct = %v (idle %d), want %v", direct, idleConns(tr), tc.wantDirect)
			}
			if wantDials := int64(btoi(!tc.wantDirect)); fallbackDials.Load() != wantDials {
				t.Errorf("fallback dialled %d times, want %d", fallbackDials.Load(), wantDials)
			}
		})
	}
}

// A protocol upgrade goes through the fallback, which hands back a
// writable body for the switched connection.
func TestTransportUpgradeViaFallback(t *testing.T) {
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	tr := newTestTransport(t)
	req := newRequest(t, http.MethodGet, srv.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("body %T is not writable", resp.Body)
	}
	if _, err := io.WriteString(rw, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(rw).ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("read %q, %v", line, err)
	}
}

// ---------------------------------------------------------------------------
// 12. Dial failures.

func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTransportDialFailure(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
	}{
		{"GET", http.MethodGet, ""},
		{"POST", http.MethodPost, "payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTransport(t)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, err := tr.RoundTrip(newRequest(t, tc.method, "http://"+deadAddr(t)+"/", body))
			if err == nil {
				resp.Body.Close()
				t.Fatal("want an error")
			}
			if !isConnectError(err) {
				t.Errorf("isConnectError(%v) = false; the Pool would not mark the target down", err)
			}
			if errors.Is(err, ErrUpstreamTimeout) {
				t.Errorf("err = %v reported as a timeout", err)
			}
		})
	}

	t.Run("pool skips the dead target", func(t *testing.T) {
		srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "alive "+r.URL.Path) })
		tr := newTestTransport(t)
		pool, err := NewPool("p", []string{"http://" + deadAddr(t), srv.URL}, time.Second, tr, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			resp, err := pool.RoundTrip(newRequest(t, http.MethodGet, "http://frontdoor.test/x", nil))
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if body := readBody(t, resp); body != "alive /x" {
				t.Fatalf("body %q", body)
			}
		}
		if pool.Targets[0].Healthy(time.Now()) {
			t.Error("dead target not marked down")
		}
		if !pool.Targets[1].Healthy(time.Now()) {
			t.Error("live target marked down")
		}
	})
}

// http.RoundTripper: "RoundTrip must always close the body, including on
// errors".
func TestTransportClosesRequestBodyOnError(t *testing.T) {
	tests := []struct {
		name   string
		scheme string
		size   int
	}{
		{"direct", "http", 10},
		{"fallback, large body", "http", 100 << 10},
		{"fallback, https", "https", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTransport(t)
			body := &closeTracker{Reader: strings.NewReader(strings.Repeat("x", tc.size))}
			req := newRequest(t, http.MethodPost, tc.scheme+"://"+deadAddr(t)+"/", body)
			req.ContentLength = int64(tc.size)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("want an error")
			}
			waitFor(t, "the request body to be closed", body.closed.Load)
		})
	}
}

// ---------------------------------------------------------------------------
// 13. Concurrency.

func TestTransportConcurrent(t *testing.T) {
	const workers, perWorker = 32, 100
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	tr := newTestTransport(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := testContext(t)
			for i := 0; i < perWorker; i++ {
				want := fmt.Sprintf("/w%d/r%d", g, i)
				var req *http.Request
				if i%4 == 3 {
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/post", strings.NewReader(want))
				} else {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+want, nil)
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", want, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					errs <- fmt.Errorf("%s: body %q, %v", want, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.opened.Load(); n > workers+4 {
		t.Errorf("upstream saw %d connections for %d concurrent clients", n, workers)
	}
	if n := idleConns(tr); n > workers {
		t.Errorf("%d idle connections, want at most %d", n, workers)
	}
}

// ---------------------------------------------------------------------------
// 14. CloseIdleConnections.

func TestTransportCloseIdleConnections(t *testing.T) {
	const n = 4
	arrive := newBarrier(n)
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/burst" {
			arrive.wait()
		}
		io.WriteString(w, "ok")
	})
	tlsSrv := newCountingServer(t, true, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls") })
	tr := newTestTransport(t)
	tr.Fallback.TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	parallelGets(t, tr, srv.URL+"/burst", n)
	if got := idleConns(tr); got != n {
		t.Fatalf("%d idle connections, want %d", got, n)
	}
	if _, body := get(t, tr, tlsSrv.URL); body != "tls" {
		t.Fatalf("https body %q", body)
	}
	if srv.closed.Load() != 0 || tlsSrv.closed.Load() != 0 {
		t.Fatal("connections closed before CloseIdleConnections")
	}

	tr.CloseIdleConnections()
	if got := idleConns(tr); got != 0 {
		t.Errorf("%d idle connections after CloseIdleConnections", got)
	}
	waitFor(t, "the upstream to see the idle connections close", func() bool { return srv.closed.Load() == n })
	waitFor(t, "the https upstream to see its idle connection close", func() bool { return tlsSrv.closed.Load() == 1 })

	// The transport still works afterwards.
	if _, body := get(t, tr, srv.URL); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if got := idleConns(tr); got != 1 {
		t.Errorf("%d idle connections, want 1", got)
	}
}

// ---------------------------------------------------------------------------
// 15. MaxIdlePerHost.

func TestTransportMaxIdlePerHost(t *testing.T) {
	tests := []struct {
		maxIdle, concurrent, hosts int
	}{
		{2, 8, 1},
		{2, 8, 2},
		{1, 3, 1},
		{0, 3, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("max %d, %d concurrent, %d hosts", tc.maxIdle, tc.concurrent, tc.hosts), func(t *testing.T) {
			tr := newTestTransport(t)
			tr.MaxIdlePerHost = tc.maxIdle
			for h := 0; h < tc.hosts; h++ {
				arrive := newBarrier(tc.concurrent)
				srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					arrive.wait()
					io.WriteString(w, "ok")
				})
				parallelGets(t, tr, srv.URL, tc.concurrent)
				if n := srv.opened.Load(); n != int64(tc.concurrent) {
					t.Fatalf("upstream saw %d connections, want %d", n, tc.concurrent)
				}
				addr := srv.Listener.Addr().String()
				if n := len(idleConnList(tr, addr)); n != tc.maxIdle {
					t.Errorf("host %d: %d idle connections, want %d", h, n, tc.maxIdle)
				}
				want := int64(tc.concurrent - tc.maxIdle)
				waitFor(t, "the surplus connections to be closed", func() bool { return srv.closed.Load() == want })
			}
			if n := idleConns(tr); n != tc.maxIdle*tc.hosts {
				t.Errorf("%d idle connections in total, want %d", n, tc.maxIdle*tc.hosts)
			}
		})
	}
}
