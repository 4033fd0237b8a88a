package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prometheus/client_golang/prometheus"

	"frontdoor/internal/h1"
	"frontdoor/login/session"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/policy"
)

// memKeys is the smallest token.KeyStore: one generated key, no rotation.
type memKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (m *memKeys) SigningKeys(context.Context) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.SigningKey(nil), m.keys...), nil
}

func (m *memKeys) EnsureSigningKey(_ context.Context, gen func() (store.SigningKey, error)) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys) > 0 {
		return false, nil
	}
	k, err := gen()
	if err != nil {
		return false, err
	}
	m.keys = append(m.keys, k)
	return true, nil
}

func (m *memKeys) ActivateSigningKey(context.Context, store.SigningKey) error {
	return store.ErrConflict // benchmarks never rotate
}

func (m *memKeys) DeleteSigningKeysRetiredBefore(context.Context, time.Time) (int, error) {
	return 0, nil
}

func (m *memKeys) TryLock(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// realVerifier is the verifier chain serve builds: RS256 verification behind
// the verified-token cache, behind the revocation check, with one token of
// role author minted by the same keys.
func realVerifier(tb testing.TB) (TokenVerifier, string) {
	tb.Helper()
	ctx := context.Background()
	var cfg token.Config
	cfg.ApplyDefaults()
	ring, err := token.NewKeyRing(ctx, &memKeys{}, cfg, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := token.NewVerifier(ring, cfg, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := token.NewIssuer(ring, cfg, time.Now).Mint(ctx, token.MintRequest{Subject: "42", Roles: []string{"author"}, AMR: []string{"wechat"}})
	if err != nil {
		tb.Fatal(err)
	}
	cache := token.NewCache(v, token.CacheOptions{Size: cfg.CacheSize, Generation: ring.Version})
	return session.NewVerifier(cache, session.NewRevocations(cfg.Issuer)), m.Token
}

type benchCase struct {
	name   string
	logger *zap.Logger
	// access is the access log's direct output, as cmd/frontdoor sets it;
	// nil sends the access log through logger.
	access io.Writer
}

// benchCases: log=access is how frontdoor runs (access-log lines written
// directly), log=zap the same lines through zap, log=off none at all.
func benchCases() []benchCase {
	jsonLog := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	return []benchCase{
		{"log=access", jsonLog, io.Discard},
		{"log=zap", jsonLog, nil},
		{"log=off", zap.NewNop(), nil},
	}
}

// benchHandler is a Handler over the test policy, whose upstream round trip
// is a canned in-memory response: the transport is excluded.
func benchHandler(tb testing.TB, v TokenVerifier, bc benchCase) *Handler {
	tb.Helper()
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: testRoutes()})
	if err != nil {
		tb.Fatal(err)
	}
	canned := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"2"}},
			Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
	})
	rt, err := NewRuntime(Config{Upstreams: legacy("http://127.0.0.1:1")}, pol, canned, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := New(Options{Runtime: rt, Verifier: v, Logger: bc.logger, AccessLog: bc.access, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func (d *discardWriter) reset() {
	clear(d.h)
	d.code = 0
}

// inbound gives req the headers a client sent, as a fresh request would
// have them: the pipeline rewrites the inbound header map in place.
// Clearing rather than replacing the map keeps the refill allocation-free,
// so only the pipeline's allocations are counted.
func inbound(req *http.Request, auth []string) {
	clear(req.Header)
	req.Header["Authorization"] = auth
	req.Header["X-User-Id"] = []string{"spoof"}[:1:1] // stripped by every request
}

// BenchmarkPipeline measures frontdoor's in-process work per request on an
// authenticated, capability-checked route: normalise, strip spoofed
// identity headers, match, authenticate a token seen before (the real
// RS256 verifier behind the verified-token cache and the revocation check),
// decide, rewrite headers, the outbound request and the response
// streaming, access log and metrics. The upstream round trip is a canned
// in-memory response, so the transport is excluded. log=off shows what the
// access log costs.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			v, tok := realVerifier(b)
			h := benchHandler(b, v, bc)
			req := httptest.NewRequest("POST", "/api/articles/42", nil)
			auth := []string{"Bearer " + tok}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				inbound(req, auth)
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkPipelineParallel is BenchmarkPipeline (log=access) from every core.
func BenchmarkPipelineParallel(b *testing.B) {
	v, tok := realVerifier(b)
	h := benchHandler(b, v, benchCases()[0])
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("POST", "/api/articles/42", nil)
		auth := []string{"Bearer " + tok}
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			inbound(req, auth)
			w.reset()
			h.ServeHTTP(w, req)
			if w.code != 200 {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}

// pipelineAllocBudget is the most heap allocations one authenticated,
// proxied request may cost in process (BenchmarkPipeline, log=access), as
// README states.
const pipelineAllocBudget = 16

// TestPipelineAllocBudget holds the hot path to its allocation budget. It
// counts allocations, not time, so machine load cannot make it flaky.
func TestPipelineAllocBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	v, tok := realVerifier(t)
	h := benchHandler(t, v, benchCases()[0])
	req := httptest.NewRequest("POST", "/api/articles/42", nil)
	auth := []string{"Bearer " + tok}
	w := &discardWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() {
		inbound(req, auth)
		w.reset()
		h.ServeHTTP(w, req)
	})
	if w.code != 200 {
		t.Fatalf("status %d", w.code)
	}
	if allocs > pipelineAllocBudget {
		t.Errorf("one proxied request allocates %.0f times, over the budget of %d", allocs, pipelineAllocBudget)
	}
	t.Logf("%.0f allocations per request (budget %d)", allocs, pipelineAllocBudget)
}

// BenchmarkProxyLoopback is one authenticated request through everything in
// one process: a keep-alive client connection to an http.Server running the
// Handler, the direct transport, and a loopback upstream answering 64 bytes.
// Unlike bench/run it shares the CPU with nothing else, and its allocations
// (the server's, the pipeline's and the transport's, plus the upstream's and
// the client's) are counted; -memprofile shows where they come from.
func BenchmarkProxyLoopback(b *testing.B) {
	payload := strings.Repeat("x", 64)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, payload)
	}))
	defer up.Close()
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: testRoutes()})
	if err != nil {
		b.Fatal(err)
	}
	transport := NewTransport()
	defer transport.CloseIdleConnections()
	rt, err := NewRuntime(Config{Upstreams: legacy(up.URL)}, pol, transport, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	v, tok := realVerifier(b)
	h, err := New(Options{Runtime: rt, Verifier: v, Logger: benchCases()[0].logger, AccessLog: io.Discard, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	// frontdoor's own server, as cmd/frontdoor runs it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fd := &h1.Server{Handler: h, Fallback: &http.Server{Handler: h}}
	go fd.Serve(ln)
	defer fd.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	request := []byte("POST /api/articles/42 HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\nAuthorization: Bearer " + tok + "\r\n\r\n")
	br := bufio.NewReader(conn)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(request); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(len(payload)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}
