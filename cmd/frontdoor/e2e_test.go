package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the frontdoor binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzing() {
		// Fuzz targets call functions in process; a fuzz run starts many
		// worker processes, and none needs the binary.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "frontdoor-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "frontdoor")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build frontdoor:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fuzzing reports whether this process runs or coordinates a fuzz target.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// upstreamRecorder is a legacy service that remembers what it received.
type upstreamRecorder struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []*http.Request
	delay time.Duration
}

func newUpstream(t *testing.T) *upstreamRecorder {
	u := &upstreamRecorder{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(r.Context()))
		d := u.delay
		u.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
		fmt.Fprintf(w, "legacy saw %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstreamRecorder) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

const e2eConfig = `server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  shutdown_grace: 5s
  max_header_bytes: 8192
store:
  dsn: "%s"
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
login:
  wechat:
    appid: "wx0123456789abcdef"
    secret: "s3cret"
roles:
  subscriber:    { capabilities: [read] }
  contributor:   { inherits: [subscriber], capabilities: [edit_posts] }
  author:        { inherits: [contributor], capabilities: [publish_posts, upload_files] }
  editor:        { inherits: [author], capabilities: [edit_others_posts, moderate_comments] }
  administrator: { inherits: [editor], capabilities: [edit_users, manage_options] }
upstreams:
  legacy:
    urls: ["%s"]
routes:
  - name: articles-read
    path: /api/articles/**
    methods: [GET]
    upstream: legacy
    auth: optional
  - name: articles-write
    path: /api/articles/**
    methods: [POST, PUT, PATCH, DELETE]
    upstream: legacy
    capabilities: [publish_posts]
  - name: admin
    path: /api/admin/**
    upstream: legacy
    roles: [administrator]
    strip_prefix: /api
tests:
  - name: authors publish
    method: POST
    path: /api/articles/1
    roles: [author]
    expect: allow
`

// instance is a running frontdoor process.
type instance struct {
	cfgPath     string
	addr, admin string
	cmd         *exec.Cmd
	exited      chan error
	logs        *bytes.Buffer
	logMu       *sync.Mutex
	marks       int // log marks sent, under logMu
	// scanned is closed once the process's stderr has been read to the
	// end: its log is then complete.
	scanned chan struct{}
}

func writeConfig(t *testing.T, upstreamURL string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(e2eConfig, filepath.Join(dir, "fd.db"), upstreamURL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startFrontdoor(t *testing.T, cfgPath string) *instance {
	t.Helper()
	cmd := exec.Command(binPath, "serve", "-config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{cfgPath: cfgPath, cmd: cmd, exited: make(chan error, 1), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}, scanned: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			in.logMu.Lock()
			in.logs.WriteString(line + "\n")
			in.logMu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "listening" {
				in.addr, _ = m["addr"].(string)
				in.admin, _ = m["admin_addr"].(string)
				once.Do(func() { close(ready) })
			}
		}
		close(in.scanned)
		in.exited <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-in.exited:
		t.Fatalf("frontdoor exited before listening: %v\n%s", err, in.logText())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("frontdoor did not start:\n%s", in.logText())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("frontdoor logs:\n%s", in.logText())
		}
	})
	return in
}

// settledLogs returns the log once every line logged so far has arrived:
// lines are written asynchronously but in order, so it sends a request with
// a fresh request id and waits for that request's access-log line.
func (in *instance) settledLogs(t *testing.T) string {
	t.Helper()
	select {
	case <-in.scanned:
		return in.logText() // the process has exited; nothing more will come
	default:
	}
	in.logMu.Lock()
	in.marks++
	mark := fmt.Sprintf("log-mark-%d", in.marks)
	in.logMu.Unlock()
	req, err := http.NewRequest(http.MethodGet, "http://"+in.addr+"/log-mark", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", mark)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("log mark request: %v", err)
	}
	resp.Body.Close()
	want := `"request_id":"` + mark + `"`
	var logs string
	waitFor(t, "the log mark's access-log line", 10*time.Second, func() bool {
		logs = in.logText()
		return strings.Contains(logs, want)
	})
	return logs
}

func (in *instance) logText() string {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	return in.logs.String()
}

// runCLI runs a frontdoor subcommand and returns its stdout.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mint(t *testing.T, cfgPath, sub, roles string, extra ...string) string {
	t.Helper()
	args := append([]string{"token", "mint", "-config", cfgPath, "-sub", sub, "-roles", roles}, extra...)
	out, errOut, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("token mint: %v: %s", err, errOut)
	}
	return strings.TrimSpace(out)
}

