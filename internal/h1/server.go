// Package h1 is frontdoor's HTTP/1.1 server for the requests nearly every
// client sends: an HTTP/1.1 request line with an origin-form target, plain
// header fields, one Host and at most a small Content-Length body.
//
// It exists for speed: net/http's server costs a per-request goroutine to
// watch the connection, four read-deadline changes, a context tree and a
// score of allocations, which in front of a fast upstream was a fifth of
// frontdoor's CPU. Here only a request still running after about 100 ms
// gets a watcher (watch.go), which ends its context if the client leaves.
//
// It does not replace net/http's parser for anything unusual: a connection
// whose next request falls outside that subset (another version, chunked
// or large bodies, Expect, upgrades, odd bytes, a head beyond one buffer)
// is handed, with the bytes already read, to the Fallback net/http server,
// which serves it from then on. So every request this package parses is
// one net/http would parse the same way (the fuzz test holds it to that),
// and everything else meets net/http itself.
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
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"frontdoor/internal/httphead"
)

// Server serves HTTP/1.1 on plain TCP listeners.
type Server struct {
	// Handler serves every request (required).
	Handler http.Handler
	// Fallback serves the connections handed over (required). Its Handler
	// is normally the same as Handler; its timeouts and limits apply to
	// those connections.
	Fallback *http.Server
	// ReadHeaderTimeout bounds reading a request head, from its first
	// byte (or the connection's start) to its blank line.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection; zero uses ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes: a longer head is handed to Fallback, which applies
	// its own limit. Zero means the read buffer's size, 4 KiB.
	MaxHeaderBytes int
	// ErrorLog receives handler panics and accept errors; nil uses the
	// log package's standard logger.
	ErrorLog *log.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	handoff   *handoffListener
	closing   atomic.Bool
	// tick counts the watch scanner's ticks, from 1; scanStop ends it.
	tick     atomic.Int64
	scanStop chan struct{}
	readers  sync.Pool // *bufio.Reader
	writers  sync.Pool // *bufio.Writer
}

// bufferSize is the size of each connection's read and write buffers; a
// request head must fit in the read buffer to be served here.
const bufferSize = 4 << 10

// Serve accepts connections on ln until Shutdown or Close, and returns
// http.ErrServerClosed then, like net/http.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil || s.Fallback == nil {
		return errors.New("h1: Handler and Fallback are required")
	}
	// Like net/http's, Serve closes ln when it returns.
	defer ln.Close()
	if !s.track(ln) {
		return http.ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &conn{srv: s, rwc: rwc, remoteAddr: rwc.RemoteAddr().String(), watchDone: make(chan struct{}, 1)}
		c.since.Store(time.Now().Unix())
		if !s.trackConn(c) {
			rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers ln, and on the first call starts Fallback on the
// listener that handed-over connections arrive on.
func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	if s.scanStop == nil {
		s.tick.Store(1)
		s.scanStop = make(chan struct{})
		go s.scan(s.scanStop)
	}
	if s.handoff == nil {
		s.handoff = newHandoffListener(ln.Addr())
		go func() {
			if err := s.Fallback.Serve(s.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logf("h1: fallback server stopped: %v", err)
			}
		}()
	}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (s *Server) trackConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrackConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish their requests (including those handed to Fallback,
// which shuts down alongside) or for ctx to end, whose error it returns
// then. Busy connections answer their current request with
// "Connection: close".
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			wait = min(2*wait, 500*time.Millisecond)
			timer.Reset(wait)
		}
	}
	s.stopScan()
	return <-fallback
}

// Close closes the listeners and every connection at once, Fallback's too.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	s.stopScan()
	return s.Fallback.Close()
}

// stopScan ends the watch scanner, once no request needs it.
func (s *Server) stopScan() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scanStop != nil {
		close(s.scanStop)
		s.scanStop = nil
	}
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	if s.handoff != nil {
		s.handoff.Close()
	}
}

// closeIdle closes the connections waiting for a request, and reports
// whether none are left. Like net/http, a connection that has not sent its
// first request counts as idle only after 5 s.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := time.Now().Unix() - 5
	for c := range s.conns {
		switch st := c.state.Load(); {
		case st == stateIdle, st == stateNew && c.since.Load() < cutoff:
			c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) maxHead() int {
	if s.MaxHeaderBytes > 0 && s.MaxHeaderBytes < bufferSize {
		return s.MaxHeaderBytes
	}
	return bufferSize
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

func (s *Server) newReader(c io.Reader) *bufio.Reader {
	if br, ok := s.readers.Get().(*bufio.Reader); ok {
		br.Reset(c)
		return br
	}
	return bufio.NewReaderSize(c, bufferSize)
}

func (s *Server) newWriter(c net.Conn) *bufio.Writer {
	if bw, ok := s.writers.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		return bw
	}
	return bufio.NewWriterSize(c, bufferSize)
}

// Connection states, for Shutdown.
const (
	stateNew = iota
	stateActive
	stateIdle
)

// conn is one client connection while this server owns it.
type conn struct {
	srv        *Server
	rwc        net.Conn
	remoteAddr string
	br         *bufio.Reader
	bw         *bufio.Writer
	state      atomic.Int32
	since      atomic.Int64 // Unix time the connection was accepted
	// head holds the serialised response header fields between
	// WriteHeader and the moment the response is committed.
	head []byte
	// pending holds body bytes written before the response is committed.
	pending []byte
	date    dateCache

	// The watch for a client leaving during a slow request (watch.go).
	// reqTick is the scanner tick the watchable request in progress
	// started in, 0 if none (or its watch was claimed).
	reqTick    atomic.Int64
	watchCtx   *requestContext
	watchMu    sync.Mutex
	watchEnded bool
	watchDone  chan struct{}
	// stolen is a byte the watcher read: the start of the next request.
	stolen    [1]byte
	hasStolen bool
}

// setState records st. Only a new connection's age matters to Shutdown,
// so the state changes of every request read no clock.
func (c *conn) setState(st int32) { c.state.Store(st) }

// errHandOff: the next request is not one this server parses.
var errHandOff = errors.New("h1: request for the fallback server")

func (c *conn) serve() {
	s := c.srv
	c.br = s.newReader(connSource{c})
	c.bw = s.newWriter(c.rwc)
	handedOff := false
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.logf("h1: panic serving %v: %v\n%s", c.remoteAddr, p, buf)
		}
		s.untrackConn(c)
		if !handedOff {
			c.rwc.Close()
		}
		c.br.Reset(nil)
		c.bw.Reset(nil)
		s.readers.Put(c.br)
		s.writers.Put(c.bw)
	}()

	first := true
	for {
		h, err := c.readHead(first)
		first = false
		if errors.Is(err, errHandOff) {
			handedOff = c.handOff()
			return
		}
		if err != nil {
			return
		}
		if !c.serveRequest(h) {
			return
		}
	}
}

