package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login"
	"frontdoor/login/store"
	"frontdoor/login/wechat"
)

// The WeChat login tests run the real binary against a WeChat stand-in
// served by the test process: the simulator, or a fixed answer for WeChat's
// official open-data example.

const (
	wxAppID      = simulator.DefaultAppID
	wxOtherAppID = "wxfedcba9876543210"
	wxSecret     = "e2e-wechat-app-secret-5f1c"
	// wxSealKey is FRONTDOOR_SECRET_KEY for the instances that seal session keys.
	wxSealKey = "e2e-frontdoor-secret-key-0f9e8d7c"
)

const wxConfigTemplate = `server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  shutdown_grace: 5s
store:
  dsn: "{{.DB}}"
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
login:
  wechat:
    appid: "{{.AppID}}"
    secret: "{{.Secret}}"
    api_base: "{{.WeChat}}"
    timeout: {{.Timeout}}
  rate_limit:
    per_ip_per_minute: {{.PerIP}}
roles:
  subscriber:    { capabilities: [read] }
  contributor:   { inherits: [subscriber], capabilities: [edit_posts] }
  author:        { inherits: [contributor], capabilities: [publish_posts, upload_files] }
  editor:        { inherits: [author], capabilities: [edit_others_posts, moderate_comments] }
  administrator: { inherits: [editor], capabilities: [edit_users, manage_options] }
upstreams:
  legacy:
    urls: ["{{.Upstream}}"]
routes:
  - name: articles-read
    path: /api/articles/**
    methods: [GET]
    upstream: legacy
    auth: optional
  - name: profile
    path: /api/profile
    upstream: legacy
`

// wxEnvOptions configure one frontdoor instance and its WeChat.
type wxEnvOptions struct {
	wechat  http.Handler // the WeChat API the instance talks to
	appID   string       // default wxAppID
	timeout string       // login.wechat.timeout; default 3s
	perIP   int          // login.rate_limit.per_ip_per_minute; default: never reached
}

// wxEnv is a running frontdoor with its WeChat and upstream, and everything
// the test received from it, to be searched for secrets.
type wxEnv struct {
	fd     *instance
	base   string
	cfg    string
	db     string
	wechat *wxRecorder
	up     *upstreamRecorder

	mu     sync.Mutex
	seen   bytes.Buffer // every response: status, headers, body
	tokens []string
}

func startWxEnv(t *testing.T, o wxEnvOptions) *wxEnv {
	t.Helper()
	rec := &wxRecorder{next: o.wechat}
	wx := httptest.NewServer(rec)
	t.Cleanup(wx.Close)
	up := newUpstream(t)
	dir := t.TempDir()
	env := &wxEnv{cfg: filepath.Join(dir, "config.yaml"), db: filepath.Join(dir, "fd.db"), wechat: rec, up: up}
	params := struct {
		DB, AppID, Secret, WeChat, Timeout, Upstream string
		PerIP                                        int
	}{
		DB: env.db, AppID: wxAppID, Secret: wxSecret, WeChat: wx.URL, Timeout: "3s", Upstream: up.URL, PerIP: 100_000,
	}
	if o.appID != "" {
		params.AppID = o.appID
	}
	if o.timeout != "" {
		params.Timeout = o.timeout
	}
	if o.perIP != 0 {
		params.PerIP = o.perIP
	}
	var text bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(wxConfigTemplate)).Execute(&text, params); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.cfg, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	env.fd = startFrontdoor(t, env.cfg)
	env.base = "http://" + env.fd.addr
	return env
}

// send makes one request and records the answer. It does not touch t, so
// that goroutines may call it.
func (e *wxEnv) send(method, path, tok, contentType string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	fmt.Fprintf(&e.seen, "%s %s\n%v\n%s\n", method, path, resp.Header, got)
	e.mu.Unlock()
	return resp, got, nil
}

func (e *wxEnv) request(t *testing.T, method, path, tok, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, got, err := e.send(method, path, tok, contentType, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, got
}

// login posts v as JSON to /auth/wx/login.
func (e *wxEnv) login(t *testing.T, v any) (*http.Response, []byte) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.request(t, http.MethodPost, "/auth/wx/login", "", "application/json", body)
}

