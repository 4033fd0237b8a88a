package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login/store/storetest"
)

// The PostgreSQL end-to-end tests run real frontdoor processes on one
// PostgreSQL database, as replicas behind a load balancer would (DESIGN.md,
// "Scale-out"), and log users in through the WeChat simulator. They skip
// unless FRONTDOOR_TEST_POSTGRES names a server (.ci/postgres start).

const pgConfigTemplate = `server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  shutdown_grace: 5s
store:
  driver: postgres
  dsn: "{{.DSN}}"
  connect_timeout: {{.ConnectTimeout}}
  statement_timeout: {{.StatementTimeout}}
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
  access_ttl: {{.AccessTTL}}
  rotate_every: {{.RotateEvery}}
login:
  wechat:
    appid: "{{.AppID}}"
    secret: "{{.Secret}}"
    api_base: "{{.WeChat}}"
    timeout: 3s
  rate_limit:
    per_ip_per_minute: 100000
roles:
  subscriber: { capabilities: [read] }
upstreams:
  legacy:
    urls: ["{{.Upstream}}"]
routes:
  - name: profile
    path: /api/profile
    upstream: legacy
`

// pgParams fill pgConfigTemplate; zero fields get pgConfig's defaults.
type pgParams struct {
	DSN, WeChat, Upstream            string
	AppID, Secret                    string
	AccessTTL, RotateEvery           string
	ConnectTimeout, StatementTimeout string
}

