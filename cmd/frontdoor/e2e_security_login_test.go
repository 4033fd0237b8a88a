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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login/store"
)

// Login attacks that the WeChat and users end-to-end tests leave out. Not
// repeated here: a used or unknown code, tampered signature, iv and
// watermark, a body over 64 KiB, wrong content types and malformed JSON
// (TestEndToEndWeChatLogin); per-IP rate limiting and forged
// X-Forwarded-For (TestEndToEndWeChatRateLimit); an injection-string
// username that exists (TestEndToEndUsersWhileServing).

const secLoginSection = `login:
  wechat:
    appid: "%s"
    secret: "%s"
    api_base: "%s"
    timeout: 3s
  password:
    enabled: true
    argon2_memory_kib: 1024
    argon2_time: 1
    argon2_threads: 1
  rate_limit:
    per_ip_per_minute: 100000
    per_username_per_minute: 100000
    lockout_after: 3
    lockout_for: 15m
`

// wxQueries records the query of every code2Session call before the
// simulator answers it.
type wxQueries struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (q *wxQueries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q.mu.Lock()
	q.seen = append(q.seen, r.URL.RawQuery)
	q.mu.Unlock()
	q.next.ServeHTTP(w, r)
}

func (q *wxQueries) since(n int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.seen[n:])
}

func (q *wxQueries) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.seen)
}

// postJSON posts body to base+path. It does not touch t, so that
// goroutines may call it.
func postJSON(base, path, body string) (*http.Response, string, error) {
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func storedUsers(t *testing.T, db string) []store.User {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), db)
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

