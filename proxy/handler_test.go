package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"frontdoor/login/token"
	"frontdoor/policy"
)

// fakeVerifier accepts the tokens it knows. The real verifier is tested in
// login/token and through the binary end to end; here the pipeline is under
// test.
type fakeVerifier map[string]*token.Claims

func (f fakeVerifier) Verify(_ context.Context, raw string) (*token.Claims, error) {
	if c, ok := f[raw]; ok {
		return c, nil
	}
	return nil, &token.VerifyError{Reason: token.ReasonSignature}
}

var testTokens = fakeVerifier{
	"reader": {Subject: "7", Roles: []string{"subscriber"}},
	"author": {Subject: "42", Roles: []string{"author"}},
	"admin":  {Subject: "1", Roles: []string{"administrator"}},
}

// seen is what the upstream received.
type seen struct {
	Method, Path, RawPath, Query, Host string
	Header                             http.Header
	Body                               string
}

type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	last seen
	hits atomic.Int64
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last = seen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Header.Clone(), string(body)}
		u.mu.Unlock()
		u.hits.Add(1)
		w.Header().Set("X-Upstream", "yes")
		fmt.Fprint(w, "upstream:"+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) seen() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

var testRoles = map[string]policy.RoleSpec{
	"subscriber":    {Capabilities: []string{"read"}},
	"contributor":   {Inherits: []string{"subscriber"}, Capabilities: []string{"edit_posts"}},
	"author":        {Inherits: []string{"contributor"}, Capabilities: []string{"publish_posts", "upload_files"}},
	"editor":        {Inherits: []string{"author"}, Capabilities: []string{"edit_others_posts"}},
	"administrator": {Inherits: []string{"editor"}, Capabilities: []string{"manage_options"}},
}

func testRoutes() []policy.RouteSpec {
	return []policy.RouteSpec{
		{Name: "public", Path: "/public/**", Upstream: "legacy", Auth: "none"},
		{Name: "articles-read", Path: "/api/articles/**", Methods: []string{"GET"}, Upstream: "legacy", Auth: "optional"},
		{Name: "articles-write", Path: "/api/articles/**", Methods: []string{"POST", "PUT", "DELETE"}, Upstream: "legacy", Capabilities: []string{"publish_posts"}},
		{Name: "admin", Path: "/api/admin/**", Upstream: "legacy", Roles: []string{"administrator"}, StripPrefix: "/api"},
		{Name: "me", Path: "/api/me", Upstream: "legacy"},
		{Name: "slow", Path: "/slow/**", Upstream: "legacy", Auth: "none", Timeout: 200 * time.Millisecond},
	}
}

type fixture struct {
	h       *Handler
	front   *httptest.Server
	reg     *prometheus.Registry
	runtime *Runtime
}

func newFixture(t *testing.T, upstreams map[string]UpstreamConfig, routes []policy.RouteSpec) *fixture {
	t.Helper()
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: routes})
	if err != nil {
		t.Fatalf("compile policy: %v", err)
	}
	transport := NewTransport()
	t.Cleanup(transport.CloseIdleConnections)
	rt, err := NewRuntime(Config{Upstreams: upstreams}, pol, transport, time.Now)
	if err != nil {
		t.Fatalf("runtime: %v", err)
	}
	reg := prometheus.NewRegistry()
	h, err := New(Options{
		Runtime:  rt,
		Verifier: testTokens,
		Local: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "local:"+r.URL.Path)
		}),
		Metrics: NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return &fixture{h: h, front: front, reg: reg, runtime: rt}
}

func legacy(urls ...string) map[string]UpstreamConfig {
	return map[string]UpstreamConfig{"legacy": {URLs: urls}}
}

// rawRequest sends a request exactly as written (Go's client would clean
// paths and headers) and returns the response.
func rawRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type errBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decodeErr(t *testing.T, resp *http.Response) errBody {
	t.Helper()
	var b errBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q", ct)
	}
	return b
}

