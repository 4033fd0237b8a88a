// Package proxy is frontdoor's request pipeline: path normalisation,
// identity-header stripping, route matching, authentication, the policy
// decision, header rewriting and the reverse proxy to upstream pools, with the
// access log and request metrics.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"frontdoor/internal/apierror"
	"frontdoor/internal/bearer"
	"frontdoor/internal/clientip"
	"frontdoor/login/token"
	"frontdoor/policy"
)

// TokenVerifier checks a bearer token. The login/token Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*token.Claims, error)
}

// Options are the dependencies of a Handler.
type Options struct {
	// Runtime is the initial compiled configuration (required).
	Runtime *Runtime
	// Verifier checks bearer tokens (required).
	Verifier TokenVerifier
	// Local serves frontdoor's own endpoints under /auth/ and /.well-known/.
	// Nil answers them 404.
	Local http.Handler
	// ClientIP resolves the client address for X-Forwarded-For. Nil trusts
	// no proxy.
	ClientIP *clientip.Resolver
	// Logger receives the access log, unless AccessLog is set, and the
	// pipeline's warnings; nil discards them.
	Logger *zap.Logger
	// AccessLog, when set, receives the access log's JSON lines directly,
	// in the format Logger's production JSON encoder would give them: it
	// should be the writer under Logger, so that the lines of both share
	// one stream.
	AccessLog io.Writer
	Metrics   *Metrics
}

// Handler is the front door: an http.Handler running the pipeline of
// DESIGN.md on every request.
type Handler struct {
	runtime  atomic.Pointer[Runtime]
	verifier TokenVerifier
	local    http.Handler
	clientIP *clientip.Resolver
	log      *zap.Logger
	access   *accessLog // nil: the access log goes through log
	metrics  *Metrics
	// rp proxies WebSocket upgrades; forward handles everything else.
	rp *httputil.ReverseProxy
	// buffers and smallBuffers hold the response copy buffers: 32 KiB for
	// large or streamed bodies, 4 KiB for the small ones most APIs send,
	// which with many requests in flight is most of the memory they use.
	buffers, smallBuffers *bufferPool
}

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Runtime == nil || opts.Verifier == nil {
		return nil, errors.New("proxy: Runtime and Verifier are required")
	}
	h := &Handler{
		verifier:     opts.Verifier,
		local:        opts.Local,
		clientIP:     opts.ClientIP,
		log:          opts.Logger,
		metrics:      opts.Metrics,
		buffers:      newBufferPool(32 << 10),
		smallBuffers: newBufferPool(smallBody),
	}
	if h.clientIP == nil {
		h.clientIP = &clientip.Resolver{}
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if opts.AccessLog != nil {
		h.access = newAccessLog(opts.AccessLog)
	}
	h.runtime.Store(opts.Runtime)
	h.rp = &httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    roundTripFunc(h.roundTrip),
		ErrorHandler: h.proxyError,
		BufferPool:   h.buffers,
		ErrorLog:     log.New(zapWriter{h.log}, "", 0),
	}
	return h, nil
}

// Swap installs a new compiled configuration; requests already past route
// matching finish with the old one.
func (h *Handler) Swap(rt *Runtime) { h.runtime.Store(rt) }

// Runtime returns the configuration in use.
func (h *Handler) Runtime() *Runtime { return h.runtime.Load() }

// exchange is the per-request state shared by the pipeline stages, the
// reverse proxy callbacks and the access log.
type exchange struct {
	start     time.Time
	requestID string
	path      string // normalised
	route     *policy.Route
	pool      *Pool
	claims    *token.Claims
	rt        *Runtime
	// bodyFailed is set by the transport's body-writing goroutine when
	// reading the client's body fails.
	bodyFailed atomic.Bool
	errKind    string
	// peer is the address of the connection's other end; peerText is its
	// text form.
	peer     netip.Addr
	peerText string
	// trusted: the peer is one of server.trusted_proxies.
	trusted bool
	// remote is the client address a trusted proxy forwarded for, taken
	// before the headers are rewritten; empty when the peer is the client.
	remote string
	// outURL and body belong to the outbound request of forward; they live
	// here to share the exchange's allocation.
	outURL url.URL
	body   bodyReader
	// rec wraps the client's ResponseWriter; it lives here so that one
	// allocation serves both.
	rec recorder
	// entry is the access-log line, built here to share the allocation.
	entry accessEntry
	// values backs the one-element header values this request sets (request
	// id, identity, X-Forwarded-*), again to save an allocation each.
	values [headerValues]string
}