// pgConfig writes a config for a PostgreSQL store and returns its path.
func pgConfig(t *testing.T, p pgParams) string {
	t.Helper()
	p.AppID, p.Secret = wxAppID, wxSecret
	for field, def := range map[*string]string{
		&p.AccessTTL: "2h", &p.RotateEvery: "720h", &p.ConnectTimeout: "5s", &p.StatementTimeout: "5s",
	} {
		if *field == "" {
			*field = def
		}
	}
	var text bytes.Buffer
	if err := template.Must(template.New("pg").Parse(pgConfigTemplate)).Execute(&text, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pgWeChat serves a WeChat simulator that knows the app of pgConfig.
func pgWeChat(t *testing.T) (*simulator.Simulator, string) {
	t.Helper()
	sim := simulator.New(simulator.Options{Apps: map[string]string{wxAppID: wxSecret}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// pgTokens is a token response, or an error answer (status and raw body).
type pgTokens struct {
	status  int
	body    string
	access  string
	refresh string
	userID  string
	newUser bool
}

// pgPost posts v as JSON to base+path, with a bearer token if tok is set. It
// does not touch t, so that goroutines may call it; a 200 answer is decoded
// as a token response.
func pgPost(base, path string, v any, tok string) (pgTokens, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return pgTokens{}, err
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return pgTokens{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	// A deadline of its own: a store outage must make logins fail, not hang.
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return pgTokens{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return pgTokens{}, err
	}
	out := pgTokens{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode != http.StatusOK {
		return out, nil
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		NewUser      bool   `json:"new_user"`
		User         struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return out, fmt.Errorf("token response %s: %w", body, err)
	}
	if tr.AccessToken == "" || tr.RefreshToken == "" || tr.User.ID == "" {
		return out, fmt.Errorf("incomplete token response %s", body)
	}
	out.access, out.refresh, out.userID, out.newUser = tr.AccessToken, tr.RefreshToken, tr.User.ID, tr.NewUser
	return out, nil
}

// pgWxLogin logs openid in through the instance at base with a fresh code.
func pgWxLogin(t *testing.T, sim *simulator.Simulator, base, openid string) pgTokens {
	t.Helper()
	got, err := pgPost(base, "/auth/wx/login", wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: openid}).Code}, "")
	if err != nil {
		t.Fatalf("login %s: %v", openid, err)
	}
	return got
}

// pgMustLogin is pgWxLogin that must succeed.
func pgMustLogin(t *testing.T, sim *simulator.Simulator, base, openid string) pgTokens {
	t.Helper()
	got := pgWxLogin(t, sim, base, openid)
	if got.status != http.StatusOK {
		t.Fatalf("login %s at %s: %d %s", openid, base, got.status, got.body)
	}
	return got
}

// pgProxied sends GET /api/profile (a route that requires a token) and
// returns the status and the X-User-Id the upstream received with it ("" if
// the request did not reach the upstream).
func pgProxied(t *testing.T, base, tok string, up *upstreamRecorder) (int, string) {
	t.Helper()
	before := up.count()
	resp, _ := do(t, http.MethodGet, base+"/api/profile", tok, nil)
	if up.count() == before {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, up.last(t).Header.Get("X-User-Id")
}

// pgStop ends a frontdoor process and waits until it has exited.
func pgStop(t *testing.T, in *instance) {
	t.Helper()
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.exited:
		if err != nil {
			t.Errorf("frontdoor exit: %v", err)
		}
		in.exited <- nil // for the harness's cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("frontdoor did not stop")
	}
}

// pgKey is one row of `frontdoor keys list`.
type pgKey struct {
	kid, state string
	activated  time.Time
}

// pgKeys runs `frontdoor keys list` and parses its table (KID STATE BITS
// ACTIVATED RETIRED VERIFIES UNTIL, times in RFC 3339 seconds).
func pgKeys(t *testing.T, cfg string) []pgKey {
	t.Helper()
	out := mustCLI(t, "", "keys", "list", "-config", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "KID") {
		t.Fatalf("keys list:\n%s", out)
	}
	var keys []pgKey
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("keys list row %q", line)
		}
		at, err := time.Parse(time.RFC3339, f[3])
		if err != nil {
			t.Fatalf("keys list row %q: %v", line, err)
		}
		keys = append(keys, pgKey{kid: f[0], state: f[1], activated: at})
	}
	return keys
}

// TestEndToEndReplicasShareSessions runs two replicas on one database: what
// one issues, rotates or revokes, the other honours.
func TestEndToEndReplicasShareSessions(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	sim, wx := pgWeChat(t)
	up := newUpstream(t)
	// One file for both: replicas differ in nothing but their process.
	cfg := pgConfig(t, pgParams{DSN: dsn, WeChat: wx, Upstream: up.URL})
	a := startFrontdoor(t, cfg)
	b := startFrontdoor(t, cfg)
	baseA, baseB := "http://"+a.addr, "http://"+b.addr

	// A token issued by A works on B.
	alice := pgMustLogin(t, sim, baseA, "o-replica-alice")
	if !alice.newUser {
		t.Errorf("first login: %s", alice.body)
	}
	for name, base := range map[string]string{"A": baseA, "B": baseB} {
		if status, uid := pgProxied(t, base, alice.access, up); status != http.StatusOK || uid != alice.userID {
			t.Fatalf("A's token on %s: %d, X-User-Id %q, want 200 and %q", name, status, uid, alice.userID)
		}
	}

	// A key rotated on A signs A's next tokens, which B verifies within 5 s.
	// The 5 s are counted from the moment such a token exists; the extra
	// half second covers the polling interval.
	oldKid := kidOf(t, alice.access)
	out := mustCLI(t, "", "keys", "rotate", "-config", cfg)
	m := regexp.MustCompile(`new signing key (\S+) is active`).FindStringSubmatch(out)
	if m == nil || m[1] == oldKid {
		t.Fatalf("keys rotate:\n%s", out)
	}
	newKid := m[1]
	waitFor(t, "A signs with the rotated key", 6*time.Second, func() bool {
		_, body := do(t, http.MethodGet, "http://"+a.admin+"/readyz", "", nil)
		return strings.Contains(body, `"signing_key":"`+newKid+`"`)
	})
	bob := pgMustLogin(t, sim, baseA, "o-replica-bob")
	if kid := kidOf(t, bob.access); kid != newKid {
		t.Fatalf("login on A after the rotation signed by %s, want %s", kid, newKid)
	}
	waitFor(t, "B publishes the rotated key and accepts its token", 5500*time.Millisecond, func() bool {
		status, uid := pgProxied(t, baseB, bob.access, up)
		return contains(jwksKids(t, baseB), newKid) && status == http.StatusOK && uid == bob.userID
	})
	// The retired key's tokens live on everywhere.
	if status, _ := pgProxied(t, baseB, alice.access, up); status != http.StatusOK {
		t.Errorf("a token of the retired key on B: %d", status)
	}

	// A logout on A is honoured on B within 5 s.
	out2, err := pgPost(baseA, "/auth/logout", map[string]string{"refresh_token": alice.refresh}, alice.access)
	if err != nil || out2.status != http.StatusNoContent {
		t.Fatalf("logout on A: %v %d %s", err, out2.status, out2.body)
	}
	waitFor(t, "B refuses the logged-out access token", 5*time.Second, func() bool {
		status, _ := pgProxied(t, baseB, alice.access, up)
		return status == http.StatusUnauthorized
	})
	if r, err := pgPost(baseB, "/auth/refresh", map[string]string{"refresh_token": alice.refresh}, ""); err != nil || r.status != http.StatusUnauthorized {
		t.Errorf("B refreshed a logged-out session: %v %d %s", err, r.status, r.body)
	}
	if status, _ := pgProxied(t, baseB, bob.access, up); status != http.StatusOK {
		t.Errorf("another user's token on B after the logout: %d", status)
	}

	// Concurrent first logins of one openid, one through each replica at
	// the same moment, create exactly one user. Each round is a new openid:
	// only a user's first login races to create it.
	type answer struct {
		tokens pgTokens
		err    error
	}
	raceIDs := map[string]bool{}
	for round := range 4 {
		openid := fmt.Sprintf("o-replica-race-%d", round)
		codes := []string{
			wxIssue(t, sim, simulator.CodeRequest{OpenID: openid}).Code,
			wxIssue(t, sim, simulator.CodeRequest{OpenID: openid}).Code,
		}
		start := make(chan struct{})
		answers := make([]answer, 2)
		var wg sync.WaitGroup
		for i, base := range []string{baseA, baseB} {
			wg.Go(func() {
				<-start
				answers[i].tokens, answers[i].err = pgPost(base, "/auth/wx/login", wxLogin{Code: codes[i]}, "")
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i, ans := range answers {
			if ans.err != nil || ans.tokens.status != http.StatusOK {
				t.Fatalf("round %d, replica %d: %v %d %s", round, i, ans.err, ans.tokens.status, ans.tokens.body)
			}
			if ans.tokens.newUser {
				created++
			}
		}
		if answers[0].tokens.userID != answers[1].tokens.userID || created != 1 {
			t.Errorf("round %d: user ids %s and %s, %d answers say new_user (want one user, created once)",
				round, answers[0].tokens.userID, answers[1].tokens.userID, created)
		}
		raceIDs[answers[0].tokens.userID] = true
	}
	// The store agrees: alice, bob and one user per round, no more.
	list := mustCLI(t, "", "users", "list", "-config", cfg)
	rows := strings.Split(strings.TrimSpace(list), "\n")[1:]
	if len(rows) != 2+len(raceIDs) || len(raceIDs) != 4 {
		t.Errorf("users list has %d users, want %d:\n%s", len(rows), 2+4, list)
	}
	for _, row := range rows {
		if f := strings.Fields(row); len(f) < 3 || f[2] != "yes" {
			t.Errorf("users list row %q: want a WeChat user", row)
		}
	}
}

// TestEndToEndReplicasRotateOneAtATime runs two replicas whose signing key
// comes due every 2 s: they rotate it automatically, and never both for the
// same due key.
func TestEndToEndReplicasRotateOneAtATime(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	_, wx := pgWeChat(t)
	up := newUpstream(t)
	const rotateEvery = 2 * time.Second
	cfg := pgConfig(t, pgParams{DSN: dsn, WeChat: wx, Upstream: up.URL, AccessTTL: "2s", RotateEvery: rotateEvery.String()})

	// The CLI creates the schema and the first key, so that the replicas
	// start fast and one right after the other: their key-upkeep tickers
	// then fire close together, which is when two of them could rotate the
	// same due key without the rotation lock.
	began := time.Now()
	if keys := pgKeys(t, cfg); len(keys) != 1 || keys[0].state != "active" {
		t.Fatalf("first key: %+v", keys)
	}
	a := startFrontdoor(t, cfg)
	b := startFrontdoor(t, cfg)
	time.Sleep(12 * time.Second)
	// Stopped, the replicas rotate nothing more while the keys are counted.
	pgStop(t, a)
	pgStop(t, b)
	elapsed := time.Since(began)
	keys := pgKeys(t, cfg)

	// keys list shows whole seconds, newest first. A rotation happens only
	// once the active key has signed for rotate_every, so rotations by turns
	// are at least 2 s apart, which shows as at least 2 s; a duplicate (two
	// replicas rotating one due key) would be well under rotate_every/2 =
	// 1 s apart, which shows as at most 1 s.
	minGap := rotateEvery/2 + time.Second
	if len(keys) < 2 {
		t.Fatalf("no automatic rotation in %v: %+v", elapsed.Round(time.Second), keys)
	}
	if most := int(elapsed/rotateEvery) + 2; len(keys) > most {
		t.Errorf("%d keys after %v, want at most %d", len(keys), elapsed.Round(time.Second), most)
	}
	active := 0
	for i, k := range keys {
		if k.state == "active" {
			active++
		}
		if i > 0 {
			if gap := keys[i-1].activated.Sub(k.activated); gap < minGap {
				t.Errorf("keys %s and %s activated %v apart: a duplicate rotation", k.kid, keys[i-1].kid, gap)
			}
		}
	}
	if active != 1 || keys[0].state != "active" {
		t.Errorf("want exactly one active key, the newest: %+v", keys)
	}
	// A rotation that collided with another's would surface as a failed key
	// upkeep in the log.
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if logs := in.settledLogs(t); strings.Contains(logs, `"msg":"refresh signing keys"`) {
			t.Errorf("replica %s failed its key upkeep:\n%s", name, logs)
		}
	}
	t.Logf("%d keys in %v", len(keys), elapsed.Round(time.Second))
}
