package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// servedBy names the server a handler runs under: net/http's
// ResponseWriter implements http.Hijacker, h1's does not.
func servedBy(w http.ResponseWriter) string {
	if _, ok := w.(http.Hijacker); ok {
		return "net/http"
	}
	return "h1"
}

// guard bounds every client read and write, so a server that fails to
// answer or to close fails the test instead of hanging it.
const guard = 5 * time.Second

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	*Server
	addr  string
	log   *logBuf
	done  chan struct{}
	err   error // Serve's result, once done is closed
	accpt atomic.Int64
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startH1 serves h with h1 (and h as Fallback's handler) on a loopback
// listener.
func startH1(t testing.TB, h http.Handler, configure ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	logger := log.New(lb, "", 0)
	s := &Server{
		Handler:  h,
		Fallback: &http.Server{Handler: h, ErrorLog: logger},
		ErrorLog: logger,
	}
	for _, f := range configure {
		f(s)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), log: lb, done: make(chan struct{})}
	go func() {
		ts.err = s.Serve(countingListener{ln, &ts.accpt})
		close(ts.done)
	}()
	t.Cleanup(func() {
		s.Close()
		ln.Close()
		select {
		case <-ts.done:
		case <-time.After(guard):
			t.Errorf("Serve did not return after Close")
			return
		}
		if !errors.Is(ts.err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", ts.err)
		}
	})
	return ts
}

// served waits for Serve to return and returns its error.
func (ts *testServer) served(t testing.TB) error {
	t.Helper()
	select {
	case <-ts.done:
		return ts.err
	case <-time.After(guard):
		t.Fatal("Serve did not return")
		return nil
	}
}

// startNetHTTP serves h with a plain net/http server, the reference.
func startNetHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(guard))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// trySend is send for a connection that may be closed already.
func (c *client) trySend(s string) error {
	_, err := io.WriteString(c.c, s)
	return err
}

// observed is a parsed response, comparable with reflect.DeepEqual.
type observed struct {
	Interim []string // 1xx responses before the final one
	Status  string
	Proto   string
	Header  http.Header
	TE      []string
	Length  int64
	Close   bool
	Body    string
	BodyErr string
	Trailer http.Header
}

// next reads the next final response (with the 1xx ones before it) and its
// body.
func (c *client) next(method string) (*observed, error) {
	r := &observed{}
	for {
		resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
			r.Interim = append(r.Interim, resp.Status+" "+fmtHeader(resp.Header))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.Status, r.Proto = resp.Status, resp.Proto
		r.Header = normHeader(resp.Header)
		r.TE, r.Length, r.Close = resp.TransferEncoding, resp.ContentLength, resp.Close
		r.Body = string(body)
		if err != nil {
			r.BodyErr = err.Error()
		}
		r.Trailer = resp.Trailer
		return r, nil
	}
}

// mustNext is next for a response that must arrive.
func (c *client) mustNext(method string) *observed {
	c.t.Helper()
	r, err := c.next(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

// closed reports whether the server closed the connection: a read returns
// EOF (or a reset) rather than data or the guard's timeout.
func (c *client) closed() bool {
	c.t.Helper()
	b, err := c.br.ReadByte()
	if err == nil {
		c.t.Errorf("read %q, want EOF", b)
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Errorf("connection still open after %v", guard)
		return false
	}
	return true
}

const handlerDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// normHeader replaces a server-made Date by a placeholder.
func normHeader(h http.Header) http.Header {
	if d := h.Get("Date"); d != "" && d != handlerDate {
		if _, err := time.Parse(http.TimeFormat, d); err == nil {
			h.Set("Date", "<now>")
		}
	}
	return h
}

func fmtHeader(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q ", k, h[k])
	}
	return b.String()
}

func (r *observed) String() string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("interim=%q status=%q proto=%s TE=%q len=%d close=%v body=%q bodyErr=%q\n\t\theader: %s\n\t\ttrailer: %s",
		r.Interim, r.Status, r.Proto, r.TE, r.Length, r.Close, r.Body, r.BodyErr, fmtHeader(r.Header), fmtHeader(r.Trailer))
}

// --- response framing, compared with net/http ---

type framingCase struct {
	name   string
	method string
	reqHdr string // extra request header lines, each ending in CRLF
	h      func(w http.ResponseWriter, r *http.Request)
}

var (
	bigBody  = strings.Repeat("0123456789", 500) // 5000 bytes
	htmlBody = "<!DOCTYPE html><html><body>" + strings.Repeat("hello ", 600) + "</body></html>"
)

func writeString(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) }
}

