package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

const (
	testAppID = "wx4f4bc4dec97d474b"
	// The secret and code contain characters that query-escaping changes,
	// so that both spellings are checked for leaks.
	testSecret = "Th1s/is+the=secret"
	testCode   = "081Kq5Ga1yjqsK0x/Bs+a1KYYGI2Kq5Gg"
	testKey    = "tiihtNczf5v6AKRyjwEUhQ=="
	okBody     = `{"session_key":"` + testKey + `","openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE"}`
)

// upstream is an httptest WeChat whose handler is told the 1-based number
// of the call it serves.
type upstream struct {
	srv   *httptest.Server
	calls atomic.Int32
}

func newUpstream(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, int(u.calls.Add(1)))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) Calls() int { return int(u.calls.Load()) }

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func errcodeBody(code int) string {
	return fmt.Sprintf(`{"errcode":%d,"errmsg":"message for %d, rid: 6650a1b2-1c3d4e5f-7a8b9c0d"}`, code, code)
}

// hangUp closes the connection without an answer: a lost response.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

func testConfig(base string) Config {
	return Config{AppID: testAppID, Secret: testSecret, APIBase: base, Timeout: 5 * time.Second}
}

type recorder struct {
	mu      sync.Mutex
	results []string
}

func (r *recorder) ObserveCode2Session(result string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d < 0 {
		result += "(negative duration)"
	}
	r.results = append(r.results, result)
}

func (r *recorder) Results() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.results...)
}

// assertClean fails if err, or anything it wraps, mentions the secret or
// the code in any spelling.
func assertClean(t *testing.T, err error) {
	t.Helper()
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		msg := e.Error()
		for _, s := range []string{testSecret, url.QueryEscape(testSecret), testCode, url.QueryEscape(testCode)} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q (%T) contains %q", msg, e, s)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
}

func TestCode2SessionRequest(t *testing.T) {
	var got *http.Request
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		got = r.Clone(context.Background())
		reply(w, http.StatusOK, okBody)
	})
	c := NewClient(testConfig(up.srv.URL+"/prefix/"), nil, nil)
	if _, err := c.Code2Session(context.Background(), testCode); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/prefix/sns/jscode2session" {
		t.Errorf("request = %s %s", got.Method, got.URL.Path)
	}
	want := url.Values{
		"appid":      {testAppID},
		"secret":     {testSecret},
		"js_code":    {testCode},
		"grant_type": {"authorization_code"},
	}
	if q := got.URL.Query(); q.Encode() != want.Encode() {
		t.Errorf("query = %v, want %v", q, want)
	}
}