func do(t *testing.T, method, url, tok string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	json.Unmarshal(head, &h)
	if h.Alg != "RS256" {
		t.Fatalf("alg %q", h.Alg)
	}
	return h.Kid
}

func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	resp, body := do(t, "GET", base+"/.well-known/jwks.json", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("jwks: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			t.Fatal("JWKS publishes a private key")
		}
		if k["use"] != "sig" || k["alg"] != "RS256" || k["kty"] != "RSA" {
			t.Errorf("JWK %v", k)
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEndToEndProxyWithMintedToken(t *testing.T) {
	up := newUpstream(t)
	cfg := writeConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	base := "http://" + fd.addr

	author := mint(t, cfg, "42", "author")
	reader := mint(t, cfg, "7", "subscriber")
	if !contains(jwksKids(t, base), kidOf(t, author)) {
		t.Fatal("the token's kid is not in the JWKS")
	}

	// Allowed, with spoofed identity headers that must not survive.
	resp, body := do(t, "POST", base+"/api/articles/1?draft=1", author, map[string]string{
		"X-User-Id": "1", "X_User_Roles": "administrator", "X-Request-Id": "e2e-1",
	})
	if resp.StatusCode != 200 || body != "legacy saw POST /api/articles/1" {
		t.Fatalf("author publish: %d %q", resp.StatusCode, body)
	}
	got := up.last(t)
	if got.Header.Get("X-User-Id") != "42" || got.Header.Get("X-User-Roles") != "author" {
		t.Errorf("upstream identity: id %q roles %q", got.Header.Get("X-User-Id"), got.Header.Get("X-User-Roles"))
	}
	for k := range got.Header {
		if identity := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k)); (identity == "x-user-id" || identity == "x-user-roles") && k != "X-User-Id" && k != "X-User-Roles" {
			t.Errorf("spoofed header %s reached the upstream", k)
		}
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("Authorization forwarded")
	}
	if got.Header.Get("X-Request-Id") != "e2e-1" || resp.Header.Get("X-Request-Id") != "e2e-1" {
		t.Error("X-Request-Id not kept")
	}
	if got.URL.RawQuery != "draft=1" {
		t.Errorf("query %q", got.URL.RawQuery)
	}

	// Denied cases answer JSON errors and never reach the upstream.
	hits := up.count()
	cases := []struct {
		method, path, tok string
		status            int
		code              string
	}{
		{"POST", "/api/articles/1", reader, 403, "insufficient_scope"},
		{"POST", "/api/articles/1", "", 401, "missing_token"},
		{"POST", "/api/articles/1", author + "x", 401, "invalid_token"},
		{"GET", "/api/admin/users", author, 403, "insufficient_scope"},
		{"GET", "/nowhere", author, 404, "not_found"},
		{"GET", "/api/articles/../admin/users", author, 400, "invalid_request"},
	}
	for _, c := range cases {
		resp, body := do(t, c.method, base+c.path, c.tok, nil)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != c.status || e.Error != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, resp.StatusCode, body, c.status, c.code)
		}
	}
	if up.count() != hits {
		t.Error("a refused request reached the upstream")
	}

	// A token of another audience is refused even though our key signed it.
	wrongAud := mint(t, cfg, "42", "author", "-claims", `{"aud":"someone-else"}`)
	if resp, _ := do(t, "GET", base+"/api/articles/1", wrongAud, nil); resp.StatusCode != 401 {
		t.Errorf("wrong audience: %d", resp.StatusCode)
	}
	// Administrators reach admin with the prefix stripped.
	admin := mint(t, cfg, "1", "administrator")
	if resp, body := do(t, "GET", base+"/api/admin/users", admin, nil); resp.StatusCode != 200 || body != "legacy saw GET /admin/users" {
		t.Errorf("admin: %d %q", resp.StatusCode, body)
	}

	// Discovery.
	resp, body = do(t, "GET", base+"/.well-known/openid-configuration", "", nil)
	var disc map[string]any
	json.Unmarshal([]byte(body), &disc)
	if resp.StatusCode != 200 || disc["issuer"] != "http://frontdoor.test" || disc["jwks_uri"] != "http://frontdoor.test/.well-known/jwks.json" {
		t.Errorf("discovery: %d %s", resp.StatusCode, body)
	}

	// Admin listener.
	if resp, body := do(t, "GET", "http://"+fd.admin+"/healthz", "", nil); resp.StatusCode != 200 {
		t.Errorf("healthz %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", "http://"+fd.admin+"/readyz", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"ready":true`) || !strings.Contains(body, `"store":"up"`) {
		t.Errorf("readyz %d %s", resp.StatusCode, body)
	}
	_, metrics := do(t, "GET", "http://"+fd.admin+"/metrics", "", nil)
	for _, want := range []string{
		`frontdoor_http_requests_total{code="200",method="POST",route="articles-write"} 1`,
		`frontdoor_auth_failures_total{reason="insufficient_scope"}`,
		`frontdoor_http_request_duration_seconds_bucket{route="articles-write"`,
		`frontdoor_store_up 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The access log has one line per request and never a token.
	logs := fd.settledLogs(t)
	if strings.Contains(logs, author) || strings.Contains(logs, strings.Split(author, ".")[2]) {
		t.Error("a token was logged")
	}
	if !strings.Contains(logs, `"request_id":"e2e-1"`) || !strings.Contains(logs, `"user_id":"42"`) {
		t.Errorf("access log lacks the request: %s", logs)
	}
}

func TestEndToEndHeaderLimit(t *testing.T) {
	up := newUpstream(t)
	fd := startFrontdoor(t, writeConfig(t, up.URL))
	resp, _ := do(t, "GET", "http://"+fd.addr+"/api/articles/1", "", map[string]string{"X-Big": strings.Repeat("a", 16<<10)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestEndToEndGracefulShutdownDrains(t *testing.T) {
	up := newUpstream(t)
	up.delay = 1500 * time.Millisecond
	fd := startFrontdoor(t, writeConfig(t, up.URL))
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + fd.addr + "/api/articles/slow")
		if err != nil {
			done <- result{0, err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, nil}
	}()
	// Wait until the request is in flight at the upstream.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if up.count() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("request never reached the upstream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fd.cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request during shutdown: %d %v", r.status, r.err)
	}
	select {
	case err := <-fd.exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
		fd.exited <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("frontdoor did not exit after draining")
	}
}

func TestEndToEndKeyImportWhileServing(t *testing.T) {
	up := newUpstream(t)
	cfg := writeConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	base := "http://" + fd.addr
	before := mint(t, cfg, "42", "author")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	out, errOut, err := runCLI(t, "keys", "import", "-config", cfg, "-pem", pemPath)
	if err != nil {
		t.Fatalf("keys import: %v %s", err, errOut)
	}
	after := mint(t, cfg, "42", "author")
	newKid := kidOf(t, after)
	if newKid == kidOf(t, before) || !strings.Contains(out, newKid) {
		t.Fatalf("import did not make the new key sign: %s", out)
	}
	// The running server picks up the imported key within 5 s.
	deadline := time.Now().Add(8 * time.Second)
	for !contains(jwksKids(t, base), newKid) {
		if time.Now().After(deadline) {
			t.Fatal("the imported key never appeared in the JWKS")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, tok := range map[string]string{"old key": before, "new key": after} {
		if resp, body := do(t, "POST", base+"/api/articles/1", tok, nil); resp.StatusCode != 200 {
			t.Errorf("%s token: %d %s", name, resp.StatusCode, body)
		}
	}
	list, _, err := runCLI(t, "keys", "list", "-config", cfg)
	if err != nil || !strings.Contains(list, newKid+"  active") || !strings.Contains(list, "retired") {
		t.Errorf("keys list: %v\n%s", err, list)
	}
	// A weak key is refused and changes nothing.
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)}), 0o600)
	if _, _, err := runCLI(t, "keys", "import", "-config", cfg, "-pem", pemPath); err == nil {
		t.Error("a 1024-bit key was imported")
	}
	if kidOf(t, mint(t, cfg, "42", "author")) != newKid {
		t.Error("a refused import changed the signing key")
	}
}

func TestEndToEndCheck(t *testing.T) {
	t.Setenv("WECHAT_SECRET", "")
	os.Unsetenv("WECHAT_SECRET")
	_, errOut, err := runCLI(t, "check", "-config", "../../config.yaml")
	if err == nil || !strings.Contains(errOut, "WECHAT_SECRET") {
		t.Errorf("the shipped config must demand WECHAT_SECRET: %v %s", err, errOut)
	}
	t.Setenv("WECHAT_SECRET", "test-secret")
	out, errOut, err := runCLI(t, "check", "-config", "../../config.yaml")
	if err != nil {
		t.Fatalf("check of the shipped config.yaml: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"OK", "articles-read", "admin", "/api/admin/**"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("server:\n  listen: \":8080\"\n  lisen: oops\n"), 0o600)
	_, errOut, err = runCLI(t, "check", "-config", bad)
	if err == nil || !strings.Contains(errOut, bad+":3:3") || !strings.Contains(errOut, "lisen") {
		t.Errorf("check of a bad file: %v %q", err, errOut)
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Errorf("exit %v, want 1", err)
	}
}