func TestSecurityLogin(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Options{Apps: map[string]string{wxAppID: wxSecret}})
	wx := &wxQueries{next: sim}
	wxServer := httptest.NewServer(wx)
	t.Cleanup(wxServer.Close)
	env := startSecEnv(t, secOptions{
		login: fmt.Sprintf(secLoginSection, wxAppID, wxSecret, wxServer.URL),
		before: func(cfg string) {
			mustCLI(t, "alice's password\n", "users", "add", "-config", cfg, "-username", "alice", "-roles", "subscriber")
			mustCLI(t, "bob's password\n", "users", "add", "-config", cfg, "-username", "bob")
			mustCLI(t, "dora's password\n", "users", "add", "-config", cfg, "-username", "dora")
			mustCLI(t, "", "users", "disable", "-config", cfg, "dora")
		},
	})
	usersBefore := len(storedUsers(t, env.db))

	post := func(t *testing.T, path, body string) (*http.Response, string) {
		t.Helper()
		resp, got, err := postJSON(env.base, path, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, got
	}
	pwLogin := func(t *testing.T, username, password string) (*http.Response, string) {
		t.Helper()
		return post(t, "/auth/login", jsonBody(t, map[string]string{"username": username, "password": password}))
	}

	// A sequential replay is TestEndToEndWeChatLogin's "used and unknown
	// codes". Concurrent uses of one code are, by design of the WeChat
	// client, one exchange whose answer every request waiting on it shares
	// (so a mini-program retrying a slow login does not spend its code
	// twice); a use arriving after that exchange asks WeChat again and is
	// refused. So: one user, created once, every success is that user, and
	// every later call to WeChat ended in a refusal.
	t.Run("a code replayed concurrently is exchanged once", func(t *testing.T) {
		c := wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-sec-replay"})
		body := jsonBody(t, wxLogin{Code: c.Code})
		calls := sim.Calls()
		const n = 6
		type result struct {
			status int
			body   string
			err    error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				resp, got, err := postJSON(env.base, "/auth/wx/login", body)
				if err != nil {
					results[i] = result{err: err}
					return
				}
				results[i] = result{resp.StatusCode, got, nil}
			})
		}
		close(start)
		wg.Wait()
		ids, created, refused := map[string]bool{}, 0, 0
		for _, r := range results {
			switch {
			case r.err != nil:
				t.Fatal(r.err)
			case r.status == http.StatusOK:
				var tr wxTokenResponse
				if err := json.Unmarshal([]byte(r.body), &tr); err != nil || tr.AccessToken == "" {
					t.Fatalf("token response %s: %v", r.body, err)
				}
				ids[tr.User.ID] = true
				if tr.NewUser {
					created++
				}
			case r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"error":"invalid_grant"`):
				t.Errorf("a concurrent use was answered %d %s, want 200 or 401 invalid_grant", r.status, r.body)
			default:
				refused++
			}
		}
		if got := sim.Calls() - calls; got < 1 || got-1 > refused {
			t.Errorf("WeChat was asked %d times and %d uses were refused: a second exchange succeeded", got, refused)
		}
		if len(ids) != 1 || created != 1 {
			t.Errorf("the successes name users %v, %d of them new; want one user, new once", ids, created)
		}
		resp, got := post(t, "/auth/wx/login", body)
		if problem := apiError(resp, got, http.StatusUnauthorized, "invalid_grant"); problem != "" {
			t.Errorf("the code once the exchange is over: %s", problem)
		}
		users := 0
		for _, u := range storedUsers(t, env.db) {
			if u.OpenID == "o-sec-replay" {
				users++
			}
		}
		if users != 1 {
			t.Errorf("%d users for the replayed code's openid, want 1", users)
		}
	})

	t.Run("hostile codes never reach WeChat", func(t *testing.T) {
		calls := sim.Calls()
		for _, code := range []string{
			strings.Repeat("c", 129),
			strings.Repeat("c", 10<<10),
			"' OR 1=1 --",
			"abc\x00def",
			"abc\r\nX-Injected: 1",
			"abc\tdef",
			"码码码",
		} {
			resp, body := post(t, "/auth/wx/login", jsonBody(t, wxLogin{Code: code}))
			if problem := apiError(resp, body, http.StatusBadRequest, "invalid_request"); problem != "" {
				t.Errorf("code %.40q: %s", code, problem)
			}
		}
		if got := sim.Calls() - calls; got != 0 {
			t.Errorf("WeChat was called %d times", got)
		}
	})

	t.Run("a code is one opaque parameter to WeChat", func(t *testing.T) {
		for _, code := range []string{
			"abc&appid=" + wxOtherAppID + "&secret=guess",
			"abc%26secret%3Dguess",
			"abc#grant_type=x",
			"x'OR'1'='1",
			"../../sns/userinfo",
		} {
			n := wx.count()
			resp, body := post(t, "/auth/wx/login", jsonBody(t, wxLogin{Code: code}))
			if problem := apiError(resp, body, http.StatusUnauthorized, "invalid_grant"); problem != "" {
				t.Errorf("code %q: %s", code, problem)
			}
			for _, raw := range wx.since(n) {
				q, err := url.ParseQuery(raw)
				if err != nil {
					t.Fatalf("code %q: WeChat received an unparsable query %q", code, raw)
				}
				if !slices.Equal(q["js_code"], []string{code}) || !slices.Equal(q["appid"], []string{wxAppID}) ||
					!slices.Equal(q["secret"], []string{wxSecret}) || !slices.Equal(q["grant_type"], []string{"authorization_code"}) {
					t.Errorf("code %q: WeChat received %q", code, raw)
				}
			}
		}
	})

	t.Run("open data over the body limit never reaches WeChat", func(t *testing.T) {
		calls := sim.Calls()
		code := wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-sec-huge"}).Code
		huge := base64.StdEncoding.EncodeToString(make([]byte, 54<<10))
		for _, l := range []wxLogin{
			{Code: code, EncryptedData: huge, IV: base64.StdEncoding.EncodeToString(make([]byte, 16))},
			{Code: code, RawData: `{"nickName":"` + huge + `"}`, Signature: strings.Repeat("0", 40)},
		} {
			resp, body := post(t, "/auth/wx/login", jsonBody(t, l))
			if problem := apiError(resp, body, http.StatusBadRequest, "invalid_request"); problem != "" {
				t.Error(problem)
			}
		}
		if got := sim.Calls() - calls; got != 0 {
			t.Errorf("WeChat was called %d times", got)
		}
	})

	t.Run("oversized open data creates nobody", func(t *testing.T) {
		// Within the 64 KiB body limit, so it is WeChat's session key that
		// refuses it, after the code is spent.
		garbage := make([]byte, 46<<10)
		rand.Read(garbage)
		iv := base64.StdEncoding.EncodeToString(make([]byte, 16))
		for _, l := range []wxLogin{
			{EncryptedData: base64.StdEncoding.EncodeToString(garbage), IV: iv},
			{RawData: `{"nickName":"` + strings.Repeat("n", 60<<10) + `"}`, Signature: strings.Repeat("0", 40)},
		} {
			l.Code = wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-sec-oversized"}).Code
			resp, body := post(t, "/auth/wx/login", jsonBody(t, l))
			if problem := apiError(resp, body, http.StatusUnauthorized, "invalid_grant"); problem != "" {
				t.Error(problem)
			}
		}
		for _, u := range storedUsers(t, env.db) {
			if u.OpenID == "o-sec-oversized" {
				t.Errorf("a refused login created user %d", u.ID)
			}
		}
	})

	t.Run("oversized credentials", func(t *testing.T) {
		for _, c := range []struct{ name, username, password string }{
			{"username of 129 bytes", strings.Repeat("u", 129), "alice's password"},
			{"username of 60 KiB", strings.Repeat("u", 60<<10), "alice's password"},
			{"username over the body limit", strings.Repeat("u", 70<<10), "alice's password"},
			{"password of 1025 bytes", "alice", strings.Repeat("p", 1025)},
			{"password over the body limit", "alice", strings.Repeat("p", 70<<10)},
		} {
			resp, body := pwLogin(t, c.username, c.password)
			if problem := apiError(resp, body, http.StatusBadRequest, "invalid_request"); problem != "" {
				t.Errorf("%s: %s", c.name, problem)
			}
		}
	})

	// The reference refusal every unknown-user answer must equal.
	resp, unknownBody := pwLogin(t, "nobody-at-all", "alice's password")
	if problem := apiError(resp, unknownBody, http.StatusUnauthorized, "invalid_grant"); problem != "" {
		t.Fatalf("unknown user: %s", problem)
	}
	unknownHeaders := comparableHeaders(resp.Header)

	t.Run("injection strings as usernames", func(t *testing.T) {
		// Each is tried with alice's real password: a store that matched
		// them loosely (SQL, LIKE wildcards, case folding, trimming, C
		// strings) would log in as alice.
		for _, username := range []string{
			"alice' --", "alice'--", "' OR 1=1 --", "' OR '1'='1", `alice" OR ""="`, "alice'; DROP TABLE users; --",
			"alic_", "al%", "%", "_____", "ALICE", "Alice", " alice", "alice ", "аlice",
			"alice\x00", "alice\x00garbage", "alice\r\nX-Injected: yes", "alice\n{\"level\":\"error\",\"msg\":\"forged\"}",
		} {
			resp, body := pwLogin(t, username, "alice's password")
			if body != unknownBody || resp.StatusCode != http.StatusUnauthorized || comparableHeaders(resp.Header) != unknownHeaders {
				t.Errorf("username %q: %d %s, want the unknown-user answer", username, resp.StatusCode, body)
			}
		}
		if resp, body := pwLogin(t, "alice", "alice's password"); resp.StatusCode != http.StatusOK {
			t.Errorf("alice herself: %d %s", resp.StatusCode, body)
		}
		if got := len(storedUsers(t, env.db)); got < usersBefore {
			t.Errorf("users went from %d to %d", usersBefore, got)
		}
		for _, line := range strings.Split(strings.TrimSpace(env.fd.settledLogs(t)), "\n") {
			if !json.Valid([]byte(line)) {
				t.Errorf("a log line is not JSON (log injection): %q", line)
			}
		}
	})

	t.Run("unknown user, wrong password and disabled user answer alike", func(t *testing.T) {
		for _, c := range []struct{ name, username, password string }{
			{"unknown user", "nobody-else", "some password"},
			{"wrong password", "alice", "not alice's password"},
			{"disabled user, wrong password", "dora", "not dora's password"},
		} {
			resp, body := pwLogin(t, c.username, c.password)
			if body != unknownBody || resp.StatusCode != http.StatusUnauthorized || comparableHeaders(resp.Header) != unknownHeaders {
				t.Errorf("%s: %d %v %s\nwant %s %s", c.name, resp.StatusCode, resp.Header, body, unknownHeaders, unknownBody)
			}
		}
		if resp, body := pwLogin(t, "alice", "alice's password"); resp.StatusCode != http.StatusOK {
			t.Errorf("alice after one failure: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("lockout does not tell known from unknown usernames", func(t *testing.T) {
		type answer struct {
			status     int
			body       string
			retryAfter int
		}
		lock := func(username, right string) answer {
			for range 3 {
				resp, body := pwLogin(t, username, "a wrong password")
				if resp.StatusCode != http.StatusUnauthorized || body != unknownBody {
					t.Fatalf("%s, failure before the lock: %d %s", username, resp.StatusCode, body)
				}
			}
			resp, body := pwLogin(t, username, right)
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return answer{resp.StatusCode, body, ra}
		}
		known := lock("bob", "bob's password")
		unknown := lock("ghost", "ghost's password")
		if known.status != http.StatusTooManyRequests || !strings.Contains(known.body, `"error":"rate_limited"`) {
			t.Errorf("locked known user with the right password: %d %s", known.status, known.body)
		}
		if known.status != unknown.status || known.body != unknown.body || known.retryAfter-unknown.retryAfter > 1 || unknown.retryAfter-known.retryAfter > 1 {
			t.Errorf("locked out: known %+v, unknown %+v", known, unknown)
		}
	})
}

// comparableHeaders renders h without the headers that differ between any
// two responses (date, request id, length).
func comparableHeaders(h http.Header) string {
	var keys []string
	for k := range h {
		switch k {
		case "Date", "X-Request-Id", "Content-Length":
			continue
		}
		keys = append(keys, k+": "+strings.Join(h[k], ", "))
	}
	slices.Sort(keys)
	return strings.Join(keys, "\n")
}
