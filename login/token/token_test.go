package token

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

// env is one frontdoor's token machinery over a store, with a test clock.
type env struct {
	cfg   Config
	clock *clock
	ring  *KeyRing
	iss   *Issuer
	ver   *Verifier
}

func testConfig() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

func newEnv(t testing.TB, ks KeyStore, c *clock) *env {
	t.Helper()
	cfg := testConfig()
	ring, err := NewKeyRing(context.Background(), ks, cfg, c.Now)
	if err != nil {
		t.Fatalf("NewKeyRing: %v", err)
	}
	ver, err := NewVerifier(ring, cfg, c.Now)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return &env{cfg: cfg, clock: c, ring: ring, iss: NewIssuer(ring, cfg, c.Now), ver: ver}
}

func (e *env) mint(t testing.TB, req MintRequest) Minted {
	t.Helper()
	m, err := e.iss.Mint(context.Background(), req)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return m
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segment(t testing.TB, v any) string {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(j)
}

// signer returns the signature segment for a signing input.
type signer func(t testing.TB, input string) string

func rs256(key *rsa.PrivateKey) signer {
	return func(t testing.TB, input string) string {
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return b64(sig)
	}
}

func ps256(key *rsa.PrivateKey) signer {
	return func(t testing.TB, input string) string {
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		return b64(sig)
	}
}

func hs256(secret []byte) signer {
	return func(t testing.TB, input string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return b64(m.Sum(nil))
	}
}

func literal(sig string) signer { return func(testing.TB, string) string { return sig } }

// good returns the header and claims of a valid token at the env's time.
func (e *env) good() (header, claims map[string]any) {
	kid, _ := e.ring.Active()
	now := e.clock.Now().Unix()
	header = map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}
	claims = map[string]any{
		"iss": e.cfg.Issuer, "aud": e.cfg.Audience, "sub": "42",
		"exp": now + 3600, "iat": now, "nbf": now, "jti": "j1",
		"roles": []string{"editor"}, "amr": []string{"pwd"},
	}
	return header, claims
}

// forge builds a token from good() changed by edit, signed by sign (nil:
// RS256 with the active key).
func (e *env) forge(t testing.TB, edit func(h, c map[string]any), sign signer) string {
	t.Helper()
	h, c := e.good()
	if edit != nil {
		edit(h, c)
	}
	if sign == nil {
		_, key := e.ring.Active()
		sign = rs256(key)
	}
	input := segment(t, h) + "." + segment(t, c)
	return input + "." + sign(t, input)
}

func TestMintVerifyRoundTrip(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0.Add(123*time.Millisecond)))
	m := e.mint(t, MintRequest{Subject: "42", Roles: []string{"editor", "author"}, AMR: []string{"wechat"}})

	if !m.IssuedAt.Equal(t0) || !m.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("Minted times = %v, %v; want %v, %v", m.IssuedAt, m.ExpiresAt, t0, t0.Add(2*time.Hour))
	}
	if id, err := base64.RawURLEncoding.DecodeString(m.ID); err != nil || len(id) != 16 {
		t.Errorf("jti %q: want 16 base64url bytes (err %v)", m.ID, err)
	}

	parts := strings.Split(m.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	kid, _ := e.ring.Active()
	if want := map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}; !jsonEqual(header, want) {
		t.Errorf("header = %v, want %v", header, want)
	}
	var claims map[string]any
	decodeSegment(t, parts[1], &claims)
	want := map[string]any{
		"iss": "http://localhost:8080", "aud": "miniprogram", "sub": "42",
		"exp": float64(t0.Add(2 * time.Hour).Unix()), "iat": float64(t0.Unix()), "nbf": float64(t0.Unix()),
		"jti": m.ID, "roles": []any{"editor", "author"}, "amr": []any{"wechat"},
	}
	if !jsonEqual(claims, want) {
		t.Errorf("claims = %v\nwant %v", claims, want)
	}

	got, err := e.ver.Verify(context.Background(), m.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	wantClaims := Claims{
		Issuer: "http://localhost:8080", Subject: "42", Roles: []string{"editor", "author"},
		AMR: []string{"wechat"}, ID: m.ID, IssuedAt: t0, ExpiresAt: t0.Add(2 * time.Hour),
	}
	if !claimsEqual(*got, wantClaims) {
		t.Errorf("Verify = %+v\nwant %+v", *got, wantClaims)
	}
}