func TestCode2SessionAnswers(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        Session // zero = ErrUnavailable expected
	}{
		{"text/plain", 200, "text/plain", okBody, Session{OpenID: "oGZUI0egBJY1zhBYw2KhdUfwVJJE", SessionKey: testKey}},
		{"application/json", 200, "application/json", okBody, Session{OpenID: "oGZUI0egBJY1zhBYw2KhdUfwVJJE", SessionKey: testKey}},
		{"no content type", 200, "", okBody, Session{OpenID: "oGZUI0egBJY1zhBYw2KhdUfwVJJE", SessionKey: testKey}},
		{"explicit errcode 0 and unionid", 200, "text/plain",
			`{"errcode":0,"errmsg":"ok","session_key":"` + testKey + `","openid":"o1","unionid":"u1"}`,
			Session{OpenID: "o1", UnionID: "u1", SessionKey: testKey}},
		{"trailing newline", 200, "text/plain", okBody + "\n", Session{OpenID: "oGZUI0egBJY1zhBYw2KhdUfwVJJE", SessionKey: testKey}},
		{"empty openid", 200, "text/plain", `{"session_key":"` + testKey + `","openid":""}`, Session{}},
		{"missing openid", 200, "text/plain", `{"session_key":"` + testKey + `"}`, Session{}},
		{"empty session_key", 200, "text/plain", `{"session_key":"","openid":"o1"}`, Session{}},
		{"session_key not base64", 200, "text/plain", `{"session_key":"!!","openid":"o1"}`, Session{}},
		{"session_key of 8 bytes", 200, "text/plain", `{"session_key":"AAAAAAAAAAA=","openid":"o1"}`, Session{}},
		{"garbage", 200, "text/plain", `<html>502 Bad Gateway</html>`, Session{}},
		{"empty body", 200, "text/plain", ``, Session{}},
		{"JSON null", 200, "text/plain", `null`, Session{}},
		{"JSON array", 200, "text/plain", `[1]`, Session{}},
		{"errcode as string", 200, "text/plain", `{"errcode":"40029"}`, Session{}},
		{"trailing garbage", 200, "text/plain", okBody + "x", Session{}},
		{"too large", 200, "text/plain", `{"openid":"o1","session_key":"` + testKey + `","pad":"` + strings.Repeat("x", 64<<10) + `"}`, Session{}},
		{"HTTP 500", 500, "text/plain", okBody, Session{}},
		{"HTTP 404", 404, "text/plain", `not found`, Session{}},
		{"HTTP 302", 302, "text/plain", ``, Session{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/sns/jscode2session?"+r.URL.RawQuery)
				}
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := NewClient(testConfig(up.srv.URL), nil, nil)
			s, err := c.Code2Session(context.Background(), testCode)
			if tt.want == (Session{}) {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Code2Session = %+v, %v; want ErrUnavailable", s, err)
				}
				assertClean(t, err)
			} else if err != nil || s != tt.want {
				t.Fatalf("Code2Session = %+v, %v; want %+v", s, err, tt.want)
			}
			if up.Calls() != 1 {
				t.Errorf("upstream saw %d calls, want 1", up.Calls())
			}
		})
	}
}

func TestCode2SessionErrcodes(t *testing.T) {
	tests := []struct {
		errcode int
		want    error
		result  string
	}{
		{40029, ErrInvalidCode, "invalid_code"},
		{40163, ErrInvalidCode, "invalid_code"},
		{40226, ErrHighRisk, "high_risk"},
		{45011, ErrRateLimited, "rate_limited"},
		{40013, ErrUnavailable, "unavailable"}, // invalid appid
		{40125, ErrUnavailable, "unavailable"}, // invalid appsecret
		{41008, ErrUnavailable, "unavailable"}, // missing code
		{99999, ErrUnavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.errcode), func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				reply(w, http.StatusOK, errcodeBody(tt.errcode))
			})
			obs := &recorder{}
			c := NewClient(testConfig(up.srv.URL), nil, obs)
			_, err := c.Code2Session(context.Background(), testCode)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Code2Session error = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrInvalidCode, ErrHighRisk, ErrRateLimited, ErrUnavailable} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.errcode || !strings.HasPrefix(ae.Msg, "message for") {
				t.Errorf("APIError = %+v", ae)
			}
			if up.Calls() != 1 {
				t.Errorf("upstream saw %d calls, want 1 (no retry)", up.Calls())
			}
			if got := obs.Results(); len(got) != 1 || got[0] != tt.result {
				t.Errorf("observed %v, want [%s]", got, tt.result)
			}
			assertClean(t, err)
		})
	}
}

