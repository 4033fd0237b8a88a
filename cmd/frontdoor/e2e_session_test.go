package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sessionEnv is a running server with one password user.
type sessionEnv struct {
	cfg, base, admin string
	up               *upstreamRecorder
	fd               *instance
}

func startSessionEnv(t *testing.T, roles string) *sessionEnv {
	t.Helper()
	up := newUpstream(t)
	cfg, _ := writePasswordConfig(t, up.URL)
	mustCLI(t, "correct horse battery\n", "users", "add", "-config", cfg, "-username", "alice", "-roles", roles)
	fd := startFrontdoor(t, cfg)
	return &sessionEnv{cfg: cfg, base: "http://" + fd.addr, admin: "http://" + fd.admin, up: up, fd: fd}
}

type tokenPair struct {
	status  int
	access  string
	refresh string
	body    string
}

func (e *sessionEnv) post(t *testing.T, path string, body any, bearerTok string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearerTok != "" {
		req.Header.Set("Authorization", "Bearer "+bearerTok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func pairOf(t *testing.T, status int, body string) tokenPair {
	t.Helper()
	p := tokenPair{status: status, body: body}
	if status != 200 {
		return p
	}
	var tr struct {
		AccessToken      string `json:"access_token"`
		RefreshToken     string `json:"refresh_token"`
		RefreshExpiresIn int64  `json:"refresh_expires_in"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.RefreshToken == "" || tr.RefreshExpiresIn <= 0 {
		t.Fatalf("token response without a refresh token: %s", body)
	}
	p.access, p.refresh = tr.AccessToken, tr.RefreshToken
	return p
}

func (e *sessionEnv) login(t *testing.T) tokenPair {
	t.Helper()
	status, body := e.post(t, "/auth/login", map[string]string{"username": "alice", "password": "correct horse battery"}, "")
	p := pairOf(t, status, body)
	if p.status != 200 {
		t.Fatalf("login: %d %s", status, body)
	}
	return p
}

func (e *sessionEnv) refresh(t *testing.T, rt string) tokenPair {
	t.Helper()
	status, body := e.post(t, "/auth/refresh", map[string]string{"refresh_token": rt}, "")
	return pairOf(t, status, body)
}

// publish is a request only a token with publish_posts passes.
func (e *sessionEnv) publish(t *testing.T, access string) int {
	t.Helper()
	resp, _ := do(t, "POST", e.base+"/api/articles/1", access, nil)
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEndToEndRefreshRotationAndReuse(t *testing.T) {
	e := startSessionEnv(t, "author")
	first := e.login(t)
	second := e.refresh(t, first.refresh)
	if second.status != 200 || second.refresh == first.refresh || second.access == first.access {
		t.Fatalf("refresh: %d %s", second.status, second.body)
	}
	if amr := wxClaims(t, second.access)["amr"]; amr == nil || amr.([]any)[0] != "pwd" {
		t.Errorf("refreshed token amr %v, want the login's [pwd]", amr)
	}
	if e.publish(t, second.access) != 200 {
		t.Fatal("refreshed access token refused")
	}
	// The rotated token is dead; presenting it again is a theft signal
	// that ends the whole session, newest token included.
	if reused := e.refresh(t, first.refresh); reused.status != 401 || !strings.Contains(reused.body, "invalid_grant") {
		t.Fatalf("reuse: %d %s", reused.status, reused.body)
	}
	if after := e.refresh(t, second.refresh); after.status != 401 {
		t.Fatalf("newest token after reuse: %d %s", after.status, after.body)
	}
	_, metrics := do(t, "GET", e.admin+"/metrics", "", nil)
	for _, want := range []string{`frontdoor_refreshes_total{result="ok"} 1`, `frontdoor_refreshes_total{result="reused"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Bad input.
	for _, body := range []any{map[string]string{}, map[string]string{"refresh_token": "nope"}} {
		status, out := e.post(t, "/auth/refresh", body, "")
		if status != 400 && status != 401 {
			t.Errorf("refresh %v: %d %s", body, status, out)
		}
	}
}

func TestEndToEndConcurrentRefreshOneWins(t *testing.T) {
	e := startSessionEnv(t, "author")
	p := e.login(t)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"refresh_token": p.refresh})
			resp, err := http.Post(e.base+"/auth/refresh", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			} else if resp.StatusCode != 401 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent refreshes of one token succeeded, want exactly 1", ok.Load())
	}
}

func TestEndToEndLogoutIsImmediate(t *testing.T) {
	e := startSessionEnv(t, "author")
	p := e.login(t)
	if e.publish(t, p.access) != 200 {
		t.Fatal("fresh token refused")
	}
	if status, body := e.post(t, "/auth/logout", map[string]string{"refresh_token": p.refresh}, p.access); status != 204 {
		t.Fatalf("logout: %d %s", status, body)
	}
	// The very next request with the access token is refused.
	if s := e.publish(t, p.access); s != 401 {
		t.Fatalf("access token after logout: %d", s)
	}
	resp, _ := do(t, "GET", e.base+"/api/articles/1", p.access, nil)
	if resp.StatusCode != 401 {
		t.Errorf("optional route with a logged-out token: %d (an invalid token is never anonymous)", resp.StatusCode)
	}
	if r := e.refresh(t, p.refresh); r.status != 401 {
		t.Fatalf("refresh after logout: %d", r.status)
	}
	// Logging out again, or with an unknown token, is harmless.
	if status, _ := e.post(t, "/auth/logout", map[string]string{"refresh_token": p.refresh}, ""); status != 204 {
		t.Errorf("second logout: %d", status)
	}
	// Another session of the same user is unaffected.
	other := e.login(t)
	if e.publish(t, other.access) != 200 {
		t.Error("logout ended another session")
	}
}

func TestEndToEndCutoffAfterCLIChanges(t *testing.T) {
	e := startSessionEnv(t, "author")
	p := e.login(t)
	if e.publish(t, p.access) != 200 {
		t.Fatal("fresh token refused")
	}
	// A role change through the CLI, while the server runs, revokes every
	// token issued before it within 5 s.
	mustCLI(t, "", "users", "roles", "-config", e.cfg, "-set", "subscriber", "alice")
	waitFor(t, "old token revoked after a role change", 5*time.Second, func() bool { return e.publish(t, p.access) == 401 })
	// The session lives on with the new roles.
	next := e.refresh(t, p.refresh)
	if next.status != 200 {
		t.Fatalf("refresh after role change: %d %s", next.status, next.body)
	}
	if roles := wxClaims(t, next.access)["roles"].([]any); len(roles) != 1 || roles[0] != "subscriber" {
		t.Fatalf("refreshed roles %v", roles)
	}
	if s := e.publish(t, next.access); s != 403 {
		t.Fatalf("subscriber publishing: %d, want 403", s)
	}
	if resp, _ := do(t, "GET", e.base+"/api/articles/1", next.access, nil); resp.StatusCode != 200 {
		t.Fatalf("subscriber reading: %d", resp.StatusCode)
	}

	// Disabling revokes access tokens and ends refresh sessions.
	mustCLI(t, "", "users", "disable", "-config", e.cfg, "alice")
	waitFor(t, "token revoked after disable", 5*time.Second, func() bool {
		resp, _ := do(t, "GET", e.base+"/api/articles/1", next.access, nil)
		return resp.StatusCode == 401
	})
	if r := e.refresh(t, next.refresh); r.status == 200 {
		t.Fatal("a disabled user refreshed")
	}
	mustCLI(t, "", "users", "enable", "-config", e.cfg, "alice")
	if again := e.login(t); e.publish(t, again.access) != 403 {
		t.Error("re-enabled subscriber should log in and be refused publishing (403)")
	}
}

func TestEndToEndKeyRotationUnderTraffic(t *testing.T) {
	e := startSessionEnv(t, "author")
	before := e.login(t)
	oldKid := kidOf(t, before.access)

	stop := make(chan struct{})
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", e.base+"/api/articles/1", nil)
				req.Header.Set("Authorization", "Bearer "+before.access)
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	out := mustCLI(t, "", "keys", "rotate", "-config", e.cfg)
	var newKid string
	waitFor(t, "new key in the JWKS", 6*time.Second, func() bool {
		for _, k := range jwksKids(t, e.base) {
			if k != oldKid && strings.Contains(out, k) {
				newKid = k
			}
		}
		return newKid != ""
	})
	// New sessions and refreshes are signed by the new key.
	waitFor(t, "new tokens carry the new kid", 6*time.Second, func() bool { return kidOf(t, e.login(t).access) == newKid })
	if r := e.refresh(t, before.refresh); r.status != 200 || kidOf(t, r.access) != newKid {
		t.Fatalf("refresh after rotation: %d, kid %s", r.status, kidOf(t, r.access))
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests with an old-key token failed during rotation", failures.Load(), total.Load())
	}
	if !contains(jwksKids(t, e.base), oldKid) {
		t.Error("the retired key left the JWKS while its tokens are live")
	}
	list := mustCLI(t, "", "keys", "list", "-config", e.cfg)
	if !strings.Contains(list, newKid+"  active") || !strings.Contains(list, oldKid+"  retired") {
		t.Errorf("keys list:\n%s", list)
	}
}