var framingCases = []framingCase{
	{name: "no write", h: func(w http.ResponseWriter, r *http.Request) {}},
	{name: "small write", h: writeString("hello")},
	{name: "empty write", h: func(w http.ResponseWriter, r *http.Request) { w.Write(nil) }},
	{name: "2048 bytes", h: writeString(bigBody[:2048])},
	{name: "2049 bytes", h: writeString(bigBody[:2049])},
	{name: "large write chunked", h: writeString(bigBody)},
	{name: "writes crossing 2048", h: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, bigBody[:1000])
		io.WriteString(w, bigBody[:1049])
	}},
	{name: "many small writes", h: func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 500; i++ {
			io.WriteString(w, "0123456789")
		}
	}},
	{name: "declared length", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}},
	{name: "declared length large", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(bigBody)))
		io.WriteString(w, bigBody)
	}},
	{name: "invalid declared length", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "five")
		io.WriteString(w, "hello")
	}},
	{name: "HEAD no write", method: "HEAD", h: func(w http.ResponseWriter, r *http.Request) {}},
	{name: "HEAD small write", method: "HEAD", h: writeString("hello")},
	{name: "HEAD declared length", method: "HEAD", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
	}},
	{name: "HEAD large write", method: "HEAD", h: writeString(bigBody)},
	{name: "HEAD sniffed type", method: "HEAD", h: writeString(htmlBody[:200])},
	{name: "204", h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
	{name: "204 with length and write", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusNoContent)
		if _, err := io.WriteString(w, "hello"); err != http.ErrBodyNotAllowed {
			panic(fmt.Sprintf("write after 204: %v", err))
		}
	}},
	{name: "304", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	}},
	{name: "304 with type and length", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusNotModified)
	}},
	{name: "418", h: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	}},
	{name: "unknown status 599", h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) }},
	{name: "handler Date", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", handlerDate)
		io.WriteString(w, "x")
	}},
	{name: "Date suppressed", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		io.WriteString(w, "x")
	}},
	{name: "Content-Type nil suppresses sniffing", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, htmlBody)
	}},
	{name: "sniffed html", h: writeString(htmlBody[:300])},
	{name: "sniffed html large", h: writeString(htmlBody)},
	{name: "sniffed png", h: writeString("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
	{name: "sniff spans a small first write", h: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "\n")
		io.WriteString(w, htmlBody)
	}},
	{name: "sniff with declared length spans writes", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1+len(htmlBody)))
		io.WriteString(w, "\n")
		io.WriteString(w, htmlBody)
	}},
	{name: "Content-Encoding suppresses sniffing", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "identity")
		io.WriteString(w, htmlBody[:100])
	}},
	{name: "explicit type", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"a":1}`)
	}},
	{name: "flush mid-body", h: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "world")
	}},
	{name: "flush before write", h: func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		io.WriteString(w, "<html>late</html>")
	}},
	{name: "ResponseController flush with length", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		io.WriteString(w, "hello ")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		io.WriteString(w, "world")
	}},
	{name: "declared trailers", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-A, x-b")
		io.WriteString(w, "body")
		w.Header().Set("X-A", "a")
		w.Header().Set("X-B", "b")
	}},
	{name: "declared and prefixed trailers", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-A")
		io.WriteString(w, bigBody)
		w.Header().Set("X-A", "a")
		w.Header().Set(http.TrailerPrefix+"X-C", "c")
	}},
	{name: "prefixed trailer after large body", h: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, bigBody)
		w.Header().Set(http.TrailerPrefix+"X-C", "c")
	}},
	{name: "prefixed trailer after small body", h: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body")
		w.Header().Set(http.TrailerPrefix+"X-C", "c")
	}},
	{name: "prefixed trailer set before the body", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(http.TrailerPrefix+"X-E", "e")
		io.WriteString(w, "body")
	}},
	{name: "Connection close from request", reqHdr: "Connection: close\r\n", h: writeString("bye")},
	{name: "Connection close from handler", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}},
	{name: "Connection keep-alive from handler", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "keep-alive")
		io.WriteString(w, "hi")
	}},
	{name: "fewer bytes than declared", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "hello")
	}},
	{name: "more bytes than declared", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		if _, err := io.WriteString(w, "hello"); err != http.ErrContentLength {
			panic(fmt.Sprintf("long write: %v", err))
		}
		// (A further write of 3 bytes succeeds under h1 but not under
		// net/http, which counts the rejected bytes as written; not
		// compared here.)
	}},
	{name: "WriteHeader twice", h: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "x")
	}},
	{name: "header changed after WriteHeader", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-After", "1")
		io.WriteString(w, "x")
	}},
	{name: "CRLF in header value", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=y\r\n\r\nHTTP/1.1 200 OK")
		w.Header().Add("X-Evil", "\nb\r")
		io.WriteString(w, "x")
	}},
	{name: "header value whitespace", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", " \t a b \t ")
		io.WriteString(w, "x")
	}},
	{name: "header value unicode space", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "a\u00a0")
		io.WriteString(w, "x")
	}},
	{name: "invalid header name dropped", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Bad Name"] = []string{"x"}
		w.Header()["X-Ok"] = []string{"y"}
		io.WriteString(w, "x")
	}},
	{name: "many header values", h: func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 50; i++ {
			w.Header().Add("Set-Cookie", fmt.Sprintf("c%d=%s", i, strings.Repeat("v", 100)))
		}
		io.WriteString(w, "x")
	}},
	{name: "103 early hints", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "hi")
	}},
	{name: "103 with Content-Length set", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "hi")
	}},
	{name: "handler Transfer-Encoding chunked", h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		io.WriteString(w, htmlBody[:100])
	}},
	{name: "request body unread", method: "POST", reqHdr: "Content-Length: 5\r\n\r\nhello", h: writeString("ok")},
}

func TestResponseFramingMatchesNetHTTP(t *testing.T) {
	for _, tc := range framingCases {
		t.Run(tc.name, func(t *testing.T) {
			var by atomic.Value
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/probe" {
					io.WriteString(w, "probe")
					return
				}
				by.Store(servedBy(w))
				tc.h(w, r)
			})
			h1 := startH1(t, h)
			ref := startNetHTTP(t, h)
			got, gotOpen := observeFraming(t, h1.addr, tc)
			if s, _ := by.Load().(string); s != "h1" {
				t.Fatalf("served by %q, want h1", s)
			}
			want, wantOpen := observeFraming(t, ref, tc)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("response differs from net/http's\n\th1:       %v\n\tnet/http: %v", got, want)
			}
			if gotOpen != wantOpen {
				t.Errorf("connection kept open: h1 %v, net/http %v", gotOpen, wantOpen)
			}
		})
	}
}

// observeFraming sends tc's request and then a probe on the same
// connection, and reports the response and whether the probe was answered.
func observeFraming(t *testing.T, addr string, tc framingCase) (*observed, bool) {
	method := tc.method
	if method == "" {
		method = "GET"
	}
	c := dial(t, addr)
	reqHdr := tc.reqHdr
	if !strings.Contains(reqHdr, "\r\n\r\n") {
		reqHdr += "\r\n"
	}
	c.send(method + " /case HTTP/1.1\r\nHost: example.com\r\n" + reqHdr)
	r, err := c.next(method)
	if err != nil {
		return &observed{Status: "read error: " + err.Error()}, false
	}
	if r.BodyErr != "" {
		return r, false
	}
	if c.trySend("GET /probe HTTP/1.1\r\nHost: example.com\r\n\r\n") != nil {
		return r, false
	}
	p, err := c.next("GET")
	return r, err == nil && p.Body == "probe"
}

// --- requests net/http serves: hand-off and malformed input ---

// echo reports what the handler saw; X-By says which server ran it.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	w.Header().Set("X-By", servedBy(w))
	fmt.Fprintf(w, "%s %s %s host=%q len=%d te=%q close=%v body=%q err=%v fold=%q cache=%q hdr=%d",
		r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding, r.Close,
		body, err, r.Header.Get("X-Fold"), r.Header.Get("Cache-Control"), len(r.Header))
}

const (
	fast = "GET /fast HTTP/1.1\r\nHost: example.com\r\n\r\n"
	last = "GET /last HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
)

// headOf returns a GET head of exactly n bytes.
func headOf(n int) string {
	const pre = "GET /big HTTP/1.1\r\nHost: example.com\r\nX-Pad: "
	const post = "\r\n\r\n"
	return pre + strings.Repeat("p", n-len(pre)-len(post)) + post
}

type handoffCase struct {
	name string
	in   string   // sent in one write, followed by last
	by   []string // the server of each response, h1 or net/http
	conf func(*Server)
}

var handoffCases = []handoffCase{
	{name: "fast", in: fast, by: []string{"h1", "h1"}},
	{name: "fast with body", in: "POST /p?q HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello", by: []string{"h1", "h1"}},
	{name: "HTTP/1.0", in: "GET /a HTTP/1.0\r\nHost: example.com\r\n\r\n", by: []string{"net/http"}},
	{name: "HTTP/1.0 keep-alive", in: "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", by: []string{"net/http", "net/http"}},
	{name: "chunked body", in: "POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", by: []string{"net/http", "net/http"}},
	{name: "expect 100-continue", in: "POST /e HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", by: []string{"net/http", "net/http"}},
	{name: "absolute form", in: "GET http://other.example/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", by: []string{"net/http", "net/http"}},
	{name: "asterisk OPTIONS", in: "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", by: []string{"net/http"}},
	{name: "bare LF head", in: "GET /lf HTTP/1.1\nHost: example.com\n\n", by: []string{"net/http", "net/http"}},
	{name: "obs-fold", in: "GET /fold HTTP/1.1\r\nHost: example.com\r\nX-Fold: a\r\n  b\r\n\r\n", by: []string{"net/http", "net/http"}},
	{name: "pragma", in: "GET /pragma HTTP/1.1\r\nHost: example.com\r\nPragma: no-cache\r\n\r\n", by: []string{"net/http", "net/http"}},
	{name: "head of 4096 bytes", in: headOf(4096), by: []string{"h1", "h1"}},
	{name: "head of 4097 bytes", in: headOf(4097), by: []string{"net/http", "net/http"}},
	{name: "head of 10000 bytes", in: headOf(10000), by: []string{"net/http", "net/http"}},
	{name: "head within MaxHeaderBytes", in: headOf(500), by: []string{"h1", "h1"},
		conf: func(s *Server) { s.MaxHeaderBytes = 512 }},
	{name: "head beyond MaxHeaderBytes", in: headOf(1000), by: []string{"net/http", "net/http"},
		conf: func(s *Server) { s.MaxHeaderBytes = 512 }},
	{name: "body beyond 64 KiB", in: "POST /big HTTP/1.1\r\nHost: example.com\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("b", 70000), by: []string{"net/http", "net/http"}},
	{name: "odd second", in: fast + "POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", by: []string{"h1", "net/http", "net/http"}},
	{name: "HTTP/1.0 second", in: fast + "GET /a HTTP/1.0\r\nHost: example.com\r\n\r\n", by: []string{"h1", "net/http"}},
	{name: "expect second", in: fast + "POST /e HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", by: []string{"h1", "net/http", "net/http"}},
	{name: "absolute form second", in: fast + "GET http://other.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n", by: []string{"h1", "net/http", "net/http"}},
	{name: "bare LF second", in: fast + "GET /lf HTTP/1.1\nHost: example.com\n\n", by: []string{"h1", "net/http", "net/http"}},
	{name: "obs-fold second", in: fast + "GET /fold HTTP/1.1\r\nHost: example.com\r\nX-Fold: a\r\n\tb\r\n\r\n", by: []string{"h1", "net/http", "net/http"}},
	{name: "big head second", in: fast + headOf(6000), by: []string{"h1", "net/http", "net/http"}},
	{name: "odd second after body", in: "POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc" + "GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n", by: []string{"h1", "net/http", "net/http"}},
	{name: "fast after odd stays with net/http", in: "GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n" + fast, by: []string{"net/http", "net/http", "net/http"}},
	// Malformed: net/http's answer (mostly 400 and close).
	{name: "invalid header name", in: "GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n"},
	{name: "space before colon", in: "GET / HTTP/1.1\r\nHost: example.com\r\nX-A : x\r\n\r\n"},
	{name: "duplicate Host", in: "GET / HTTP/1.1\r\nHost: example.com\r\nHost: evil.example\r\n\r\n"},
	{name: "missing Host", in: "GET / HTTP/1.1\r\nX: y\r\n\r\n"},
	{name: "invalid Host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{name: "bad Content-Length", in: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: abc\r\n\r\n"},
	{name: "negative Content-Length", in: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -5\r\n\r\n"},
	{name: "conflicting Content-Lengths", in: "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{name: "equal Content-Lengths", in: "POST /eq HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", by: []string{"net/http", "net/http"}},
	{name: "smuggling CL then TE", in: "POST /s HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "smuggling TE then CL", in: "POST /s HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "smuggling after fast", by: []string{"h1", "net/http", "net/http", "net/http"}, in: fast + "POST /s HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: example.com\r\nX: a\x00b\r\n\r\n"},
	{name: "bare CR in value", in: "GET / HTTP/1.1\r\nHost: example.com\r\nX: a\rb\r\n\r\n"},
	{name: "HTTP/2.0 version", in: "GET / HTTP/2.0\r\nHost: example.com\r\n\r\n"},
	{name: "HTTP/1.2 version", in: "GET / HTTP/1.2\r\nHost: example.com\r\n\r\n"},
	{name: "garbage", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"},
	{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{name: "malformed after fast", by: []string{"h1"}, in: fast + "GET / HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n"},
}

func TestHandOffMatchesNetHTTP(t *testing.T) {
	for _, tc := range handoffCases {
		t.Run(tc.name, func(t *testing.T) {
			var conf []func(*Server)
			if tc.conf != nil {
				conf = append(conf, tc.conf)
			}
			h1 := startH1(t, http.HandlerFunc(echo), conf...)
			ref := startNetHTTP(t, http.HandlerFunc(echo))
			got, by := exchange(t, h1.addr, tc.in+last)
			want, _ := exchange(t, ref, tc.in+last)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("responses differ from net/http's\n\th1:       %v\n\tnet/http: %v", got, want)
			}
			if tc.by != nil && !reflect.DeepEqual(by, tc.by) {
				t.Errorf("served by %q, want %q", by, tc.by)
			}
			if tc.by == nil {
				// Malformed: no handler may see it under h1 unless
				// net/http's handler does under net/http.
				for i, s := range by {
					if s == "h1" {
						t.Errorf("response %d served by h1", i)
					}
				}
			}
		})
	}
}

// exchange writes in and reads responses until the connection ends.
func exchange(t *testing.T, addr, in string) ([]*observed, []string) {
	c := dial(t, addr)
	c.send(in)
	var rs []*observed
	var by []string
	for {
		r, err := c.next("GET")
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("no response or close within %v", guard)
			}
			return rs, by
		}
		if s := r.Header.Get("X-By"); s != "" {
			by = append(by, s)
		}
		r.Header.Del("X-By")
		rs = append(rs, r)
		if r.BodyErr != "" {
			return rs, by
		}
	}
}

func TestKeepAliveWithClient(t *testing.T) {
	ts := startH1(t, http.HandlerFunc(echo))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	do := func(method, path, body string) (string, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		rq, _ := http.NewRequest(method, "http://"+ts.addr+path, rd)
		resp, err := cl.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("X-By"), string(b)
	}
	for i := 0; i < 5; i++ {
		by, body := do("GET", "/get?i="+strconv.Itoa(i), "")
		if by != "h1" || !strings.Contains(body, "GET /get?i="+strconv.Itoa(i)+" HTTP/1.1") {
			t.Fatalf("GET %d: by %s, body %s", i, by, body)
		}
		by, body = do("POST", "/post", "payload")
		if by != "h1" || !strings.Contains(body, `body="payload"`) {
			t.Fatalf("POST %d: by %s, body %s", i, by, body)
		}
	}
	// A body too large for h1 hands the connection over; it stays open.
	big := strings.Repeat("x", 100000)
	if by, body := do("PUT", "/big", big); by != "net/http" || !strings.Contains(body, "len=100000") {
		t.Fatalf("big PUT: by %s, body %.100s", by, body)
	}
	if by, _ := do("GET", "/after", ""); by != "net/http" {
		t.Fatalf("after hand-off: by %s", by)
	}
	if n := ts.accpt.Load(); n != 1 {
		t.Errorf("%d connections accepted, want 1", n)
	}
}

func TestPipelining(t *testing.T) {
	ts := startH1(t, http.HandlerFunc(echo))
	c := dial(t, ts.addr)
	var in strings.Builder
	for i := 0; i < 20; i++ {
		if i%3 == 1 {
			fmt.Fprintf(&in, "POST /%d HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nb%02d", i, i)
		} else {
			fmt.Fprintf(&in, "GET /%d HTTP/1.1\r\nHost: example.com\r\n\r\n", i)
		}
	}
	c.send(in.String())
	for i := 0; i < 20; i++ {
		r := c.mustNext("GET")
		if !strings.Contains(r.Body, fmt.Sprintf(" /%d HTTP/1.1", i)) || r.Header.Get("X-By") != "h1" {
			t.Fatalf("response %d: %v", i, r)
		}
		if i%3 == 1 && !strings.Contains(r.Body, fmt.Sprintf(`body="b%02d"`, i)) {
			t.Fatalf("response %d: %v", i, r)
		}
	}
}

func TestExpectContinueHandOff(t *testing.T) {
	ts := startH1(t, http.HandlerFunc(echo))
	c := dial(t, ts.addr)
	c.send(fast)
	if r := c.mustNext("GET"); r.Header.Get("X-By") != "h1" {
		t.Fatalf("fast: %v", r)
	}
	c.send("PUT /e HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	// net/http asks for the body only when the handler reads it.
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v, %v", resp, err)
	}
	c.send("hello")
	r := c.mustNext("PUT")
	if r.Header.Get("X-By") != "net/http" || !strings.Contains(r.Body, `body="hello"`) {
		t.Fatalf("%v", r)
	}
}

func TestUpgradeHandOff(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			echo(w, r)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "cannot hijack", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		msg := make([]byte, 5)
		if _, err := io.ReadFull(rw, msg); err != nil {
			return
		}
		rw.WriteString("echo:" + string(msg))
		rw.Flush()
	})
	upgrade := "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	for _, prefix := range []string{"", fast} {
		ts := startH1(t, h)
		c := dial(t, ts.addr)
		// The client's first frame arrives with the upgrade request.
		c.send(prefix + upgrade + "HELLO")
		if prefix != "" {
			if r := c.mustNext("GET"); r.Header.Get("X-By") != "h1" {
				t.Fatalf("fast: %v", r)
			}
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		rest, err := io.ReadAll(c.br)
		if err != nil || string(rest) != "echo:HELLO" {
			t.Fatalf("after upgrade read %q, %v", rest, err)
		}
	}
}

// --- request bodies ---

func TestRequestBodies(t *testing.T) {
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 10)
	var stash atomic.Value // io.ReadCloser
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-By", servedBy(w))
		switch r.URL.Path {
		case "/full":
			b, err := io.ReadAll(r.Body)
			results <- result{string(b), err}
		case "/part":
			b := make([]byte, 3)
			n, err := io.ReadFull(r.Body, b)
			results <- result{string(b[:n]), err}
		case "/none":
			results <- result{}
		case "/stash":
			stash.Store(r.Body)
			results <- result{}
		case "/close":
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			results <- result{err: err}
		}
		io.WriteString(w, r.URL.Path)
	})
	ts := startH1(t, h)
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	}
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB, many reads
	for _, tc := range []struct {
		path, body string
		want       result
	}{
		{"/full", "hello", result{"hello", nil}},
		{"/full", big, result{big, nil}},
		{"/part", "hello world", result{"hel", nil}},
		{"/part", big, result{"012", nil}},
		{"/none", big, result{}},
		{"/close", "hello", result{err: http.ErrBodyReadAfterClose}},
	} {
		c := dial(t, ts.addr)
		// The next request follows the body at once: whatever the
		// handler left unread must be skipped, not parsed.
		c.send(post(tc.path, tc.body) + fast)
		r := c.mustNext("POST")
		if r.Body != tc.path || r.Header.Get("X-By") != "h1" {
			t.Fatalf("%s: %v", tc.path, r)
		}
		if got := <-results; got != tc.want {
			t.Errorf("%s (%d bytes): handler read %.20q, %v; want %.20q, %v", tc.path, len(tc.body), got.body, got.err, tc.want.body, tc.want.err)
		}
		if r := c.mustNext("GET"); r.Body != "/fast" || r.Header.Get("X-By") != "h1" {
			t.Fatalf("%s: next request: %v", tc.path, r)
		}
	}

	t.Run("read after handler returned", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send(post("/stash", "hello world") + fast)
		c.mustNext("POST")
		<-results
		c.mustNext("GET") // the server is past the first request
		body := stash.Load().(io.ReadCloser)
		if n, err := body.Read(make([]byte, 10)); n != 0 || !errors.Is(err, http.ErrBodyReadAfterClose) {
			t.Errorf("Read after the handler = %d, %v; want 0, %v", n, err, http.ErrBodyReadAfterClose)
		}
	})

	t.Run("client sends less than declared", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST /full HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc")
		c.c.(*net.TCPConn).CloseWrite()
		got := <-results
		if got.body != "abc" || !errors.Is(got.err, io.ErrUnexpectedEOF) {
			t.Errorf("handler read %q, %v; want %q, %v", got.body, got.err, "abc", io.ErrUnexpectedEOF)
		}
		r, err := c.next("POST")
		if err == nil && r.Body != "/full" {
			t.Errorf("response %v", r)
		}
		if !c.closed() {
			t.Error("connection not closed")
		}
	})

	t.Run("slow body outlives ReadHeaderTimeout", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout = 100 * time.Millisecond })
		c := dial(t, ts.addr)
		c.send("POST /full HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc")
		// Not synchronisation: the body must still be read after the
		// head's deadline has passed.
		time.Sleep(300 * time.Millisecond)
		c.send("defghij")
		if got := <-results; got.body != "abcdefghij" || got.err != nil {
			t.Errorf("handler read %q, %v", got.body, got.err)
		}
		if r := c.mustNext("POST"); r.Body != "/full" {
			t.Errorf("response %v", r)
		}
	})
}

// --- timeouts ---

func TestTimeouts(t *testing.T) {
	const short = 200 * time.Millisecond
	h := http.HandlerFunc(echo)
	t.Run("ReadHeaderTimeout, nothing sent", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = short, time.Hour })
		c := dial(t, ts.addr)
		if !c.closed() {
			t.Error("not closed")
		}
	})
	t.Run("ReadHeaderTimeout, partial first head", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = short, time.Hour })
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: example.com\r\n")
		if !c.closed() {
			t.Error("not closed")
		}
	})
	t.Run("ReadHeaderTimeout, partial second head", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = short, time.Hour })
		c := dial(t, ts.addr)
		c.send(fast)
		c.mustNext("GET")
		c.send("GET / HTTP/1.1\r\nHost: exa")
		if !c.closed() {
			t.Error("not closed")
		}
	})
	t.Run("ReadHeaderTimeout, partial pipelined head", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = short, time.Hour })
		c := dial(t, ts.addr)
		c.send(fast + "GET / HTTP/1.1\r\nHost: exa")
		c.mustNext("GET")
		if !c.closed() {
			t.Error("not closed")
		}
	})
	t.Run("IdleTimeout", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = time.Hour, short })
		c := dial(t, ts.addr)
		c.send(fast)
		c.mustNext("GET")
		if !c.closed() {
			t.Error("idle connection not closed")
		}
	})
	t.Run("IdleTimeout defaults to ReadHeaderTimeout", func(t *testing.T) {
		ts := startH1(t, h, func(s *Server) { s.ReadHeaderTimeout = short })
		c := dial(t, ts.addr)
		c.send(fast)
		c.mustNext("GET")
		if !c.closed() {
			t.Error("idle connection not closed")
		}
	})
}

// --- Shutdown and Close ---

// blocker is a handler that blocks requests for /slow until released.
type blocker struct {
	started chan string
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 10), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/slow" {
		b.started <- servedBy(w)
		<-b.release
	}
	echo(w, r)
}

// slowNetHTTP is a request for /slow that h1 hands to net/http.
const slowNetHTTP = "POST /slow HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

func TestShutdownClosesIdle(t *testing.T) {
	ts := startH1(t, http.HandlerFunc(echo))
	fastConn := dial(t, ts.addr)
	fastConn.send(fast)
	if r := fastConn.mustNext("GET"); r.Header.Get("X-By") != "h1" {
		t.Fatal(r)
	}
	handed := dial(t, ts.addr)
	handed.send("GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n")
	if r := handed.mustNext("GET"); r.Header.Get("X-By") != "net/http" || r.Close {
		t.Fatal(r)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !fastConn.closed() || !handed.closed() {
		t.Error("idle connections not closed")
	}
	if err := ts.served(t); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if c, err := net.Dial("tcp", ts.addr); err == nil {
		c.Close()
		t.Error("listener still accepting")
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	b := newBlocker()
	fallbackShutdown := make(chan struct{})
	ts := startH1(t, b, func(s *Server) {
		s.Fallback.RegisterOnShutdown(func() { close(fallbackShutdown) })
	})
	c1 := dial(t, ts.addr)
	c1.send("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
	c2 := dial(t, ts.addr)
	c2.send(slowNetHTTP)
	got := []string{<-b.started, <-b.started}
	sort.Strings(got)
	if got[0] != "h1" || got[1] != "net/http" {
		t.Fatalf("handlers started under %q", got)
	}
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	// Both servers are shutting down before the handlers finish.
	<-fallbackShutdown
	for !ts.closing.Load() {
		runtime.Gosched()
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	default:
	}
	close(b.release)
	for _, c := range []*client{c1, c2} {
		r := c.mustNext("GET")
		if !r.Close || !strings.Contains(r.Body, "/slow") {
			t.Errorf("in-flight response: %v", r)
		}
		if !c.closed() {
			t.Error("connection not closed after its last response")
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := ts.served(t); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
}

func TestShutdownRespectsContext(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	ts := startH1(t, b)
	c := dial(t, ts.addr)
	c.send("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
	<-b.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want %v", err, context.Canceled)
	}
	if err := ts.served(t); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
}

func TestCloseClosesEverything(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	ts := startH1(t, b)
	idle := dial(t, ts.addr)
	idle.send(fast)
	idle.mustNext("GET")
	idleHanded := dial(t, ts.addr)
	idleHanded.send("GET /a HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n")
	idleHanded.mustNext("GET")
	busy := dial(t, ts.addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
	busyHanded := dial(t, ts.addr)
	busyHanded.send(slowNetHTTP)
	<-b.started
	<-b.started
	if err := ts.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for i, c := range []*client{idle, idleHanded, busy, busyHanded} {
		if !c.closed() {
			t.Errorf("connection %d not closed", i)
		}
	}
	if err := ts.served(t); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
}

// --- panics ---

func TestHandlerPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}
		echo(w, r)
	})
	for _, tc := range []struct {
		path string
		log  bool
	}{{"/panic", true}, {"/abort", false}} {
		ts := startH1(t, h)
		c := dial(t, ts.addr)
		c.send("GET " + tc.path + " HTTP/1.1\r\nHost: example.com\r\n\r\n" + fast)
		if r, err := c.next("GET"); err == nil {
			t.Errorf("%s: got a response %v", tc.path, r)
		}
		if !c.closed() {
			t.Errorf("%s: connection not closed", tc.path)
		}
		// The log is written before the connection is closed.
		logged := ts.log.String()
		if tc.log && (!strings.Contains(logged, "panic") || !strings.Contains(logged, "boom")) {
			t.Errorf("%s: logged %q", tc.path, logged)
		}
		if !tc.log && logged != "" {
			t.Errorf("%s: logged %q", tc.path, logged)
		}
		// The server goes on serving.
		c = dial(t, ts.addr)
		c.send(fast)
		if r := c.mustNext("GET"); r.Header.Get("X-By") != "h1" {
			t.Errorf("after panic: %v", r)
		}
	}
}

// --- the request a handler sees ---

type seen struct {
	Method, URL, RequestURI, Host, Proto string
	Major, Minor                         int
	Header                               http.Header
	ContentLength                        int64
	Close                                bool
	TE                                   []string
	NoBody, HasCtx, TLS, Form            bool
	RemoteAddr                           string
}

func TestRequestFieldsMatchNetHTTP(t *testing.T) {
	heads := []string{
		"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: x\r\nx-user-id: 7\r\nAccept: a\r\naccept: b\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc",
		"DELETE /%41%2f?x=%zz HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, close\r\n\r\n",
		"OPTIONS //x HTTP/1.1\r\nhost: h\r\nContent-Length: 0\r\n\r\n",
	}
	// see serves one head on addr and returns what the handler saw, and
	// the client's address.
	see := func(t *testing.T, start func(http.Handler) string, in string) (seen, string, string) {
		got := make(chan seen, 1)
		addr := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			got <- seen{
				Method: r.Method, URL: r.URL.String(), RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto,
				Major: r.ProtoMajor, Minor: r.ProtoMinor, Header: r.Header, ContentLength: r.ContentLength,
				Close: r.Close, TE: r.TransferEncoding, NoBody: r.Body == http.NoBody,
				HasCtx: r.Context() != nil && r.Context().Err() == nil, TLS: r.TLS != nil, Form: r.Form != nil,
				RemoteAddr: r.RemoteAddr,
			}
			w.Header().Set("X-By", servedBy(w))
		}))
		c := dial(t, addr)
		c.send(in)
		r := c.mustNext("GET")
		return <-got, r.Header.Get("X-By"), c.c.LocalAddr().String()
	}
	for i, in := range heads {
		h1Seen, by, local := see(t, func(h http.Handler) string { return startH1(t, h).addr }, in)
		if by != "h1" {
			t.Fatalf("head %d served by %s", i, by)
		}
		if h1Seen.RemoteAddr != local {
			t.Errorf("head %d: RemoteAddr %q, want %q", i, h1Seen.RemoteAddr, local)
		}
		refSeen, _, _ := see(t, func(h http.Handler) string { return startNetHTTP(t, h) }, in)
		h1Seen.RemoteAddr, refSeen.RemoteAddr = "", ""
		if !reflect.DeepEqual(h1Seen, refSeen) {
			t.Errorf("head %d: handler saw\n\th1:       %+v\n\tnet/http: %+v", i, h1Seen, refSeen)
		}
	}
}

func TestContextCancelledAfterHandler(t *testing.T) {
	ctxs := make(chan context.Context, 3)
	ts := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			panic("context done during the handler")
		}
		ctxs <- r.Context()
	}))
	c := dial(t, ts.addr)
	c.send(fast + fast + last)
	c.mustNext("GET")
	c.mustNext("GET") // the server is past the first request
	if (<-ctxs).Err() == nil {
		t.Error("context of a finished request not cancelled")
	}
	c.mustNext("GET")
	if !c.closed() {
		t.Error("not closed after Connection: close")
	}
	for i := 0; i < 2; i++ {
		if (<-ctxs).Err() == nil {
			t.Error("context of a finished request not cancelled")
		}
	}
}

// TestClientLeavingEndsSlowRequest: a client that disconnects while a
// request runs past watchAfter ends the request's context, so that work
// done for it (an upstream request) stops, as under net/http.
func TestClientLeavingEndsSlowRequest(t *testing.T) {
	ended := make(chan error, 1)
	started := make(chan struct{})
	ts := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		stopped := make(chan struct{})
		context.AfterFunc(r.Context(), func() { close(stopped) })
		select {
		case <-r.Context().Done():
			<-stopped
			ended <- r.Context().Err()
		case <-time.After(5 * time.Second):
			ended <- errors.New("context still live 5 s after the client left")
		}
	}))
	c := dial(t, ts.addr)
	c.send("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
	<-started
	time.Sleep(watchAfter / 2)
	c.c.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context after the client left: %v, want context.Canceled", err)
	}
}

// TestWatchKeepsPipelinedBytes: a client that sends its next request while
// a watched one runs is not taken for gone, and the byte the watcher read
// is the next request's first.
func TestWatchKeepsPipelinedBytes(t *testing.T) {
	firstDone := make(chan error, 1)
	ts := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchAfter)
			firstDone <- r.Context().Err()
		}
		echo(w, r)
	}))
	c := dial(t, ts.addr)
	c.send("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
	time.Sleep(2 * watchAfter) // the watcher is reading by now
	c.send("GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n")
	if err := <-firstDone; err != nil {
		t.Fatalf("slow request's context ended while its client was there: %v", err)
	}
	if r := c.mustNext("GET"); !strings.Contains(r.Body, "/slow") {
		t.Fatalf("slow request answered with %q", r.Body)
	}
	if r := c.mustNext("GET"); r.Status != "200 OK" || !strings.Contains(r.Body, "GET /next") {
		t.Fatalf("pipelined request after a watched one: %s %q", r.Status, r.Body)
	}
}

// TestBodyReadAfterHandlerPanicked: a body still being read by another
// goroutine (as a transport sending it upstream does) when the handler
// panics must fail cleanly; it must not reach the connection's reader,
// which goes back to the pool for other connections.
func TestBodyReadAfterHandlerPanicked(t *testing.T) {
	bodies := make(chan io.ReadCloser, 1)
	ts := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			bodies <- r.Body
			panic(http.ErrAbortHandler)
		}
		echo(w, r)
	}))
	c := dial(t, ts.addr)
	// Only part of the body: the rest would be read from the socket.
	c.send("POST /abort HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc")
	if !c.closed() {
		t.Fatal("connection not closed after the panic")
	}
	body := <-bodies
	// (Were another connection to take the pooled reader now, a Read would
	// read that connection's socket.) The server closes the socket, then
	// the body: until then a Read may still return this connection's own
	// bytes, or the closed socket's error; after it, only
	// ErrBodyReadAfterClose.
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		var err error
		buf := make([]byte, 10)
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("Read panicked: %v", p)
				}
			}()
			n, err = body.Read(buf)
		}()
		got = append(got, buf[:n]...)
		if !strings.HasPrefix("abc", string(got)) {
			t.Fatalf("Read returned bytes not of this request's body: %q", got)
		}
		if errors.Is(err, http.ErrBodyReadAfterClose) {
			return
		}
		if err != nil && strings.Contains(err.Error(), "panicked") {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("body still readable long after its handler panicked: last Read = %d, %v", n, err)
		}
		time.Sleep(time.Millisecond)
	}
}
