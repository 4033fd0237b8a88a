package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Transport is the http.RoundTripper behind every upstream pool.
//
// Ordinary requests to plain-HTTP targets (no protocol upgrade, no
// Expect, and a body that is absent or of known length up to
// MaxDirectBody) are sent by its own HTTP/1.1 client: the request is
// written and the response read on the calling goroutine, over a pooled
// keep-alive connection. net/http's Transport gives every connection a read
// and a write goroutine and hands each request and response between them
// over channels; at a proxy's request rates that bookkeeping costs more CPU
// than frontdoor's whole pipeline, and the two goroutines' stacks dominate
// memory under many connections. Everything else (TLS targets, WebSocket
// upgrades, streamed or large request bodies, 100-continue) goes to
// Fallback, which handles them fully.
//
// The request head is written by writeRequest (checked against
// Request.Write), and the response parsed by readResponse: the common form
// by httphead, everything else (chunked, trailers, HEAD, 1xx, 204/304) by
// http.ReadResponse, the code the standard Transport uses.
type Transport struct {
	// Fallback carries the requests the direct client does not handle.
	Fallback *http.Transport
	// MaxIdlePerHost bounds the idle connections kept per target address;
	// more are closed when returned.
	MaxIdlePerHost int
	// IdleTimeout closes a connection left idle this long.
	IdleTimeout time.Duration
	// MaxDirectBody is the largest request body (of known length) the
	// direct client sends. It writes the whole body before reading the
	// response, which is safe only while the body fits the socket buffers
	// of an upstream that answers without reading it.
	MaxDirectBody int64
	// MaxResponseHeaderBytes bounds the status line and headers of a
	// response.
	MaxResponseHeaderBytes int64
	// Dialer opens upstream connections.
	Dialer *net.Dialer

	mu   sync.Mutex
	idle map[string][]*upstreamConn // per address, most recently used last
	// swept is when sweepLocked last ran.
	swept time.Time
	// writers are the request write buffers, borrowed per request.
	writers sync.Pool
	// addrs maps port-less target hosts to host:80.
	addrs sync.Map
}

// NewTransport returns the Transport shared by all pools: many idle
// connections per host (the default of 2 would make a busy proxy open and
// close connections constantly), no transparent compression (a proxy must
// pass bodies through untouched), and HTTP/1.1 to upstreams, as legacy
// services expect.
func NewTransport() *Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &Transport{
		Fallback: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			MaxIdleConns:          4096,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: 1 * time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     false,
		},
		MaxIdlePerHost:         1024,
		IdleTimeout:            90 * time.Second,
		MaxDirectBody:          64 << 10,
		MaxResponseHeaderBytes: 1 << 20,
		Dialer:                 dialer,
	}
}

// RoundTrip sends req with no deadline of its own.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, 0)
}

// direct reports whether the direct client handles req.
func (t *Transport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Header["Upgrade"] != nil || req.Header["Expect"] != nil {
		return false
	}
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	return req.ContentLength > 0 && req.ContentLength <= t.MaxDirectBody && len(req.TransferEncoding) == 0
}

// errStaleConn marks a failure on a reused connection before any byte of a
// response arrived: the upstream had closed it while it sat idle.
var errStaleConn = errors.New("upstream closed an idle connection")

// roundTrip sends req; a positive timeout bounds dialling, writing the
// request and receiving the response headers, and expiry is reported as
// ErrUpstreamTimeout. The body then streams without a deadline.
func (t *Transport) roundTrip(req *http.Request, timeout time.Duration) (*http.Response, error) {
	if !t.direct(req) {
		return roundTripTimeout(t.Fallback, req, timeout)
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	addr := t.addr(req.URL.Host)
	for {
		c, err := t.getConn(req.Context(), addr, deadline)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := t.exchange(req, c, deadline, timeout)
		if err == nil {
			return resp, nil
		}
		// A kept-alive connection the upstream closed just before it was
		// reused: a request that cannot have taken effect is sent again on
		// a new connection, as net/http's Transport does.
		if errors.Is(err, errStaleConn) && c.reused && replayable(req) {
			continue
		}
		return nil, err
	}
}

// replayable reports whether req may be sent again after a connection
// failed under it: no body and an idempotent method (RFC 9110 section 9.2.2).
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header["Idempotency-Key"] != nil || req.Header["X-Idempotency-Key"] != nil
}

