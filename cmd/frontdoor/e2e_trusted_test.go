package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ssoIssuer is an external identity provider: an RSA key published as a
// JWKS over loopback HTTP, counting how often frontdoor fetches it.
type ssoIssuer struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	kid     string
	fetches atomic.Int64
}

func newSSOIssuer(t *testing.T) *ssoIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &ssoIssuer{key: key, kid: "sso-key-1"}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		b64 := base64.RawURLEncoding.EncodeToString
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": s.kid,
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// sign mints a token of the SSO with claims over sensible defaults.
func (s *ssoIssuer) sign(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": "https://sso.test", "aud": "frontdoor", "sub": "sso-user-7",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		"realm_access": map[string]any{"roles": []string{"author"}},
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const trustedSection = `trusted_issuers:
  - issuer: "https://sso.test"
    jwks_url: "%s"
    audience: "frontdoor"
    roles_claim: "realm_access.roles"
    unknown_kid_interval: 1m
  - issuer: "https://down.test"
    jwks_url: "%s"
    audience: "frontdoor"
`

// TestEndToEndTrustedIssuers runs the binary with an external issuer whose
// tokens it must accept, map and still police, and one whose JWKS cannot be
// fetched, whose tokens it must refuse.
func TestEndToEndTrustedIssuers(t *testing.T) {
	up := newUpstream(t)
	sso := newSSOIssuer(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + closed.Addr().String() + "/jwks.json"
	closed.Close()

	cfgPath := writeConfig(t, up.URL)
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	withTrusted := string(base) + fmt.Sprintf(trustedSection, sso.srv.URL+"/jwks.json", downURL)
	if err := os.WriteFile(cfgPath, []byte(withTrusted), 0o600); err != nil {
		t.Fatal(err)
	}
	fd := startFrontdoor(t, cfgPath)
	url := "http://" + fd.addr

	good := sso.sign(t, sso.kid, nil)
	t.Run("accepted and mapped", func(t *testing.T) {
		resp, _ := do(t, "POST", url+"/api/articles/9", good, map[string]string{"X-User-Id": "1"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200 (author may publish)", resp.StatusCode)
		}
		got := up.last(t)
		if id, roles := got.Header.Values("X-User-Id"), got.Header.Get("X-User-Roles"); len(id) != 1 || id[0] != "sso-user-7" || roles != "author" {
			t.Fatalf("upstream saw X-User-Id %q, X-User-Roles %q", id, roles)
		}
	})

	refusals := []struct {
		name   string
		tok    string
		status int
	}{
		{"roles below the route", sso.sign(t, sso.kid, jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"subscriber"}}}), 403},
		{"no roles claim", sso.sign(t, sso.kid, jwt.MapClaims{"realm_access": nil}), 403},
		{"wrong audience", sso.sign(t, sso.kid, jwt.MapClaims{"aud": "miniprogram"}), 401},
		{"expired", sso.sign(t, sso.kid, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), 401},
		{"untrusted issuer", sso.sign(t, sso.kid, jwt.MapClaims{"iss": "https://evil.test"}), 401},
		// The SSO's key must not vouch for frontdoor's own issuer.
		{"our issuer, their key", sso.sign(t, sso.kid, jwt.MapClaims{"iss": "http://frontdoor.test", "aud": "miniprogram", "sub": "1"}), 401},
		// Fail closed: the second issuer's JWKS cannot be fetched.
		{"issuer whose JWKS is down", sso.sign(t, sso.kid, jwt.MapClaims{"iss": "https://down.test"}), 401},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			resp, _ := do(t, "POST", url+"/api/articles/9", tc.tok, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if up.count() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}

	t.Run("not a local user", func(t *testing.T) {
		// /auth/ acts on frontdoor's own users; an SSO subject is not one.
		resp, _ := do(t, "GET", url+"/auth/me", good, nil)
		if resp.StatusCode != 401 {
			t.Fatalf("/auth/me with an SSO token: status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("unknown kid flood", func(t *testing.T) {
		before := sso.fetches.Load()
		for i := range 40 {
			tok := sso.sign(t, fmt.Sprintf("random-kid-%d", i), nil)
			resp, _ := do(t, "GET", url+"/api/articles/1", tok, nil)
			if resp.StatusCode != 401 {
				t.Fatalf("token with an unknown kid: status %d, want 401", resp.StatusCode)
			}
		}
		if n := sso.fetches.Load() - before; n > 1 {
			t.Fatalf("40 unknown kids caused %d JWKS fetches; at most 1 per unknown_kid_interval", n)
		}
	})

	t.Run("removed by reload", func(t *testing.T) {
		if err := os.WriteFile(cfgPath, base, 0o600); err != nil {
			t.Fatal(err)
		}
		fd.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "SSO token refused after its issuer was removed", 10*time.Second, func() bool {
			resp, _ := do(t, "GET", url+"/api/articles/1", good, nil)
			return resp.StatusCode == 401
		})
		if !strings.Contains(fd.settledLogs(t), `"config reloaded"`) {
			t.Fatal("no reload was logged")
		}
	})
}