// wxLogin is the body of POST /auth/wx/login, in WeChat's field names.
type wxLogin struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData,omitempty"`
	IV            string `json:"iv,omitempty"`
	RawData       string `json:"rawData,omitempty"`
	Signature     string `json:"signature,omitempty"`
}

// wxFull is everything the mini-program got from wx.login and wx.getUserProfile.
func wxFull(c simulator.CodeResponse) wxLogin {
	return wxLogin{Code: c.Code, EncryptedData: c.EncryptedData, IV: c.IV, RawData: c.RawData, Signature: c.Signature}
}

type wxUser struct {
	ID        string   `json:"id"`
	Nickname  string   `json:"nickname"`
	AvatarURL string   `json:"avatar_url"`
	Roles     []string `json:"roles"`
}

type wxTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	User        wxUser `json:"user"`
	NewUser     bool   `json:"new_user"`
}

// tokenOf decodes a 200 token response and keeps its token for the leak checks.
func (e *wxEnv) tokenOf(t *testing.T, resp *http.Response, body []byte) wxTokenResponse {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("token response %s: %v", body, err)
	}
	for _, k := range []string{"access_token", "token_type", "expires_in", "user", "new_user"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("token response lacks %q: %s", k, body)
		}
	}
	var tr wxTokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 7200 || tr.AccessToken == "" || tr.User.ID == "" {
		t.Errorf("token response %s", body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token response Cache-Control %q, want no-store", cc)
	}
	e.mu.Lock()
	e.tokens = append(e.tokens, tr.AccessToken)
	e.mu.Unlock()
	return tr
}

// wantError asserts the documented error shape.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != status || e.Error != code || e.Description == "" {
		t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, status, code)
	}
}

// loginCount scrapes frontdoor_logins_total{method="wechat",result=result}.
func (e *wxEnv) loginCount(t *testing.T, result string) int {
	t.Helper()
	_, metrics := do(t, http.MethodGet, "http://"+e.fd.admin+"/metrics", "", nil)
	prefix := `frontdoor_logins_total{method="wechat",result="` + result + `"} `
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return n
		}
	}
	return 0
}

// stop ends frontdoor and waits until its whole log has been read.
func (e *wxEnv) stop(t *testing.T) {
	t.Helper()
	e.fd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.fd.exited:
		if err != nil {
			t.Errorf("frontdoor exit: %v", err)
		}
		e.fd.exited <- nil // for the harness's cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("frontdoor did not stop")
	}
}

// checkNoSecrets stops frontdoor and looks for every secret in everything
// it answered, in the claims of every token it issued and in its log.
// extra are secrets the WeChat stand-in did not answer with (the AppSecret,
// unionids inside encryptedData).
func (e *wxEnv) checkNoSecrets(t *testing.T, extra ...string) {
	t.Helper()
	e.stop(t)
	secrets := append(e.wechat.secrets(), extra...)
	var claims bytes.Buffer
	for _, tok := range e.tokens {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token of %d parts", len(parts))
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		claims.Write(payload)
		claims.WriteByte('\n')
	}
	logs := e.fd.settledLogs(t)
	if len(e.tokens) == 0 || !strings.Contains(logs, `"msg":"login"`) {
		t.Fatalf("nothing to search: %d tokens, logs:\n%s", len(e.tokens), logs)
	}
	for _, s := range secrets {
		for _, form := range slices.Compact([]string{s, url.QueryEscape(s)}) {
			if strings.Contains(e.seen.String(), form) {
				t.Errorf("%q appears in a response", form)
			}
			if strings.Contains(claims.String(), form) {
				t.Errorf("%q appears in token claims", form)
			}
			if strings.Contains(logs, form) {
				t.Errorf("%q appears in the log", form)
			}
		}
	}
}

