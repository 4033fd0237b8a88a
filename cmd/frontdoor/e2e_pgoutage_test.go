package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/login/store/storetest"
)

// pgServer is a PostgreSQL server of one test's own, from .ci/postgres.
type pgServer struct {
	dsn, dir, bin string
	host, port    string
}

// startPGServer starts a throwaway PostgreSQL server with .ci/postgres and
// stops it (removing its files) when the test ends. A test that stops and
// restarts the server needs one of its own: the shared CI server serves
// other packages' tests at the same time.
func startPGServer(t *testing.T) *pgServer {
	t.Helper()
	script, err := filepath.Abs("../../.ci/postgres")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, "start")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf(".ci/postgres start: %v\n%s", err, stderr.String())
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		// export NAME='value'; the values hold no quotes.
		name, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			vars[name] = strings.Trim(value, "'")
		}
	}
	s := &pgServer{dsn: vars["FRONTDOOR_TEST_POSTGRES"], dir: vars["FRONTDOOR_PG_DIR"], bin: vars["FRONTDOOR_PG_BIN"]}
	if s.dir != "" {
		t.Cleanup(func() {
			stop := exec.Command(script, "stop")
			stop.Env = append(os.Environ(), "FRONTDOOR_PG_DIR="+s.dir, "FRONTDOOR_PG_BIN="+s.bin)
			if out, err := stop.CombinedOutput(); err != nil {
				t.Errorf(".ci/postgres stop: %v\n%s", err, out)
			}
		})
	}
	u, err := url.Parse(s.dsn)
	if err != nil || s.bin == "" || u.Hostname() == "" || u.Port() == "" {
		t.Fatalf(".ci/postgres start printed:\n%s", stdout.String())
	}
	s.host, s.port = u.Hostname(), u.Port()
	return s
}

// pgCtl runs pg_ctl on the server's cluster as the postgres user (the
// server refuses to run as root).
func (s *pgServer) pgCtl(t *testing.T, args ...string) {
	t.Helper()
	full := append([]string{"-u", "postgres", "--", filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.dir, "data")}, args...)
	if out, err := exec.Command("runuser", full...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *pgServer) stop(t *testing.T) { s.pgCtl(t, "stop", "-m", "fast") }

// start restarts the server and waits until it accepts TCP connections.
func (s *pgServer) start(t *testing.T) {
	t.Helper()
	s.pgCtl(t, "-l", filepath.Join(s.dir, "log"), "start")
	waitFor(t, "PostgreSQL accepts connections again", 30*time.Second, func() bool {
		return exec.Command(filepath.Join(s.bin, "pg_isready"), "-q", "-h", s.host, "-p", s.port, "-U", "postgres").Run() == nil
	})
}

