package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Errors the upstream transport reports; the pipeline maps them to 502/504.
var (
	// ErrUpstreamTimeout: the upstream did not send response headers in time.
	ErrUpstreamTimeout = errors.New("upstream did not answer in time")
	// ErrNoTarget: every target of the pool refused the connection.
	ErrNoTarget = errors.New("no upstream target reachable")
)

// Target is one URL of an upstream pool, with its passive health state.
type Target struct {
	URL *url.URL
	// downUntil is a UnixNano; the target is skipped until then after a
	// failed connection attempt.
	downUntil atomic.Int64
}

// Healthy reports whether the target may be tried at now.
func (t *Target) Healthy(now time.Time) bool { return now.UnixNano() >= t.downUntil.Load() }

func (t *Target) markDown(now time.Time, d time.Duration) { t.downUntil.Store(now.Add(d).UnixNano()) }

// Pool is a named upstream: several targets tried round robin, each one that
// fails to connect skipped for DownFor. It is an http.RoundTripper that fills
// in the scheme, host and base path of the chosen target.
type Pool struct {
	Name    string
	Targets []*Target
	// Timeout bounds dialling, sending the request and waiting for the
	// response headers. The body then streams without a deadline, so long
	// downloads and WebSockets are not cut off.
	Timeout time.Duration
	// ForwardAuthorization passes the client's Authorization header through.
	ForwardAuthorization bool
	// DownFor is how long a target that refused a connection is skipped.
	DownFor time.Duration

	transport http.RoundTripper
	now       func() time.Time
	next      atomic.Uint32
}

// NewPool builds a pool over urls sharing transport (so idle connections
// survive config reloads).
func NewPool(name string, urls []string, timeout time.Duration, transport http.RoundTripper, now func() time.Time) (*Pool, error) {
	if len(urls) == 0 {
		return nil, errors.New("needs at least one URL")
	}
	p := &Pool{Name: name, Timeout: timeout, DownFor: 10 * time.Second, transport: transport, now: now}
	for _, raw := range urls {
		u, err := parseTargetURL(raw)
		if err != nil {
			return nil, err
		}
		p.Targets = append(p.Targets, &Target{URL: u})
	}
	return p, nil
}

func parseTargetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return nil, fmt.Errorf("URL %q: missing host", raw)
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("URL %q: must not carry credentials, a query or a fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// pick returns the next healthy target in round-robin order, skipping the
// ones in tried. When every untried target is marked down it still returns
// one (the one that comes back soonest): failing open on the health state is
// better than refusing traffic on stale information.
func (p *Pool) pick(now time.Time, tried uint64) *Target {
	n := len(p.Targets)
	start := int(p.next.Add(1)-1) % n
	var fallback *Target
	for i := 0; i < n; i++ {
		idx := (start + i) % n
		if idx < 64 && tried&(1<<idx) != 0 {
			continue
		}
		t := p.Targets[idx]
		if t.Healthy(now) {
			return t
		}
		if fallback == nil || t.downUntil.Load() < fallback.downUntil.Load() {
			fallback = t
		}
	}
	return fallback
}

func (p *Pool) indexOf(t *Target) int {
	for i, x := range p.Targets {
		if x == t {
			return i
		}
	}
	return -1
}

// RoundTrip sends req to a target. A request without a body that fails to
// connect is retried on the other targets: it never reached any upstream, so
// the retry cannot duplicate work.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	// A shallow copy with its own URL, which roundTrip points at targets;
	// the header and body are read, not changed.
	out := *req
	u := *req.URL
	out.URL = &u
	return p.roundTrip(&out, p.Timeout)
}

// roundTrip is RoundTrip for a request the pipeline owns: each attempt
// points req.URL at the chosen target, in place.
func (p *Pool) roundTrip(req *http.Request, timeout time.Duration) (*http.Response, error) {
	var tried uint64
	retriable := req.Body == nil || req.Body == http.NoBody
	path := req.URL.Path // before any target's base path is put in front
	var lastErr error
	for attempt := 0; attempt < len(p.Targets); attempt++ {
		t := p.pick(p.now(), tried)
		if t == nil {
			break
		}
		if i := p.indexOf(t); i < 64 {
			tried |= 1 << i
		}
		req.URL.Scheme, req.URL.Host = t.URL.Scheme, t.URL.Host
		if t.URL.Path != "" {
			req.URL.Path, req.URL.RawPath = t.URL.Path+path, ""
		}
		resp, err := p.send(req, timeout)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !isConnectError(err) {
			return nil, err
		}
		t.markDown(p.now(), p.DownFor)
		if !retriable || req.Context().Err() != nil {
			return nil, err
		}
	}
	if lastErr == nil {
		lastErr = ErrNoTarget
	}
	return nil, lastErr
}

func (p *Pool) send(req *http.Request, timeout time.Duration) (*http.Response, error) {
	if tr, ok := p.transport.(*Transport); ok {
		return tr.roundTrip(req, timeout)
	}
	return roundTripTimeout(p.transport, req, timeout)
}

// roundTripTimeout sends req through rt; a positive timeout bounds the wait
// for the response headers and its expiry is reported as ErrUpstreamTimeout.
func roundTripTimeout(rt http.RoundTripper, req *http.Request, timeout time.Duration) (*http.Response, error) {
	if timeout <= 0 {
		return rt.RoundTrip(req)
	}
	// The deadline applies to the response headers only; the context must
	// stay alive while the body streams, and it is released when the
	// inbound request's context ends (when the handler returns).
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(timeout, func() { cancel(ErrUpstreamTimeout) })
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: even if headers arrived at that very moment,
		// the context is cancelled and the body would be cut short.
		if resp != nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("%w (after %s)", ErrUpstreamTimeout, timeout)
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrUpstreamTimeout) {
			return nil, fmt.Errorf("%w (after %s)", ErrUpstreamTimeout, timeout)
		}
		return nil, err
	}
	return resp, nil
}

// isConnectError reports whether err happened while connecting, before any
// byte of the request was sent.
func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
