package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Metrics are the pipeline's Prometheus collectors.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	// codes holds the decimal form of every status code, so that labelling
	// a request does not format one.
	codes [600]string
	// counters (requestLabels → prometheus.Counter) and durations (route →
	// prometheus.Observer) remember the series already resolved: looking
	// one up by its label values hashes and compares them under a lock,
	// twice per request. Both are bounded like the series themselves.
	counters, durations sync.Map
}

type requestLabels struct{ route, method, code string }

// observe counts one finished request and its duration.
func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	key := requestLabels{route, methodLabel(method), m.codeLabel(status)}
	c, ok := m.counters.Load(key)
	if !ok {
		c, _ = m.counters.LoadOrStore(key, m.requests.WithLabelValues(key.route, key.method, key.code))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.durations.Load(route)
	if !ok {
		o, _ = m.durations.LoadOrStore(route, m.duration.WithLabelValues(route))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *Metrics) codeLabel(code int) string {
	if code >= 0 && code < len(m.codes) {
		return m.codes[code]
	}
	return strconv.Itoa(code)
}

// NewMetrics registers the pipeline's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_http_requests_total",
			Help: "Requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "frontdoor_http_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_upstream_errors_total",
			Help: "Failed upstream exchanges, by upstream and kind (connect, timeout, other).",
		}, []string{"upstream", "kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_auth_failures_total",
			Help: "Requests refused by authentication or authorisation, by reason.",
		}, []string{"reason"}),
	}
	for i := range m.codes {
		m.codes[i] = strconv.Itoa(i)
	}
	reg.MustRegister(m.requests, m.duration, m.upstreamErrors, m.authFailures)
	return m
}

// methodLabel bounds the method label's cardinality: clients can send any
// token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// finish writes the access-log line and the request metrics.
func (h *Handler) finish(r *http.Request, x *exchange) {
	end := time.Now()
	d := end.Sub(x.start)
	rec := &x.rec
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := "-"
	if x.route != nil {
		route = x.route.Name
	}
	if h.metrics != nil {
		h.metrics.observe(route, r.Method, status, d)
	}
	if h.access == nil && !h.log.Core().Enabled(zap.InfoLevel) {
		return
	}
	e := &x.entry
	*e = accessEntry{
		requestID:  x.requestID,
		method:     r.Method,
		path:       x.path,
		route:      route,
		status:     status,
		durationMS: float64(d.Microseconds()) / 1000,
		bytes:      rec.bytes,
		remote:     h.remote(r, x),
		errKind:    x.errKind,
	}
	if x.claims != nil {
		e.userID = x.claims.Subject
	}
	// The query string is never logged: clients put tokens in it.
	if e.path == "" {
		e.path = "(refused)"
	}
	if h.access != nil {
		h.access.write(end, e)
		return
	}
	h.log.Info("request", e.zapFields()...)
}

// zapFields are e's fields for a zap logger, in the order the direct
// writer writes them.
func (e *accessEntry) zapFields() []zap.Field {
	fields := []zap.Field{
		zap.String("request_id", e.requestID),
		zap.String("method", e.method),
		zap.String("path", e.path),
		zap.String("route", e.route),
		zap.Int("status", e.status),
		zap.Float64("duration_ms", e.durationMS),
		zap.Int64("bytes", e.bytes),
		zap.String("user_id", e.userID),
		zap.String("remote", e.remote),
	}
	if e.errKind != "" {
		fields = append(fields, zap.String("error", e.errKind))
	}
	return fields
}

// remote is the client address for the access log: the peer, or the
// address a trusted proxy forwarded for.
func (h *Handler) remote(r *http.Request, x *exchange) string {
	if x.remote != "" {
		return x.remote
	}
	if !x.trusted {
		return x.peerText
	}
	return h.clientIP.Resolve(x.peer, r.Header).String()
}

// recorder captures the status and size of a response for the access log.
// It unwraps to the underlying writer so http.ResponseController can flush
// streamed responses and hijack WebSocket upgrades.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 || r.status < 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush and Hijack are implemented directly too, for code that type-asserts
// instead of using http.ResponseController.
func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}
