package login

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login/session"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/login/wechat"
	"frontdoor/policy"
)

const (
	testAppID  = simulator.DefaultAppID
	testSecret = "login-test-app-secret"
	// testIP is the client address of every request unless a test says otherwise.
	testIP = "192.0.2.10:40000"
	// bodyLimit is DESIGN.md's limit on request bodies.
	bodyLimit = 64 << 10
)

// fixture is what the APIs of one test share: a real SQLite store, signing
// keys, an issuer, a verifier and the policy.
type fixture struct {
	store    *store.SQLite
	keys     *token.KeyRing
	issuer   *token.Issuer
	verifier *token.Verifier
	tokens   token.Config
	policy   *policy.Policy
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "fd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := token.Config{Issuer: "http://frontdoor.test", Audience: "miniprogram"}
	cfg.ApplyDefaults()
	keys, err := token.NewKeyRing(ctx, st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(keys, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		store: st, keys: keys, issuer: token.NewIssuer(keys, cfg, nil), verifier: ver, tokens: cfg,
		policy: compilePolicy(t, testRoles()),
	}
}

// testRoles are the roles of DESIGN.md's example config.
func testRoles() map[string]policy.RoleSpec {
	return map[string]policy.RoleSpec{
		"subscriber":    {Capabilities: []string{"read"}},
		"contributor":   {Inherits: []string{"subscriber"}, Capabilities: []string{"edit_posts"}},
		"author":        {Inherits: []string{"contributor"}, Capabilities: []string{"publish_posts", "upload_files"}},
		"editor":        {Inherits: []string{"author"}, Capabilities: []string{"edit_others_posts", "moderate_comments"}},
		"administrator": {Inherits: []string{"editor"}, Capabilities: []string{"edit_users", "manage_options"}},
	}
}

func compilePolicy(t testing.TB, roles map[string]policy.RoleSpec) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(policy.Config{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// apiSetup says how to build one API on a fixture.
type apiSetup struct {
	wechatBase string // the WeChat API; empty disables WeChat login
	appID      string // default testAppID
	sealer     *Sealer
	perIP      int // default: high enough never to matter
	now        func() time.Time
}

// testAPI is one API under test, with what it logged and counted.
type testAPI struct {
	*API
	fx   *fixture
	cfg  Config
	logs *observer.ObservedLogs
	reg  *prometheus.Registry
}

func (f *fixture) newAPI(t testing.TB, s apiSetup) *testAPI {
	t.Helper()
	cfg := Config{
		WeChat: wechat.Config{
			AppID: cmp.Or(s.appID, testAppID), Secret: testSecret,
			APIBase: s.wechatBase, Timeout: 5 * time.Second,
		},
		RateLimit: RateLimitConfig{PerIPPerMinute: cmp.Or(s.perIP, 1_000_000)},
	}
	cfg.ApplyDefaults()
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	var wx *wechat.Client
	if s.wechatBase != "" {
		wx = wechat.NewClient(cfg.WeChat, nil, metrics)
	}
	core, logs := observer.New(zap.DebugLevel)
	api := NewAPI(APIOptions{
		Store: f.store, Keys: f.keys, Issuer: f.issuer, Verifier: f.verifier,
		WeChat: wx, Sealer: s.sealer, Metrics: metrics, Logger: zap.New(core), Now: s.now,
		Tokens: f.tokens, Config: cfg, Policy: f.policy,
	})
	return &testAPI{API: api, fx: f, cfg: cfg, logs: logs, reg: reg}
}

// newRequest is a request from a client at testIP.
func newRequest(method, target, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = testIP
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// do serves r.
func (a *testAPI) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	return w
}

// send serves one request as a client at testIP would send it.
func (a *testAPI) send(method, target, bearerToken, contentType, body string) *httptest.ResponseRecorder {
	r := newRequest(method, target, contentType, body)
	if bearerToken != "" {
		r.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	return a.do(r)
}

// login posts body as JSON to /auth/wx/login.
func (a *testAPI) login(body string) *httptest.ResponseRecorder {
	return a.send(http.MethodPost, "/auth/wx/login", "", "application/json", body)
}

// loginCount reads frontdoor_logins_total{method="wechat",result=result}.
func (a *testAPI) loginCount(t *testing.T, result string) int {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "frontdoor_logins_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == "wechat" && labels["result"] == result {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// logText renders every log entry, message and fields.
func (a *testAPI) logText() string {
	var b strings.Builder
	for _, e := range a.logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

// users returns every stored user.
func (f *fixture) users(t *testing.T) []store.User {
	t.Helper()
	us, err := f.store.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// userByOpenID finds the WeChat user of openid among the stored ones.
func (f *fixture) userByOpenID(t *testing.T, openid string) (store.User, bool) {
	t.Helper()
	for _, u := range f.users(t) {
		if u.OpenID == openid {
			return u, true
		}
	}
	return store.User{}, false
}

// loginBody is the JSON a mini-program posts, with WeChat's field names.
func loginBody(t testing.TB, code, encryptedData, iv, rawData, signature string) string {
	t.Helper()
	b, err := json.Marshal(struct {
		Code          string `json:"code"`
		EncryptedData string `json:"encryptedData,omitempty"`
		IV            string `json:"iv,omitempty"`
		RawData       string `json:"rawData,omitempty"`
		Signature     string `json:"signature,omitempty"`
	}{code, encryptedData, iv, rawData, signature})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fullBody posts everything the simulator handed to the mini-program.
func fullBody(t testing.TB, c simulator.CodeResponse) string {
	return loginBody(t, c.Code, c.EncryptedData, c.IV, c.RawData, c.Signature)
}

func decodeTokenResponse(t *testing.T, w *httptest.ResponseRecorder) tokenResponse {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatalf("token response %q: %v", w.Body, err)
	}
	return tr
}

// checkError asserts the documented error shape with status and code.
func checkError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if w.Code != status || e.Error != code || e.Description == "" {
		t.Fatalf("got %d %s, want %d %s with a description", w.Code, w.Body, status, code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
}

func newSimulator(t testing.TB) (*simulator.Simulator, *httptest.Server) {
	t.Helper()
	sim := simulator.New(simulator.Options{Apps: map[string]string{testAppID: testSecret}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func issue(t testing.TB, sim *simulator.Simulator, req simulator.CodeRequest) simulator.CodeResponse {
	t.Helper()
	c, err := sim.IssueCode(req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeWeChat answers jscode2session with a session key the test knows, so
// that the test can encrypt and sign open data of its choosing. The openid
// is "o" + the code, so each code names its own user.
type fakeWeChat struct {
	sessionKey string
	unionID    string
}

func (f fakeWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/plain")
	if r.URL.Path != "/sns/jscode2session" || q.Get("secret") != testSecret ||
		q.Get("grant_type") != "authorization_code" || q.Get("js_code") == "" {
		fmt.Fprint(w, `{"errcode":40125,"errmsg":"invalid appsecret"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{
		"openid": "o" + q.Get("js_code"), "session_key": f.sessionKey, "unionid": f.unionID,
	})
}

func newFakeWeChat(t *testing.T, f fakeWeChat) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// encryptOpenData encrypts plaintext as WeChat encrypts open data:
// AES-128-CBC under the base64 session key, PKCS#7 padding.
func encryptOpenData(t *testing.T, sessionKey string, iv, plaintext []byte) (encryptedData, ivB64 string) {
	t.Helper()
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	return encryptBlocks(t, sessionKey, iv, append(slices.Clip(plaintext), bytes.Repeat([]byte{byte(n)}, n)...)), base64.StdEncoding.EncodeToString(iv)
}

// encryptBlocks encrypts whole blocks as they are, padding and all.
func encryptBlocks(t *testing.T, sessionKey string, iv, blocks []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(blocks))
	cipher.NewCBCEncrypter(c, iv).CryptBlocks(out, blocks)
	return base64.StdEncoding.EncodeToString(out)
}

func sign(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	return hex.EncodeToString(sum[:])
}

// officialVectors are WeChat's published open-data examples.
type officialVectors struct {
	UserInfo struct {
		AppID         string `json:"appId"`
		SessionKey    string `json:"sessionKey"`
		IV            string `json:"iv"`
		EncryptedData string `json:"encryptedData"`
		Plaintext     string `json:"plaintext"`
	} `json:"userinfo_official_demo"`
	Signature struct {
		RawData    string `json:"rawData"`
		SessionKey string `json:"sessionKey"`
		Signature  string `json:"signature"`
	} `json:"rawdata_signature_official_doc"`
}

func loadVectors(t *testing.T) officialVectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("wechat", "testdata", "wechat-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v officialVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// demoOpenID is the openid inside WeChat's official encryptedData example.
const (
	demoOpenID  = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
	demoUnionID = "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
)

func TestWxLoginCreatesThenFindsTheUser(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})

	first := issue(t, sim, simulator.CodeRequest{
		OpenID: "o-alice", UnionID: "u-alice", NickName: "Alice",
		AvatarURL: "https://thirdwx.qlogo.cn/mmopen/alice/132", Gender: 2,
	})
	w := a.login(fullBody(t, first))
	tr := decodeTokenResponse(t, w)
	if !tr.NewUser || tr.TokenType != "Bearer" || tr.ExpiresIn != 7200 || tr.AccessToken == "" {
		t.Errorf("first login: %s", w.Body)
	}
	if tr.User.Nickname != "Alice" || tr.User.AvatarURL != "https://thirdwx.qlogo.cn/mmopen/alice/132" || !slices.Equal(tr.User.Roles, []string{"subscriber"}) {
		t.Errorf("user %+v", tr.User)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token response Cache-Control %q, want no-store (RFC 6749 §5.1)", cc)
	}
	claims, err := fx.verifier.Verify(t.Context(), tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != tr.User.ID || !slices.Equal(claims.Roles, []string{"subscriber"}) || !slices.Equal(claims.AMR, []string{"wechat"}) {
		t.Errorf("claims %+v for user %s", claims, tr.User.ID)
	}
	id, err := strconv.ParseInt(tr.User.ID, 10, 64)
	if err != nil {
		t.Fatalf("user id %q is not decimal", tr.User.ID)
	}
	u, err := fx.store.UserByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if u.AppID != testAppID || u.OpenID != "o-alice" || u.UnionID != "u-alice" || u.Gender != 2 || u.LastLoginAt.IsZero() || len(u.SessionKey) == 0 {
		t.Errorf("stored user %+v", u)
	}

	// The same openid with a fresh code and no open data is the same user,
	// profile untouched.
	w = a.login(loginBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-alice"}).Code, "", "", "", ""))
	again := decodeTokenResponse(t, w)
	if again.NewUser || again.User.ID != tr.User.ID || again.User.Nickname != "Alice" {
		t.Errorf("returning login: %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), `"new_user":false`) {
		t.Errorf("new_user must be present when false: %s", w.Body)
	}
	if n := len(fx.users(t)); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	if a.loginCount(t, "ok") != 2 {
		t.Errorf("ok logins counted %d, want 2", a.loginCount(t, "ok"))
	}
	if got := a.logs.FilterMessage("login").FilterField(zap.String("user_id", tr.User.ID)).Len(); got != 2 {
		t.Errorf("%d login log lines for the user, want 2:\n%s", got, a.logText())
	}
}

// The refresh token of a WeChat login, stored in the transaction that
// creates or updates the user, names that user and a new "wechat:" family,
// and lives as long as the response says.
func TestWxLoginStoresItsRefreshToken(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
	for _, pass := range []string{"new user", "returning user"} {
		tr := decodeTokenResponse(t, a.login(fullBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-erin"}))))
		id, err := strconv.ParseInt(tr.User.ID, 10, 64)
		if err != nil {
			t.Fatalf("%s: user id %q is not decimal", pass, tr.User.ID)
		}
		now := time.Now()
		old, err := fx.store.RotateRefreshToken(t.Context(), session.HashRefreshToken(tr.RefreshToken),
			store.RefreshToken{Hash: session.HashRefreshToken(pass), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
		if err != nil {
			t.Fatalf("%s: the refresh token of the login is not stored: %v", pass, err)
		}
		if old.UserID != id || !strings.HasPrefix(old.FamilyID, "wechat:") {
			t.Errorf("%s: refresh token of user %d, family %q; want user %d, a wechat: family", pass, old.UserID, old.FamilyID, id)
		}
		// refresh_expires_in counts from the response, a moment later.
		if got := old.ExpiresAt.Sub(old.IssuedAt); got != fx.tokens.RefreshTTL || tr.RefreshExpiresIn > int64(got.Seconds()) || tr.RefreshExpiresIn < int64(got.Seconds())-5 {
			t.Errorf("%s: refresh token lives %v, response says %ds; want %v", pass, got, tr.RefreshExpiresIn, fx.tokens.RefreshTTL)
		}
	}
}

func TestWxLoginStoresTheSessionKeySealed(t *testing.T) {
	fx := newFixture(t)
	v := loadVectors(t)
	srv := newFakeWeChat(t, fakeWeChat{sessionKey: v.UserInfo.SessionKey})
	encrypting, err := NewSealer("frontdoor-test-secret-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewSealer("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		sealer *Sealer
		check  func(t *testing.T, stored []byte)
	}{
		{"secret key set", encrypting, func(t *testing.T, stored []byte) {
			if len(stored) == 0 || stored[0] != sealedGCM || bytes.Contains(stored, []byte(v.UserInfo.SessionKey)) {
				t.Errorf("stored session key %q is not sealed", stored)
			}
			if got, err := encrypting.Open(stored); err != nil || got != v.UserInfo.SessionKey {
				t.Errorf("sealed session key opens to %q, %v", got, err)
			}
		}},
		{"no secret key", plain, func(t *testing.T, stored []byte) {
			if want := append([]byte{sealedPlain}, v.UserInfo.SessionKey...); !bytes.Equal(stored, want) {
				t.Errorf("stored %q, want %q", stored, want)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := fx.newAPI(t, apiSetup{wechatBase: srv.URL, sealer: c.sealer})
			code := "-sealed-" + strings.ReplaceAll(c.name, " ", "-")
			tr := decodeTokenResponse(t, a.login(loginBody(t, code, "", "", "", "")))
			id, _ := strconv.ParseInt(tr.User.ID, 10, 64)
			u, err := fx.store.UserByID(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if u.OpenID != "o"+code {
				t.Fatalf("stored openid %q", u.OpenID)
			}
			c.check(t, u.SessionKey)
		})
	}
}

func TestWxLoginRequestShape(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
	// One valid code for every case: none may reach WeChat, so none spends it.
	c := issue(t, sim, simulator.CodeRequest{OpenID: "o-shape"})
	code := c.Code
	// padded returns {"code":…,"cloudID":"xxx…"} of exactly n bytes.
	padded := func(n int) string {
		head := `{"code":"` + code + `","cloudID":"`
		return head + strings.Repeat("x", n-len(head)-2) + `"}`
	}
	cases := []struct {
		name, contentType, body string
	}{
		{"no content type", "", `{"code":"` + code + `"}`},
		{"text/plain", "text/plain", `{"code":"` + code + `"}`},
		{"form", "application/x-www-form-urlencoded", "code=" + code},
		{"json look-alike", "application/json-patch+json", `{"code":"` + code + `"}`},
		{"malformed content type", "application/json; =", `{"code":"` + code + `"}`},
		{"empty body", "application/json", ""},
		{"malformed JSON", "application/json", `{"code":"` + code + `"`},
		{"single quotes", "application/json", `{'code':'` + code + `'}`},
		{"array", "application/json", `["` + code + `"]`},
		{"null", "application/json", `null`},
		{"code of the wrong type", "application/json", `{"code":12345}`},
		{"missing code", "application/json", `{}`},
		{"empty code", "application/json", `{"code":""}`},
		{"code with a space", "application/json", `{"code":"` + code + ` x"}`},
		{"code with a control character", "application/json", `{"code":"` + code + `\u0001"}`},
		{"non-ASCII code", "application/json", `{"code":"` + code + `码"}`},
		{"code of 129 bytes", "application/json", `{"code":"` + strings.Repeat("a", 129) + `"}`},
		{"two objects", "application/json", `{"code":"` + code + `"}{"code":"` + code + `"}`},
		{"trailing garbage", "application/json", `{"code":"` + code + `"} x`},
		{"encryptedData without iv", "application/json", loginBody(t, code, c.EncryptedData, "", "", "")},
		{"iv without encryptedData", "application/json", loginBody(t, code, "", c.IV, "", "")},
		{"rawData without signature", "application/json", loginBody(t, code, "", "", c.RawData, "")},
		{"signature without rawData", "application/json", loginBody(t, code, "", "", "", c.Signature)},
		{"body of 64 KiB + 1", "application/json", padded(bodyLimit + 1)},
		{"body of 1 MiB", "application/json", padded(1 << 20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, a.send(http.MethodPost, "/auth/wx/login", "", tc.contentType, tc.body), http.StatusBadRequest, "invalid_request")
		})
	}
	if sim.Calls() != 0 {
		t.Fatalf("malformed requests reached WeChat %d times", sim.Calls())
	}
	if us := fx.users(t); len(us) != 0 {
		t.Fatalf("malformed requests created %d users", len(us))
	}
	if got := a.loginCount(t, "invalid_request"); got != len(cases) {
		t.Errorf("invalid_request counted %d times, want %d", got, len(cases))
	}
	big := a.login(padded(bodyLimit + 1))
	if !strings.Contains(big.Body.String(), "64 KiB") {
		t.Errorf("an oversized body is not explained: %s", big.Body)
	}

	// The limit is inclusive, the charset parameter is fine, and fields
	// WeChat's SDK adds (cloudID) are ignored: the untouched code still works.
	w := a.send(http.MethodPost, "/auth/wx/login", "", "application/json; charset=utf-8", padded(bodyLimit))
	if tr := decodeTokenResponse(t, w); !tr.NewUser {
		t.Errorf("a body of exactly 64 KiB: %s", w.Body)
	}
	if sim.Calls() != 1 {
		t.Errorf("WeChat called %d times, want 1", sim.Calls())
	}
}

func TestWxLoginOpenDataRejected(t *testing.T) {
	fx := newFixture(t)
	v := loadVectors(t)
	key := v.UserInfo.SessionKey // the fake WeChat gives every code this key
	srv := newFakeWeChat(t, fakeWeChat{sessionKey: key})
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
	iv := []byte("0123456789abcdef")
	userInfo := func(openID, appID string) []byte {
		return []byte(`{"openId":"` + openID + `","nickName":"Mallory","gender":1,"avatarUrl":"https://x.test/a","watermark":{"timestamp":1700000000,"appid":"` + appID + `"}}`)
	}
	// withData posts code and encryptedData/iv made by f.
	withData := func(code string, f func() (string, string)) string {
		ed, ivs := f()
		return loginBody(t, code, ed, ivs, "", "")
	}
	good := `{"nickName":"Mallory","gender":1,"language":"zh_CN","city":"","province":"","country":"","avatarUrl":""}`
	cases := []struct {
		name   string
		body   string
		status int
		code   string
		result string // the frontdoor_logins_total result
	}{
		{
			"official vector, watermark of another appid",
			// The openid matches, the data decrypts: only the watermark is wrong.
			loginBody(t, strings.TrimPrefix(demoOpenID, "o"), v.UserInfo.EncryptedData, v.UserInfo.IV, "", ""),
			401, "invalid_grant", "bad_encrypted_data",
		},
		{
			"openId of another user",
			withData("-bob", func() (string, string) { return encryptOpenData(t, key, iv, userInfo("o-mallory", testAppID)) }),
			401, "invalid_grant", "bad_encrypted_data",
		},
		{
			"plaintext is not JSON",
			withData("-noise", func() (string, string) { return encryptOpenData(t, key, iv, []byte("not json at all, but padded")) }),
			401, "invalid_grant", "bad_encrypted_data",
		},
		{
			"bad padding",
			withData("-padding", func() (string, string) {
				blocks := append(userInfo("o-padding", testAppID), bytes.Repeat([]byte{' '}, 64)...)
				blocks = blocks[:len(blocks)/aes.BlockSize*aes.BlockSize]
				blocks[len(blocks)-1] = 0 // a pad length of 0 is never valid
				return encryptBlocks(t, key, iv, blocks), base64.StdEncoding.EncodeToString(iv)
			}),
			401, "invalid_grant", "bad_encrypted_data",
		},
		{
			"encrypted under another session key",
			withData("-otherkey", func() (string, string) {
				return encryptOpenData(t, "AAAAAAAAAAAAAAAAAAAAAA==", iv, userInfo("o-otherkey", testAppID))
			}),
			401, "invalid_grant", "bad_encrypted_data",
		},
		{
			"encryptedData is not base64",
			loginBody(t, "-b64", "!!!not base64!!!", base64.StdEncoding.EncodeToString(iv), "", ""),
			400, "invalid_request", "invalid_request",
		},
		{
			"iv of 8 bytes",
			withData("-iv8", func() (string, string) {
				ed, _ := encryptOpenData(t, key, iv, userInfo("o-iv8", testAppID))
				return ed, base64.StdEncoding.EncodeToString(iv[:8])
			}),
			400, "invalid_request", "invalid_request",
		},
		{
			"encryptedData not whole blocks",
			loginBody(t, "-partial", base64.StdEncoding.EncodeToString(make([]byte, 20)), base64.StdEncoding.EncodeToString(iv), "", ""),
			400, "invalid_request", "invalid_request",
		},
		{
			"signature of other rawData",
			loginBody(t, "-sig", "", "", good, sign(strings.Replace(good, "Mallory", "Trent", 1), key)),
			401, "invalid_grant", "bad_signature",
		},
		{
			"signature in upper case",
			loginBody(t, "-upper", "", "", good, strings.ToUpper(sign(good, key))),
			401, "invalid_grant", "bad_signature",
		},
		{
			"signature made without the session key",
			loginBody(t, "-nokey", "", "", good, sign(good, "")),
			401, "invalid_grant", "bad_signature",
		},
		{
			"correctly signed rawData that is not JSON",
			loginBody(t, "-rawnotjson", "", "", "nickName=Mallory", sign("nickName=Mallory", key)),
			400, "invalid_request", "invalid_request",
		},
		{
			"good signature but foreign encryptedData",
			loginBody(t, strings.TrimPrefix(demoOpenID, "o"), v.UserInfo.EncryptedData, v.UserInfo.IV, good, sign(good, key)),
			401, "invalid_grant", "bad_encrypted_data",
		},
	}
	want := map[string]int{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, a.login(tc.body), tc.status, tc.code)
		})
		want[tc.result]++
	}
	for result, n := range want {
		if got := a.loginCount(t, result); got != n {
			t.Errorf("result %q counted %d times, want %d", result, got, n)
		}
	}
	if us := fx.users(t); len(us) != 0 {
		t.Errorf("rejected logins created users: %+v", us)
	}
}

func TestWxLoginOpenDataAccepted(t *testing.T) {
	fx := newFixture(t)
	v := loadVectors(t)

	t.Run("official encryptedData", func(t *testing.T) {
		srv := newFakeWeChat(t, fakeWeChat{sessionKey: v.UserInfo.SessionKey})
		a := fx.newAPI(t, apiSetup{wechatBase: srv.URL, appID: v.UserInfo.AppID})
		tr := decodeTokenResponse(t, a.login(loginBody(t, strings.TrimPrefix(demoOpenID, "o"), v.UserInfo.EncryptedData, v.UserInfo.IV, "", "")))
		var plain struct {
			AvatarURL string `json:"avatarUrl"`
		}
		if err := json.Unmarshal([]byte(v.UserInfo.Plaintext), &plain); err != nil {
			t.Fatal(err)
		}
		if !tr.NewUser || tr.User.Nickname != "Band" || tr.User.AvatarURL != plain.AvatarURL {
			t.Errorf("user %+v", tr.User)
		}
		u, ok := fx.userByOpenID(t, demoOpenID)
		// WeChat gave no unionid; the one in the verified data is kept.
		if !ok || u.AppID != v.UserInfo.AppID || u.UnionID != demoUnionID || u.Gender != 1 {
			t.Errorf("stored user %+v", u)
		}
	})

	t.Run("official rawData signature", func(t *testing.T) {
		srv := newFakeWeChat(t, fakeWeChat{sessionKey: v.Signature.SessionKey})
		a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
		tr := decodeTokenResponse(t, a.login(loginBody(t, "-signed", "", "", v.Signature.RawData, v.Signature.Signature)))
		if tr.User.Nickname != "Band" || !strings.HasPrefix(tr.User.AvatarURL, "http://wx.qlogo.cn/") {
			t.Errorf("user %+v", tr.User)
		}
	})

	t.Run("profile bounds", func(t *testing.T) {
		key := v.UserInfo.SessionKey
		srv := newFakeWeChat(t, fakeWeChat{sessionKey: key, unionID: "u-bounds"})
		a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
		// Signed, so verified, but out of bounds: nothing of it is kept.
		raw := `{"nickName":"` + strings.Repeat("长", 65) + `","gender":7,"avatarUrl":"javascript:alert(1)"}`
		tr := decodeTokenResponse(t, a.login(loginBody(t, "-bounds", "", "", raw, sign(raw, key))))
		if tr.User.Nickname != "" || tr.User.AvatarURL != "" {
			t.Errorf("out-of-bounds profile kept: %+v", tr.User)
		}
		u, _ := fx.userByOpenID(t, "o-bounds")
		if u.Gender != 0 || u.UnionID != "u-bounds" {
			t.Errorf("stored %+v", u)
		}
		// At the bounds it is kept: 64 characters, an https avatar.
		nick := strings.Repeat("长", 64)
		raw = `{"nickName":"` + nick + `","gender":2,"avatarUrl":"https://thirdwx.qlogo.cn/x/132"}`
		tr = decodeTokenResponse(t, a.login(loginBody(t, "-bounds", "", "", raw, sign(raw, key))))
		if tr.NewUser || tr.User.Nickname != nick || tr.User.AvatarURL != "https://thirdwx.qlogo.cn/x/132" {
			t.Errorf("in-bounds profile: %+v", tr.User)
		}
		// Newer WeChat payloads carry no openId; the watermark still binds them.
		ed, ivs := encryptOpenData(t, key, []byte("fedcba9876543210"), []byte(`{"nickName":"Carol","watermark":{"appid":"`+testAppID+`","timestamp":1}}`))
		tr = decodeTokenResponse(t, a.login(loginBody(t, "-bounds", ed, ivs, "", "")))
		if tr.User.Nickname != "Carol" {
			t.Errorf("encryptedData without openId: %+v", tr.User)
		}
	})
}

func TestWxLoginWeChatFailures(t *testing.T) {
	fx := newFixture(t)
	goodKey := base64.StdEncoding.EncodeToString(make([]byte, 16))
	answer := func(status int, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		})
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	cases := []struct {
		name       string
		wechat     http.Handler // nil: closedURL
		status     int
		code       string
		result     string
		retryAfter bool
	}{
		{"invalid code", answer(200, `{"errcode":40029,"errmsg":"invalid code"}`), 401, "invalid_grant", "invalid_code", false},
		{"used code", answer(200, `{"errcode":40163,"errmsg":"code been used"}`), 401, "invalid_grant", "invalid_code", false},
		{"high-risk user", answer(200, `{"errcode":40226,"errmsg":"high risk user"}`), 403, "access_denied", "high_risk", false},
		{"frequency limit", answer(200, `{"errcode":45011,"errmsg":"api minute-quota reach limit"}`), 503, "rate_limited", "wechat_rate_limited", true},
		{"busy", answer(200, `{"errcode":-1,"errmsg":"system error"}`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"unexpected errcode", answer(200, `{"errcode":40125,"errmsg":"invalid appsecret"}`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"HTTP 500", answer(500, `{"openid":"o-x","session_key":"`+goodKey+`"}`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"HTML", answer(200, `<html>502 Bad Gateway</html>`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"no session_key", answer(200, `{"openid":"o-x"}`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"session_key not 16 bytes", answer(200, `{"openid":"o-x","session_key":"c2hvcnQ="}`), 502, "wechat_unavailable", "wechat_unavailable", false},
		{"unreachable", nil, 502, "wechat_unavailable", "wechat_unavailable", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := closedURL
			if tc.wechat != nil {
				srv := httptest.NewServer(tc.wechat)
				defer srv.Close()
				base = srv.URL
			}
			a := fx.newAPI(t, apiSetup{wechatBase: base})
			w := a.login(`{"code":"081abcDEF"}`)
			checkError(t, w, tc.status, tc.code)
			if ra := w.Header().Get("Retry-After"); tc.retryAfter {
				if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
					t.Errorf("Retry-After %q", ra)
				}
			}
			if a.loginCount(t, tc.result) != 1 {
				t.Errorf("result %q not counted", tc.result)
			}
			if us := fx.users(t); len(us) != 0 {
				t.Fatalf("a failed exchange created users: %+v", us)
			}
		})
	}
}

func TestWxLoginDisabledUser(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
	tr := decodeTokenResponse(t, a.login(fullBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-dave"}))))
	id, _ := strconv.ParseInt(tr.User.ID, 10, 64)
	if _, err := fx.store.SetDisabled(t.Context(), id, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	w := a.login(fullBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-dave"})))
	checkError(t, w, http.StatusForbidden, "access_denied")
	if strings.Contains(w.Body.String(), "access_token") {
		t.Fatal("a disabled user got a token")
	}
	if a.loginCount(t, "disabled") != 1 {
		t.Error("the refusal was not counted as disabled")
	}
	checkError(t, a.send(http.MethodGet, "/auth/me", tr.AccessToken, "", ""), http.StatusForbidden, "access_denied")

	if _, err := fx.store.SetDisabled(t.Context(), id, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	again := decodeTokenResponse(t, a.login(fullBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-dave"}))))
	if again.NewUser || again.User.ID != tr.User.ID {
		t.Errorf("re-enabled user: %+v", again)
	}
}

func TestWxLoginNotConfigured(t *testing.T) {
	a := newFixture(t).newAPI(t, apiSetup{})
	checkError(t, a.login(`{"code":"081abcDEF"}`), http.StatusNotFound, "not_found")
}

func TestWxLoginMethodNotAllowed(t *testing.T) {
	_, srv := newSimulator(t)
	a := newFixture(t).newAPI(t, apiSetup{wechatBase: srv.URL})
	w := a.send(http.MethodGet, "/auth/wx/login?code=081abcDEF", "", "", "")
	checkError(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := w.Header().Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q, want POST", allow)
	}
}

func TestWxLoginRateLimitPerIP(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	now := time.Unix(1_700_000_000, 0)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL, perIP: 2, now: func() time.Time { return now }})
	from := func(ip, body string) *httptest.ResponseRecorder {
		r := newRequest(http.MethodPost, "/auth/wx/login", "application/json", body)
		r.RemoteAddr = ip + ":5000"
		// Not a trusted proxy: its X-Forwarded-For must not pick the bucket.
		r.Header.Set("X-Forwarded-For", "198.51.100.99")
		return a.do(r)
	}
	// Every attempt counts, even a malformed one.
	for i := 0; i < 2; i++ {
		checkError(t, from("192.0.2.1", `{}`), http.StatusBadRequest, "invalid_request")
	}
	c := issue(t, sim, simulator.CodeRequest{OpenID: "o-limited"})
	w := from("192.0.2.1", fullBody(t, c))
	checkError(t, w, http.StatusTooManyRequests, "rate_limited")
	if ra := w.Header().Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After %q, want 30 (one attempt per 30 s at 2 per minute)", ra)
	}
	if sim.Calls() != 0 {
		t.Error("a rate-limited login reached WeChat")
	}
	if a.loginCount(t, "rate_limited") != 1 {
		t.Error("the refusal was not counted")
	}
	// Another client is not affected, and the limit keeps across a reload
	// that does not change it.
	checkError(t, from("192.0.2.2", `{}`), http.StatusBadRequest, "invalid_request")
	a.Reload(a.cfg, fx.policy)
	checkError(t, from("192.0.2.1", `{}`), http.StatusTooManyRequests, "rate_limited")
	// After Retry-After the untouched code still logs in.
	now = now.Add(30 * time.Second)
	if tr := decodeTokenResponse(t, from("192.0.2.1", fullBody(t, c))); !tr.NewUser {
		t.Error("the code was spent by the refused attempt")
	}
	// A new limit starts afresh.
	cfg := a.cfg
	cfg.RateLimit.PerIPPerMinute = 5
	a.Reload(cfg, fx.policy)
	checkError(t, from("192.0.2.1", `{}`), http.StatusBadRequest, "invalid_request")
}

func TestWxLoginConcurrentFirstLogins(t *testing.T) {
	fx := newFixture(t)
	sim, srv := newSimulator(t)
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL})
	const n = 8
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fullBody(t, issue(t, sim, simulator.CodeRequest{OpenID: "o-crowd"}))
	}
	results := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = a.login(bodies[i]) })
	}
	wg.Wait()
	created, ids := 0, map[string]bool{}
	for _, w := range results {
		tr := decodeTokenResponse(t, w)
		if tr.NewUser {
			created++
		}
		ids[tr.User.ID] = true
	}
	if created != 1 || len(ids) != 1 {
		t.Errorf("%d responses said new_user, %d distinct ids; want 1 and 1", created, len(ids))
	}
	if us := fx.users(t); len(us) != 1 {
		t.Errorf("%d users stored", len(us))
	}
}

// recordingWeChat passes requests to WeChat and remembers every secret it
// answered with, so a test can look for them where they must not be.
type recordingWeChat struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (rw *recordingWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	rw.next.ServeHTTP(rec, r)
	var a struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &a) == nil {
		rw.mu.Lock()
		for _, s := range []string{a.OpenID, a.SessionKey, a.UnionID} {
			if s != "" {
				rw.seen = append(rw.seen, s)
			}
		}
		rw.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (rw *recordingWeChat) secrets() []string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return slices.Clone(rw.seen)
}

func TestWxLoginNeverRevealsIdentifiersOrKeys(t *testing.T) {
	fx := newFixture(t)
	sim := simulator.New(simulator.Options{Apps: map[string]string{testAppID: testSecret}})
	rec := &recordingWeChat{next: sim}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	sealer, err := NewSealer("frontdoor-test-secret-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	a := fx.newAPI(t, apiSetup{wechatBase: srv.URL, sealer: sealer})

	var responses []*httptest.ResponseRecorder
	var tokens []string
	user := simulator.CodeRequest{OpenID: "o-secretive-erin", UnionID: "u-secretive-erin", NickName: "Erin"}
	for range 2 {
		w := a.login(fullBody(t, issue(t, sim, user)))
		tokens = append(tokens, decodeTokenResponse(t, w).AccessToken)
		responses = append(responses, w)
	}
	tampered := issue(t, sim, user)
	tampered.Signature = flipHex(tampered.Signature)
	responses = append(responses, a.login(fullBody(t, tampered)))
	sim.FailNext(-1, 3)
	responses = append(responses, a.login(fullBody(t, issue(t, sim, user))))
	responses = append(responses, a.send(http.MethodGet, "/auth/me", tokens[0], "", ""))
	if responses[2].Code != 401 || responses[3].Code != 502 || responses[4].Code != 200 {
		t.Fatalf("unexpected statuses %d %d %d", responses[2].Code, responses[3].Code, responses[4].Code)
	}

	secrets := append(rec.secrets(), user.OpenID, user.UnionID, testSecret)
	if len(secrets) < 3+3 {
		t.Fatalf("recorded only %v", secrets)
	}
	var seen strings.Builder
	for _, w := range responses {
		fmt.Fprintf(&seen, "%v\n%s\n", w.Header(), w.Body)
	}
	for _, tok := range tokens {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(payload)
	}
	logs := a.logText()
	if !strings.Contains(logs, "wechat code2Session failed") || !strings.Contains(logs, "login") {
		t.Fatalf("the logs lack the lines to check:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(seen.String(), s) {
			t.Errorf("%q appears in a response or token", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("%q appears in the logs", s)
		}
	}
}

// flipHex changes the first hex digit of s to another hex digit.
func flipHex(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}
