package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/yaml.v3"
)

const (
	testIssuer   = "https://sso.example.com"
	testAudience = "frontdoor"
)

// testKey is a signing key of a trusted issuer.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newTestKey(t *testing.T, kid string, method jwt.SigningMethod) *testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch method.Alg() {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		var ed ed25519.PrivateKey
		_, ed, err = ed25519.GenerateKey(rand.Reader)
		priv = ed
	default:
		t.Fatalf("no key type for %s", method.Alg())
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: method, priv: priv}
}

// jwk returns k's public key as a JWK with use "sig" and the given alg ("":
// none, except that jwkset always names EdDSA).
func (k *testKey) jwk(t *testing.T, alg string) jwkset.JWK {
	t.Helper()
	return k.jwkUse(t, alg, jwkset.UseSig)
}

func (k *testKey) jwkUse(t *testing.T, alg string, use jwkset.USE) jwkset.JWK {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(alg), USE: use},
	})
	if err != nil {
		t.Fatalf("JWK of %s: %v", k.kid, err)
	}
	return j
}

// sign returns a signer with k's method and key, for forgeTrusted.
func (k *testKey) sign() signer {
	return func(t testing.TB, input string) string {
		sig, err := k.method.Sign(input, k.priv)
		if err != nil {
			t.Fatalf("sign with %s: %v", k.kid, err)
		}
		return b64(sig)
	}
}

// token signs claims with k under the header {"alg","kid","typ"}, changed by
// editH if given.
func (k *testKey) token(t *testing.T, claims map[string]any, editH func(h map[string]any)) string {
	t.Helper()
	h := map[string]any{"alg": k.method.Alg(), "kid": k.kid, "typ": "JWT"}
	if editH != nil {
		editH(h)
	}
	return forgeTrusted(t, h, claims, k.sign())
}

func forgeTrusted(t *testing.T, header, claims map[string]any, sign signer) string {
	t.Helper()
	input := segment(t, header) + "." + segment(t, claims)
	return input + "." + sign(t, input)
}

func jwksBody(t *testing.T, keys ...jwkset.JWK) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer serves a JWKS that the test can change or break, and counts the
// requests it gets.
type jwksServer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	status  atomic.Int64 // 0: 200 with the body
	body    atomic.Pointer[[]byte]
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	return startJWKSServer(t, body, nil)
}

// startJWKSServer serves on l, or on a new loopback port if l is nil.
func startJWKSServer(t *testing.T, body []byte, l net.Listener) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.body.Store(&body)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if st := s.status.Load(); st != 0 {
			http.Error(w, "unavailable", int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.body.Load())
	}))
	if l != nil {
		s.srv.Listener.Close()
		s.srv.Listener = l
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) url() string                            { return s.srv.URL + "/.well-known/jwks.json" }
func (s *jwksServer) setBody(b []byte)                       { s.body.Store(&b) }
func (s *jwksServer) count() int64                           { return s.fetches.Load() }
func (s *jwksServer) setStatus(code int64)                   { s.status.Store(code) }
func (s *jwksServer) serve(t *testing.T, keys ...jwkset.JWK) { s.setBody(jwksBody(t, keys...)) }

// trustedEnv is a TrustedIssuers trusting testIssuer, whose JWKS srv serves.
type trustedEnv struct {
	clock *clock
	srv   *jwksServer
	ti    *TrustedIssuers
	cfg   TrustedIssuerConfig

	mu          sync.Mutex
	refreshErrs []refreshErr
}

// refreshErr is one call of OnRefreshError.
type refreshErr struct {
	issuer string
	err    error
}

// newTrustedEnv trusts testIssuer, whose JWKS srv serves (if srv is nil,
// edit sets jwks_url), with roles_claim realm_access.roles and the changes
// of edit. Like Set, it does not wait for the first fetch.
func newTrustedEnv(t *testing.T, srv *jwksServer, edit func(*TrustedIssuerConfig)) *trustedEnv {
	t.Helper()
	e := &trustedEnv{clock: newClock(t0), srv: srv}
	e.ti = NewTrustedIssuers(TrustedOptions{
		Now: e.clock.Now,
		OnRefreshError: func(issuer string, err error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.refreshErrs = append(e.refreshErrs, refreshErr{issuer: issuer, err: err})
		},
	})
	t.Cleanup(e.ti.Close)
	e.cfg = TrustedIssuerConfig{Issuer: testIssuer, Audience: testAudience, RolesClaim: "realm_access.roles"}
	if srv != nil {
		e.cfg.JWKSURL = srv.url()
	}
	e.cfg.ApplyDefaults()
	if edit != nil {
		edit(&e.cfg)
	}
	e.set(t, e.cfg)
	return e
}

func (e *trustedEnv) set(t *testing.T, list ...TrustedIssuerConfig) {
	t.Helper()
	if err := e.ti.Set(context.Background(), list); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

func (e *trustedEnv) verify(raw string) (*Claims, error) {
	return e.ti.Verify(context.Background(), raw, testIssuer)
}

// mustVerify verifies raw, which must be accepted.
func (e *trustedEnv) mustVerify(t *testing.T, raw string) *Claims {
	t.Helper()
	c, err := e.verify(raw)
	checkVerify(t, raw, c, err, "")
	return c
}

func (e *trustedEnv) errs() []refreshErr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.refreshErrs)
}

// claims are those of a valid token of testIssuer at the env's time.
func (e *trustedEnv) claims() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{
		"iss": testIssuer, "aud": []string{"account", testAudience}, "sub": "u-7",
		"exp": now + 300, "iat": now, "nbf": now, "jti": "j-7",
		"realm_access": map[string]any{"roles": []string{"editor", "author"}},
		"amr":          []string{"pwd", "otp"},
	}
}

// with returns e.claims() changed by edit.
func (e *trustedEnv) with(edit func(c map[string]any)) map[string]any {
	c := e.claims()
	edit(c)
	return c
}