func TestCode2SessionRetries(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string // "" = hang up without an answer
		wantErr   error
		wantCode  int // of the APIError, 0 = none expected
		wantCalls int
	}{
		{"busy then ok", []string{errcodeBody(-1), okBody}, nil, 0, 2},
		{"busy twice then ok", []string{errcodeBody(-1), errcodeBody(-1), okBody}, nil, 0, 3},
		{"busy three times", []string{errcodeBody(-1), errcodeBody(-1), errcodeBody(-1), okBody}, ErrUnavailable, -1, 3},
		{"lost answer then ok", []string{"", okBody}, nil, 0, 2},
		{"lost answers throughout", []string{"", "", "", okBody}, ErrUnavailable, 0, 3},
		{"busy then invalid code", []string{errcodeBody(-1), errcodeBody(40029)}, ErrInvalidCode, 40029, 2},
		{"busy then used code", []string{errcodeBody(-1), errcodeBody(40163)}, ErrInvalidCode, 40163, 2},
		// The lost answer probably spent the code: not the user's fault.
		{"lost answer then used code", []string{"", errcodeBody(40163)}, ErrUnavailable, 0, 2},
		{"invalid code is final", []string{errcodeBody(40029), okBody}, ErrInvalidCode, 40029, 1},
		{"rate limit is final", []string{errcodeBody(45011), okBody}, ErrRateLimited, 45011, 1},
		{"high risk is final", []string{errcodeBody(40226), okBody}, ErrHighRisk, 40226, 1},
		{"HTTP error is final", []string{"500", okBody}, ErrUnavailable, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				switch a := tt.answers[n-1]; a {
				case "":
					hangUp(t, w)
				case "500":
					reply(w, http.StatusInternalServerError, "")
				default:
					reply(w, http.StatusOK, a)
				}
			})
			obs := &recorder{}
			c := NewClient(testConfig(up.srv.URL), nil, obs)
			s, err := c.Code2Session(context.Background(), testCode)
			if tt.wantErr == nil {
				if err != nil || s.SessionKey != testKey {
					t.Fatalf("Code2Session = %+v, %v", s, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Code2Session error = %v, want %v", err, tt.wantErr)
			}
			var ae *APIError
			if got := errors.As(err, &ae); got != (tt.wantCode != 0) || got && ae.Code != tt.wantCode {
				t.Errorf("APIError = %v, want code %d", ae, tt.wantCode)
			}
			if up.Calls() != tt.wantCalls {
				t.Errorf("upstream saw %d calls, want %d", up.Calls(), tt.wantCalls)
			}
			if got := obs.Results(); len(got) != 1 || got[0] != result(err) {
				t.Errorf("observed %v, want one %q", got, result(err))
			}
			if err != nil {
				assertClean(t, err)
			}
		})
	}
}

func TestCode2SessionTimeout(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		// Far longer than the client's timeout: if the client did not give
		// up, the test would hang until cleanup.
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before up.srv.Close
	cfg := testConfig(up.srv.URL)
	cfg.Timeout = 50 * time.Millisecond
	obs := &recorder{}
	c := NewClient(cfg, nil, obs)
	_, err := c.Code2Session(context.Background(), testCode)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Code2Session error = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if up.Calls() != 1 {
		t.Errorf("upstream saw %d calls, want 1: the budget is spent", up.Calls())
	}
	if got := obs.Results(); len(got) != 1 || got[0] != "unavailable" {
		t.Errorf("observed %v", got)
	}
	assertClean(t, err)
}

func TestCode2SessionCallerCancels(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := NewClient(testConfig(up.srv.URL), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Code2Session(ctx, testCode)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Code2Session error = %v, want ErrUnavailable and Canceled", err)
	}
	if _, err := c.Code2Session(ctx, testCode); !errors.Is(err, context.Canceled) {
		t.Errorf("Code2Session with a done ctx = %v", err)
	}
}

func TestCode2SessionUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := NewClient(testConfig(base), nil, nil)
	c.backoff = []time.Duration{time.Millisecond, time.Millisecond}
	_, err := c.Code2Session(context.Background(), testCode)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Code2Session error = %v, want ErrUnavailable", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL != base+"/sns/jscode2session" {
		t.Errorf("url.Error = %v, want one naming the bare endpoint", ue)
	}
	assertClean(t, err)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func textResponse(status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"text/plain"}},
		Body:       io.NopCloser(strings.NewReader(body)),
	}
}

func TestCode2SessionRedactsForeignErrors(t *testing.T) {
	leaky := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused %s (raw query %s)", r.URL, r.URL.Query())
	})
	c := NewClient(testConfig("https://api.weixin.qq.com"), &http.Client{Transport: leaky}, nil)
	c.backoff = nil
	_, err := c.Code2Session(context.Background(), testCode)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "proxy refused") {
		t.Fatalf("Code2Session error = %v", err)
	}
	assertClean(t, err)
}