func TestMintShape(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	tests := []struct {
		name    string
		req     MintRequest
		check   func(t *testing.T, claims map[string]any, m Minted)
		wantErr bool
	}{
		{
			name: "nil roles are an empty array and empty amr is omitted",
			req:  MintRequest{Subject: "7"},
			check: func(t *testing.T, c map[string]any, m Minted) {
				if r, ok := c["roles"].([]any); !ok || len(r) != 0 {
					t.Errorf("roles = %#v, want []", c["roles"])
				}
				if _, ok := c["amr"]; ok {
					t.Errorf("amr present: %v", c["amr"])
				}
			},
		},
		{
			name: "ttl",
			req:  MintRequest{Subject: "7", TTL: 10 * time.Minute},
			check: func(t *testing.T, c map[string]any, m Minted) {
				if c["exp"] != float64(t0.Add(10*time.Minute).Unix()) || !m.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
					t.Errorf("exp = %v, ExpiresAt = %v", c["exp"], m.ExpiresAt)
				}
			},
		},
		{
			name: "extra adds and overrides",
			req: MintRequest{Subject: "7", Extra: map[string]any{
				"sub": "99", "exp": t0.Add(time.Minute).Unix(), "jti": "mine", "tenant": "acme",
			}},
			check: func(t *testing.T, c map[string]any, m Minted) {
				if c["sub"] != "99" || c["tenant"] != "acme" || c["jti"] != "mine" {
					t.Errorf("claims = %v", c)
				}
				if !m.ExpiresAt.Equal(t0.Add(time.Minute)) || m.ID != "mine" {
					t.Errorf("Minted = %+v does not reflect the overrides", m)
				}
			},
		},
		{name: "empty subject", req: MintRequest{}, wantErr: true},
		{name: "negative ttl", req: MintRequest{Subject: "7", TTL: -time.Second}, wantErr: true},
		{name: "ttl beyond access_ttl", req: MintRequest{Subject: "7", TTL: 3 * time.Hour}, wantErr: true},
		{name: "extra not JSON", req: MintRequest{Subject: "7", Extra: map[string]any{"x": make(chan int)}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := e.iss.Mint(context.Background(), tt.req)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Mint succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			var c map[string]any
			decodeSegment(t, strings.Split(m.Token, ".")[1], &c)
			tt.check(t, c, m)
		})
	}
}