// pgReadyz returns /readyz's status and its "store" field.
func pgReadyz(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, body := do(t, http.MethodGet, "http://"+admin+"/readyz", "", nil)
	var r struct {
		Ready bool   `json:"ready"`
		Store string `json:"store"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("readyz %d %q: %v", resp.StatusCode, body, err)
	}
	if r.Ready != (resp.StatusCode == http.StatusOK) {
		t.Errorf("readyz %d says ready %v", resp.StatusCode, r.Ready)
	}
	return resp.StatusCode, r.Store
}

// pgStoreUp returns the value of the frontdoor_store_up gauge.
func pgStoreUp(t *testing.T, admin string) string {
	t.Helper()
	_, metrics := do(t, http.MethodGet, "http://"+admin+"/metrics", "", nil)
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "frontdoor_store_up "); ok {
			return v
		}
	}
	t.Fatal("metrics lack frontdoor_store_up")
	return ""
}

// pgWantUnavailable asserts the answer of a login or refresh while the store
// is down: 503 temporarily_unavailable in the documented error shape, given
// well within the deadline rather than after hanging on the database.
func pgWantUnavailable(t *testing.T, what string, got pgTokens, err error, took time.Duration) {
	t.Helper()
	const deadline = 5 * time.Second
	if err != nil {
		t.Fatalf("%s during the outage: %v (after %v)", what, err, took)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal([]byte(got.body), &e) != nil || got.status != http.StatusServiceUnavailable ||
		e.Error != "temporarily_unavailable" || e.Description == "" {
		t.Errorf("%s during the outage: %d %s, want 503 temporarily_unavailable", what, got.status, got.body)
	}
	if took > deadline {
		t.Errorf("%s during the outage answered after %v, want within %v", what, took, deadline)
	}
	t.Logf("%s during the outage: %d after %v", what, got.status, took.Round(time.Millisecond))
}

// TestEndToEndPostgresOutage stops the database under a running frontdoor:
// valid tokens keep being proxied, logins and refreshes answer 503, the
// outage is reported but does not make the replica unready, and everything
// works again once the database is back, without a restart and without
// losing a user or a session.
func TestEndToEndPostgresOutage(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: skipping PostgreSQL tests (.ci/postgres start sets it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the outage test starts and stops a PostgreSQL server of its own, which needs root (runuser -u postgres)")
	}
	pg := startPGServer(t)
	sim, wx := pgWeChat(t)
	up := newUpstream(t)
	// frontdoor creates its schema in the new server's postgres database.
	// Short timeouts, so that a failure to reach the server is quick.
	cfg := pgConfig(t, pgParams{DSN: pg.dsn, WeChat: wx, Upstream: up.URL, ConnectTimeout: "1s", StatementTimeout: "2s"})
	fd := startFrontdoor(t, cfg)
	base := "http://" + fd.addr

	// Two sessions: the first one's refresh token is not used until the
	// database is back; the second one's is tried during the outage.
	kept := pgMustLogin(t, sim, base, "o-outage-kept")
	tried := pgMustLogin(t, sim, base, "o-outage-tried")
	// A valid token that frontdoor has never seen, so not in any cache.
	const mintedSub = "9001"
	minted := mint(t, cfg, mintedSub, "subscriber")
	if status, store := pgReadyz(t, fd.admin); status != http.StatusOK || store != "up" {
		t.Fatalf("before the outage: readyz %d, store %q", status, store)
	}

	pg.stop(t)
	stopped := time.Now()

	tokens := []struct {
		name, tok, sub string
	}{
		{"login's access token", kept.access, kept.userID},
		{"minted token", minted, mintedSub},
	}
	proxyAll := func(when string) {
		t.Helper()
		for _, c := range tokens {
			for i := range 3 {
				if status, uid := pgProxied(t, base, c.tok, up); status != http.StatusOK || uid != c.sub {
					t.Errorf("%s, %s, request %d: %d, X-User-Id %q, want 200 and %q", when, c.name, i+1, status, uid, c.sub)
				}
			}
		}
	}
	proxyAll("database just stopped")

	began := time.Now()
	got, err := pgPost(base, "/auth/wx/login", wxLogin{Code: wxIssue(t, sim, simulator.CodeRequest{OpenID: "o-outage-new"}).Code}, "")
	pgWantUnavailable(t, "a new login", got, err, time.Since(began))
	began = time.Now()
	got, err = pgPost(base, "/auth/refresh", map[string]string{"refresh_token": tried.refresh}, "")
	pgWantUnavailable(t, "a refresh", got, err, time.Since(began))

	// The store is reported down within 10 s; the replica stays ready,
	// since proxying does not need the store.
	waitFor(t, "readyz reports the store down", 10*time.Second, func() bool {
		status, store := pgReadyz(t, fd.admin)
		if status != http.StatusOK {
			t.Fatalf("readyz %d during the outage: a store outage must not make the replica unready", status)
		}
		return store == "down"
	})
	t.Logf("store reported down %v after the database stopped", time.Since(stopped).Round(100*time.Millisecond))
	if v := pgStoreUp(t, fd.admin); v != "0" {
		t.Errorf("frontdoor_store_up %s during the outage, want 0", v)
	}
	// By now revocation syncs have failed for seconds: proxying goes on.
	proxyAll("store reported down")
	if !contains(jwksKids(t, base), kidOf(t, kept.access)) {
		t.Error("the JWKS lost the signing key during the outage")
	}

	pg.start(t)
	restarted := time.Now()
	waitFor(t, "readyz and frontdoor_store_up report the store up", 15*time.Second, func() bool {
		status, store := pgReadyz(t, fd.admin)
		return status == http.StatusOK && store == "up" && pgStoreUp(t, fd.admin) == "1"
	})

	t.Logf("store reported up %v after the database accepted connections again", time.Since(restarted).Round(100*time.Millisecond))

	// Logins work again, and the users from before the outage are there.
	// The login that failed created nobody.
	again := pgMustLogin(t, sim, base, "o-outage-kept")
	if again.newUser || again.userID != kept.userID {
		t.Errorf("login of a user from before the outage: %s, want user %s, not new", again.body, kept.userID)
	}
	if fresh := pgMustLogin(t, sim, base, "o-outage-new"); !fresh.newUser {
		t.Errorf("the login refused during the outage created its user: %s", fresh.body)
	}
	// Both refresh tokens still refresh: the one never used, and the one
	// whose refresh failed with 503, which therefore did not spend it.
	var refreshed pgTokens
	for _, s := range []struct {
		name    string
		session pgTokens
	}{{"unused", kept}, {"tried during the outage", tried}} {
		r, err := pgPost(base, "/auth/refresh", map[string]string{"refresh_token": s.session.refresh}, "")
		if err != nil || r.status != http.StatusOK || r.userID != s.session.userID {
			t.Fatalf("refresh token %s, after the outage: %v %d %s", s.name, err, r.status, r.body)
		}
		if s.session.refresh == kept.refresh {
			refreshed = r
		}
	}

	// Logout works: the session ends and its access token is refused.
	out, err := pgPost(base, "/auth/logout", map[string]string{"refresh_token": refreshed.refresh}, refreshed.access)
	if err != nil || out.status != http.StatusNoContent {
		t.Fatalf("logout after the outage: %v %d %s", err, out.status, out.body)
	}
	if status, _ := pgProxied(t, base, refreshed.access, up); status != http.StatusUnauthorized {
		t.Errorf("access token after logout: %d, want 401", status)
	}
	if r, err := pgPost(base, "/auth/refresh", map[string]string{"refresh_token": refreshed.refresh}, ""); err != nil || r.status != http.StatusUnauthorized {
		t.Errorf("refresh after logout: %v %d %s", err, r.status, r.body)
	}
}