func TestCode2SessionScrubsErrmsg(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, http.StatusOK, fmt.Sprintf(`{"errcode":40029,"errmsg":"bad %s for %s / %s\u0007%s"}`,
			r.URL.Query().Get("js_code"), r.URL.Query().Get("secret"), r.URL.RawQuery, strings.Repeat("x", 500)))
	})
	c := NewClient(testConfig(up.srv.URL), nil, nil)
	_, err := c.Code2Session(context.Background(), testCode)
	var ae *APIError
	if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("Code2Session error = %v", err)
	}
	if len(ae.Msg) > maxMsgLen+len("…") || strings.ContainsRune(ae.Msg, '\a') || !strings.HasPrefix(ae.Msg, "bad [redacted] for [redacted]") {
		t.Errorf("errmsg kept as %q", ae.Msg)
	}
	assertClean(t, err)
}

func TestCode2SessionLocalRefusals(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, http.StatusOK, okBody)
	})
	tests := []struct {
		name string
		cfg  Config
		code string
		want error
	}{
		{"disabled", Config{APIBase: up.srv.URL}, testCode, ErrUnavailable},
		{"empty code", testConfig(up.srv.URL), "", ErrInvalidCode},
		{"huge code", testConfig(up.srv.URL), strings.Repeat("a", 10000), ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.cfg, nil, nil).Code2Session(context.Background(), tt.code)
			if !errors.Is(err, tt.want) {
				t.Errorf("Code2Session error = %v, want %v", err, tt.want)
			}
		})
	}
	if up.Calls() != 0 {
		t.Errorf("upstream saw %d calls, want 0", up.Calls())
	}
}

// blockingTransport answers okBody once release is closed, counting calls.
type blockingTransport struct {
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	select {
	case <-b.release:
		return textResponse(http.StatusOK, okBody), nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

func TestCode2SessionSharesConcurrentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bt := &blockingTransport{release: make(chan struct{})}
		obs := &recorder{}
		c := NewClient(testConfig("https://api.weixin.qq.com"), &http.Client{Transport: bt}, obs)
		var wg sync.WaitGroup
		sessions := make([]Session, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { sessions[i], errs[i] = c.Code2Session(context.Background(), testCode) })
		}
		synctest.Wait() // both callers are waiting: one request is in flight
		close(bt.release)
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil || sessions[i].SessionKey != testKey {
				t.Errorf("caller %d: %+v, %v", i, sessions[i], errs[i])
			}
		}
		if n := bt.calls.Load(); n != 1 {
			t.Errorf("transport saw %d calls, want 1", n)
		}
		if got := obs.Results(); len(got) != 1 {
			t.Errorf("observed %v, want one exchange", got)
		}
	})
}

func TestCode2SessionSharedCallOutlivesFirstCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bt := &blockingTransport{release: make(chan struct{})}
		c := NewClient(testConfig("https://api.weixin.qq.com"), &http.Client{Transport: bt}, nil)
		ctx1, cancel1 := context.WithCancel(context.Background())
		var err1, err2 error
		var s2 Session
		var wg sync.WaitGroup
		wg.Go(func() { _, err1 = c.Code2Session(ctx1, testCode) })
		synctest.Wait() // the first caller started the request
		wg.Go(func() { s2, err2 = c.Code2Session(context.Background(), testCode) })
		synctest.Wait() // the second caller joined it
		cancel1()
		synctest.Wait()
		close(bt.release)
		wg.Wait()
		if !errors.Is(err1, context.Canceled) || !errors.Is(err1, ErrUnavailable) {
			t.Errorf("first caller: %v, want Canceled and ErrUnavailable", err1)
		}
		if err2 != nil || s2.SessionKey != testKey {
			t.Errorf("second caller: %+v, %v", s2, err2)
		}
		if n := bt.calls.Load(); n != 1 {
			t.Errorf("transport saw %d calls, want 1", n)
		}
	})
}

func TestCode2SessionSharedCallHasOwnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bt := &blockingTransport{release: make(chan struct{})}
		cfg := testConfig("https://api.weixin.qq.com")
		cfg.Timeout = 3 * time.Second
		c := NewClient(cfg, &http.Client{Transport: bt}, nil)
		start := time.Now()
		// The caller's own deadline is longer than the client's timeout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := c.Code2Session(ctx, testCode)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Code2Session error = %v", err)
		}
		if d := time.Since(start); d != cfg.Timeout {
			t.Errorf("gave up after %v (fake clock), want %v", d, cfg.Timeout)
		}
	})
}
