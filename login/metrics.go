package login

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the login API's Prometheus collectors.
type Metrics struct {
	logins      *prometheus.CounterVec
	wechat      *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	lockouts    prometheus.Counter
	refreshes   *prometheus.CounterVec
	revocations *prometheus.CounterVec
}

// NewMetrics registers the login collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_logins_total",
			Help: "Login attempts by method (wechat, password) and result.",
		}, []string{"method", "result"}),
		wechat: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "frontdoor_wechat_api_duration_seconds",
			Help:    "Latency of WeChat code2Session exchanges (retries included), by result.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_login_rate_limited_total",
			Help: "Login requests refused by a rate limit, by limit (ip, username).",
		}, []string{"limit"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "frontdoor_login_lockouts_total",
			Help: "Usernames locked after too many consecutive password failures.",
		}),
	}
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "frontdoor_refreshes_total",
		Help: "Refresh-token rotations by result (ok, invalid, reused, disabled, error); reused means a rotated token came back and its session was revoked.",
	}, []string{"result"})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "frontdoor_revocations_total",
		Help: "Access tokens revoked, by cause (logout).",
	}, []string{"cause"})
	reg.MustRegister(m.refreshes, m.revocations)
	reg.MustRegister(m.logins, m.wechat, m.rateLimited, m.lockouts)
	return m
}

// ObserveCode2Session implements wechat.Observer.
func (m *Metrics) ObserveCode2Session(result string, d time.Duration) {
	if m != nil {
		m.wechat.WithLabelValues(result).Observe(d.Seconds())
	}
}

func (m *Metrics) login(method, result string) {
	if m != nil {
		m.logins.WithLabelValues(method, result).Inc()
	}
}

func (m *Metrics) limited(limit string) {
	if m != nil {
		m.rateLimited.WithLabelValues(limit).Inc()
	}
}

func (m *Metrics) lockout() {
	if m != nil {
		m.lockouts.Inc()
	}
}

func (m *Metrics) refresh(result string) {
	if m != nil {
		m.refreshes.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) revoked(cause string) {
	if m != nil {
		m.revocations.WithLabelValues(cause).Inc()
	}
}