// TestMintExtraVerify checks that what Extra overrides is what Verify sees.
func TestMintExtraVerify(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	tests := []struct {
		name    string
		extra   map[string]any
		wantSub string
		reason  string
	}{
		{name: "sub", extra: map[string]any{"sub": "1001"}, wantSub: "1001"},
		{name: "exp in the past", extra: map[string]any{"exp": t0.Add(-time.Hour).Unix()}, reason: ReasonExpired},
		{name: "exp as string", extra: map[string]any{"exp": "9999999999"}, reason: ReasonClaims},
		{name: "numeric sub", extra: map[string]any{"sub": 42}, reason: ReasonClaims},
		{name: "aud", extra: map[string]any{"aud": "someone-else"}, reason: ReasonClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.mint(t, MintRequest{Subject: "7", Extra: tt.extra})
			c, err := e.ver.Verify(context.Background(), m.Token)
			checkVerify(t, m.Token, c, err, tt.reason)
			if err == nil && c.Subject != tt.wantSub {
				t.Errorf("Subject = %q, want %q", c.Subject, tt.wantSub)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	ks := &fakeKeyStore{}
	e := newEnv(t, ks, newClock(t0))
	_, key := e.ring.Active()
	now := t0.Unix()

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})

	set := func(name string, v any) func(h, c map[string]any) {
		return func(_, c map[string]any) { c[name] = v }
	}
	del := func(name string) func(h, c map[string]any) {
		return func(_, c map[string]any) { delete(c, name) }
	}
	setH := func(name string, v any) func(h, c map[string]any) {
		return func(h, _ map[string]any) { h[name] = v }
	}
	delH := func(name string) func(h, c map[string]any) {
		return func(h, _ map[string]any) { delete(h, name) }
	}

	type tc struct {
		name   string
		token  func() string
		reason string // "" = valid
	}
	tests := []tc{
		{name: "valid", token: func() string { return e.forge(t, nil, nil) }},
		{name: "expired within leeway", token: func() string { return e.forge(t, set("exp", now-29), nil) }},
		{name: "expired beyond leeway", token: func() string { return e.forge(t, set("exp", now-31), nil) }, reason: ReasonExpired},
		{name: "nbf within leeway", token: func() string { return e.forge(t, set("nbf", now+29), nil) }},
		{name: "future nbf", token: func() string { return e.forge(t, set("nbf", now+60), nil) }, reason: ReasonNotYetValid},
		{name: "future iat", token: func() string { return e.forge(t, set("iat", now+60), nil) }, reason: ReasonNotYetValid},
		{name: "no iat nbf jti roles amr", token: func() string {
			return e.forge(t, func(h, c map[string]any) {
				for _, n := range []string{"iat", "nbf", "jti", "roles", "amr"} {
					delete(c, n)
				}
			}, nil)
		}},

		{name: "wrong iss", token: func() string { return e.forge(t, set("iss", "https://evil.example"), nil) }, reason: ReasonClaims},
		{name: "missing iss", token: func() string { return e.forge(t, del("iss"), nil) }, reason: ReasonClaims},
		{name: "numeric iss", token: func() string { return e.forge(t, set("iss", 1), nil) }, reason: ReasonClaims},
		{name: "wrong aud", token: func() string { return e.forge(t, set("aud", "other"), nil) }, reason: ReasonClaims},
		{name: "missing aud", token: func() string { return e.forge(t, del("aud"), nil) }, reason: ReasonClaims},
		{name: "aud array with ours", token: func() string { return e.forge(t, set("aud", []string{"other", "miniprogram"}), nil) }},
		{name: "aud array without ours", token: func() string { return e.forge(t, set("aud", []string{"other", "third"}), nil) }, reason: ReasonClaims},
		{name: "aud array with a number", token: func() string { return e.forge(t, set("aud", []any{"miniprogram", 1}), nil) }, reason: ReasonClaims},
		{name: "missing exp", token: func() string { return e.forge(t, del("exp"), nil) }, reason: ReasonClaims},
		{name: "exp zero", token: func() string { return e.forge(t, set("exp", 0), nil) }, reason: ReasonClaims},
		{name: "exp null", token: func() string { return e.forge(t, set("exp", nil), nil) }, reason: ReasonClaims},
		{name: "exp as string", token: func() string { return e.forge(t, set("exp", "9999999999"), nil) }, reason: ReasonClaims},
		{name: "nbf as string", token: func() string { return e.forge(t, set("nbf", "0"), nil) }, reason: ReasonClaims},
		{name: "iat as string", token: func() string { return e.forge(t, set("iat", "0"), nil) }, reason: ReasonClaims},
		{name: "empty sub", token: func() string { return e.forge(t, set("sub", ""), nil) }, reason: ReasonClaims},
		{name: "missing sub", token: func() string { return e.forge(t, del("sub"), nil) }, reason: ReasonClaims},
		{name: "numeric sub", token: func() string { return e.forge(t, set("sub", 42), nil) }, reason: ReasonClaims},
		{name: "roles not an array", token: func() string { return e.forge(t, set("roles", "administrator"), nil) }, reason: ReasonClaims},
		{name: "roles null", token: func() string { return e.forge(t, set("roles", nil), nil) }, reason: ReasonClaims},
		{name: "roles with a number", token: func() string { return e.forge(t, set("roles", []any{"editor", 1}), nil) }, reason: ReasonClaims},
		{name: "amr not an array", token: func() string { return e.forge(t, set("amr", "pwd"), nil) }, reason: ReasonClaims},
		{name: "numeric jti", token: func() string { return e.forge(t, set("jti", 5), nil) }, reason: ReasonClaims},

		{name: "missing alg", token: func() string { return e.forge(t, delH("alg"), nil) }, reason: ReasonMalformed},
		{name: "empty alg", token: func() string { return e.forge(t, setH("alg", ""), nil) }, reason: ReasonMalformed},
		{name: "null alg", token: func() string { return e.forge(t, setH("alg", nil), nil) }, reason: ReasonMalformed},
		{name: "array alg", token: func() string { return e.forge(t, setH("alg", []string{"RS256"}), nil) }, reason: ReasonMalformed},
		{name: "PS256 with our key", token: func() string { return e.forge(t, setH("alg", "PS256"), ps256(key)) }, reason: ReasonAlgorithm},
		{name: "RS512 label on an RS256 signature", token: func() string { return e.forge(t, setH("alg", "RS512"), nil) }, reason: ReasonAlgorithm},
		{name: "HS256 with public key PKIX PEM", token: func() string { return e.forge(t, setH("alg", "HS256"), hs256(pkixPEM)) }, reason: ReasonAlgorithm},
		{name: "HS256 with public key PKCS1 PEM", token: func() string { return e.forge(t, setH("alg", "HS256"), hs256(pkcs1PEM)) }, reason: ReasonAlgorithm},
		{name: "HS256 with public key PKIX DER", token: func() string { return e.forge(t, setH("alg", "HS256"), hs256(pkix)) }, reason: ReasonAlgorithm},
		{name: "HS256 with public key PKCS1 DER", token: func() string { return e.forge(t, setH("alg", "HS256"), hs256(pkcs1)) }, reason: ReasonAlgorithm},

		{name: "unknown kid", token: func() string { return e.forge(t, setH("kid", Thumbprint(&other.PublicKey)), rs256(other)) }, reason: ReasonUnknownKey},
		{name: "missing kid", token: func() string { return e.forge(t, delH("kid"), nil) }, reason: ReasonUnknownKey},
		{name: "empty kid", token: func() string { return e.forge(t, setH("kid", ""), nil) }, reason: ReasonUnknownKey},
		{name: "numeric kid", token: func() string { return e.forge(t, setH("kid", 7), nil) }, reason: ReasonMalformed},
		{name: "crit header", token: func() string { return e.forge(t, setH("crit", []string{"exp"}), nil) }, reason: ReasonMalformed},
		{name: "other key's signature under our kid", token: func() string { return e.forge(t, nil, rs256(other)) }, reason: ReasonSignature},
		{name: "corrupted signature", token: func() string {
			tok := []byte(e.forge(t, nil, nil))
			i := strings.LastIndexByte(string(tok), '.') + 10
			if tok[i] == 'A' {
				tok[i] = 'B'
			} else {
				tok[i] = 'A'
			}
			return string(tok)
		}, reason: ReasonSignature},
		{name: "truncated signature", token: func() string { tok := e.forge(t, nil, nil); return tok[:len(tok)-8] }, reason: ReasonSignature},
		{name: "empty signature", token: func() string { return e.forge(t, nil, literal("")) }, reason: ReasonSignature},
		{name: "changed claims", token: func() string {
			good := strings.Split(e.forge(t, nil, nil), ".")
			evil := strings.Split(e.forge(t, set("roles", []string{"administrator"}), nil), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}, reason: ReasonSignature},

		{name: "empty", token: func() string { return "" }, reason: ReasonMalformed},
		{name: "one segment", token: func() string { return "abc" }, reason: ReasonMalformed},
		{name: "four segments", token: func() string { return e.forge(t, nil, nil) + ".x" }, reason: ReasonMalformed},
		{name: "bad base64 header", token: func() string { return "!!!." + strings.SplitN(e.forge(t, nil, nil), ".", 2)[1] }, reason: ReasonMalformed},
		{name: "claims not an object", token: func() string {
			h, _ := e.good()
			input := segment(t, h) + "." + segment(t, []string{"x"})
			return input + "." + rs256(key)(t, input)
		}, reason: ReasonMalformed},
		{name: "20 KB token", token: func() string { return e.forge(t, set("pad", strings.Repeat("x", 20<<10)), nil) }, reason: ReasonMalformed},
	}
	// alg "none" in every spelling, unsigned and with a signature.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, sig := range []string{"", b64([]byte("sig"))} {
			tests = append(tests, tc{
				name:   "alg " + alg + " sig " + map[bool]string{true: "empty", false: "present"}[sig == ""],
				token:  func() string { return e.forge(t, setH("alg", alg), literal(sig)) },
				reason: ReasonAlgorithm,
			})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token()
			c, err := e.ver.Verify(context.Background(), raw)
			checkVerify(t, raw, c, err, tt.reason)
			if err == nil && (c.Subject != "42" || c.Issuer != e.cfg.Issuer) {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

// checkVerify asserts the outcome of Verify: success when reason is empty,
// else a *VerifyError with that reason that matches ErrInvalid and does not
// contain the token.
func checkVerify(t *testing.T, raw string, c *Claims, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c == nil {
			t.Fatal("Verify returned nil claims and no error")
		}
		return
	}
	if err == nil {
		t.Fatalf("Verify accepted the token (claims %+v), want %s", c, reason)
	}
	if c != nil {
		t.Errorf("Verify returned claims with an error")
	}
	t.Logf("refused: %v", err)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
	}
	if ve.Reason != reason {
		t.Errorf("reason = %q (%v), want %q", ve.Reason, err, reason)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid", err)
	}
	msg := err.Error()
	for _, part := range strings.Split(raw, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error message contains part of the token: %s", msg)
		}
	}
}

// TestVerifyAfterRotationByAnotherReplica: a token minted by one replica
// after it rotated verifies on another at once (its unknown kid makes that
// one re-read the keys), and the other replica's earlier tokens keep
// verifying.
func TestVerifyAfterRotationByAnotherReplica(t *testing.T) {
	ks := &fakeKeyStore{}
	c := newClock(t0)
	a := newEnv(t, ks, c)
	b := newEnv(t, ks, c)
	before := a.mint(t, MintRequest{Subject: "42"})

	c.Add(time.Minute)
	if _, err := b.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := b.mint(t, MintRequest{Subject: "42"})
	for _, m := range []Minted{before, after} {
		for _, e := range []*env{a, b} {
			if _, err := e.ver.Verify(context.Background(), m.Token); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
	}
}

// TestVerifyConcurrentRotation runs verifications while keys rotate, for
// the race detector.
func TestVerifyConcurrentRotation(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	m := e.mint(t, MintRequest{Subject: "42"})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := e.ver.Verify(context.Background(), m.Token); err != nil {
					errs <- err
					return
				}
				if _, err := e.iss.Mint(context.Background(), MintRequest{Subject: "1"}); err != nil {
					errs <- err
					return
				}
				_ = e.ring.JWKS()
			}
		})
	}
	for range 2 {
		if _, err := e.ring.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzVerify(f *testing.F) {
	e := newEnv(f, &fakeKeyStore{}, newClock(t0))
	m := e.mint(f, MintRequest{Subject: "42", Roles: []string{"a"}})
	f.Add(m.Token)
	f.Add("")
	f.Add("e30.e30.")
	f.Add(e.forge(f, func(h, _ map[string]any) { h["alg"] = "none" }, literal("")))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := e.ver.Verify(context.Background(), raw)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || c != nil {
				t.Fatalf("Verify = %v, %v: want *VerifyError and no claims", c, err)
			}
			return
		}
		if c.Subject == "" {
			t.Fatal("accepted a token without subject")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, &fakeKeyStore{}, newClock(t0))
	m := e.mint(b, MintRequest{Subject: "42", Roles: []string{"editor"}, AMR: []string{"pwd"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.ver.Verify(ctx, m.Token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	e := newEnv(b, &fakeKeyStore{}, newClock(t0))
	ctx := context.Background()
	req := MintRequest{Subject: "42", Roles: []string{"editor"}, AMR: []string{"pwd"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.iss.Mint(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func decodeSegment(t testing.TB, seg string, v any) {
	t.Helper()
	j, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode segment: %v", err)
	}
	if err := json.Unmarshal(j, v); err != nil {
		t.Fatalf("decode segment: %v", err)
	}
}

// jsonEqual compares two values by their JSON encoding.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func claimsEqual(a, b Claims) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.ID == b.ID &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.AMR, b.AMR) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestVersionClaim(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(time.Now()))
	c, err := e.ver.Verify(context.Background(), e.mint(t, MintRequest{Subject: "9", Version: 3}).Token)
	if err != nil || c.Version != 3 {
		t.Fatalf("Version = %+v, %v; want 3", c, err)
	}
	c, err = e.ver.Verify(context.Background(), e.mint(t, MintRequest{Subject: "9"}).Token)
	if err != nil || c.Version != 0 {
		t.Fatalf("absent ver: %+v, %v", c, err)
	}
	for _, bad := range []any{"3", -1, 1.5, []any{1}} {
		m := e.mint(t, MintRequest{Subject: "9", Extra: map[string]any{"ver": bad}})
		if _, err := e.ver.Verify(context.Background(), m.Token); err == nil {
			t.Errorf("ver %v accepted", bad)
		}
	}
}
