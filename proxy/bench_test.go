package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prometheus/client_golang/prometheus"

	"frontdoor/policy"
)

// BenchmarkPipeline measures frontdoor's in-process work per request:
// normalise, strip, match, authenticate (a cached/fake verifier: token
// crypto is benchmarked in login/token), decide, rewrite headers, access log
// and metrics. The upstream round trip is a canned in-memory response, so
// the transport is excluded.
func BenchmarkPipeline(b *testing.B) {
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: testRoutes()})
	if err != nil {
		b.Fatal(err)
	}
	canned := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"2"}},
			Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
	})
	rt, err := NewRuntime(Config{Upstreams: legacy("http://127.0.0.1:1")}, pol, canned, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	h, err := New(Options{Runtime: rt, Verifier: testTokens, Logger: logger, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/articles/42", nil)
	req.Header.Set("Authorization", "Bearer author")
	req.Header.Set("X-User-Id", "spoof")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