// readHead waits for the next request and parses its head.
func (c *conn) readHead(first bool) (head, error) {
	s := c.srv
	if c.br.Buffered() == 0 {
		if first {
			if d := s.ReadHeaderTimeout; d > 0 {
				c.rwc.SetReadDeadline(time.Now().Add(d))
			}
		} else {
			c.setState(stateIdle)
			if s.closing.Load() {
				return head{}, http.ErrServerClosed
			}
			if d := s.idleTimeout(); d > 0 {
				c.rwc.SetReadDeadline(time.Now().Add(d))
			}
		}
		if _, err := c.br.Peek(1); err != nil {
			return head{}, err
		}
	}
	c.setState(stateActive)
	limit := s.maxHead()
	deadlineSet := first
	for scanned := 0; ; {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := indexHeadEnd(buf, scanned); i >= 0 {
			if i > limit {
				return head{}, errHandOff
			}
			h, ok := parseHead(buf[:i])
			if !ok {
				return head{}, errHandOff
			}
			c.br.Discard(i)
			return h, nil
		}
		if httphead.HasBareLF(buf) || len(buf) >= limit {
			return head{}, errHandOff
		}
		scanned = max(len(buf)-3, 0)
		if !deadlineSet {
			if d := s.ReadHeaderTimeout; d > 0 {
				c.rwc.SetReadDeadline(time.Now().Add(d))
			}
			deadlineSet = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return head{}, err
		}
	}
}

// indexHeadEnd returns the length of the head in buf, through its blank
// line, or -1; from says how far earlier calls looked.
func indexHeadEnd(buf []byte, from int) int {
	if i := bytes.Index(buf[from:], []byte("\r\n\r\n")); i >= 0 {
		return from + i + 4
	}
	return -1
}

// handOff gives the connection, with the bytes read ahead, to Fallback,
// and reports whether it took it.
func (c *conn) handOff() bool {
	buffered, _ := c.br.Peek(c.br.Buffered())
	pc := &prefixedConn{Conn: c.rwc, prefix: append([]byte(nil), buffered...)}
	c.rwc.SetReadDeadline(time.Time{})
	c.setState(stateActive)
	return c.srv.handoff.deliver(pc)
}

// serveRequest runs the handler for h and reports whether the connection
// stays open for another request.
func (c *conn) serveRequest(h head) bool {
	s := c.srv
	ctx := &requestContext{}
	// As net/http's, a request's context ends when its handler returns.
	defer ctx.cancel(context.Canceled)
	rq := http.Request{
		Method:        h.method,
		URL:           h.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h.header,
		Body:          http.NoBody,
		ContentLength: h.contentLength,
		Close:         h.close,
		Host:          h.host,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    h.target,
	}
	req := rq.WithContext(ctx)
	var body *requestBody
	served := false
	if h.contentLength > 0 {
		if c.br.Buffered() < int(h.contentLength) {
			// The head's deadline must not cut a body arriving slowly;
			// net/http has no body deadline either without ReadTimeout.
			c.rwc.SetReadDeadline(time.Time{})
		}
		body = &requestBody{br: c.br, remaining: h.contentLength}
		req.Body = body
		// Even if the handler panics, the body must be closed before the
		// connection's reader is reset and pooled: a goroutine still
		// reading it (a transport sending it upstream) must get an error,
		// not another connection's bytes. Closing the socket first frees
		// such a reader if it waits on the client.
		defer func() {
			if !served {
				c.rwc.Close()
			}
			body.Close()
		}()
	}
	watched := body == nil && c.br.Buffered() == 0 && !c.hasStolen
	if watched {
		c.startWatch(ctx)
	}
	w := &response{c: c, req: req, header: make(http.Header, 4), contentLength: -1, closeAfter: h.close}
	s.Handler.ServeHTTP(w, req)
	served = true
	if watched {
		c.stopWatch()
	}
	w.finish()
	if body != nil {
		if d := s.idleTimeout(); d > 0 && body.unread() {
			// Reading the rest must not wait on the client forever.
			c.rwc.SetReadDeadline(time.Now().Add(d))
		}
		if !body.close() {
			return false
		}
	}
	return !w.closeAfter && w.err == nil
}

// prefixedConn is a handed-over connection: reads return the bytes this
// server read ahead before the socket's.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close after an error response, so that
// the client reads the response before the reset.
func (c *prefixedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handoffListener is the listener Fallback serves: Accept returns the
// connections handed over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("h1: handoff listener: %w", net.ErrClosed)
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
