package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"frontdoor/login/store"
)

// passwordLogin is what e2eConfig lacks for these tests: password login,
// with cheap hashing (the cost is not what is tested here) and limits that
// the many logins of one test stay under.
const passwordLogin = `login:
  password:
    enabled: true
    argon2_memory_kib: 1024
    argon2_time: 1
    argon2_threads: 1
  rate_limit:
    per_ip_per_minute: 1000
    per_username_per_minute: 1000
`

// writePasswordConfig writes e2eConfig with password login enabled and
// returns its path and the SQLite file's path.
func writePasswordConfig(t *testing.T, upstreamURL string) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath, dbPath = filepath.Join(dir, "config.yaml"), filepath.Join(dir, "fd.db")
	cfg := strings.Replace(fmt.Sprintf(e2eConfig, dbPath, upstreamURL), "login:\n", passwordLogin, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

// runCLIStdin runs a frontdoor subcommand with stdin.
func runCLIStdin(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// mustCLI runs a subcommand that must succeed.
func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLIStdin(t, stdin, args...)
	if err != nil {
		t.Fatalf("frontdoor %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// exitCode of a CLI run: 0 for success.
func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	exit, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	return exit.ExitCode()
}

// loginResult is a POST /auth/login answer.
type loginResult struct {
	status int
	body   string
	token  string
	roles  []string // from the access token
	amr    []string
	userID string
}

func postLogin(t *testing.T, base, username, password string) loginResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, err := http.Post(base+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	res := loginResult{status: resp.StatusCode, body: buf.String()}
	if resp.StatusCode != http.StatusOK {
		return res
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(buf.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	res.token, res.userID = tr.AccessToken, tr.User.ID
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tr.AccessToken, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
		AMR   []string `json:"amr"`
	}
	json.Unmarshal(payload, &claims)
	if claims.Sub != res.userID {
		t.Errorf("token sub %q, response user id %q", claims.Sub, res.userID)
	}
	res.roles, res.amr = claims.Roles, claims.AMR
	return res
}

// The users CLI works on the SQLite file of a running server, and every
// change shows at the server's next login.
func TestEndToEndUsersWhileServing(t *testing.T) {
	up := newUpstream(t)
	cfg, dbPath := writePasswordConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	base := "http://" + fd.addr

	out := mustCLI(t, "alice's first password\n", "users", "add", "-config", cfg, "-username", "alice", "-roles", "subscriber")
	if !strings.Contains(out, "created user") || !strings.Contains(out, "alice") {
		t.Errorf("users add: %q", out)
	}
	r := postLogin(t, base, "alice", "alice's first password")
	if r.status != 200 || !slices.Equal(r.roles, []string{"subscriber"}) || !slices.Equal(r.amr, []string{"pwd"}) {
		t.Fatalf("login after add: %d roles %v amr %v %s", r.status, r.roles, r.amr, r.body)
	}
	aliceID := r.userID
	if resp, _ := do(t, "GET", base+"/api/admin/users", r.token, nil); resp.StatusCode != 403 {
		t.Errorf("subscriber reached admin: %d", resp.StatusCode)
	}

	// Roles: the next login's token carries the new ones.
	out = mustCLI(t, "", "users", "roles", "-config", cfg, "-set", "administrator,editor", "alice")
	if !strings.Contains(out, "administrator,editor") {
		t.Errorf("users roles: %q", out)
	}
	r = postLogin(t, base, "alice", "alice's first password")
	if r.status != 200 || !slices.Equal(r.roles, []string{"administrator", "editor"}) {
		t.Fatalf("login after roles -set: %d %v", r.status, r.roles)
	}
	if resp, body := do(t, "GET", base+"/api/admin/users", r.token, nil); resp.StatusCode != 200 {
		t.Errorf("administrator refused at admin: %d %s", resp.StatusCode, body)
	}

	// Disable and enable, by username and by id.
	mustCLI(t, "", "users", "disable", "-config", cfg, "alice")
	if r := postLogin(t, base, "alice", "alice's first password"); r.status != 403 || !strings.Contains(r.body, `"access_denied"`) {
		t.Errorf("login while disabled: %d %s", r.status, r.body)
	}
	mustCLI(t, "", "users", "enable", "-config", cfg, aliceID)
	if r := postLogin(t, base, "alice", "alice's first password"); r.status != 200 {
		t.Errorf("login after enable: %d %s", r.status, r.body)
	}

	// A new password replaces the old one at once.
	mustCLI(t, "alice's second password\r\n", "users", "passwd", "-config", cfg, "alice")
	if r := postLogin(t, base, "alice", "alice's first password"); r.status != 401 || !strings.Contains(r.body, `"invalid_grant"`) {
		t.Errorf("old password after passwd: %d %s", r.status, r.body)
	}
	if r := postLogin(t, base, "alice", "alice's second password"); r.status != 200 {
		t.Errorf("new password after passwd: %d %s", r.status, r.body)
	}

	// WeChat users' roles are managed the same way (by id: they have no
	// username). The user is created through the store, as a WeChat login
	// would, while the server holds the same file.
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	wx, _, err := st.UpsertWeChatUser(context.Background(), store.WeChatLogin{
		AppID: "wx0123456789abcdef", OpenID: "o-e2e-user", DefaultRoles: []string{"subscriber"}, Now: time.Now(),
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	wxID := fmt.Sprint(wx.ID)
	mustCLI(t, "", "users", "roles", "-config", cfg, "-set", "author", wxID)
	if _, errOut, err := runCLIStdin(t, "a password for wechat\n", "users", "passwd", "-config", cfg, wxID); exitCodeOf(t, err) != 1 || !strings.Contains(errOut, "no username") {
		t.Errorf("passwd of a WeChat-only user: %v %s", err, errOut)
	}

	// Literal usernames, injection strings included.
	mustCLI(t, "injection password\n", "users", "add", "-config", cfg, "-username", "admin' OR '1'='1")
	if r := postLogin(t, base, "admin' OR '1'='1", "injection password"); r.status != 200 {
		t.Errorf("login as the injection-string user: %d %s", r.status, r.body)
	}
	if r := postLogin(t, base, "admin", "injection password"); r.status != 401 {
		t.Errorf("login as admin with the injection user's password: %d", r.status)
	}

	list := mustCLI(t, "", "users", "list", "-config", cfg)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST LOGIN") {
		t.Fatalf("users list:\n%s", list)
	}
	alice, wxRow, inj := strings.Fields(lines[1]), strings.Fields(lines[2]), lines[3]
	if alice[0] != aliceID || alice[1] != "alice" || alice[2] != "no" || alice[3] != "administrator,editor" || alice[4] != "no" || alice[5] == "never" {
		t.Errorf("alice's row: %q", lines[1])
	}
	if wxRow[0] != wxID || wxRow[1] != "-" || wxRow[2] != "yes" || wxRow[3] != "author" {
		t.Errorf("WeChat user's row: %q", lines[2])
	}
	if !strings.Contains(inj, `"admin' OR '1'='1"`) {
		t.Errorf("a username with spaces must be shown quoted: %q", inj)
	}

	// Metrics of the running server.
	_, metrics := do(t, "GET", "http://"+fd.admin+"/metrics", "", nil)
	for _, want := range []string{
		`frontdoor_logins_total{method="password",result="ok"} 5`,
		`frontdoor_logins_total{method="password",result="disabled"} 1`,
		`frontdoor_logins_total{method="password",result="wrong_password"} 1`,
		`frontdoor_logins_total{method="password",result="unknown_user"} 1`,
		`frontdoor_login_lockouts_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	logs := fd.settledLogs(t)
	for _, secret := range []string{"alice's first password", "alice's second password", "injection password"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server logged a password")
		}
	}
}

// Refusals of the users CLI: nothing changes, and the message says why.
func TestEndToEndUsersRefusals(t *testing.T) {
	up := newUpstream(t)
	cfg, _ := writePasswordConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	base := "http://" + fd.addr
	mustCLI(t, "bob's password\n", "users", "add", "-config", cfg, "-username", "bob", "-roles", "author")

	cases := []struct {
		name  string
		stdin string
		args  []string
		exit  int
		want  string // in stderr
	}{
		{"unknown role on add", "a good password\n", []string{"users", "add", "-config", cfg, "-username", "carol", "-roles", "author,wizard"}, 1, `unknown role "wizard"`},
		{"unknown role on set", "", []string{"users", "roles", "-config", cfg, "-set", "wizard", "bob"}, 1, "administrator, author, contributor, editor, subscriber"},
		{"password flag", "", []string{"users", "add", "-config", cfg, "-username", "carol", "-password", "carol's password"}, 2, "-password"},
		{"password argument on add", "", []string{"users", "add", "-config", cfg, "-username", "carol", "carol's password"}, 2, "stdin"},
		{"password argument on passwd", "", []string{"users", "passwd", "-config", cfg, "bob", "bob's new password"}, 2, "unexpected argument"},
		{"no password on stdin", "", []string{"users", "add", "-config", cfg, "-username", "carol"}, 1, "no password on stdin"},
		{"short password", "short\n", []string{"users", "add", "-config", cfg, "-username", "carol"}, 1, "8 characters"},
		{"long password", strings.Repeat("p", 1025) + "\n", []string{"users", "add", "-config", cfg, "-username", "carol"}, 1, "1024 bytes"},
		{"taken username", "a good password\n", []string{"users", "add", "-config", cfg, "-username", "bob"}, 1, "taken"},
		{"numeric username", "a good password\n", []string{"users", "add", "-config", cfg, "-username", "12345"}, 1, "all digits"},
		{"control character", "a good password\n", []string{"users", "add", "-config", cfg, "-username", "car\x1bol"}, 1, "control character"},
		{"no username", "a good password\n", []string{"users", "add", "-config", cfg}, 2, "-username is required"},
		{"unknown user", "", []string{"users", "disable", "-config", cfg, "nobody"}, 1, "no user named nobody"},
		{"unknown id", "", []string{"users", "disable", "-config", cfg, "999"}, 1, "no user with id 999"},
		{"flag after USER", "", []string{"users", "disable", "bob", "-config", cfg}, 2, "flags go before USER"},
		{"roles without -set", "", []string{"users", "roles", "-config", cfg, "bob"}, 2, "-set is required"},
		{"unknown subcommand", "", []string{"users", "delete", "-config", cfg, "bob"}, 2, "unknown subcommand"},
	}
	for _, c := range cases {
		_, errOut, err := runCLIStdin(t, c.stdin, c.args...)
		if code := exitCodeOf(t, err); code != c.exit || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, errOut, c.exit, c.want)
		}
	}

	// Nothing of the above took effect.
	if r := postLogin(t, base, "bob", "bob's password"); r.status != 200 || !slices.Equal(r.roles, []string{"author"}) {
		t.Errorf("bob after the refusals: %d %v", r.status, r.roles)
	}
	if r := postLogin(t, base, "carol", "carol's password"); r.status != 401 {
		t.Errorf("carol exists: %d", r.status)
	}
	list := mustCLI(t, "", "users", "list", "-config", cfg)
	if n := len(strings.Split(strings.TrimSpace(list), "\n")); n != 2 {
		t.Errorf("users list after refusals:\n%s", list)
	}
}

// With login.password.enabled false the endpoint is absent, and users add
// says so.
func TestEndToEndPasswordLoginDisabled(t *testing.T) {
	up := newUpstream(t)
	cfg := writeConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	_, errOut, err := runCLIStdin(t, "dora's password\n", "users", "add", "-config", cfg, "-username", "dora")
	if err != nil || !strings.Contains(errOut, "login.password.enabled is false") {
		t.Errorf("users add with password login off: %v %q", err, errOut)
	}
	if r := postLogin(t, "http://"+fd.addr, "dora", "dora's password"); r.status != 404 || !strings.Contains(r.body, `"not_found"`) {
		t.Errorf("login with password login off: %d %s", r.status, r.body)
	}
}