// Slots of exchange.values.
const (
	valRequestID = iota
	valUserID
	valRoles
	valForwardedFor
	valForwardedHost
	valForwardedProto
	valUserAgent
	headerValues
)

// value stores v in slot i and returns it as a header value. The slice's
// capacity is 1, so a later Add to the same header copies rather than
// overwriting the next slot.
func (x *exchange) value(i int, v string) []string {
	x.values[i] = v
	return x.values[i : i+1 : i+1]
}

type exchangeKey struct{}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{start: time.Now(), requestID: requestID(first(r.Header["X-Request-Id"]))}
	x.peer, x.peerText = peerOf(r)
	x.trusted = h.clientIP.Trusted(x.peer)
	x.rec.ResponseWriter = w
	w = &x.rec
	w.Header()["X-Request-Id"] = x.value(valRequestID, x.requestID)
	defer h.finish(r, x)

	rt := h.runtime.Load()
	x.rt = rt

	// 1. Normalise. Go has already rejected malformed request lines; an
	// absolute-form target ("GET http://host/p") arrives with r.URL.Host
	// set and is treated like its path.
	path, err := NormalizePath(r.URL.EscapedPath())
	if err != nil {
		x.errKind = "bad_path"
		var pe *PathError
		msg := "invalid path"
		if errors.As(err, &pe) {
			msg = pe.Error()
		}
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, msg)
		return
	}
	x.path = path

	// 2. Strip every spelling of the identity headers, whatever happens next.
	stripIdentity(r.Header, rt.strip)

	if isLocal(path) {
		x.routeName("frontdoor")
		if h.local == nil {
			apierror.Write(w, http.StatusNotFound, apierror.NotFound, "no such endpoint")
			return
		}
		r.URL.Path, r.URL.RawPath = path, ""
		h.local.ServeHTTP(w, r)
		return
	}

	// 3. Route.
	m := rt.Policy.Match(r.Method, path)
	switch m.Status {
	case http.StatusNotFound:
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "no route for this path")
		return
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", m.Allow)
		apierror.Write(w, http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "method not allowed on this route")
		return
	}
	x.route = m.Route

	// 4. Authenticate.
	if m.Route.Auth != policy.AuthNone {
		raw, present, problem := bearer.Parse(r.Header)
		switch {
		case problem != "":
			h.authFailed(w, x, "malformed_header", problem)
			return
		case present:
			claims, err := h.verifier.Verify(r.Context(), raw)
			if err != nil {
				reason := "invalid"
				var ve *token.VerifyError
				if errors.As(err, &ve) {
					reason = ve.Reason
				}
				h.authFailed(w, x, reason, "the access token is invalid or expired")
				return
			}
			x.claims = claims
		}
	}

	// 5. Authorise against the current policy.
	var roles []string
	if x.claims != nil {
		roles = x.claims.Roles
	}
	switch rt.Policy.Authorize(m.Route, roles, x.claims != nil) {
	case policy.Unauthenticated:
		h.count(x, "missing_token")
		apierror.Write(w, http.StatusUnauthorized, apierror.MissingToken, "this route requires an access token")
		return
	case policy.Forbidden:
		h.count(x, "insufficient_scope")
		apierror.Write(w, http.StatusForbidden, apierror.InsufficientScope, "the token's roles do not allow this request")
		return
	}

	// 6. Proxy.
	restrictUpgrade(r.Header)
	if len(r.TransferEncoding) > 0 {
		// net/http frames a chunked request by Transfer-Encoding and drops
		// any Content-Length before frontdoor sees it, so a request that
		// carried both cannot be told apart here. RFC 9112 section 6.1 then
		// requires closing the connection, so that a proxy in front that
		// framed it by Content-Length cannot smuggle a second request on it.
		w.Header().Set("Connection", "close")
	}
	x.pool = rt.Pools[m.Route.Upstream]
	if r.Header["Upgrade"] != nil {
		// A WebSocket handshake: ReverseProxy switches protocols and
		// tunnels the connection.
		h.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
		return
	}
	h.forward(w, r, x)
}

// timeout is the route's upstream timeout, or else the pool's.
func (x *exchange) timeout() time.Duration {
	if x.route.Timeout > 0 {
		return x.route.Timeout
	}
	return x.pool.Timeout
}

func (h *Handler) authFailed(w http.ResponseWriter, x *exchange, reason, msg string) {
	h.count(x, reason)
	apierror.Write(w, http.StatusUnauthorized, apierror.InvalidToken, msg)
}

func (h *Handler) count(x *exchange, reason string) {
	x.errKind = reason
	if h.metrics != nil {
		h.metrics.authFailures.WithLabelValues(reason).Inc()
	}
}