func TestDecisions(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	tests := []struct {
		name, method, path, token string
		status                    int
		code                      string // error code, "" for a proxied success
		upstreamPath              string
		allow                     string
	}{
		{name: "public no token", method: "GET", path: "/public/a", status: 200, upstreamPath: "/public/a"},
		{name: "public ignores a bad token", method: "GET", path: "/public/a", token: "garbage", status: 200, upstreamPath: "/public/a"},
		{name: "optional anonymous", method: "GET", path: "/api/articles/1", status: 200, upstreamPath: "/api/articles/1"},
		{name: "optional with token", method: "GET", path: "/api/articles/1", token: "reader", status: 200, upstreamPath: "/api/articles/1"},
		{name: "optional with invalid token is 401", method: "GET", path: "/api/articles/1", token: "forged", status: 401, code: "invalid_token"},
		{name: "HEAD allowed by GET", method: "HEAD", path: "/api/articles/1", status: 200, upstreamPath: "/api/articles/1"},
		{name: "write needs token", method: "POST", path: "/api/articles/1", status: 401, code: "missing_token"},
		{name: "write needs capability", method: "POST", path: "/api/articles/1", token: "reader", status: 403, code: "insufficient_scope"},
		{name: "author may write", method: "POST", path: "/api/articles/1", token: "author", status: 200, upstreamPath: "/api/articles/1"},
		{name: "admin inherits capability", method: "DELETE", path: "/api/articles/1", token: "admin", status: 200, upstreamPath: "/api/articles/1"},
		{name: "method not allowed", method: "PATCH", path: "/api/articles/1", token: "admin", status: 405, code: "method_not_allowed", allow: "DELETE, GET, HEAD, POST, PUT"},
		{name: "admin role any-of", method: "GET", path: "/api/admin/users", token: "author", status: 403, code: "insufficient_scope"},
		{name: "admin strip prefix", method: "GET", path: "/api/admin/users", token: "admin", status: 200, upstreamPath: "/admin/users"},
		{name: "required route", method: "GET", path: "/api/me", token: "reader", status: 200, upstreamPath: "/api/me"},
		{name: "trailing slash decides alike and is forwarded", method: "GET", path: "/api/me/", token: "reader", status: 200, upstreamPath: "/api/me/"},
		{name: "no route", method: "GET", path: "/nowhere", status: 404, code: "not_found"},
		{name: "case sensitive", method: "GET", path: "/API/me", token: "admin", status: 404, code: "not_found"},
		{name: "dot segments refused", method: "GET", path: "/public/../api/admin/x", status: 400, code: "invalid_request"},
		{name: "encoded dot segments refused", method: "GET", path: "/public/%2e%2E/api/admin/x", status: 400, code: "invalid_request"},
		{name: "encoded slash refused", method: "GET", path: "/public/a%2Fb", status: 400, code: "invalid_request"},
		{name: "double slash refused", method: "GET", path: "/public//a", status: 400, code: "invalid_request"},
		{name: "path parameter refused", method: "GET", path: "/public/..;/api/admin", status: 400, code: "invalid_request"},
		{name: "decoded path matched and forwarded", method: "GET", path: "/%70ublic/x", status: 200, upstreamPath: "/public/x"},
		{name: "auth endpoints are local", method: "GET", path: "/auth/me", status: 200},
		{name: "lowercase method is another method", method: "get", path: "/api/me", token: "admin", status: 200, upstreamPath: "/api/me"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := up.hits.Load()
			auth := ""
			if tc.token != "" {
				auth = "Authorization: Bearer " + tc.token + "\r\n"
			}
			resp := rawRequest(t, f.front.Listener.Addr().String(),
				tc.method+" "+tc.path+" HTTP/1.1\r\nHost: front\r\n"+auth+"Connection: close\r\n\r\n")
			if resp.StatusCode != tc.status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			if tc.code != "" {
				if up.hits.Load() != hits {
					t.Error("a refused request reached the upstream")
				}
				if got := decodeErr(t, resp).Error; got != tc.code {
					t.Errorf("error %q, want %q", got, tc.code)
				}
				if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="frontdoor"`) {
					t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
				}
				if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
					t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tc.allow)
				}
				return
			}
			if tc.upstreamPath != "" {
				if got := up.seen().Path; got != tc.upstreamPath {
					t.Errorf("upstream got path %q, want %q", got, tc.upstreamPath)
				}
			}
		})
	}
}

func TestLowercaseMethodIsNotGET(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	// Methods are case-sensitive (RFC 9110): "get" is not GET, so the
	// GET-only optional route does not let it through anonymously.
	resp := rawRequest(t, f.front.Listener.Addr().String(), "get /api/articles/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d; a lowercase method must not borrow GET's anonymous access", resp.StatusCode)
	}
}

// identityVariants are the spellings of X-User-Id/X-User-Roles a client
// may use to smuggle an identity past a gateway that strips only one.
var identityVariants = []string{
	"X-User-Id", "x-user-id", "X-USER-ID", "X_User_Id", "x_user_id", "X.User.Id", "x-user_id", "X_USER.ID",
	"X-User-Roles", "x-user-roles", "X_User_Roles", "X.User.Roles", "x_user.roles",
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	paths := []struct{ name, method, path string }{
		{"none", "GET", "/public/x"},
		{"optional", "GET", "/api/articles/1"},
		{"required", "GET", "/api/me"},
	}
	for _, p := range paths {
		for _, tok := range []string{"", "reader"} {
			t.Run(p.name+"/token="+tok, func(t *testing.T) {
				var b strings.Builder
				fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: front\r\n", p.method, p.path)
				for _, v := range identityVariants {
					fmt.Fprintf(&b, "%s: 999\r\n", v)
					fmt.Fprintf(&b, "%s: administrator\r\n", v) // duplicates too
				}
				// A client naming the identity headers in Connection must not
				// make the proxy drop the ones frontdoor sets.
				b.WriteString("Connection: X-User-Id, X-User-Roles, keep-alive\r\n")
				if tok != "" {
					b.WriteString("Authorization: Bearer " + tok + "\r\n")
				}
				b.WriteString("\r\n")
				resp := rawRequest(t, f.front.Listener.Addr().String(), b.String())
				if p.name == "required" && tok == "" {
					if resp.StatusCode != 401 {
						t.Fatalf("status %d, want 401", resp.StatusCode)
					}
					return
				}
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				got := up.seen().Header
				for k, v := range got {
					if identityKey(k) == "x-user-id" || identityKey(k) == "x-user-roles" {
						if tok == "" || p.name == "none" {
							t.Errorf("upstream received %s: %v without a valid token", k, v)
							continue
						}
						want := map[string]string{"x-user-id": "7", "x-user-roles": "subscriber"}[identityKey(k)]
						if len(v) != 1 || v[0] != want || (k != "X-User-Id" && k != "X-User-Roles") {
							t.Errorf("upstream received %s: %v, want exactly frontdoor's value %q", k, v, want)
						}
					}
				}
				if tok != "" && p.name != "none" && got.Get("X-User-Id") != "7" {
					t.Errorf("upstream did not get frontdoor's X-User-Id (got %v)", got)
				}
				if got.Get("Authorization") != "" {
					t.Error("Authorization forwarded without forward_authorization")
				}
			})
		}
	}
}

func TestForwardAuthorizationAndForwardedHeaders(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, map[string]UpstreamConfig{"legacy": {URLs: []string{up.URL}, ForwardAuthorization: true}}, testRoutes())
	resp := rawRequest(t, f.front.Listener.Addr().String(),
		"GET /api/me?x=1&y=2 HTTP/1.1\r\nHost: front.example\r\nAuthorization: Bearer reader\r\n"+
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := up.seen()
	if s.Header.Get("Authorization") != "Bearer reader" {
		t.Errorf("Authorization not forwarded: %q", s.Header.Get("Authorization"))
	}
	if s.Query != "x=1&y=2" {
		t.Errorf("query %q", s.Query)
	}
	if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q: an untrusted client's value must be replaced", got)
	}
	if got := s.Header.Get("X-Forwarded-Host"); got != "front.example" {
		t.Errorf("X-Forwarded-Host %q", got)
	}
	if s.Header.Get("Forwarded") != "" {
		t.Error("client's Forwarded header passed through")
	}
	if s.Header.Get("X-Request-Id") != "abc-123" || resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("sane X-Request-Id not kept: upstream %q, response %q", s.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
	}
}

func TestRequestIDReplacedWhenInsane(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	resp := rawRequest(t, f.front.Listener.Addr().String(),
		"GET /public/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: "+strings.Repeat("a", 200)+"\r\nConnection: close\r\n\r\n")
	id := resp.Header.Get("X-Request-Id")
	if len(id) != 32 || up.seen().Header.Get("X-Request-Id") != id {
		t.Errorf("response id %q, upstream id %q", id, up.seen().Header.Get("X-Request-Id"))
	}
}

func TestUpstreamFailures(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	t.Run("unreachable is 502", func(t *testing.T) {
		f := newFixture(t, legacy(deadURL), testRoutes())
		resp, err := http.Get(f.front.URL + "/public/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 502 || decodeErr(t, resp).Error != "bad_gateway" {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("route timeout is 504", func(t *testing.T) {
		f := newFixture(t, legacy(slow.URL), testRoutes())
		resp, err := http.Get(f.front.URL + "/slow/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 504 || decodeErr(t, resp).Error != "upstream_timeout" {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("upstream timeout is 504", func(t *testing.T) {
		f := newFixture(t, map[string]UpstreamConfig{"legacy": {URLs: []string{slow.URL}, Timeout: 150 * time.Millisecond}}, testRoutes())
		resp, err := http.Get(f.front.URL + "/public/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 504 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestRoundRobinSkipsDeadTarget(t *testing.T) {
	a, b := newRecordingUpstream(t), newRecordingUpstream(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	f := newFixture(t, legacy(a.URL, deadURL, b.URL), testRoutes())
	for i := 0; i < 30; i++ {
		resp, err := http.Get(f.front.URL + "/public/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d; a dead target must be skipped, not surfaced", i, resp.StatusCode)
		}
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Errorf("round robin uneven: a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
	if a.hits.Load()+b.hits.Load() != 30 {
		t.Errorf("hits %d+%d, want 30", a.hits.Load(), b.hits.Load())
	}
}

func TestMalformedClientBodyIs400(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	resp := rawRequest(t, f.front.Listener.Addr().String(),
		"POST /api/articles/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer author\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
			"5\r\nhello\r\nZZZ\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: a broken client body is not the upstream's fault", resp.StatusCode)
	}
}

func TestRequestBodyStreamsToUpstream(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	req, _ := http.NewRequest("PUT", f.front.URL+"/api/articles/9", strings.NewReader(strings.Repeat("x", 1<<20)))
	req.Header.Set("Authorization", "Bearer author")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(up.seen().Body) != 1<<20 {
		t.Fatalf("status %d, upstream body %d bytes", resp.StatusCode, len(up.seen().Body))
	}
}

func TestResponseStreams(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, legacy(up.URL), testRoutes())
	resp, err := http.Get(f.front.URL + "/public/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v: the response was buffered", line, err)
	}
}

func TestWebSocketUpgradePassesWithAuth(t *testing.T) {
	var upgraded atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgraded.Store(r.Header.Get("X-User-Id"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, legacy(up.URL), testRoutes())

	// Without a token the required route refuses the upgrade.
	resp := rawRequest(t, f.front.Listener.Addr().String(),
		"GET /api/me HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated upgrade: status %d", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", f.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer reader\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	io.WriteString(conn, "ping\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("tunnel: %q, %v", line, err)
	}
	if upgraded.Load() != "7" {
		t.Errorf("upstream saw X-User-Id %v on the upgrade", upgraded.Load())
	}
}

func TestSwapAppliesNewPolicyAtOnce(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	get := func() int {
		req, _ := http.NewRequest("GET", f.front.URL+"/api/admin/x", nil)
		req.Header.Set("Authorization", "Bearer author")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 403 {
		t.Fatalf("before: %d", s)
	}
	routes := testRoutes()
	routes[3].Roles = []string{"author"}
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(Config{Upstreams: legacy(up.URL)}, pol, NewTransport(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.h.Swap(rt)
	if s := get(); s != 200 {
		t.Fatalf("after swap: %d", s)
	}
}

func TestRuntimeValidation(t *testing.T) {
	pol, err := policy.Compile(policy.Config{Roles: testRoles, Routes: testRoutes()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		path string
	}{
		{"unknown upstream", Config{Upstreams: map[string]UpstreamConfig{"other": {URLs: []string{"http://x"}}}}, "routes[0].upstream"},
		{"no urls", Config{Upstreams: map[string]UpstreamConfig{"legacy": {}}}, "upstreams.legacy.urls"},
		{"bad scheme", Config{Upstreams: legacy("ftp://x")}, "upstreams.legacy.urls[0]"},
		{"query in url", Config{Upstreams: legacy("http://x/?a=b")}, "upstreams.legacy.urls[0]"},
		{"negative timeout", Config{Upstreams: map[string]UpstreamConfig{"legacy": {URLs: []string{"http://x"}, Timeout: -1}}}, "upstreams.legacy.timeout"},
		{"bad header", Config{IdentityHeaders: IdentityHeaders{UserID: "X User"}, Upstreams: legacy("http://x")}, "identity_headers.user_id"},
		{"reserved header", Config{IdentityHeaders: IdentityHeaders{UserID: "Authorization"}, Upstreams: legacy("http://x")}, "identity_headers.user_id"},
		{"same headers", Config{IdentityHeaders: IdentityHeaders{UserID: "X-Id", Roles: "x_id"}, Upstreams: legacy("http://x")}, "identity_headers.roles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRuntime(tc.cfg, pol, nil, time.Now)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.path+":") {
				t.Errorf("error %q does not name %s", err, tc.path)
			}
		})
	}
}

func TestMetricsCountRequests(t *testing.T) {
	up := newRecordingUpstream(t)
	f := newFixture(t, legacy(up.URL), testRoutes())
	for _, p := range []string{"/public/x", "/api/me", "/nowhere"} {
		resp, err := http.Get(f.front.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "|" + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				found[key] = c.GetValue()
			}
		}
	}
	for _, want := range []string{
		"frontdoor_http_requests_total|code=200|method=GET|route=public",
		"frontdoor_http_requests_total|code=401|method=GET|route=me",
		"frontdoor_http_requests_total|code=404|method=GET|route=-",
		"frontdoor_auth_failures_total|reason=missing_token",
	} {
		if found[want] != 1 {
			t.Errorf("%s = %v, want 1 (have %v)", want, found[want], found)
		}
	}
}

func TestRestrictUpgrade(t *testing.T) {
	tests := []struct {
		upgrade []string
		keep    bool
	}{
		{nil, true},
		{[]string{"websocket"}, true},
		{[]string{"WebSocket"}, true},
		{[]string{"h2c"}, false},
		{[]string{"h2c, websocket"}, false},
		{[]string{"websocket", "h2c"}, false},
		{[]string{"TLS/1.2"}, false},
	}
	for _, tc := range tests {
		h := http.Header{"Connection": {"Upgrade"}}
		if tc.upgrade != nil {
			h["Upgrade"] = tc.upgrade
		}
		restrictUpgrade(h)
		if _, kept := h["Upgrade"]; kept != (tc.keep && tc.upgrade != nil) {
			t.Errorf("Upgrade %q: kept = %v, want %v", tc.upgrade, kept, tc.keep)
		}
	}
}

// TestChunkedRequestClosesConnection: a chunked request may have carried a
// Content-Length that net/http dropped, so its connection is not reused.
func TestChunkedRequestClosesConnection(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	front := newFixture(t, legacy(up.URL), testRoutes()).front
	for _, tc := range []struct {
		name      string
		body      io.Reader
		wantClose bool
	}{
		{"content-length", strings.NewReader("hello"), false},
		{"chunked", io.MultiReader(strings.NewReader("hello")), true},
	} {
		req, _ := http.NewRequest("POST", front.URL+"/api/articles/1", tc.body)
		req.Header.Set("Authorization", "Bearer author")
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close != tc.wantClose {
			t.Errorf("%s: status %d, close %v; want 200, close %v", tc.name, resp.StatusCode, resp.Close, tc.wantClose)
		}
	}
}
