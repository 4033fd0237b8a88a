package simulator_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login/wechat"
)

const (
	appA    = "wx00000000000000aa"
	secretA = "secret-a"
	appB    = "wx00000000000000bb"
	secretB = "secret-b"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSim(t *testing.T, clk *clock) (*simulator.Simulator, *httptest.Server) {
	t.Helper()
	sim := simulator.New(simulator.Options{
		Apps: map[string]string{appA: secretA, appB: secretB},
		Now:  clk.Now,
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

// answer is a decoded jscode2session reply.
type answer struct {
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
}

func exchangeQuery(t *testing.T, srv *httptest.Server, q url.Values) answer {
	t.Helper()
	resp, err := http.Get(srv.URL + "/sns/jscode2session?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP status %d, want 200 always", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain like WeChat", ct)
	}
	var a answer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	if (a.ErrCode == 0) != (a.SessionKey != "") || a.ErrCode != 0 && a.ErrMsg == "" {
		t.Errorf("answer %q mixes success and error", body)
	}
	return a
}

func exchange(t *testing.T, srv *httptest.Server, appID, secret, code string) answer {
	t.Helper()
	return exchangeQuery(t, srv, url.Values{
		"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"},
	})
}

func issue(t *testing.T, sim *simulator.Simulator, req simulator.CodeRequest) simulator.CodeResponse {
	t.Helper()
	resp, err := sim.IssueCode(req)
	if err != nil {
		t.Fatalf("IssueCode: %v", err)
	}
	return resp
}

func TestCode2SessionRefusals(t *testing.T) {
	sim, srv := newSim(t, newClock())
	codeA := issue(t, sim, simulator.CodeRequest{AppID: appA, OpenID: "oA"}).Code
	valid := url.Values{"appid": {appA}, "secret": {secretA}, "js_code": {codeA}, "grant_type": {"authorization_code"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, vs := range valid {
			q[key] = vs
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	tests := []struct {
		name    string
		q       url.Values
		errcode int
		errmsg  string
	}{
		{"missing appid", with("appid", ""), 41002, "appid missing"},
		{"unknown appid", with("appid", "wx00000000000000cc"), 40013, "invalid appid"},
		{"missing secret", with("secret", ""), 41004, "appsecret missing"},
		{"wrong secret", with("secret", secretB), 40125, "invalid appsecret"},
		{"missing grant_type", with("grant_type", ""), 40002, "invalid grant_type"},
		{"wrong grant_type", with("grant_type", "client_credential"), 40002, "invalid grant_type"},
		{"missing code", with("js_code", ""), 41008, "missing code"},
		{"unknown code", with("js_code", "nosuchcode"), 40029, "invalid code"},
		{"another app's code", url.Values{"appid": {appB}, "secret": {secretB}, "js_code": {codeA}, "grant_type": {"authorization_code"}}, 40029, "invalid code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := exchangeQuery(t, srv, tt.q)
			if a.ErrCode != tt.errcode || !strings.HasPrefix(a.ErrMsg, tt.errmsg+", rid: ") {
				t.Errorf("answer = %+v, want %d %q", a, tt.errcode, tt.errmsg)
			}
		})
	}
	// None of the refusals spent the code.
	if a := exchange(t, srv, appA, secretA, codeA); a.ErrCode != 0 || a.OpenID != "oA" {
		t.Errorf("code after refusals: %+v", a)
	}
	if got, want := sim.Calls(), len(tests)+1; got != want {
		t.Errorf("Calls = %d, want %d", got, want)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	clk := newClock()
	sim, srv := newSim(t, clk)
	resp := issue(t, sim, simulator.CodeRequest{AppID: appA, OpenID: "oUser", UnionID: "uUser"})
	first := exchange(t, srv, appA, secretA, resp.Code)
	if first.ErrCode != 0 || first.OpenID != "oUser" || first.UnionID != "uUser" {
		t.Fatalf("first use: %+v", first)
	}
	if k, err := base64.StdEncoding.DecodeString(first.SessionKey); err != nil || len(k) != 16 {
		t.Errorf("session_key %q is not 16 bytes of base64", first.SessionKey)
	}
	for _, step := range []time.Duration{0, 4 * time.Minute} {
		clk.Advance(step)
		if a := exchange(t, srv, appA, secretA, resp.Code); a.ErrCode != 40163 || !strings.HasPrefix(a.ErrMsg, "code been used") {
			t.Errorf("reuse after %v: %+v, want 40163", step, a)
		}
	}
	// Once expired, a used code is forgotten like any other.
	clk.Advance(time.Minute)
	if a := exchange(t, srv, appA, secretA, resp.Code); a.ErrCode != 40029 {
		t.Errorf("reuse after expiry: %+v, want 40029", a)
	}
}

func TestCodeExpiry(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		wait    time.Duration
		errcode int
	}{
		{"default ttl, just before", 0, 5*time.Minute - time.Nanosecond, 0},
		{"default ttl, at expiry", 0, 5 * time.Minute, 40029},
		{"custom ttl, before", time.Minute, 59 * time.Second, 0},
		{"custom ttl, after", time.Minute, 61 * time.Second, 40029},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			sim := simulator.New(simulator.Options{Apps: map[string]string{appA: secretA}, CodeTTL: tt.ttl, Now: clk.Now})
			srv := httptest.NewServer(sim)
			defer srv.Close()
			code := issue(t, sim, simulator.CodeRequest{}).Code
			clk.Advance(tt.wait)
			if a := exchange(t, srv, appA, secretA, code); a.ErrCode != tt.errcode {
				t.Errorf("after %v: %+v, want errcode %d", tt.wait, a, tt.errcode)
			}
		})
	}
}

func TestHighRisk(t *testing.T) {
	sim, srv := newSim(t, newClock())
	code := issue(t, sim, simulator.CodeRequest{AppID: appB, HighRisk: true}).Code
	if a := exchange(t, srv, appB, secretB, code); a.ErrCode != 40226 || a.OpenID != "" {
		t.Errorf("high-risk code: %+v, want 40226", a)
	}
	if a := exchange(t, srv, appB, secretB, code); a.ErrCode != 40163 {
		t.Errorf("high-risk code again: %+v, want 40163", a)
	}
}

func TestFailNext(t *testing.T) {
	sim, srv := newSim(t, newClock())
	code := issue(t, sim, simulator.CodeRequest{}).Code
	sim.FailNext(-1, 2)
	for i := range 2 {
		// Injected faults come before any check, even of the secret.
		if a := exchange(t, srv, appA, "wrong", code); a.ErrCode != -1 || !strings.HasPrefix(a.ErrMsg, "system error") {
			t.Errorf("call %d: %+v, want -1", i, a)
		}
	}
	if a := exchange(t, srv, appA, secretA, code); a.ErrCode != 0 {
		t.Errorf("after the faults: %+v, want success with the unspent code", a)
	}
	sim.FailNext(45011, 5)
	sim.FailNext(45011, 0) // clears
	if a := exchange(t, srv, appA, secretA, "x"); a.ErrCode != 40029 {
		t.Errorf("after clearing: %+v, want 40029", a)
	}
	sim.FailNext(12345, 1)
	if a := exchange(t, srv, appA, secretA, "x"); a.ErrCode != 12345 || a.ErrMsg == "" {
		t.Errorf("unknown errcode fault: %+v", a)
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := simulator.New(simulator.Options{})
		code := issue(t, sim, simulator.CodeRequest{}).Code
		target := "/sns/jscode2session?" + url.Values{
			"appid": {simulator.DefaultAppID}, "secret": {simulator.DefaultSecret},
			"js_code": {code}, "grant_type": {"authorization_code"},
		}.Encode()
		sim.SetLatency(200 * time.Millisecond)

		// A client that gives up first gets no answer, and the code is not spent.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil))
		if d := time.Since(start); d != 50*time.Millisecond || rec.Body.Len() != 0 {
			t.Errorf("cancelled request: answered %q after %v (fake clock), want nothing after 50ms", rec.Body, d)
		}

		start = time.Now()
		rec = httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("answered after %v (fake clock), want 200ms", d)
		}
		if !strings.Contains(rec.Body.String(), `"session_key"`) {
			t.Errorf("answer %q, want success", rec.Body)
		}
		if sim.Calls() != 2 {
			t.Errorf("Calls = %d, want 2", sim.Calls())
		}
	})
}

func postJSON(t *testing.T, srv *httptest.Server, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestSimCodeEndpoint(t *testing.T) {
	clk := newClock()
	_, srv := newSim(t, clk)
	status, body := postJSON(t, srv, "/sim/code", `{"appid":"`+appB+`","openid":"oB","unionid":"uB","nickname":"Band","avatar_url":"https://example.com/a.png?x=1&y=2","gender":2}`)
	if status != http.StatusOK {
		t.Fatalf("POST /sim/code = %d %s", status, body)
	}
	var resp simulator.CodeResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Code == "" || resp.EncryptedData == "" || resp.IV == "" || resp.RawData == "" || resp.Signature == "" || resp.OpenID != "oB" {
		t.Fatalf("response = %+v", resp)
	}
	a := exchange(t, srv, appB, secretB, resp.Code)
	if a.ErrCode != 0 || a.OpenID != "oB" || a.UnionID != "uB" {
		t.Fatalf("exchange = %+v", a)
	}

	// Check the open data with a decryption written here, independent of
	// both the simulator and login/wechat.
	wantRaw := `{"nickName":"Band","gender":2,"language":"zh_CN","city":"","province":"","country":"","avatarUrl":"https://example.com/a.png?x=1&y=2"}`
	if resp.RawData != wantRaw {
		t.Errorf("rawData = %s\nwant      %s", resp.RawData, wantRaw)
	}
	sum := sha1.Sum([]byte(resp.RawData + a.SessionKey))
	if resp.Signature != hex.EncodeToString(sum[:]) {
		t.Errorf("signature %s is not sha1(rawData + session_key)", resp.Signature)
	}
	pt := decryptCBC(t, a.SessionKey, resp.EncryptedData, resp.IV)
	wantInfo := `{"openId":"oB","nickName":"Band","gender":2,"language":"zh_CN","city":"","province":"","country":"","avatarUrl":"https://example.com/a.png?x=1&y=2","unionId":"uB","watermark":{"timestamp":` +
		jsonInt(clk.Now().Unix()) + `,"appid":"` + appB + `"}}`
	if string(pt) != wantInfo {
		t.Errorf("encryptedData decrypts to %s\nwant                     %s", pt, wantInfo)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// decryptCBC checks the padding itself rather than trusting the code under test.
func decryptCBC(t *testing.T, key, data, iv string) []byte {
	t.Helper()
	k, err1 := base64.StdEncoding.DecodeString(key)
	i, err2 := base64.StdEncoding.DecodeString(iv)
	ct, err3 := base64.StdEncoding.DecodeString(data)
	if err := errors.Join(err1, err2, err3); err != nil || len(i) != 16 || len(ct)%16 != 0 || len(ct) == 0 {
		t.Fatalf("bad base64 or lengths: %v", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, i).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	if n < 1 || n > 16 || !bytes.Equal(pt[len(pt)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("bad PKCS#7 padding % x", pt[len(pt)-16:])
	}
	return pt[:len(pt)-n]
}

func TestSimCodeDefaults(t *testing.T) {
	sim, srv := newSim(t, newClock())
	// An empty body: the first app in sorted order, a generated openid.
	status, body := postJSON(t, srv, "/sim/code", "")
	if status != http.StatusOK {
		t.Fatalf("POST /sim/code = %d %s", status, body)
	}
	var r1 simulator.CodeResponse
	if err := json.Unmarshal(body, &r1); err != nil {
		t.Fatal(err)
	}
	if a := exchange(t, srv, appA, secretA, r1.Code); a.ErrCode != 0 || a.OpenID != r1.OpenID {
		t.Errorf("default app: %+v", a)
	}
	r2 := issue(t, sim, simulator.CodeRequest{})
	for _, r := range []simulator.CodeResponse{r1, r2} {
		if len(r.OpenID) != 28 || r.OpenID[0] != 'o' {
			t.Errorf("generated openid %q is not shaped like WeChat's", r.OpenID)
		}
		if !strings.Contains(r.RawData, `"nickName":"微信用户"`) {
			t.Errorf("rawData %s lacks the default nickname", r.RawData)
		}
	}
	if r1.OpenID == r2.OpenID || r1.Code == r2.Code {
		t.Error("two requests got the same openid or code")
	}
}

func TestSimCodeRefusals(t *testing.T) {
	_, srv := newSim(t, newClock())
	tests := []struct {
		name, body string
		status     int
	}{
		{"unknown appid", `{"appid":"wx00000000000000cc"}`, 400},
		{"unknown field", `{"avatarUrl":"https://example.com/a.png"}`, 400},
		{"bad gender", `{"gender":3}`, 400},
		{"overlong openid", `{"openid":"` + strings.Repeat("o", 129) + `"}`, 400},
		{"not JSON", `nickname=Band`, 400},
		{"trailing data", `{} {}`, 400},
		{"too large", `{"nickname":"` + strings.Repeat("x", 70<<10) + `"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postJSON(t, srv, "/sim/code", tt.body)
			var e struct {
				Error string `json:"error"`
			}
			if status != tt.status || json.Unmarshal(body, &e) != nil || e.Error != "invalid_request" {
				t.Errorf("POST /sim/code = %d %s, want %d invalid_request", status, body, tt.status)
			}
		})
	}
}

func TestSimCodeRandomnessFailure(t *testing.T) {
	sim := simulator.New(simulator.Options{Rand: strings.NewReader("too short")})
	if _, err := sim.IssueCode(simulator.CodeRequest{}); err == nil {
		t.Error("IssueCode succeeded without randomness")
	}
}

func TestFaultAndStatsEndpoints(t *testing.T) {
	sim, srv := newSim(t, newClock())
	status, body := postJSON(t, srv, "/sim/fault", `{"errcode":-1,"count":2}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"remaining":2`) {
		t.Fatalf("POST /sim/fault = %d %s", status, body)
	}
	for i := range 3 {
		want := -1
		if i == 2 {
			want = 40029
		}
		if a := exchange(t, srv, appA, secretA, "x"); a.ErrCode != want {
			t.Errorf("call %d: %+v, want %d", i, a, want)
		}
	}
	// count defaults to 1.
	postJSON(t, srv, "/sim/fault", `{"errcode":45011}`)
	if a := exchange(t, srv, appA, secretA, "x"); a.ErrCode != 45011 || !strings.HasPrefix(a.ErrMsg, "api minute-quota reach limit") {
		t.Errorf("after errcode fault: %+v", a)
	}
	status, body = postJSON(t, srv, "/sim/fault", `{"latency_ms":0}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"latency_ms":0`) {
		t.Errorf("POST /sim/fault latency = %d %s", status, body)
	}
	for _, bad := range []string{``, `{}`, `{"count":1}`, `{"errcode":-1,"count":-1}`, `{"latency_ms":-5}`, `{"latency_ms":99999999999}`, `{"errcode":"x"}`} {
		if status, body := postJSON(t, srv, "/sim/fault", bad); status != http.StatusBadRequest {
			t.Errorf("POST /sim/fault %s = %d %s, want 400", bad, status, body)
		}
	}

	issue(t, sim, simulator.CodeRequest{})
	resp, err := http.Get(srv.URL + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats struct{ Calls, Codes int }
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	if stats.Calls != 4 || stats.Codes != 1 || sim.Calls() != 4 {
		t.Errorf("stats = %+v, Calls() = %d; want 4 calls, 1 code", stats, sim.Calls())
	}
}

func TestWrongMethods(t *testing.T) {
	_, srv := newSim(t, newClock())
	for _, tt := range []struct{ method, path string }{
		{http.MethodPost, "/sns/jscode2session"},
		{http.MethodGet, "/sim/code"},
		{http.MethodGet, "/sim/fault"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", tt.method, tt.path, resp.StatusCode)
		}
	}
}

func TestExpiredCodesAreSwept(t *testing.T) {
	clk := newClock()
	sim, srv := newSim(t, clk)
	for range 50 {
		issue(t, sim, simulator.CodeRequest{})
	}
	clk.Advance(5 * time.Minute)
	live := issue(t, sim, simulator.CodeRequest{}).Code
	resp, err := http.Get(srv.URL + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats struct{ Codes int }
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	if stats.Codes != 1 {
		t.Errorf("%d codes remembered, want 1 after expiry", stats.Codes)
	}
	if a := exchange(t, srv, appA, secretA, live); a.ErrCode != 0 {
		t.Errorf("live code: %+v", a)
	}
}

// TestRoundTripWithClient checks the simulator against frontdoor's own
// WeChat client and crypto, each written independently of the other.
func TestRoundTripWithClient(t *testing.T) {
	sim, srv := newSim(t, newClock())
	cfg := wechat.Config{AppID: appB, Secret: secretB, APIBase: srv.URL}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	client := wechat.NewClient(cfg, srv.Client(), nil)

	resp := issue(t, sim, simulator.CodeRequest{AppID: appB, OpenID: "oRound", UnionID: "uRound", NickName: "Band", Gender: 1, AvatarURL: "https://thirdwx.qlogo.cn/a/132"})
	sess, err := client.Code2Session(context.Background(), resp.Code)
	if err != nil {
		t.Fatalf("Code2Session: %v", err)
	}
	if sess.OpenID != "oRound" || sess.UnionID != "uRound" {
		t.Errorf("session = %+v", sess)
	}
	ui, err := wechat.DecryptUserInfo(sess.SessionKey, resp.EncryptedData, resp.IV, appB)
	if err != nil {
		t.Fatalf("DecryptUserInfo: %v", err)
	}
	if ui.OpenID != sess.OpenID || ui.UnionID != "uRound" || ui.NickName != "Band" || ui.Gender != 1 || ui.AvatarURL != "https://thirdwx.qlogo.cn/a/132" {
		t.Errorf("user info = %+v", ui)
	}
	if err := wechat.VerifySignature(resp.RawData, sess.SessionKey, resp.Signature); err != nil {
		t.Errorf("VerifySignature: %v", err)
	}
	if _, err := wechat.DecryptUserInfo(sess.SessionKey, resp.EncryptedData, resp.IV, appA); !errors.Is(err, wechat.ErrWatermark) {
		t.Errorf("other app's watermark: %v, want ErrWatermark", err)
	}

	// The simulator's refusals map to the client's error classes.
	if _, err := client.Code2Session(context.Background(), resp.Code); !errors.Is(err, wechat.ErrInvalidCode) {
		t.Errorf("reused code: %v, want ErrInvalidCode", err)
	}
	risky := issue(t, sim, simulator.CodeRequest{AppID: appB, HighRisk: true}).Code
	if _, err := client.Code2Session(context.Background(), risky); !errors.Is(err, wechat.ErrHighRisk) {
		t.Errorf("high-risk code: %v, want ErrHighRisk", err)
	}
	sim.FailNext(45011, 1)
	if _, err := client.Code2Session(context.Background(), "any"); !errors.Is(err, wechat.ErrRateLimited) {
		t.Errorf("rate limited: %v, want ErrRateLimited", err)
	}
	before := sim.Calls()
	sim.FailNext(-1, 1)
	code := issue(t, sim, simulator.CodeRequest{AppID: appB}).Code
	if _, err := client.Code2Session(context.Background(), code); err != nil {
		t.Errorf("busy once then ok: %v", err)
	}
	if got := sim.Calls() - before; got != 2 {
		t.Errorf("busy once then ok took %d calls, want 2", got)
	}
	bad := wechat.NewClient(wechat.Config{AppID: appB, Secret: "wrong", APIBase: srv.URL}, srv.Client(), nil)
	if _, err := bad.Code2Session(context.Background(), code); !errors.Is(err, wechat.ErrUnavailable) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v, want ErrUnavailable without the secret", err)
	}
}