func (x *exchange) routeName(name string) {
	x.route = &policy.Route{Name: name}
}

// rewrite builds the outbound request of a WebSocket handshake.
// ReverseProxy calls it after removing hop-by-hop headers, including those
// the client named in Connection, so a client cannot make it drop what is
// set here.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	out := pr.Out
	// The placeholder scheme/host are replaced by the pool's chosen target.
	out.URL.Scheme = "http"
	out.URL.Host = x.pool.Name
	out.URL.Path = x.route.UpstreamPath(x.path)
	out.URL.RawPath = ""
	out.URL.RawQuery = pr.In.URL.RawQuery
	out.Host = ""
	stripIdentity(out.Header, x.rt.strip)
	h.readForwarded(pr.In, x)
	h.rewriteHeader(out.Header, x)
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &bodyReader{ReadCloser: out.Body, x: x}
	}
}

// rewriteHeader turns hdr, the inbound request's headers with the
// hop-by-hop ones removed, into the upstream's: no method or URL
// overrides, no Authorization unless the upstream wants it, frontdoor's
// identity headers, the request id and the X-Forwarded-* values
// readForwarded took.
func (h *Handler) rewriteHeader(hdr http.Header, x *exchange) {
	// The decision was made on this request's method and path. Frameworks
	// that let these headers replace them (Laravel, Express method-override,
	// IIS URL Rewrite) would act on a method or path that was never checked.
	for _, name := range [...]string{
		"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
		"X-Original-Url", "X-Rewrite-Url", "X-Original-Method",
	} {
		delete(hdr, name)
	}
	if !x.pool.ForwardAuthorization {
		delete(hdr, "Authorization")
	}
	if x.claims != nil {
		hdr[x.rt.userIDHeader] = x.value(valUserID, x.claims.Subject)
		hdr[x.rt.rolesHeader] = x.value(valRoles, joinRoles(x.claims.Roles))
	}
	hdr["X-Request-Id"] = x.values[valRequestID : valRequestID+1 : valRequestID+1]
	h.setForwarded(hdr, x)
}

// readForwarded computes X-Forwarded-For/Host/Proto from the inbound
// request into x.values. Values sent by the client are kept only when it is
// a trusted proxy. It reads in.Header as received, so forward, which
// rewrites that map in place, calls it before removing the hop-by-hop
// headers: a trusted proxy naming X-Forwarded-For in Connection means
// "consume it", not "forget the client".
func (h *Handler) readForwarded(in *http.Request, x *exchange) {
	trusted := x.trusted
	ip := x.peerText
	if prior := in.Header.Values("X-Forwarded-For"); trusted && len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	host := in.Host
	if trusted {
		if p := first(in.Header["X-Forwarded-Proto"]); p == "http" || p == "https" {
			proto = p
		}
		if fh := first(in.Header["X-Forwarded-Host"]); fh != "" {
			host = fh
		}
	}
	x.values[valForwardedFor] = ip
	x.values[valForwardedHost] = host
	x.values[valForwardedProto] = proto
}

// setForwarded writes the X-Forwarded-For/Host/Proto values readForwarded
// took. The RFC 7239 Forwarded header is dropped, since frontdoor does not
// add its own hop to it, and so is X-Real-IP unless a trusted proxy sent it.
func (h *Handler) setForwarded(hdr http.Header, x *exchange) {
	delete(hdr, "Forwarded")
	if !x.trusted {
		delete(hdr, "X-Real-Ip")
	}
	hdr["X-Forwarded-For"] = x.values[valForwardedFor : valForwardedFor+1 : valForwardedFor+1]
	hdr["X-Forwarded-Host"] = x.values[valForwardedHost : valForwardedHost+1 : valForwardedHost+1]
	hdr["X-Forwarded-Proto"] = x.values[valForwardedProto : valForwardedProto+1 : valForwardedProto+1]
}

// restrictUpgrade lets only WebSocket upgrades through. Any other (h2c
// above all) would turn the connection into a tunnel to the upstream in
// which later requests are never matched, authenticated or stripped, so its
// Upgrade header is removed and the request proxied as a plain one.
func restrictUpgrade(h http.Header) {
	up := h["Upgrade"]
	if len(up) == 0 {
		return
	}
	if len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
		return
	}
	delete(h, "Upgrade")
}

