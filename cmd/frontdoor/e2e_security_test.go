package main

// The security suite (TestSecurity…) attacks the real binary over loopback.
// Requests that net/http would normalise (absolute-form targets, lowercase
// methods, duplicate or oddly spelled headers, conflicting framing) are
// written byte for byte on a raw connection. Every refusal is checked for its
// status and documented JSON error code, and for not having reached the
// upstream; every success for what exactly the upstream received.
//
// The groups live in e2e_security_*_test.go; this file holds their shared
// environment: one configuration with a route of every kind, a recording
// upstream with special behaviours (hang, huge body, WebSocket echo, h2c),
// raw HTTP helpers and an in-process JWS signer whose key is imported into
// each instance with `frontdoor keys import`.

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

const secConfigTemplate = `server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  shutdown_grace: 5s
  read_header_timeout: 1s
  max_header_bytes: {{.MaxHeaderBytes}}
store:
  dsn: "{{.DB}}"
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
{{.Login}}roles:
  subscriber:    { capabilities: [read] }
  contributor:   { inherits: [subscriber], capabilities: [edit_posts] }
  author:        { inherits: [contributor], capabilities: [publish_posts, upload_files] }
  editor:        { inherits: [author], capabilities: [edit_others_posts, moderate_comments] }
  administrator: { inherits: [editor], capabilities: [edit_users, manage_options] }
upstreams:
  legacy:
    urls: ["{{.Upstream}}"]
    timeout: 10s
  slow:
    urls: ["{{.Upstream}}"]
    timeout: 2s
  down:
    urls: ["{{.Down}}"]
    timeout: 20s
routes:
  - name: health
    path: /api/health
    methods: [GET]
    upstream: legacy
    auth: none
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
  - name: private
    path: /api/private/**
    upstream: legacy
  - name: admin
    path: /api/admin/**
    upstream: legacy
    roles: [administrator]
    strip_prefix: /api
  - name: ws
    path: /api/ws
    methods: [GET]
    upstream: legacy
  - name: big
    path: /api/big
    methods: [GET]
    upstream: legacy
    auth: none
  - name: hang
    path: /api/hang/**
    upstream: legacy
    auth: none
    timeout: 1s
  - name: hang-slow-upstream
    path: /api/hang/slow/**
    upstream: slow
    auth: none
  - name: down
    path: /api/down/**
    upstream: down
    auth: none
`

// Values of secConfigTemplate that the tests depend on.
const (
	secIssuer   = "http://frontdoor.test"
	secAudience = "miniprogram"
	// secHangTimeout is the hang route's timeout in the config, and
	// secSlowTimeout the timeout of the upstream of /api/hang/slow/**.
	secHangTimeout = time.Second
	secSlowTimeout = 2 * time.Second
	// secReadHeaderTimeout is server.read_header_timeout in the config.
	secReadHeaderTimeout = time.Second
)

// secOptions vary an instance of the security environment.
type secOptions struct {
	maxHeaderBytes int    // server.max_header_bytes; default 8192
	login          string // a complete `login:` section, or none
	// before runs after the config is written and the key imported, before
	// frontdoor starts (to add users with the CLI, say).
	before func(cfgPath string)
}

// secEnv is a running frontdoor in front of a recording upstream, with the
// test's signing key active.
type secEnv struct {
	fd   *instance
	addr string // host:port of the main listener
	base string // http://addr
	cfg  string
	db   string
	up   *secUpstream
	kid  string
	key  *rsa.PrivateKey
}

func startSecEnv(t *testing.T, o secOptions) *secEnv {
	t.Helper()
	if o.maxHeaderBytes == 0 {
		o.maxHeaderBytes = 8192
	}
	up := newSecUpstream(t)
	dir := t.TempDir()
	env := &secEnv{cfg: filepath.Join(dir, "config.yaml"), db: filepath.Join(dir, "fd.db"), up: up, key: securityKey(t)}
	env.kid = jwkThumbprint(&env.key.PublicKey)
	params := struct {
		DB, Upstream, Down, Login string
		MaxHeaderBytes            int
	}{env.db, up.URL, closedURL(t), o.login, o.maxHeaderBytes}
	var text bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(secConfigTemplate)).Execute(&text, params); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.cfg, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(env.key)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "signing.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "", "keys", "import", "-config", env.cfg, "-pem", pemPath)
	if o.before != nil {
		o.before(env.cfg)
	}
	env.fd = startFrontdoor(t, env.cfg)
	env.addr = env.fd.addr
	env.base = "http://" + env.addr
	if !contains(jwksKids(t, env.base), env.kid) {
		t.Fatalf("the imported key %s is not published", env.kid)
	}
	return env
}