// eventually retries f until it succeeds or 10s have passed, for what the
// background JWKS fetches do on their own schedule.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 10s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTrustedIssuerConfigDefaults(t *testing.T) {
	var c TrustedIssuerConfig
	c.ApplyDefaults()
	want := TrustedIssuerConfig{UserIDClaim: "sub", RefreshInterval: time.Hour, UnknownKIDInterval: time.Minute}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	set := TrustedIssuerConfig{UserIDClaim: "uid", RefreshInterval: 2 * time.Hour, UnknownKIDInterval: 5 * time.Second}
	got := set
	got.ApplyDefaults()
	if got != set {
		t.Errorf("ApplyDefaults changed set fields: %+v", got)
	}
}

// TestTrustedIssuerConfigYAML decodes the example of DESIGN.md strictly, so a
// wrong yaml tag is an unknown field.
func TestTrustedIssuerConfigYAML(t *testing.T) {
	const doc = `
- issuer: "https://sso.example.com"
  jwks_url: "https://sso.example.com/.well-known/jwks.json"
  audience: "frontdoor"
  roles_claim: "realm_access.roles"
  user_id_claim: "uid"
  refresh_interval: 2h
  unknown_kid_interval: 30s
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var list []TrustedIssuerConfig
	if err := dec.Decode(&list); err != nil {
		t.Fatal(err)
	}
	want := []TrustedIssuerConfig{{
		Issuer: "https://sso.example.com", JWKSURL: "https://sso.example.com/.well-known/jwks.json",
		Audience: "frontdoor", RolesClaim: "realm_access.roles", UserIDClaim: "uid",
		RefreshInterval: 2 * time.Hour, UnknownKIDInterval: 30 * time.Second,
	}}
	if !slices.Equal(list, want) {
		t.Errorf("decoded %+v, want %+v", list, want)
	}
}

func TestValidateTrustedIssuers(t *testing.T) {
	const own = "http://localhost:8080"
	valid := func() TrustedIssuerConfig {
		c := TrustedIssuerConfig{Issuer: testIssuer, JWKSURL: "https://sso.example.com/jwks", Audience: testAudience, RolesClaim: "realm_access.roles"}
		c.ApplyDefaults()
		return c
	}
	second := func() TrustedIssuerConfig {
		c := valid()
		c.Issuer = "https://other.example.com"
		return c
	}
	one := func(edit func(*TrustedIssuerConfig)) []TrustedIssuerConfig {
		c := valid()
		edit(&c)
		return []TrustedIssuerConfig{c}
	}
	tests := []struct {
		name     string
		list     []TrustedIssuerConfig
		wantPath string // "" = valid
	}{
		{name: "none", list: nil},
		{name: "one", list: one(func(*TrustedIssuerConfig) {})},
		{name: "two", list: []TrustedIssuerConfig{valid(), second()}},
		{name: "no roles claim", list: one(func(c *TrustedIssuerConfig) { c.RolesClaim = "" })},
		{name: "namespaced roles claim", list: one(func(c *TrustedIssuerConfig) { c.RolesClaim = "https://example.com/roles" })},
		{name: "http to 127.0.0.1", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://127.0.0.1:8081/jwks" })},
		{name: "http to ::1", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://[::1]:8081/jwks" })},
		{name: "http to localhost", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://LocalHost/jwks" })},
		{name: "minimum intervals", list: one(func(c *TrustedIssuerConfig) { c.RefreshInterval, c.UnknownKIDInterval = time.Minute, time.Second })},

		{name: "empty issuer", list: one(func(c *TrustedIssuerConfig) { c.Issuer = "" }), wantPath: "trusted_issuers[0].issuer"},
		{name: "own issuer", list: one(func(c *TrustedIssuerConfig) { c.Issuer = own }), wantPath: "trusted_issuers[0].issuer"},
		{name: "duplicate issuer", list: []TrustedIssuerConfig{valid(), second(), valid()}, wantPath: "trusted_issuers[2].issuer"},
		{name: "empty jwks_url", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "relative jwks_url", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "jwks_url without scheme", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "sso.example.com/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "ftp jwks_url", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "ftp://sso.example.com/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "http to a remote host", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://sso.example.com/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "http to a private address", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://10.0.0.1/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "http to another loopback address", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "http://127.0.0.2/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "jwks_url without host", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "https:///jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "jwks_url with user info", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "https://u:p@sso.example.com/jwks" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "unparsable jwks_url", list: one(func(c *TrustedIssuerConfig) { c.JWKSURL = "https://sso.example.com:port/" }), wantPath: "trusted_issuers[0].jwks_url"},
		{name: "empty audience", list: one(func(c *TrustedIssuerConfig) { c.Audience = "" }), wantPath: "trusted_issuers[0].audience"},
		{name: "roles claim with empty name", list: one(func(c *TrustedIssuerConfig) { c.RolesClaim = "realm_access..roles" }), wantPath: "trusted_issuers[0].roles_claim"},
		{name: "roles claim with leading dot", list: one(func(c *TrustedIssuerConfig) { c.RolesClaim = ".roles" }), wantPath: "trusted_issuers[0].roles_claim"},
		{name: "roles claim with trailing dot", list: one(func(c *TrustedIssuerConfig) { c.RolesClaim = "roles." }), wantPath: "trusted_issuers[0].roles_claim"},
		{name: "empty user id claim", list: one(func(c *TrustedIssuerConfig) { c.UserIDClaim = "" }), wantPath: "trusted_issuers[0].user_id_claim"},
		{name: "user id claim with empty name", list: one(func(c *TrustedIssuerConfig) { c.UserIDClaim = "ext..uid" }), wantPath: "trusted_issuers[0].user_id_claim"},
		{name: "refresh_interval below 1m", list: one(func(c *TrustedIssuerConfig) { c.RefreshInterval = 59 * time.Second }), wantPath: "trusted_issuers[0].refresh_interval"},
		{name: "negative refresh_interval", list: one(func(c *TrustedIssuerConfig) { c.RefreshInterval = -time.Hour }), wantPath: "trusted_issuers[0].refresh_interval"},
		{name: "unknown_kid_interval below 1s", list: one(func(c *TrustedIssuerConfig) { c.UnknownKIDInterval = 500 * time.Millisecond }), wantPath: "trusted_issuers[0].unknown_kid_interval"},
		{name: "error in the second entry", list: []TrustedIssuerConfig{valid(), func() TrustedIssuerConfig { c := second(); c.Audience = ""; return c }()}, wantPath: "trusted_issuers[1].audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTrustedIssuers(tt.list, own)
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("ValidateTrustedIssuers: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ValidateTrustedIssuers accepted it")
			}
			var p interface{ ConfigPath() string }
			if !errors.As(err, &p) {
				t.Fatalf("error %v has no ConfigPath", err)
			}
			if p.ConfigPath() != tt.wantPath || !strings.HasPrefix(err.Error(), tt.wantPath+": ") {
				t.Errorf("error %q at %q, want path %q", err, p.ConfigPath(), tt.wantPath)
			}
		})
	}
}

// TestTrustedVerifyKeyTypes: every asymmetric algorithm verifies, with the
// JWK naming its alg or not.
func TestTrustedVerifyKeyTypes(t *testing.T) {
	keys := []struct {
		key    *testKey
		jwkAlg string
	}{
		{newTestKey(t, "rs256", jwt.SigningMethodRS256), "RS256"},
		{newTestKey(t, "ps512", jwt.SigningMethodPS512), ""},
		{newTestKey(t, "es256", jwt.SigningMethodES256), "ES256"},
		{newTestKey(t, "es384", jwt.SigningMethodES384), ""},
		{newTestKey(t, "es512", jwt.SigningMethodES512), "ES512"},
		{newTestKey(t, "ed", jwt.SigningMethodEdDSA), ""},
	}
	var jwks []jwkset.JWK
	for _, k := range keys {
		jwks = append(jwks, k.key.jwk(t, k.jwkAlg))
	}
	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, jwks...)), nil)
	for _, k := range keys {
		t.Run(k.key.kid, func(t *testing.T) {
			c := e.mustVerify(t, k.key.token(t, e.claims(), nil))
			want := Claims{
				Issuer: testIssuer, Subject: "u-7", Roles: []string{"editor", "author"}, AMR: []string{"pwd", "otp"},
				ID: "j-7", IssuedAt: t0, ExpiresAt: t0.Add(300 * time.Second),
			}
			if !claimsEqual(*c, want) {
				t.Errorf("claims = %+v, want %+v", *c, want)
			}
		})
	}
	if n := e.srv.count(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestTrustedVerifyRefuses(t *testing.T) {
	rsaKey := newTestKey(t, "rsa", jwt.SigningMethodRS256)
	ecKey := newTestKey(t, "ec", jwt.SigningMethodES256)
	edKey := newTestKey(t, "ed", jwt.SigningMethodEdDSA)
	encKey := newTestKey(t, "enc", jwt.SigningMethodRS256)
	weakPriv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakKey := &testKey{kid: "weak", method: jwt.SigningMethodRS256, priv: weakPriv}
	// other is not published; it signs under the published kids.
	other := newTestKey(t, "rsa", jwt.SigningMethodRS256)
	otherEC := newTestKey(t, "ec", jwt.SigningMethodES256)
	// Mismatched algorithms with the published keys.
	rsaPS := &testKey{kid: "rsa", method: jwt.SigningMethodPS256, priv: rsaKey.priv}
	rsa384 := &testKey{kid: "rsa", method: jwt.SigningMethodRS384, priv: rsaKey.priv}

	srv := newJWKSServer(t, jwksBody(t,
		rsaKey.jwk(t, "RS256"), ecKey.jwk(t, ""), edKey.jwk(t, ""),
		encKey.jwkUse(t, "", jwkset.UseEnc), weakKey.jwk(t, "RS256"),
	))
	e := newTrustedEnv(t, srv, nil)
	now := t0.Unix()

	pkix, err := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})

	set := func(name string, v any) map[string]any { return e.with(func(c map[string]any) { c[name] = v }) }
	del := func(name string) map[string]any { return e.with(func(c map[string]any) { delete(c, name) }) }
	header := func(name string, v any) func(h map[string]any) { return func(h map[string]any) { h[name] = v } }
	hdr := func(alg, kid string) map[string]any { return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"} }
	zeroSig := func(n int) signer { return literal(b64(make([]byte, n))) }

	tests := []struct {
		name   string
		token  func() string
		reason string // "" = valid
		is     error  // if set, the error must match it
	}{
		{name: "valid RS256", token: func() string { return rsaKey.token(t, e.claims(), nil) }},
		{name: "valid ES256", token: func() string { return ecKey.token(t, e.claims(), nil) }},
		{name: "valid EdDSA", token: func() string { return edKey.token(t, e.claims(), nil) }},
		{name: "aud a single string", token: func() string { return rsaKey.token(t, set("aud", testAudience), nil) }},
		{name: "expired within leeway", token: func() string { return rsaKey.token(t, set("exp", now-29), nil) }},
		{name: "no iat nbf jti amr roles", token: func() string {
			return rsaKey.token(t, e.with(func(c map[string]any) {
				for _, n := range []string{"iat", "nbf", "jti", "amr", "realm_access"} {
					delete(c, n)
				}
			}), nil)
		}},

		{name: "expired", token: func() string { return rsaKey.token(t, set("exp", now-31), nil) }, reason: ReasonExpired},
		{name: "future nbf", token: func() string { return rsaKey.token(t, set("nbf", now+60), nil) }, reason: ReasonNotYetValid},
		{name: "future iat", token: func() string { return rsaKey.token(t, set("iat", now+60), nil) }, reason: ReasonNotYetValid},
		{name: "no exp", token: func() string { return rsaKey.token(t, del("exp"), nil) }, reason: ReasonClaims},
		{name: "exp a string", token: func() string { return rsaKey.token(t, set("exp", "tomorrow"), nil) }, reason: ReasonClaims},
		{name: "wrong iss", token: func() string { return rsaKey.token(t, set("iss", "https://evil.example"), nil) }, reason: ReasonClaims},
		{name: "no iss", token: func() string { return rsaKey.token(t, del("iss"), nil) }, reason: ReasonClaims},
		{name: "wrong aud", token: func() string { return rsaKey.token(t, set("aud", []string{"account"}), nil) }, reason: ReasonClaims},
		{name: "no aud", token: func() string { return rsaKey.token(t, del("aud"), nil) }, reason: ReasonClaims},

		{name: "HS256 with the public key as secret", token: func() string {
			return forgeTrusted(t, hdr("HS256", "rsa"), e.claims(), hs256(pubPEM))
		}, reason: ReasonAlgorithm, is: errTrustedAlg},
		{name: "alg none", token: func() string { return forgeTrusted(t, hdr("none", "rsa"), e.claims(), literal("")) }, reason: ReasonAlgorithm, is: errTrustedAlg},
		{name: "unknown alg", token: func() string { return forgeTrusted(t, hdr("XS256", "rsa"), e.claims(), zeroSig(32)) }, reason: ReasonAlgorithm},
		{name: "no alg", token: func() string {
			return rsaKey.token(t, e.claims(), func(h map[string]any) { delete(h, "alg") })
		}, reason: ReasonMalformed},
		{name: "PS256 with a key published for RS256", token: func() string { return rsaPS.token(t, e.claims(), nil) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "RS384 with a key published for RS256", token: func() string { return rsa384.token(t, e.claims(), nil) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "ES384 with a P-256 key", token: func() string { return forgeTrusted(t, hdr("ES384", "ec"), e.claims(), zeroSig(96)) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "RS256 with an EC key", token: func() string { return forgeTrusted(t, hdr("RS256", "ec"), e.claims(), zeroSig(256)) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "EdDSA with an EC key", token: func() string { return forgeTrusted(t, hdr("EdDSA", "ec"), e.claims(), zeroSig(64)) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "ES256 with an Ed25519 key", token: func() string { return forgeTrusted(t, hdr("ES256", "ed"), e.claims(), zeroSig(64)) }, reason: ReasonAlgorithm, is: errKeyAlg},
		{name: "RSA key under 2048 bits", token: func() string { return weakKey.token(t, e.claims(), nil) }, reason: ReasonAlgorithm, is: errWeakKey},
		{name: "key for encryption", token: func() string { return encKey.token(t, e.claims(), nil) }, reason: ReasonAlgorithm, is: errKeyUse},

		{name: "no kid", token: func() string {
			return rsaKey.token(t, e.claims(), func(h map[string]any) { delete(h, "kid") })
		}, reason: ReasonUnknownKey},
		{name: "empty kid", token: func() string { return rsaKey.token(t, e.claims(), header("kid", "")) }, reason: ReasonUnknownKey},
		{name: "numeric kid", token: func() string { return rsaKey.token(t, e.claims(), header("kid", 7)) }, reason: ReasonMalformed},
		{name: "unknown kid", token: func() string { return rsaKey.token(t, e.claims(), header("kid", "nope")) }, reason: ReasonUnknownKey, is: errUnknownKID},
		{name: "crit header", token: func() string { return rsaKey.token(t, e.claims(), header("crit", []string{"exp"})) }, reason: ReasonMalformed},

		{name: "signed by another RSA key", token: func() string { return other.token(t, e.claims(), nil) }, reason: ReasonSignature},
		{name: "signed by another EC key", token: func() string { return otherEC.token(t, e.claims(), nil) }, reason: ReasonSignature},
		{name: "claims changed after signing", token: func() string {
			good := strings.Split(rsaKey.token(t, e.claims(), nil), ".")
			return good[0] + "." + segment(t, set("sub", "admin")) + "." + good[2]
		}, reason: ReasonSignature},

		{name: "two segments", token: func() string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, reason: ReasonMalformed},
		{name: "bad base64", token: func() string { return "eyJhbGciOiJSUzI1NiJ9.!!!.sig" }, reason: ReasonMalformed},
		{name: "too long", token: func() string { return strings.Repeat("a", MaxTokenLen+1) }, reason: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token()
			c, err := e.verify(raw)
			checkVerify(t, raw, c, err, tt.reason)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
		})
	}
}

// TestTrustedClaimsMapping: the user id and roles come from the configured
// claims, with the types the issue requires.
func TestTrustedClaimsMapping(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, key.jwk(t, "ES256"))), nil)

	tests := []struct {
		name       string
		roles, uid string // roles_claim and user_id_claim; uid "" = "sub"
		edit       func(c map[string]any)
		wantSub    string
		wantRoles  []string
		wantID     string
		reason     string // "" = valid
	}{
		{name: "defaults", roles: "realm_access.roles", edit: func(map[string]any) {}, wantSub: "u-7", wantRoles: []string{"editor", "author"}, wantID: "j-7"},
		{name: "integer sub", roles: "realm_access.roles", edit: func(c map[string]any) { c["sub"] = 42 }, wantSub: "42", wantRoles: []string{"editor", "author"}, wantID: "j-7"},
		{name: "integer user id beyond float64 precision", uid: "uid", edit: func(c map[string]any) { c["uid"] = json.Number("12345678901234567891") }, wantSub: "12345678901234567891", wantID: "j-7"},
		{name: "negative zero user id", uid: "uid", edit: func(c map[string]any) { c["uid"] = json.Number("-0") }, wantSub: "0", wantID: "j-7"},
		{name: "nested user id", uid: "ext.uid", edit: func(c map[string]any) { c["ext"] = map[string]any{"uid": "x-1"} }, wantSub: "x-1", wantID: "j-7"},
		{name: "namespaced roles claim", roles: "https://example.com/roles", edit: func(c map[string]any) { c["https://example.com/roles"] = []string{"a", "b"} }, wantSub: "u-7", wantRoles: []string{"a", "b"}, wantID: "j-7"},
		{name: "nested under a namespaced claim", roles: "https://example.com/app.roles", edit: func(c map[string]any) {
			c["https://example.com/app"] = map[string]any{"roles": []string{"c"}}
		}, wantSub: "u-7", wantRoles: []string{"c"}, wantID: "j-7"},
		{name: "the longest name present wins", roles: "realm_access.roles", edit: func(c map[string]any) { c["realm_access.roles"] = []string{"flat"} }, wantSub: "u-7", wantRoles: []string{"flat"}, wantID: "j-7"},
		{name: "top-level roles claim", roles: "groups", edit: func(c map[string]any) { c["groups"] = []string{} }, wantSub: "u-7", wantRoles: []string{}, wantID: "j-7"},
		{name: "roles claim missing", roles: "realm_access.roles", edit: func(c map[string]any) { delete(c, "realm_access") }, wantSub: "u-7", wantID: "j-7"},
		{name: "roles claim's parent not an object", roles: "realm_access.roles", edit: func(c map[string]any) { c["realm_access"] = "x" }, wantSub: "u-7", wantID: "j-7"},
		{name: "no roles claim configured", roles: "", edit: func(map[string]any) {}, wantSub: "u-7", wantID: "j-7"},
		{name: "no jti", roles: "realm_access.roles", edit: func(c map[string]any) { delete(c, "jti") }, wantSub: "u-7", wantRoles: []string{"editor", "author"}},

		{name: "roles a string", roles: "realm_access.roles", edit: func(c map[string]any) { c["realm_access"] = map[string]any{"roles": "editor"} }, reason: ReasonClaims},
		{name: "roles with a number", roles: "realm_access.roles", edit: func(c map[string]any) { c["realm_access"] = map[string]any{"roles": []any{"editor", 1}} }, reason: ReasonClaims},
		{name: "roles null", roles: "realm_access.roles", edit: func(c map[string]any) { c["realm_access"] = map[string]any{"roles": nil} }, reason: ReasonClaims},
		{name: "no sub", edit: func(c map[string]any) { delete(c, "sub") }, reason: ReasonClaims},
		{name: "empty sub", edit: func(c map[string]any) { c["sub"] = "" }, reason: ReasonClaims},
		{name: "fractional user id", uid: "uid", edit: func(c map[string]any) { c["uid"] = 4.5 }, reason: ReasonClaims},
		{name: "user id with an exponent", uid: "uid", edit: func(c map[string]any) { c["uid"] = json.Number("1e3") }, reason: ReasonClaims},
		{name: "boolean user id", uid: "uid", edit: func(c map[string]any) { c["uid"] = true }, reason: ReasonClaims},
		{name: "user id an object", uid: "ext", edit: func(c map[string]any) { c["ext"] = map[string]any{"uid": "x"} }, reason: ReasonClaims},
		{name: "jti a number", edit: func(c map[string]any) { c["jti"] = 7 }, reason: ReasonClaims},
		{name: "amr a string", edit: func(c map[string]any) { c["amr"] = "pwd" }, reason: ReasonClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.cfg
			cfg.RolesClaim, cfg.UserIDClaim = tt.roles, tt.uid
			cfg.ApplyDefaults()
			e.set(t, cfg)
			raw := key.token(t, e.with(tt.edit), nil)
			c, err := e.verify(raw)
			checkVerify(t, raw, c, err, tt.reason)
			if tt.reason != "" {
				return
			}
			if c.Subject != tt.wantSub || !slices.Equal(c.Roles, tt.wantRoles) || (c.Roles == nil) != (tt.wantRoles == nil) || c.ID != tt.wantID {
				t.Errorf("sub, roles, jti = %q, %#v, %q; want %q, %#v, %q", c.Subject, c.Roles, c.ID, tt.wantSub, tt.wantRoles, tt.wantID)
			}
			if c.Issuer != testIssuer || c.Version != 0 {
				t.Errorf("issuer, version = %q, %d", c.Issuer, c.Version)
			}
		})
	}
	// Only roles_claim and user_id_claim changed: the cached keys were kept.
	if n := e.srv.count(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestTrustedUntrustedIssuer(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, key.jwk(t, ""))), nil)
	const other = "https://other.example.com"
	raw := key.token(t, e.with(func(c map[string]any) { c["iss"] = other }), nil)
	c, err := e.ti.Verify(context.Background(), raw, other)
	checkVerify(t, raw, c, err, ReasonClaims)
	if !errors.Is(err, ErrUntrustedIssuer) {
		t.Errorf("error %v does not match ErrUntrustedIssuer", err)
	}
}

// TestTrustedKeyRotation: a token signed with the issuer's new key verifies
// through the refresh its unknown kid triggers, and the key the issuer
// dropped stops verifying.
func TestTrustedKeyRotation(t *testing.T) {
	oldKey := newTestKey(t, "2031-01", jwt.SigningMethodRS256)
	newKey := newTestKey(t, "2031-02", jwt.SigningMethodRS256)
	srv := newJWKSServer(t, jwksBody(t, oldKey.jwk(t, "RS256")))
	e := newTrustedEnv(t, srv, nil)
	oldToken := oldKey.token(t, e.claims(), nil)
	e.mustVerify(t, oldToken)

	srv.serve(t, newKey.jwk(t, "RS256"))
	e.mustVerify(t, newKey.token(t, e.claims(), nil))
	if n := srv.count(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	c, err := e.verify(oldToken)
	checkVerify(t, oldToken, c, err, ReasonUnknownKey)
}

// TestTrustedUnknownKIDFlood: however many made-up kids arrive, the JWKS is
// fetched again at most once per unknown_kid_interval.
func TestTrustedUnknownKIDFlood(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	srv := newJWKSServer(t, jwksBody(t, key.jwk(t, "ES256")))
	// An interval far longer than the test: nothing may depend on its
	// passing.
	e := newTrustedEnv(t, srv, func(c *TrustedIssuerConfig) { c.UnknownKIDInterval = time.Hour })
	e.mustVerify(t, key.token(t, e.claims(), nil))
	if n := srv.count(); n != 1 {
		t.Fatalf("JWKS fetched %d times before the flood, want 1", n)
	}

	const flood = 200
	tokens := make([]string, flood)
	for i := range tokens {
		tokens[i] = key.token(t, e.claims(), func(h map[string]any) { h["kid"] = rand.Text() })
	}
	errs := make([]error, flood)
	var wg sync.WaitGroup
	for i, raw := range tokens {
		wg.Go(func() { _, errs[i] = e.verify(raw) })
	}
	wg.Wait()
	for i, err := range errs {
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Reason != ReasonUnknownKey {
			t.Fatalf("token %d with a made-up kid: %v, want %s", i, err, ReasonUnknownKey)
		}
	}
	if n := srv.count(); n != 2 {
		t.Errorf("JWKS fetched %d times after %d made-up kids, want 2 (one refresh)", n, flood)
	}
	e.mustVerify(t, key.token(t, e.claims(), nil))
	if n := srv.count(); n != 2 {
		t.Errorf("JWKS fetched %d times after a known kid, want 2", n)
	}
}

// TestTrustedIssuerDown: while the JWKS cannot be fetched, the issuer's
// tokens are refused; once it can, they are accepted without a restart.
func TestTrustedIssuerDown(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	body := jwksBody(t, key.jwk(t, "ES256"))
	short := func(c *TrustedIssuerConfig) {
		c.RefreshInterval, c.UnknownKIDInterval = 20*time.Millisecond, 20*time.Millisecond
	}
	tests := []struct {
		name string
		// down starts the issuer unable to serve its JWKS and returns the
		// URL and a func that brings it up.
		down func(t *testing.T) (url string, up func())
	}{
		{name: "status 500", down: func(t *testing.T) (string, func()) {
			srv := newJWKSServer(t, body)
			srv.setStatus(http.StatusInternalServerError)
			return srv.url(), func() { srv.setStatus(0) }
		}},
		{name: "connection refused", down: func(t *testing.T) (string, func()) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return "http://" + addr + "/jwks", func() {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatalf("listen again on %s: %v", addr, err)
				}
				startJWKSServer(t, body, l)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, up := tt.down(t)
			e := newTrustedEnv(t, nil, func(c *TrustedIssuerConfig) { short(c); c.JWKSURL = url })
			raw := key.token(t, e.claims(), nil)
			c, err := e.verify(raw)
			checkVerify(t, raw, c, err, ReasonUnknownKey)
			errs := e.errs()
			if len(errs) == 0 || errs[0].issuer != testIssuer || errs[0].err == nil {
				t.Errorf("OnRefreshError calls = %v, want failures of %s", errs, testIssuer)
			}
			up()
			eventually(t, "verify after the issuer came up", func() error {
				_, err := e.verify(raw)
				return err
			})
		})
	}
}

// TestTrustedSetKeepsKeys: a reload that leaves an issuer's fetch settings
// alone keeps its cached keys; one that changes them fetches afresh.
func TestTrustedSetKeepsKeys(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	body := jwksBody(t, key.jwk(t, "ES256"))
	srv := newJWKSServer(t, body)
	e := newTrustedEnv(t, srv, nil)
	e.mustVerify(t, key.token(t, e.claims(), nil))
	current := func() *remoteKeys { return (*e.ti.issuers.Load())[testIssuer].keys }
	first := current()

	e.set(t, e.cfg)
	e.mustVerify(t, key.token(t, e.claims(), nil))
	cfg := e.cfg
	cfg.RolesClaim = "groups"
	e.set(t, cfg)
	c := e.mustVerify(t, key.token(t, e.with(func(c map[string]any) { c["groups"] = []string{"g"} }), nil))
	if !slices.Equal(c.Roles, []string{"g"}) {
		t.Errorf("roles after roles_claim changed = %v, want [g]", c.Roles)
	}
	if n := srv.count(); n != 1 || current() != first {
		t.Errorf("after unchanged fetch settings: %d fetches (want 1), same key set %v", n, current() == first)
	}
	if first.ctx.Err() != nil {
		t.Error("the kept key set was stopped")
	}

	moved := newJWKSServer(t, body)
	cfg.JWKSURL = moved.url()
	e.set(t, cfg)
	e.mustVerify(t, key.token(t, e.claims(), nil))
	if n := moved.count(); n != 1 {
		t.Errorf("new jwks_url fetched %d times, want 1", n)
	}
	if first.ctx.Err() == nil {
		t.Error("the replaced key set is still running")
	}

	second := current()
	cfg.RefreshInterval = 2 * time.Hour
	e.set(t, cfg)
	e.mustVerify(t, key.token(t, e.claims(), nil))
	if n := moved.count(); n != 2 || second.ctx.Err() == nil {
		t.Errorf("after refresh_interval changed: %d fetches (want 2), old key set stopped %v", n, second.ctx.Err() != nil)
	}
}

func TestTrustedSetRemovesIssuer(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	srv := newJWKSServer(t, jwksBody(t, key.jwk(t, "ES256")))
	e := newTrustedEnv(t, srv, nil)
	const otherIssuer = "https://other.example.com"
	other := e.cfg
	other.Issuer = otherIssuer
	e.set(t, other, e.cfg)
	if got := e.ti.Issuers(); !slices.Equal(got, []string{otherIssuer, testIssuer}) {
		t.Errorf("Issuers() = %v", got)
	}
	ours := key.token(t, e.claims(), nil)
	theirs := key.token(t, e.with(func(c map[string]any) { c["iss"] = otherIssuer }), nil)
	e.mustVerify(t, ours)
	if _, err := e.ti.Verify(context.Background(), theirs, otherIssuer); err != nil {
		t.Fatalf("other issuer: %v", err)
	}
	removed := (*e.ti.issuers.Load())[otherIssuer].keys

	e.set(t, e.cfg)
	c, err := e.ti.Verify(context.Background(), theirs, otherIssuer)
	checkVerify(t, theirs, c, err, ReasonClaims)
	if !errors.Is(err, ErrUntrustedIssuer) {
		t.Errorf("removed issuer: %v, want ErrUntrustedIssuer", err)
	}
	if removed.ctx.Err() == nil {
		t.Error("the removed issuer's key set is still running")
	}
	e.mustVerify(t, ours)
	if got := e.ti.Issuers(); !slices.Equal(got, []string{testIssuer}) {
		t.Errorf("Issuers() = %v", got)
	}

	e.set(t)
	c, err = e.verify(ours)
	checkVerify(t, ours, c, err, ReasonClaims)
}

// TestTrustedSetDoesNotWait: Set returns while the first fetch is under way;
// tokens wait for it, or are refused if their context ends first.
func TestTrustedSetDoesNotWait(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	body := jwksBody(t, key.jwk(t, "ES256"))
	e := newTrustedEnv(t, newJWKSServer(t, body), nil)
	release := make(chan struct{})
	var releaseOnce sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			w.Write(body)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	// Runs first, so that nothing waits for the handler when the test fails.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	cfg := e.cfg
	cfg.JWKSURL = slow.URL
	set := make(chan error, 1)
	go func() { set <- e.ti.Set(context.Background(), []TrustedIssuerConfig{cfg}) }()
	select {
	case err := <-set:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Set is waiting for the JWKS fetch")
	}

	raw := key.token(t, e.claims(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := e.ti.Verify(ctx, raw, testIssuer)
	checkVerify(t, raw, c, err, ReasonUnknownKey)
	if !errors.Is(err, errKeysNotLoaded) {
		t.Errorf("error %v does not match errKeysNotLoaded", err)
	}
	// A malformed token is refused without waiting for the keys.
	c, err = e.verify("a.b.c")
	checkVerify(t, "a.b.c", c, err, ReasonMalformed)

	done := make(chan error, 1)
	go func() {
		_, err := e.verify(raw)
		done <- err
	}()
	releaseOnce.Do(func() { close(release) })
	if err := <-done; err != nil {
		t.Errorf("token waiting for the first fetch: %v", err)
	}
}

// TestTrustedIgnoresKeyURLHeaders: jku, x5u, jwk and x5c in a token's header
// neither select a key nor are fetched.
func TestTrustedIgnoresKeyURLHeaders(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodRS256)
	attacker := newTestKey(t, "evil", jwt.SigningMethodRS256)
	impostor := newTestKey(t, "k", jwt.SigningMethodRS256)
	var attackerHits atomic.Int64
	attackerBody := jwksBody(t, attacker.jwk(t, "RS256"), impostor.jwk(t, "RS256"))
	attackerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Write(attackerBody)
	}))
	t.Cleanup(attackerSrv.Close)

	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, key.jwk(t, "RS256"))), nil)
	cert := b64([]byte("not a certificate"))
	pointers := func(k *testKey) func(h map[string]any) {
		return func(h map[string]any) {
			h["jku"] = attackerSrv.URL + "/jwks.json"
			h["x5u"] = attackerSrv.URL + "/cert.pem"
			h["jwk"] = k.jwk(t, "RS256").Marshal()
			h["x5c"] = []string{cert}
		}
	}
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "issuer's token", token: key.token(t, e.claims(), pointers(attacker))},
		{name: "attacker's kid", token: attacker.token(t, e.claims(), pointers(attacker)), reason: ReasonUnknownKey},
		{name: "issuer's kid, attacker's key", token: impostor.token(t, e.claims(), pointers(impostor)), reason: ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.verify(tt.token)
			checkVerify(t, tt.token, c, err, tt.reason)
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the URLs in token headers were fetched %d times", n)
	}
}

func TestTrustedClose(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, key.jwk(t, "ES256"))), nil)
	raw := key.token(t, e.claims(), nil)
	e.mustVerify(t, raw)
	keys := (*e.ti.issuers.Load())[testIssuer].keys

	e.ti.Close()
	c, err := e.verify(raw)
	checkVerify(t, raw, c, err, ReasonClaims)
	if keys.ctx.Err() == nil {
		t.Error("key set still running after Close")
	}
	if got := e.ti.Issuers(); len(got) != 0 {
		t.Errorf("Issuers() after Close = %v", got)
	}
	if err := e.ti.Set(context.Background(), []TrustedIssuerConfig{e.cfg}); err == nil {
		t.Error("Set after Close succeeded")
	}
	e.ti.Close()
}

// TestTrustedSetRefusesUnsafe: entries that would check less than configured
// are refused as a whole, leaving the issuers as they were.
func TestTrustedSetRefusesUnsafe(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	e := newTrustedEnv(t, newJWKSServer(t, jwksBody(t, key.jwk(t, "ES256"))), nil)
	edit := func(f func(c *TrustedIssuerConfig)) []TrustedIssuerConfig {
		c := e.cfg
		c.Issuer = "https://other.example.com"
		f(&c)
		return []TrustedIssuerConfig{c}
	}
	tests := []struct {
		name string
		list []TrustedIssuerConfig
	}{
		{name: "empty issuer", list: edit(func(c *TrustedIssuerConfig) { c.Issuer = "" })},
		{name: "empty audience", list: edit(func(c *TrustedIssuerConfig) { c.Audience = "" })},
		{name: "empty user id claim", list: edit(func(c *TrustedIssuerConfig) { c.UserIDClaim = "" })},
		{name: "zero unknown kid interval", list: edit(func(c *TrustedIssuerConfig) { c.UnknownKIDInterval = 0 })},
		{name: "negative refresh interval", list: edit(func(c *TrustedIssuerConfig) { c.RefreshInterval = -time.Minute })},
		{name: "relative URL", list: edit(func(c *TrustedIssuerConfig) { c.JWKSURL = "jwks.json" })},
		{name: "issuer twice", list: []TrustedIssuerConfig{e.cfg, e.cfg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.ti.Set(context.Background(), tt.list); err == nil {
				t.Fatal("Set accepted it")
			}
			if got := e.ti.Issuers(); !slices.Equal(got, []string{testIssuer}) {
				t.Errorf("Issuers() = %v after a refused Set", got)
			}
		})
	}
	e.mustVerify(t, key.token(t, e.claims(), nil))
}

// TestTrustedJWKSSizeLimit: a JWKS response over 1 MiB is refused, one of
// exactly 1 MiB is not.
func TestTrustedJWKSSizeLimit(t *testing.T) {
	key := newTestKey(t, "k", jwt.SigningMethodES256)
	body := jwksBody(t, key.jwk(t, "ES256"))
	// Leading whitespace: the decoder must read through it, whereas it
	// stops at the end of the value.
	padded := func(n int) []byte { return append([]byte(strings.Repeat(" ", n-len(body))), body...) }

	e := newTrustedEnv(t, newJWKSServer(t, padded(maxJWKSBytes+1)), nil)
	raw := key.token(t, e.claims(), nil)
	c, err := e.verify(raw)
	checkVerify(t, raw, c, err, ReasonUnknownKey)
	errs := e.errs()
	if len(errs) == 0 || !errors.Is(errs[0].err, errJWKSTooLarge) {
		t.Errorf("refresh errors = %v, want errJWKSTooLarge", errs)
	}

	ok := newTrustedEnv(t, newJWKSServer(t, padded(maxJWKSBytes)), nil)
	ok.mustVerify(t, raw)
}

// TestMultiVerifier: tokens go to frontdoor's own Verifier or to the trusted
// issuer their iss names, and nowhere else.
func TestMultiVerifier(t *testing.T) {
	own := newEnv(t, &fakeKeyStore{}, newClock(t0))
	ownKID, ownKey := own.ring.Active()
	key := newTestKey(t, "k", jwt.SigningMethodRS256)
	srv := newJWKSServer(t, jwksBody(t, key.jwk(t, "RS256")))
	te := newTrustedEnv(t, srv, nil)
	mv := NewMultiVerifier(own.ver, own.cfg.Issuer, te.ti)

	ownToken := own.mint(t, MintRequest{Subject: "42", Roles: []string{"editor"}})
	trustedToken := key.token(t, te.claims(), nil)
	withIss := func(iss any) map[string]any { return te.with(func(c map[string]any) { c["iss"] = iss }) }
	withAud := func(c map[string]any) map[string]any { c["aud"] = own.cfg.Audience; return c }
	ownSigned := func(claims map[string]any) string {
		return forgeTrusted(t, map[string]any{"alg": "RS256", "kid": ownKID, "typ": "JWT"}, claims, rs256(ownKey))
	}
	payload := func(p string) string { return "eyJhbGciOiJSUzI1NiJ9." + b64([]byte(p)) + ".c2ln" }

	tests := []struct {
		name     string
		token    string
		reason   string // "" = valid
		issuer   string // of the accepted claims
		is       error
		verifier *MultiVerifier // nil: mv
	}{
		{name: "own token", token: ownToken.Token, issuer: own.cfg.Issuer},
		{name: "trusted token", token: trustedToken, issuer: testIssuer},
		{name: "own iss signed by the trusted issuer", token: key.token(t, withAud(withIss(own.cfg.Issuer)), nil), reason: ReasonUnknownKey},
		{name: "trusted iss signed by our key", token: ownSigned(te.claims()), reason: ReasonUnknownKey},
		{name: "untrusted iss", token: key.token(t, withIss("https://evil.example"), nil), reason: ReasonClaims, is: ErrUntrustedIssuer},
		{name: "no iss", token: key.token(t, te.with(func(c map[string]any) { delete(c, "iss") }), nil), reason: ReasonClaims},
		{name: "numeric iss", token: key.token(t, withIss(7), nil), reason: ReasonClaims},
		{name: "two segments", token: "eyJhbGciOiJSUzI1NiJ9.e30", reason: ReasonMalformed},
		{name: "four segments", token: trustedToken + ".x", reason: ReasonMalformed},
		{name: "payload not base64url", token: "eyJhbGciOiJSUzI1NiJ9.!!!!.c2ln", reason: ReasonMalformed},
		{name: "payload padded", token: "eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", reason: ReasonMalformed},
		{name: "payload not JSON", token: payload("iss"), reason: ReasonMalformed},
		{name: "payload an array", token: payload(`["iss"]`), reason: ReasonMalformed},
		{name: "too long", token: strings.Repeat("a", MaxTokenLen+1), reason: ReasonMalformed},
		{name: "no trusted issuers: own token", token: ownToken.Token, issuer: own.cfg.Issuer, verifier: NewMultiVerifier(own.ver, own.cfg.Issuer, nil)},
		{name: "no trusted issuers: other token", token: trustedToken, reason: ReasonClaims, is: ErrUntrustedIssuer, verifier: NewMultiVerifier(own.ver, own.cfg.Issuer, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.verifier
			if v == nil {
				v = mv
			}
			c, err := v.Verify(context.Background(), tt.token)
			checkVerify(t, tt.token, c, err, tt.reason)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			if tt.reason == "" && c.Issuer != tt.issuer {
				t.Errorf("claims issuer = %q, want %q", c.Issuer, tt.issuer)
			}
		})
	}

	// Even an entry for our own issuer among the trusted ones (which
	// ValidateTrustedIssuers refuses) does not route our iss past our keys.
	hijack := te.cfg
	hijack.Issuer, hijack.Audience = own.cfg.Issuer, own.cfg.Audience
	before := srv.count()
	te.set(t, te.cfg, hijack)
	raw := key.token(t, withAud(withIss(own.cfg.Issuer)), nil)
	c, err := mv.Verify(context.Background(), raw)
	checkVerify(t, raw, c, err, ReasonUnknownKey)
	if _, err := te.ti.Verify(context.Background(), raw, own.cfg.Issuer); err != nil {
		t.Fatalf("the hijacking entry itself refuses the token (%v): the test proves nothing", err)
	}
	if n := srv.count(); n != before+1 {
		t.Errorf("JWKS fetched %d more times, want 1 (the hijacking entry's own start)", n-before)
	}
}