// peerOf returns the peer address of r and its text form. net/http writes
// RemoteAddr from the socket address, so an IPv4 peer's host part is
// already canonical and is used as is rather than formatted again.
func peerOf(r *http.Request) (netip.Addr, string) {
	peer := clientip.Peer(r)
	if peer.Is4() {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && !strings.Contains(host, ":") {
			return peer, host
		}
	}
	return peer, peer.String()
}

// joinRoles is strings.Join(roles, ","), without allocating for the common
// single role.
func joinRoles(roles []string) string {
	if len(roles) == 1 {
		return roles[0]
	}
	return strings.Join(roles, ",")
}

func (h *Handler) roundTrip(req *http.Request) (*http.Response, error) {
	x := req.Context().Value(exchangeKey{}).(*exchange)
	return x.pool.roundTrip(req, x.timeout())
}

// proxyError is ReverseProxy's ErrorHandler.
func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := r.Context().Value(exchangeKey{}).(*exchange)
	h.upstreamFailed(w, r.Context(), x, err)
}

// upstreamFailed answers when the upstream exchange failed. The client's
// own broken body is a 400, not the upstream's fault.
func (h *Handler) upstreamFailed(w http.ResponseWriter, ctx context.Context, x *exchange, err error) {
	upstream := x.pool.Name
	switch {
	case x.bodyFailed.Load():
		x.errKind = "client_body"
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, "malformed request body")
		return
	case ctx.Err() != nil:
		// The client went away; nobody reads this answer.
		x.errKind = "client_gone"
		w.WriteHeader(499)
		return
	case errors.Is(err, ErrUpstreamTimeout):
		x.errKind = "timeout"
		h.upstreamError(upstream, "timeout")
		apierror.Write(w, http.StatusGatewayTimeout, apierror.UpstreamTimeout, "the upstream service did not answer in time")
	default:
		kind := "other"
		if isConnectError(err) {
			kind = "connect"
		}
		x.errKind = kind
		h.upstreamError(upstream, kind)
		h.log.Warn("upstream error", zap.String("request_id", x.requestID), zap.String("upstream", upstream), zap.Error(err))
		apierror.Write(w, http.StatusBadGateway, apierror.BadGateway, "the upstream service is unavailable")
	}
}

func (h *Handler) upstreamError(upstream, kind string) {
	if h.metrics != nil {
		h.metrics.upstreamErrors.WithLabelValues(upstream, kind).Inc()
	}
}

func isLocal(path string) bool {
	return hasSegmentPrefix(path, "/auth") || hasSegmentPrefix(path, "/.well-known")
}

func hasSegmentPrefix(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// stripIdentity deletes every header whose folded name is one of strip.
func stripIdentity(h http.Header, strip [2]string) {
	for k := range h {
		if foldsTo(k, strip[0]) || foldsTo(k, strip[1]) {
			delete(h, k)
		}
	}
}

// foldsTo reports whether identityKey(name) == folded, without building
// the folded name: every request has headers of the identity headers'
// lengths (Content-Type is as long as X-User-Roles).
func foldsTo(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= utf8.RuneSelf:
			// Unicode case folding can change lengths; net/http refuses
			// such names anyway.
			return identityKey(name) == folded
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// requestID keeps a client's X-Request-Id when it is sane (1–128 characters
// of a conservative set, so it cannot smuggle anything into logs or
// upstream headers) and otherwise makes a new one.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '='
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// bodyReader remembers a failure to read the client's body (bad chunking, a
// short body), so the error is reported as the client's. Closing it does
// nothing: the transport closes request bodies when done, but the inbound
// body belongs to the server, which closes it after the handler.
type bodyReader struct {
	io.ReadCloser
	x *exchange
}

func (b *bodyReader) Close() error { return nil }

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.x.bodyFailed.Store(true)
	}
	return n, err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// smallBody is the largest response body copied with a small buffer.
const smallBody = 4 << 10

// bufferPool recycles copy buffers of one size.
type bufferPool struct {
	size int
	p    sync.Pool
}

func newBufferPool(size int) *bufferPool { return &bufferPool{size: size} }

func (b *bufferPool) get() *[]byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return buf
	}
	buf := make([]byte, b.size)
	return &buf
}

func (b *bufferPool) put(buf *[]byte) { b.p.Put(buf) }

// Get and Put make it ReverseProxy's BufferPool, for WebSocket handshakes.
func (b *bufferPool) Get() []byte  { return *b.get() }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// zapWriter sends ReverseProxy's own log lines (rare: a response copy
// failing midway) to zap.
type zapWriter struct{ l *zap.Logger }

func (z zapWriter) Write(p []byte) (int, error) {
	z.l.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

// first is Header.Get for a canonical name, without canonicalising it
// again on every request.
func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}