// closedURL is the URL of a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

var (
	secKeyOnce sync.Once
	secKey     *rsa.PrivateKey
	secKeyErr  error
)

// securityKey is the signing key every instance of the suite imports; one
// key for all of them keeps RSA generation out of each group's run time.
func securityKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	secKeyOnce.Do(func() { secKey, secKeyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if secKeyErr != nil {
		t.Fatal(secKeyErr)
	}
	return secKey
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkThumbprint is the RFC 7638 thumbprint, which frontdoor uses as kid.
func jwkThumbprint(pub *rsa.PublicKey) string {
	e := big.NewInt(int64(pub.E)).Bytes()
	canon := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64url(e), b64url(pub.N.Bytes()))
	sum := sha256.Sum256([]byte(canon))
	return b64url(sum[:])
}

// jwsInput is the signing input of a compact JWS: header and claims are
// marshalled as given, so a test controls every member.
func jwsInput(t *testing.T, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64url(h) + "." + b64url(c)
}

// signRS256 returns the compact JWS of header and claims signed by key.
func signRS256(t *testing.T, key *rsa.PrivateKey, header, claims any) string {
	t.Helper()
	in := jwsInput(t, header, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64url(sig)
}

// header is the JWS header frontdoor itself writes.
func (e *secEnv) header() map[string]any {
	return map[string]any{"alg": "RS256", "typ": "JWT", "kid": e.kid}
}

// claims are valid access-token claims for sub with roles.
func (e *secEnv) claims(sub string, roles ...string) map[string]any {
	now := time.Now().Unix()
	if roles == nil {
		roles = []string{}
	}
	var id [12]byte
	rand.Read(id[:])
	return map[string]any{
		"iss": secIssuer, "aud": secAudience, "sub": sub,
		"iat": now, "nbf": now, "exp": now + 3600,
		"jti": b64url(id[:]), "roles": roles,
	}
}

// token is a valid access token signed with the active key.
func (e *secEnv) token(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	return signRS256(t, e.key, e.header(), e.claims(sub, roles...))
}

// secSeen is one request as the upstream received it.
type secSeen struct {
	Method, URI, Host string
	Header, Trailer   http.Header
	Body              []byte
}

// secUpstream is the protected legacy service. It records every request and
// answers "legacy saw METHOD URI", except on a few paths with a behaviour of
// their own: /api/hang/… never answers, except /api/hang/trickle, which
// sends its headers at once and its body after 1.5 s (longer than the
// route's timeout), /api/big streams secBigSize bytes,
// /api/ws is a WebSocket echo, and any request asking to upgrade to h2c is
// granted a raw tunnel whose bytes are recorded (as an h2c-capable server
// would accept them).
type secUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []secSeen
	tunnel []byte
	// hangEnded receives once for each hanging request whose context ended.
	hangEnded chan struct{}
	// stop releases handlers still blocked when the test ends.
	stop chan struct{}
}

func newSecUpstream(t *testing.T) *secUpstream {
	u := &secUpstream{hangEnded: make(chan struct{}, 16), stop: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		close(u.stop)
		u.Server.CloseClientConnections()
		u.Server.Close()
	})
	return u
}