// exchange writes req on c and reads the response headers. On success the
// response body owns c.
func (t *Transport) exchange(req *http.Request, c *upstreamConn, deadline time.Time, timeout time.Duration) (*http.Response, error) {
	ctx := req.Context()
	if err := c.nc.SetDeadline(deadline); err != nil {
		c.close()
		closeBody(req)
		return nil, err
	}
	// A client that goes away must not keep the upstream exchange alive
	// until the timeout: its context ending interrupts any read or write
	// on the connection.
	stop := neverStopped
	switch ac := ctx.(type) {
	case afterFuncer:
		// frontdoor's server's request contexts take the callback
		// directly, without the context package's allocations.
		stop = ac.AfterFunc(c.abort)
	default:
		if ctx.Done() != nil {
			stop = context.AfterFunc(ctx, c.abort)
		}
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		c.close()
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("upstream request cancelled: %w", context.Cause(ctx))
		case isTimeout(err):
			return nil, fmt.Errorf("%w (after %s)", ErrUpstreamTimeout, timeout)
		case c.received == 0 && c.reused:
			return nil, fmt.Errorf("%w: %w", errStaleConn, err)
		}
		return nil, err
	}

	c.received = 0
	// The write buffer is needed only while a request is written, so
	// connections share a pool of them rather than holding one each.
	bw := t.writer(c.nc)
	err := writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	t.writers.Put(bw)
	if err != nil {
		return fail(err)
	}
	c.headerLimit = t.MaxResponseHeaderBytes
	var resp *http.Response
	for informational := 0; ; informational++ {
		r, err := readResponse(c.br, req)
		if err != nil {
			if c.headerLimit == 0 {
				err = fmt.Errorf("upstream response headers exceed %d bytes", t.MaxResponseHeaderBytes)
			}
			return fail(err)
		}
		// 1xx responses other than 101 precede the real one; 101 was not
		// asked for, since upgrades go to the fallback transport.
		if r.StatusCode >= 100 && r.StatusCode < 200 {
			if r.StatusCode == http.StatusSwitchingProtocols || informational == 5 {
				return fail(fmt.Errorf("unexpected %s from upstream", r.Status))
			}
			c.headerLimit = t.MaxResponseHeaderBytes
			continue
		}
		resp = r
		break
	}
	c.headerLimit = -1
	// The body streams without a deadline; but one that is absent or
	// already wholly in the read buffer never touches the connection, and
	// the next exchange sets a deadline of its own.
	buffered := resp.Body == http.NoBody || resp.ContentLength >= 0 && int64(c.br.Buffered()) >= resp.ContentLength
	if !buffered {
		if err := c.nc.SetDeadline(time.Time{}); err != nil {
			return fail(err)
		}
	}
	// The context may have ended between the header read and clearing the
	// deadline, in which case its callback's deadline was just undone.
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		// HEAD, 204, 304, Content-Length: 0: the exchange is complete.
		if stop() && reuse {
			t.putIdle(c)
		} else {
			c.close()
		}
		return resp, nil
	}
	resp.Body = &directBody{body: resp.Body, conn: c, t: t, stop: stop, reuse: reuse}
	return resp, nil
}

// closeBody closes the body of a request that failed before Request.Write
// (which closes it) was reached, as a RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// CloseIdleConnections closes every idle connection, of both clients.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, conns := range idle {
		for _, c := range conns {
			c.close()
		}
	}
	t.Fallback.CloseIdleConnections()
}

// getConn returns an idle connection to addr that is still open, or dials
// a new one.
func (t *Transport) getConn(ctx context.Context, addr string, deadline time.Time) (*upstreamConn, error) {
	for {
		c := t.popIdle(addr)
		if c == nil {
			break
		}
		if time.Since(c.idleSince) < t.IdleTimeout && c.open() {
			c.reused = true
			return c, nil
		}
		c.close()
	}
	dialCtx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dialCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := t.Dialer.DialContext(dialCtx, "tcp", addr)
	if err != nil {
		// Only a refused or failed connection says something about the
		// upstream (the pool marks the target down for it); a client that
		// left or a deadline that passed does not.
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("upstream request cancelled: %w", context.Cause(ctx))
		case dialCtx.Err() != nil:
			return nil, fmt.Errorf("%w: connecting to %s", ErrUpstreamTimeout, addr)
		}
		return nil, err
	}
	c := &upstreamConn{nc: nc, addr: addr, headerLimit: -1, probe: newProbe(nc)}
	c.abort = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	c.br = bufio.NewReader(c)
	return c, nil
}

func (t *Transport) writer(w io.Writer) *bufio.Writer {
	if bw, ok := t.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriter(w)
}

func (t *Transport) popIdle(addr string) *upstreamConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	conns := t.idle[addr]
	if len(conns) == 0 {
		return nil
	}
	c := conns[len(conns)-1]
	conns[len(conns)-1] = nil
	t.idle[addr] = conns[:len(conns)-1]
	return c
}

