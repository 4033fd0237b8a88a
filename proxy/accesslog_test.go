package proxy

import (
	"bytes"
	"math"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fixedClock is zap's clock for a line written at one instant.
type fixedClock time.Time

func (c fixedClock) Now() time.Time                       { return time.Time(c) }
func (fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// zapLine is the line cmd/frontdoor's logger (newLogs: production JSON
// encoder, "ts" in RFC 3339 with nanoseconds) writes for e at ts.
func zapLine(t testing.TB, ts time.Time, e *accessEntry) string {
	t.Helper()
	var out bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&out), zap.InfoLevel)
	h := &Handler{log: zap.New(core, zap.WithClock(fixedClock(ts)))}
	h.log.Info("request", e.zapFields()...)
	return out.String()
}

func ownLine(ts time.Time, e *accessEntry) string {
	var out bytes.Buffer
	newAccessLog(&out).write(ts, e)
	return out.String()
}

func TestAccessLogMatchesZap(t *testing.T) {
	ts := time.Date(2026, 11, 21, 4, 27, 41, 34506835, time.UTC)
	hostile := "q\"uo\\te\n\r\t\x00\x01\x1f\x7f <>&' é 中 \u2028 \xff\xfe end"
	for name, e := range map[string]accessEntry{
		"typical": {requestID: "8744d15ace14abca3c80d39a6dccbf67", method: "GET", path: "/api/items/1",
			route: "items-read", status: 200, durationMS: 1.68, bytes: 64, userID: "1", remote: "127.0.0.1"},
		"refused": {requestID: "r", method: "GET", path: "(refused)", route: "-", status: 400,
			durationMS: 0.012, remote: "::1", errKind: "bad_path"},
		"hostile": {requestID: hostile, method: hostile, path: hostile, route: hostile, status: 502,
			durationMS: 123456.789, bytes: math.MaxInt64, userID: hostile, remote: hostile, errKind: hostile},
		"empty":    {},
		"nan":      {durationMS: math.NaN()},
		"inf":      {durationMS: math.Inf(1), status: -1, bytes: -1},
		"neg inf":  {durationMS: math.Inf(-1)},
		"tiny":     {durationMS: 1e-9},
		"huge":     {durationMS: 1e300},
		"zero UTC": {requestID: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, at := range []time.Time{ts, ts.In(time.FixedZone("CST", 8*3600)), ts.Truncate(time.Second)} {
				if got, want := ownLine(at, &e), zapLine(t, at, &e); got != want {
					t.Errorf("access log line differs from zap's:\n got %q\nwant %q", got, want)
				}
			}
		})
	}
}

func FuzzAccessLogMatchesZap(f *testing.F) {
	f.Add("8744d15ace14abca", "GET", "/api/items/1", "items-read", 200, 1.68, int64(64), "1", "127.0.0.1", "")
	f.Add("\x00\"\\", "P\xffOST", "/\n\r\t", "é中\u2028", -7, math.NaN(), int64(-1), "\x7f", "::1", "bad_path")
	f.Fuzz(func(t *testing.T, id, method, path, route string, status int, ms float64, n int64, user, remote, errKind string) {
		e := accessEntry{requestID: id, method: method, path: path, route: route, status: status,
			durationMS: ms, bytes: n, userID: user, remote: remote, errKind: errKind}
		ts := time.Unix(1_700_000_000, int64(status)&0x3fffffff).UTC()
		if got, want := ownLine(ts, &e), zapLine(t, ts, &e); got != want {
			t.Fatalf("access log line differs from zap's:\n got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkAccessLog(b *testing.B) {
	e := accessEntry{requestID: "8744d15ace14abca3c80d39a6dccbf67", method: "GET", path: "/api/items/1",
		route: "items-read", status: 200, durationMS: 1.68, bytes: 64, userID: "1", remote: "127.0.0.1"}
	ts := time.Now()
	b.Run("own", func(b *testing.B) {
		l := newAccessLog(discard{})
		b.ReportAllocs()
		for b.Loop() {
			l.write(ts, &e)
		}
	})
	b.Run("zap", func(b *testing.B) {
		enc := zap.NewProductionEncoderConfig()
		enc.TimeKey = "ts"
		enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(discard{}), zap.InfoLevel))
		b.ReportAllocs()
		for b.Loop() {
			log.Info("request", e.zapFields()...)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