func (u *secUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	u.mu.Lock()
	u.seen = append(u.seen, secSeen{
		Method: r.Method, URI: r.RequestURI, Host: r.Host,
		Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: body,
	})
	u.mu.Unlock()
	switch {
	case strings.EqualFold(r.Header.Get("Upgrade"), "h2c"):
		u.grantTunnel(w)
	case r.URL.Path == "/api/hang/trickle":
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "headers in time, ")
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(secHangTimeout + secHangTimeout/2):
			io.WriteString(w, "body later")
		case <-u.stop:
		}
	case strings.HasPrefix(r.URL.Path, "/api/hang/"):
		select {
		case <-r.Context().Done():
			select {
			case u.hangEnded <- struct{}{}:
			default:
			}
		case <-u.stop:
		}
	case r.URL.Path == "/api/big":
		streamBig(w)
	case r.URL.Path == "/api/ws":
		serveWebSocketEcho(w, r)
	default:
		fmt.Fprintf(w, "legacy saw %s %s", r.Method, r.RequestURI)
	}
}

// grantTunnel switches to "h2c" and records whatever the client then sends.
func (u *secUpstream) grantTunnel(w http.ResponseWriter) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	brw.Flush()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := brw.Read(buf)
		u.mu.Lock()
		u.tunnel = append(u.tunnel, buf[:n]...)
		u.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// count is the number of requests received so far.
func (u *secUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// since returns the requests received after the first n.
func (u *secUpstream) since(n int) []secSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]secSeen(nil), u.seen[n:]...)
}

// tunnelled returns the bytes received through granted h2c tunnels.
func (u *secUpstream) tunnelled() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]byte(nil), u.tunnel...)
}

// only asserts that exactly one request reached the upstream after the
// first n, and returns it.
func (u *secUpstream) only(t *testing.T, n int) secSeen {
	t.Helper()
	got := u.since(n)
	if len(got) != 1 {
		var uris []string
		for _, s := range got {
			uris = append(uris, s.Method+" "+s.URI)
		}
		t.Fatalf("the upstream received %d requests %q, want exactly 1", len(got), uris)
	}
	return got[0]
}

// none asserts that nothing reached the upstream after the first n.
func (u *secUpstream) none(t *testing.T, n int) {
	t.Helper()
	if got := u.since(n); len(got) != 0 {
		t.Errorf("a refused request reached the upstream: %s %s", got[0].Method, got[0].URI)
	}
}

// identityOf returns every header of h that is a spelling of the identity
// headers (any case, "_" or "." for "-"), keyed as received.
func identityOf(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		switch strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k)) {
		case "x-user-id", "x-user-roles":
			out[k] = v
		}
	}
	return out
}

// apiError checks the documented error shape and returns what is wrong
// with it, or "". 401s must carry the RFC 6750 challenge naming the error
// for invalid_token.
func apiError(resp *http.Response, body string, status int, code string) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != status || e.Error != code || e.Description == "" {
		return fmt.Sprintf("got %d %q, want %d %s", resp.StatusCode, strings.TrimSpace(body), status, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Sprintf("Content-Type %q", ct)
	}
	if status == http.StatusUnauthorized {
		want := `Bearer realm="frontdoor"`
		if code == "invalid_token" {
			want += `, error="invalid_token"`
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != want {
			return fmt.Sprintf("WWW-Authenticate %q, want %q", got, want)
		}
	}
	return ""
}

// rawRequest builds an HTTP/1.1 request from its parts, exactly as given.
// A Host header is added unless one of headers is a Host header.
func rawRequest(method, target string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	hasHost := false
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			hasHost = true
		}
	}
	if !hasHost {
		b.WriteString("Host: frontdoor.test\r\n")
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawConn is a client connection that writes bytes exactly as given.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// read reads one response to a request of method.
func (c *rawConn) read(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// closedByPeer reports whether the server closed the connection without
// sending anything more.
func (c *rawConn) closedByPeer(within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	n, err := c.br.Read(make([]byte, 1))
	return n == 0 && err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// roundTrip sends one raw request on a new connection and reads the answer.
func (e *secEnv) roundTrip(t *testing.T, req string) (*http.Response, string) {
	t.Helper()
	c := dialRaw(t, e.addr)
	c.send(t, req)
	method, _, _ := strings.Cut(req, " ")
	resp, body, err := c.read(method)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", firstLine(req), err)
	}
	return resp, body
}

func firstLine(req string) string {
	line, _, _ := strings.Cut(req, "\r\n")
	return line
}

// vmHWM is the peak resident set size of process pid, from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q", line)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
