package h1

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// watchAfter is how long a request runs before its connection is watched
// for the client leaving. Watching costs what net/http spends on every
// request (a goroutine blocked reading the socket, and deadline changes
// to stop it); spent only on requests this slow, it is noise.
const watchAfter = 100 * time.Millisecond

// requestContext is a request's context. Like net/http's it ends when the
// handler returns, or earlier when the client disconnects during a
// request slow enough to be watched. Its AfterFunc method is the one the
// context package looks for, so context.AfterFunc and WithCancel register
// with it rather than each starting a goroutine, and callers that know it
// (proxy.Transport) register without the context package's allocations.
type requestContext struct {
	mu   sync.Mutex
	err  error
	done chan struct{} // made on first use
	// first is the first registration (a proxied request makes one);
	// more holds any others.
	first afterFunc
	more  []*afterFunc
}

// afterFunc is one AfterFunc registration.
type afterFunc struct {
	ctx *requestContext
	f   func()
	// over: f was started or stopped.
	over bool
}

func (c *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *requestContext) Value(any) any { return nil }

func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *requestContext) String() string { return "h1.requestContext" }

// AfterFunc arranges for f to run in its own goroutine when c ends, as
// context.AfterFunc does; stop reports whether it prevented that.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	a := &c.first
	if a.f != nil {
		a = &afterFunc{}
		c.more = append(c.more, a)
	}
	a.ctx, a.f = c, f
	if c.err != nil {
		a.over = true
		c.mu.Unlock()
		go f()
		return a.stop
	}
	c.mu.Unlock()
	return a.stop
}

func (a *afterFunc) stop() bool {
	a.ctx.mu.Lock()
	defer a.ctx.mu.Unlock()
	if a.over {
		return false
	}
	a.over = true
	return true
}

// cancel ends c with err, once.
func (c *requestContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	// Most requests end with nothing left to run: the first registration
	// was stopped, and there are no others.
	var run []func()
	take := func(a *afterFunc) {
		if a.f != nil && !a.over {
			a.over = true
			run = append(run, a.f)
		}
	}
	take(&c.first)
	for _, a := range c.more {
		take(a)
	}
	c.mu.Unlock()
	for _, f := range run {
		go f()
	}
}

// connSource is what a connection's reader reads: the byte the watcher
// took from the socket, if it took one, then the socket.
type connSource struct{ c *conn }

func (s connSource) Read(p []byte) (int, error) {
	c := s.c
	if c.hasStolen && len(p) > 0 {
		c.hasStolen = false
		p[0] = c.stolen[0]
		return 1, nil
	}
	return c.rwc.Read(p)
}

// The watch works in ticks of watchAfter/2, counted by Server.scan: a
// request that may be watched records the tick it started in, and the
// scanner claims it, and starts a watcher, once two ticks have passed. A
// fast request costs three atomic operations and no clock read.

// startWatch makes the request whose context is ctx eligible for a watch.
// Only requests with nothing more to read from the socket are watched: a
// reader of the body, or pipelined bytes already read, own the socket's
// read side.
func (c *conn) startWatch(ctx *requestContext) {
	c.watchCtx = ctx // published by the store below
	c.reqTick.Store(c.srv.tick.Load())
}

// stopWatch ends the request's watch. If the scanner claimed it, a
// watcher is reading the socket or about to: it is cut short and waited
// for, so the connection's read side is the reader's again.
func (c *conn) stopWatch() {
	if c.reqTick.Swap(0) != 0 {
		c.watchCtx = nil
		return // never claimed
	}
	c.watchMu.Lock()
	c.watchEnded = true
	c.watchMu.Unlock()
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-c.watchDone
	c.rwc.SetReadDeadline(time.Time{})
	c.watchEnded = false
	c.watchCtx = nil
}

// claimWatch starts a watcher for c's request if it has run at least two
// ticks by now; the scanner calls it.
func (c *conn) claimWatch(now int64) {
	start := c.reqTick.Load()
	if start == 0 || now-start < 2 || !c.reqTick.CompareAndSwap(start, 0) {
		return
	}
	go c.watch(c.watchCtx)
}

// watch blocks reading the socket. End of stream or an error other than
// the deadline stopWatch sets means the client is gone; a byte means it
// sent its next request early, and is kept for the reader.
func (c *conn) watch(ctx *requestContext) {
	defer func() { c.watchDone <- struct{}{} }()
	c.watchMu.Lock()
	if c.watchEnded {
		c.watchMu.Unlock()
		return
	}
	// Under the lock, so that stopWatch's deadline comes after this one.
	c.rwc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()
	n, err := c.rwc.Read(c.stolen[:])
	if n > 0 {
		c.hasStolen = true
		return
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		ctx.cancel(context.Canceled)
	}
}

// scan counts ticks and claims the watches of requests that have run two
// of them, until stop is closed.
func (s *Server) scan(stop <-chan struct{}) {
	t := time.NewTicker(watchAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := s.tick.Add(1)
		s.mu.Lock()
		for c := range s.conns {
			c.claimWatch(now)
		}
		s.mu.Unlock()
	}
}

// aLongTimeAgo is a deadline that makes a pending read fail at once.
var aLongTimeAgo = time.Unix(1, 0)