// putIdle keeps c for reuse. The oldest idle connection is closed when it
// has expired, so a burst's surplus connections do not linger forever.
func (t *Transport) putIdle(c *upstreamConn) {
	c.idleSince = time.Now()
	c.reused = false
	var expired *upstreamConn
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[string][]*upstreamConn)
	}
	conns := t.idle[c.addr]
	if len(conns) >= t.MaxIdlePerHost {
		t.mu.Unlock()
		c.close()
		return
	}
	if len(conns) > 0 && c.idleSince.Sub(conns[0].idleSince) >= t.IdleTimeout {
		expired = conns[0]
		conns = append(conns[:0], conns[1:]...)
	}
	t.idle[c.addr] = append(conns, c)
	// Now and then every address is swept too, so that connections to an
	// upstream that gets no more traffic (removed by a reload, say) are
	// closed rather than held open until the process exits.
	var swept []*upstreamConn
	if c.idleSince.Sub(t.swept) >= t.IdleTimeout/4 {
		t.swept = c.idleSince
		swept = t.sweepLocked(c.idleSince)
	}
	t.mu.Unlock()
	if expired != nil {
		expired.close()
	}
	for _, e := range swept {
		e.close()
	}
}

// sweepLocked removes and returns the idle connections that have expired at
// now. Each address's stack is ordered oldest first.
func (t *Transport) sweepLocked(now time.Time) []*upstreamConn {
	var expired []*upstreamConn
	for addr, conns := range t.idle {
		n := 0
		for n < len(conns) && now.Sub(conns[n].idleSince) >= t.IdleTimeout {
			n++
		}
		if n == 0 {
			continue
		}
		expired = append(expired, conns[:n]...)
		if n == len(conns) {
			delete(t.idle, addr)
			continue
		}
		rest := copy(conns, conns[n:])
		clear(conns[rest:])
		t.idle[addr] = conns[:rest]
	}
	return expired
}

// upstreamConn is one keep-alive connection of the direct client. Reads go
// through the conn itself so that it can count them and bound the headers.
type upstreamConn struct {
	nc    net.Conn
	probe *probe
	// abort makes pending I/O on the connection fail: run when the
	// client's request ends before the exchange does.
	abort     func()
	addr      string
	br        *bufio.Reader
	idleSince time.Time
	reused    bool
	// received counts bytes read since the request was written.
	received int64
	// headerLimit is the number of bytes that may still be read while the
	// response headers are parsed; -1 means unbounded (the body).
	headerLimit int64
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if c.headerLimit == 0 {
		return 0, errHeaderLimit
	}
	if c.headerLimit > 0 && int64(len(p)) > c.headerLimit {
		p = p[:c.headerLimit]
	}
	n, err := c.nc.Read(p)
	c.received += int64(n)
	if c.headerLimit > 0 {
		c.headerLimit -= int64(n)
	}
	return n, err
}

var errHeaderLimit = errors.New("response header limit reached")

func (c *upstreamConn) close() { _ = c.nc.Close() }

// open reports whether an idle connection can still carry a request: the
// upstream has neither closed it nor sent anything unasked (which, read as
// the next response, would give one client another's answer).
func (c *upstreamConn) open() bool {
	return c.br.Buffered() == 0 && c.probe.open()
}

// directBody is the response body of the direct client. Reading it to the
// end returns the connection to the idle pool; closing it earlier closes
// the connection, rather than draining a body that may never end.
type directBody struct {
	body  io.ReadCloser
	conn  *upstreamConn
	t     *Transport
	stop  func() bool
	reuse bool
	done  bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.finish(b.reuse)
	case err != nil:
		b.finish(false)
	}
	return n, err
}

func (b *directBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *directBody) finish(reuse bool) {
	b.done = true
	// stop reports false when the client's context ended and its callback
	// ran (or is running): the connection's deadline is then in the past.
	if b.stop() && reuse {
		b.t.putIdle(b.conn)
		return
	}
	b.conn.close()
}

// afterFuncer is a context that runs a function when it ends, the method
// context.AfterFunc itself looks for.
type afterFuncer interface {
	AfterFunc(func()) (stop func() bool)
}

// neverStopped stands for context.AfterFunc's stop when the context
// cannot end: the callback never ran.
func neverStopped() bool { return true }

// aLongTimeAgo is a deadline that makes pending I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// addr is hostPort(host), remembered: upstream URLs without a port
// (a Kubernetes service name, say) would otherwise cost a string per
// request. The hosts are the configured targets, so the map stays small.
func (t *Transport) addr(host string) string {
	if a, ok := t.addrs.Load(host); ok {
		return a.(string)
	}
	a := hostPort(host)
	if a != host {
		t.addrs.Store(host, a)
	}
	return a
}

// hostPort adds the default HTTP port to a URL host that has none.
func hostPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		return host
	}
	return host + ":80"
}