// users reads the users straight from the instance's database.
func (e *wxEnv) users(t *testing.T) []store.User {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	us, err := st.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// wxClaims decodes a token's payload.
func wxClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token of %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// wxRecorder passes requests to the WeChat stand-in and remembers every
// openid, unionid and session_key it answered with.
type wxRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (rw *wxRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
			if s != "" && !slices.Contains(rw.seen, s) {
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

func (rw *wxRecorder) secrets() []string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return slices.Clone(rw.seen)
}

// wxScriptedRand is the simulator's randomness: crypto/rand, except that
// queued bytes come first. Queuing the same session key and iv before two
// codes makes WeChat give both codes one session key, so that one code's
// encryptedData decrypts under the other's.
type wxScriptedRand struct {
	mu     sync.Mutex
	queued []byte
}

func (r *wxScriptedRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queued) > 0 {
		n := copy(p, r.queued)
		r.queued = r.queued[n:]
		return n, nil
	}
	return rand.Read(p)
}

func (r *wxScriptedRand) queue(b ...[]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range b {
		r.queued = append(r.queued, x...)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wxIssue(t *testing.T, sim *simulator.Simulator, req simulator.CodeRequest) simulator.CodeResponse {
	t.Helper()
	c, err := sim.IssueCode(req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flipHexDigit changes the first hex digit of s to another hex digit.
func flipHexDigit(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func TestEndToEndWeChatLogin(t *testing.T) {
	t.Setenv("FRONTDOOR_SECRET_KEY", wxSealKey)
	rnd := &wxScriptedRand{}
	sim := simulator.New(simulator.Options{
		Apps: map[string]string{wxAppID: wxSecret, wxOtherAppID: "other-app-secret"},
		Rand: rnd,
	})
	env := startWxEnv(t, wxEnvOptions{wechat: sim})
	// wantUsers maps the openid of every user a login must have created to
	// its id; failed logins add nothing.
	wantUsers := map[string]string{}
	const aliceAvatar = "https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132"
	alice := simulator.CodeRequest{OpenID: "o-e2e-alice", UnionID: "u-e2e-alice", NickName: "Alice", AvatarURL: aliceAvatar, Gender: 2}
	var aliceTok, aliceID string
	var firstCode string

	t.Run("first login creates the user, the next finds it", func(t *testing.T) {
		c := wxIssue(t, sim, alice)
		firstCode = c.Code
		resp, body := env.login(t, wxFull(c))
		tr := env.tokenOf(t, resp, body)
		if !tr.NewUser || tr.User.Nickname != "Alice" || tr.User.AvatarURL != aliceAvatar || !slices.Equal(tr.User.Roles, []string{"subscriber"}) {
			t.Fatalf("first login: %s", body)
		}
		if _, err := strconv.ParseInt(tr.User.ID, 10, 64); err != nil {
			t.Errorf("user id %q is not decimal", tr.User.ID)
		}
		aliceTok, aliceID = tr.AccessToken, tr.User.ID
		wantUsers[alice.OpenID] = aliceID

		claims := wxClaims(t, tr.AccessToken)
		exp, _ := claims["exp"].(float64)
		iat, _ := claims["iat"].(float64)
		if claims["sub"] != aliceID || claims["iss"] != "http://frontdoor.test" || claims["aud"] != "miniprogram" ||
			fmt.Sprint(claims["roles"]) != "[subscriber]" || fmt.Sprint(claims["amr"]) != "[wechat]" || exp-iat != 7200 || claims["jti"] == "" {
			t.Errorf("claims %v", claims)
		}
		if !contains(jwksKids(t, env.base), kidOf(t, tr.AccessToken)) {
			t.Error("the token's kid is not in the JWKS")
		}

		// A fresh code of the same openid, without open data.
		resp, body = env.login(t, wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: alice.OpenID}).Code})
		again := env.tokenOf(t, resp, body)
		if again.NewUser || again.User.ID != aliceID || again.User.Nickname != "Alice" {
			t.Errorf("returning login: %s", body)
		}
	})
	if aliceTok == "" {
		t.Fatal("no first login; the rest depends on it")
	}

	t.Run("used and unknown codes", func(t *testing.T) {
		before := env.loginCount(t, "invalid_code")
		resp, body := env.login(t, wxLogin{Code: firstCode})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")
		resp, body = env.login(t, wxLogin{Code: "0a1b2c3d4e5f-never-issued"})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")
		if got := env.loginCount(t, "invalid_code") - before; got != 2 {
			t.Errorf("invalid_code counted %d times, want 2", got)
		}
	})

	t.Run("WeChat errcodes", func(t *testing.T) {
		cases := []struct {
			name       string
			errcode, n int
			calls      int // jscode2session requests for the login
			status     int
			code       string
			result     string
		}{
			{"40029 invalid code", 40029, 1, 1, 401, "invalid_grant", "invalid_code"},
			{"40163 code used", 40163, 1, 1, 401, "invalid_grant", "invalid_code"},
			{"40226 high risk", 40226, 1, 1, 403, "access_denied", "high_risk"},
			{"45011 frequency limit", 45011, 1, 1, 503, "rate_limited", "wechat_rate_limited"},
			{"-1 three times", -1, 3, 3, 502, "wechat_unavailable", "wechat_unavailable"},
			{"-1 once, then success", -1, 1, 2, 200, "", "ok"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				defer sim.FailNext(0, 0)
				openid := fmt.Sprintf("o-e2e-errcode-%d", i)
				c := wxIssue(t, sim, simulator.CodeRequest{OpenID: openid})
				sim.FailNext(tc.errcode, tc.n)
				calls, counted := sim.Calls(), env.loginCount(t, tc.result)
				resp, body := env.login(t, wxFull(c))
				if tc.status == http.StatusOK {
					tr := env.tokenOf(t, resp, body)
					if !tr.NewUser {
						t.Errorf("login after a retry: %s", body)
					}
					wantUsers[openid] = tr.User.ID
				} else {
					wantError(t, resp, body, tc.status, tc.code)
				}
				if got := sim.Calls() - calls; got != tc.calls {
					t.Errorf("%d calls to WeChat, want %d", got, tc.calls)
				}
				if got := env.loginCount(t, tc.result) - counted; got != 1 {
					t.Errorf("result %q counted %d times", tc.result, got)
				}
				if tc.errcode == 45011 {
					if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n <= 0 {
						t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
					}
				}
			})
		}
		t.Run("high-risk user", func(t *testing.T) {
			c := wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-e2e-risky", HighRisk: true})
			resp, body := env.login(t, wxFull(c))
			wantError(t, resp, body, http.StatusForbidden, "access_denied")
		})
	})

	t.Run("tampered open data creates nobody", func(t *testing.T) {
		const openid = "o-e2e-trudy"
		c := wxIssue(t, sim, simulator.CodeRequest{OpenID: openid, NickName: "Trudy"})
		bad := wxFull(c)
		bad.Signature = flipHexDigit(c.Signature)
		before := env.loginCount(t, "bad_signature")
		resp, body := env.login(t, bad)
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")
		if env.loginCount(t, "bad_signature") != before+1 {
			t.Error("the refusal was not for the signature")
		}

		// A changed iv turns the leading '{' of the plaintext into 'z'.
		c = wxIssue(t, sim, simulator.CodeRequest{OpenID: openid, NickName: "Trudy"})
		iv, err := base64.StdEncoding.DecodeString(c.IV)
		if err != nil {
			t.Fatal(err)
		}
		iv[0] ^= 1
		bad = wxLogin{Code: c.Code, EncryptedData: c.EncryptedData, IV: base64.StdEncoding.EncodeToString(iv)}
		resp, body = env.login(t, bad)
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")

		// Neither attempt created the user.
		resp, body = env.login(t, wxFull(wxIssue(t, sim, simulator.CodeRequest{OpenID: openid, NickName: "Trudy"})))
		tr := env.tokenOf(t, resp, body)
		if !tr.NewUser || tr.User.Nickname != "Trudy" {
			t.Errorf("first good login after tampered ones: %s", body)
		}
		wantUsers[openid] = tr.User.ID
	})

	t.Run("foreign watermark creates nobody", func(t *testing.T) {
		const openid = "o-e2e-wanda"
		// Both codes get one session key and iv: the other app's
		// encryptedData decrypts fine under our code's key, and only its
		// watermark gives it away.
		keyIV := randomBytes(t, 32)
		rnd.queue(randomBytes(t, 24), keyIV)
		ours := wxIssue(t, sim, simulator.CodeRequest{AppID: wxAppID, OpenID: openid, NickName: "Wanda"})
		rnd.queue(randomBytes(t, 24), keyIV)
		foreign := wxIssue(t, sim, simulator.CodeRequest{AppID: wxOtherAppID, OpenID: openid, NickName: "Wanda"})
		sessionKey := base64.StdEncoding.EncodeToString(keyIV[:16])
		if err := wechat.VerifySignature(ours.RawData, sessionKey, ours.Signature); err != nil {
			t.Fatalf("premise: the queued bytes did not become our code's session key: %v", err)
		}
		if _, err := wechat.DecryptUserInfo(sessionKey, foreign.EncryptedData, foreign.IV, wxOtherAppID); err != nil {
			t.Fatalf("premise: the other app's data does not decrypt under the shared key: %v", err)
		}
		before := env.loginCount(t, "bad_encrypted_data")
		resp, body := env.login(t, wxLogin{Code: ours.Code, EncryptedData: foreign.EncryptedData, IV: foreign.IV})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")
		if env.loginCount(t, "bad_encrypted_data") != before+1 {
			t.Error("the refusal was not for the encrypted data")
		}
		// The same open data with its own app's code is not ours either:
		// WeChat does not know the other app's code for our appid.
		resp, body = env.login(t, wxLogin{Code: foreign.Code, EncryptedData: foreign.EncryptedData, IV: foreign.IV})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")
	})

	t.Run("concurrent first logins", func(t *testing.T) {
		const openid, n = "o-e2e-crowd", 8
		bodies := make([][]byte, n)
		for i := range bodies {
			b, err := json.Marshal(wxFull(wxIssue(t, sim, simulator.CodeRequest{OpenID: openid})))
			if err != nil {
				t.Fatal(err)
			}
			bodies[i] = b
		}
		type result struct {
			resp *http.Response
			body []byte
			err  error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				resp, body, err := env.send(http.MethodPost, "/auth/wx/login", "", "application/json", bodies[i], nil)
				results[i] = result{resp, body, err}
			})
		}
		close(start)
		wg.Wait()
		created, ids := 0, map[string]bool{}
		for _, r := range results {
			if r.err != nil {
				t.Fatal(r.err)
			}
			tr := env.tokenOf(t, r.resp, r.body)
			if tr.NewUser {
				created++
			}
			ids[tr.User.ID] = true
			wantUsers[openid] = tr.User.ID
		}
		if created != 1 || len(ids) != 1 {
			t.Errorf("%d of %d answers said new_user, %d distinct ids; want 1 and 1", created, n, len(ids))
		}
	})

	t.Run("the token passes the proxy with the user's identity", func(t *testing.T) {
		resp, body, err := env.send(http.MethodGet, "/api/profile", aliceTok, "", nil, map[string]string{"X-User-Id": "1", "X-User-Roles": "administrator"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != "legacy saw GET /api/profile" {
			t.Fatalf("proxied: %d %s", resp.StatusCode, body)
		}
		got := env.up.last(t)
		if got.Header.Get("X-User-Id") != aliceID || got.Header.Get("X-User-Roles") != "subscriber" {
			t.Errorf("upstream saw X-User-Id %q X-User-Roles %q, want %q subscriber", got.Header.Get("X-User-Id"), got.Header.Get("X-User-Roles"), aliceID)
		}
		if got.Header.Get("Authorization") != "" {
			t.Error("the token was forwarded")
		}
		// Anonymous on an optional route: no identity at all.
		resp, _ = env.request(t, http.MethodGet, "/api/articles/1", "", "", nil)
		if got := env.up.last(t); resp.StatusCode != 200 || got.Header.Get("X-User-Id") != "" {
			t.Errorf("anonymous: %d, X-User-Id %q", resp.StatusCode, got.Header.Get("X-User-Id"))
		}
	})

	t.Run("me", func(t *testing.T) {
		type me struct {
			ID           string   `json:"id"`
			Nickname     string   `json:"nickname"`
			AvatarURL    string   `json:"avatar_url"`
			Roles        []string `json:"roles"`
			Capabilities []string `json:"capabilities"`
		}
		get := func(t *testing.T) me {
			t.Helper()
			resp, body := env.request(t, http.MethodGet, "/auth/me", aliceTok, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /auth/me: %d %s", resp.StatusCode, body)
			}
			var m me
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		m := get(t)
		if m.ID != aliceID || m.Nickname != "Alice" || m.AvatarURL != aliceAvatar ||
			!slices.Equal(m.Roles, []string{"subscriber"}) || !slices.Equal(m.Capabilities, []string{"read"}) {
			t.Errorf("GET /auth/me = %+v", m)
		}
		resp, body := env.request(t, http.MethodGet, "/auth/me", "", "", nil)
		wantError(t, resp, body, http.StatusUnauthorized, "missing_token")

		patch := func(t *testing.T, contentType, body string) (*http.Response, []byte) {
			t.Helper()
			return env.request(t, http.MethodPatch, "/auth/me", aliceTok, contentType, []byte(body))
		}
		resp, body = patch(t, "application/json", `{"nickname":"Alice Liddell"}`)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"nickname":"Alice Liddell"`) || !strings.Contains(string(body), aliceAvatar) {
			t.Errorf("PATCH nickname: %d %s", resp.StatusCode, body)
		}
		const newAvatar = "https://cdn.example.com/avatars/alice.png"
		resp, body = patch(t, "application/json", `{"avatar_url":"`+newAvatar+`"}`)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), newAvatar) {
			t.Errorf("PATCH avatar_url: %d %s", resp.StatusCode, body)
		}
		if m := get(t); m.Nickname != "Alice Liddell" || m.AvatarURL != newAvatar {
			t.Errorf("after PATCH: %+v", m)
		}
		for _, c := range []struct{ name, contentType, body string }{
			{"empty nickname", "application/json", `{"nickname":""}`},
			{"nickname of 65 characters", "application/json", `{"nickname":"` + strings.Repeat("x", 65) + `"}`},
			{"avatar not http", "application/json", `{"avatar_url":"ftp://cdn.example.com/a.png"}`},
			{"avatar of 1025 bytes", "application/json", `{"avatar_url":"https://cdn.example.com/` + strings.Repeat("a", 1025-len("https://cdn.example.com/")) + `"}`},
			{"unknown field", "application/json", `{"nickname":"Mallory","roles":["administrator"]}`},
			{"wrong content type", "text/plain", `{"nickname":"Mallory"}`},
		} {
			t.Run(c.name, func(t *testing.T) {
				resp, body := patch(t, c.contentType, c.body)
				wantError(t, resp, body, http.StatusBadRequest, "invalid_request")
			})
		}
		if m := get(t); m.Nickname != "Alice Liddell" || m.AvatarURL != newAvatar || !slices.Equal(m.Roles, []string{"subscriber"}) {
			t.Errorf("refused PATCHes changed the profile: %+v", m)
		}
	})

	t.Run("malformed requests reach neither WeChat nor the store", func(t *testing.T) {
		const openid = "o-e2e-shape"
		c := wxIssue(t, sim, simulator.CodeRequest{OpenID: openid})
		valid := `{"code":"` + c.Code + `"}`
		oversized := `{"code":"` + c.Code + `","cloudID":"` + strings.Repeat("x", 64<<10) + `"}`
		calls, counted := sim.Calls(), env.loginCount(t, "invalid_request")
		cases := []struct{ name, contentType, body string }{
			{"text/plain", "text/plain", valid},
			{"form", "application/x-www-form-urlencoded", "code=" + c.Code},
			{"no content type", "", valid},
			{"over 64 KiB", "application/json", oversized},
			{"malformed JSON", "application/json", `{"code":"` + c.Code},
			{"missing code", "application/json", `{"encryptedData":"` + c.EncryptedData + `","iv":"` + c.IV + `"}`},
			{"empty body", "application/json", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := env.request(t, http.MethodPost, "/auth/wx/login", "", tc.contentType, []byte(tc.body))
				wantError(t, resp, body, http.StatusBadRequest, "invalid_request")
			})
		}
		if got := sim.Calls() - calls; got != 0 {
			t.Errorf("malformed requests reached WeChat %d times", got)
		}
		if got := env.loginCount(t, "invalid_request") - counted; got != len(cases) {
			t.Errorf("invalid_request counted %d times, want %d", got, len(cases))
		}
		// The code was never spent and nobody was created.
		resp, body := env.request(t, http.MethodPost, "/auth/wx/login", "", "application/json", []byte(valid))
		tr := env.tokenOf(t, resp, body)
		if !tr.NewUser {
			t.Errorf("login with the untouched code: %s", body)
		}
		wantUsers[openid] = tr.User.ID
	})

	t.Run("never an openid, unionid, session key or the AppSecret", func(t *testing.T) {
		env.checkNoSecrets(t, wxSecret, alice.UnionID)
		if !strings.Contains(env.fd.settledLogs(t), "wechat code2Session failed") {
			t.Error("the log lacks the WeChat failures it should have recorded")
		}
	})

	t.Run("the store holds exactly the users of the successful logins", func(t *testing.T) {
		sealer, err := login.NewSealer(wxSealKey)
		if err != nil {
			t.Fatal(err)
		}
		issued := env.wechat.secrets()
		got := map[string]string{}
		for _, u := range env.users(t) {
			got[u.OpenID] = strconv.FormatInt(u.ID, 10)
			if u.AppID != wxAppID {
				t.Errorf("user %d has appid %q", u.ID, u.AppID)
			}
			// FRONTDOOR_SECRET_KEY was set: the session key is sealed, and
			// it is the one WeChat issued.
			for _, s := range issued {
				if bytes.Contains(u.SessionKey, []byte(s)) {
					t.Errorf("user %d: stored session key holds %q in the clear", u.ID, s)
				}
			}
			key, err := sealer.Open(u.SessionKey)
			if err != nil || len(u.SessionKey) == 0 || u.SessionKey[0] != 0x01 || !slices.Contains(issued, key) {
				t.Errorf("user %d: stored session key %x is not a sealed WeChat session key (%v)", u.ID, u.SessionKey, err)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(wantUsers) {
			t.Errorf("stored users (openid: id)\n%v\nwant\n%v", got, wantUsers)
		}
		if u, ok := findUser(env.users(t), alice.OpenID); !ok || u.UnionID != alice.UnionID || u.Gender != 2 {
			t.Errorf("alice as stored: %+v", u)
		}
	})
}

func findUser(us []store.User, openid string) (store.User, bool) {
	for _, u := range us {
		if u.OpenID == openid {
			return u, true
		}
	}
	return store.User{}, false
}

// wxVectors is WeChat's published open-data example (login/wechat/testdata).
type wxVectors struct {
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

// officialWeChat answers jscode2session for the users of WeChat's official
// examples: each code in answers maps to its openid and session_key.
func officialWeChat(appID string, answers map[string][2]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/plain")
		a, known := answers[q.Get("js_code")]
		switch {
		case r.URL.Path != "/sns/jscode2session" || q.Get("appid") != appID || q.Get("secret") != wxSecret || q.Get("grant_type") != "authorization_code":
			fmt.Fprint(w, `{"errcode":40013,"errmsg":"invalid appid"}`)
		case !known:
			fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
		default:
			fmt.Fprintf(w, `{"session_key":%q,"openid":%q}`, a[1], a[0])
		}
	})
}

func TestEndToEndWeChatOfficialVector(t *testing.T) {
	data, err := os.ReadFile("../../login/wechat/testdata/wechat-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v wxVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var plain struct {
		OpenID    string `json:"openId"`
		UnionID   string `json:"unionId"`
		NickName  string `json:"nickName"`
		AvatarURL string `json:"avatarUrl"`
	}
	if err := json.Unmarshal([]byte(v.UserInfo.Plaintext), &plain); err != nil {
		t.Fatal(err)
	}
	if plain.OpenID != "oGZUI0egBJY1zhBYw2KhdUfwVJJE" || v.UserInfo.SessionKey != "tiihtNczf5v6AKRyjwEUhQ==" || v.UserInfo.AppID != "wx4f4bc4dec97d474b" {
		t.Fatalf("the vector file changed: %+v", plain)
	}
	const signedOpenID = "o-e2e-signature-demo"
	env := startWxEnv(t, wxEnvOptions{
		appID: v.UserInfo.AppID,
		wechat: officialWeChat(v.UserInfo.AppID, map[string][2]string{
			"demo-userinfo":  {plain.OpenID, v.UserInfo.SessionKey},
			"demo-signature": {signedOpenID, v.Signature.SessionKey},
		}),
	})

	resp, body := env.login(t, wxLogin{Code: "demo-userinfo", EncryptedData: v.UserInfo.EncryptedData, IV: v.UserInfo.IV})
	tr := env.tokenOf(t, resp, body)
	if !tr.NewUser || tr.User.Nickname != "Band" || tr.User.AvatarURL != plain.AvatarURL || !slices.Equal(tr.User.Roles, []string{"subscriber"}) {
		t.Errorf("official encryptedData: %s", body)
	}
	resp, body = env.request(t, http.MethodGet, "/auth/me", tr.AccessToken, "", nil)
	var me struct {
		ID       string `json:"id"`
		Nickname string `json:"nickname"`
	}
	if err := json.Unmarshal(body, &me); err != nil || resp.StatusCode != 200 || me.Nickname != "Band" || me.ID != tr.User.ID {
		t.Errorf("GET /auth/me: %d %s", resp.StatusCode, body)
	}

	// The official rawData example: a signed "Band", and the same signature
	// over a changed rawData.
	resp, body = env.login(t, wxLogin{Code: "demo-signature", RawData: v.Signature.RawData, Signature: v.Signature.Signature})
	signed := env.tokenOf(t, resp, body)
	if !signed.NewUser || signed.User.Nickname != "Band" || signed.User.ID == tr.User.ID {
		t.Errorf("official rawData: %s", body)
	}
	forged := strings.Replace(v.Signature.RawData, `"Band"`, `"Bond"`, 1)
	if forged == v.Signature.RawData {
		t.Fatal("the rawData example changed")
	}
	resp, body = env.login(t, wxLogin{Code: "demo-signature", RawData: forged, Signature: v.Signature.Signature})
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_grant")

	// The openid came from code2Session, the unionid from the decrypted data.
	us := env.users(t)
	if u, ok := findUser(us, plain.OpenID); len(us) != 2 || !ok || u.UnionID != plain.UnionID || u.Nickname != "Band" {
		t.Errorf("stored users: %+v", us)
	}
	if u, ok := findUser(us, signedOpenID); !ok || u.Nickname != "Band" {
		t.Errorf("signed user as stored: %+v", u)
	}
	env.checkNoSecrets(t, wxSecret, plain.UnionID)
}

func TestEndToEndWeChatTimeout(t *testing.T) {
	sim := simulator.New(simulator.Options{Apps: map[string]string{wxAppID: wxSecret}})
	env := startWxEnv(t, wxEnvOptions{wechat: sim, timeout: "300ms"})
	const openid = "o-e2e-patient"
	// Far longer than the timeout: a login that waited for it would succeed.
	sim.SetLatency(3 * time.Second)
	resp, body := env.login(t, wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: openid}).Code})
	if resp.StatusCode != 502 && resp.StatusCode != 503 && resp.StatusCode != 504 {
		t.Errorf("status %d, want 502, 503 or 504", resp.StatusCode)
	}
	wantError(t, resp, body, resp.StatusCode, "wechat_unavailable")
	if us := env.users(t); len(us) != 0 {
		t.Errorf("a timed-out login created users: %+v", us)
	}

	sim.SetLatency(0)
	resp, body = env.login(t, wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: openid}).Code})
	if tr := env.tokenOf(t, resp, body); !tr.NewUser {
		t.Errorf("the timed-out login created the user: %s", body)
	}
}

func TestEndToEndWeChatRateLimit(t *testing.T) {
	sim := simulator.New(simulator.Options{Apps: map[string]string{wxAppID: wxSecret}})
	env := startWxEnv(t, wxEnvOptions{wechat: sim, perIP: 3})
	for i := range 3 {
		resp, body := env.login(t, wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-e2e-eager"}).Code})
		if tr := env.tokenOf(t, resp, body); tr.NewUser != (i == 0) {
			t.Errorf("login %d: %s", i+1, body)
		}
	}
	c := wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-e2e-eager"})
	payload, _ := json.Marshal(wxLogin{Code: c.Code})
	for _, hdr := range []map[string]string{
		nil,
		// frontdoor trusts no proxy here: a forged client address changes nothing.
		{"X-Forwarded-For": "203.0.113.7"},
	} {
		resp, body, err := env.send(http.MethodPost, "/auth/wx/login", "", "application/json", payload, hdr)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, resp, body, http.StatusTooManyRequests, "rate_limited")
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
		}
	}
	if sim.Calls() != 3 {
		t.Errorf("WeChat called %d times, want 3: a refused login must not spend its code", sim.Calls())
	}
	if got := env.loginCount(t, "rate_limited"); got != 2 {
		t.Errorf("rate_limited counted %d times, want 2", got)
	}
}
