package token

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/store/storetest"
)

// backend opens a KeyStore; reopen simulates a restart of the process.
type backend struct {
	name string
	open func(t *testing.T) (ks KeyStore, reopen func() KeyStore)
}

func backends() []backend {
	return []backend{
		{name: "fake", open: func(t *testing.T) (KeyStore, func() KeyStore) {
			f := &fakeKeyStore{}
			return f, func() KeyStore { return f }
		}},
		{name: "sqlite", open: func(t *testing.T) (KeyStore, func() KeyStore) {
			path := filepath.Join(t.TempDir(), "fd.db")
			open := func() KeyStore {
				s, err := store.OpenSQLite(context.Background(), path)
				if err != nil {
					t.Fatalf("OpenSQLite: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open
		}},
		{name: "postgres", open: func(t *testing.T) (KeyStore, func() KeyStore) {
			dsn := storetest.PostgresDSN(t) // skips without FRONTDOOR_TEST_POSTGRES
			open := func() KeyStore {
				s, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
				if err != nil {
					t.Fatalf("open postgres: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open
		}},
	}
}

func storedKeys(t *testing.T, ks KeyStore) []store.SigningKey {
	t.Helper()
	keys, err := ks.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestKeyRingFirstStartAndRestart(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ks, reopen := b.open(t)
			c := newClock(t0)
			first := newEnv(t, ks, c)
			if n := len(storedKeys(t, ks)); n != 1 {
				t.Fatalf("first start stored %d keys, want 1", n)
			}
			keys := first.ring.Keys()
			if len(keys) != 1 || keys[0].State != KeyActive || keys[0].Bits != 2048 ||
				!keys[0].ActivatedAt.Equal(t0) || !keys[0].VerifiesUntil.IsZero() {
				t.Errorf("Keys() = %+v", keys)
			}
			kid, _ := first.ring.Active()
			m := first.mint(t, MintRequest{Subject: "42"})

			c.Add(time.Minute)
			again := newEnv(t, reopen(), c)
			if kid2, _ := again.ring.Active(); kid2 != kid {
				t.Errorf("restart signs with %s, want the stored %s", kid2, kid)
			}
			if n := len(storedKeys(t, ks)); n != 1 {
				t.Errorf("restart left %d keys, want 1", n)
			}
			if _, err := again.ver.Verify(context.Background(), m.Token); err != nil {
				t.Errorf("token from before the restart: %v", err)
			}
		})
	}
}

// TestKeyRingConcurrentFirstStart: replicas starting together on an empty
// database agree on one key.
func TestKeyRingConcurrentFirstStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fd.db")
	const replicas = 3
	kids := make([]string, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		s, err := store.OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		wg.Go(func() {
			ring, err := NewKeyRing(context.Background(), s, testConfig(), newClock(t0).Now)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i], _ = ring.Active()
		})
	}
	wg.Wait()
	if kids[0] == "" || kids[1] != kids[0] || kids[2] != kids[0] {
		t.Errorf("replicas sign with %v, want one key", kids)
	}
}

type jwk struct {
	fields map[string]any
	pub    *rsa.PublicKey
}

// parseJWKS decodes JWKS JSON, checking each key's members.
func parseJWKS(t *testing.T, b []byte) []jwk {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	var out []jwk
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWK has private member %q", private)
			}
		}
		if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" {
			t.Errorf("JWK kty/use/alg = %v/%v/%v", k["kty"], k["use"], k["alg"])
		}
		n, _ := k["n"].(string)
		e, _ := k["e"].(string)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(mustB64(t, n)), E: int(new(big.Int).SetBytes(mustB64(t, e)).Int64())}
		if k["kid"] != Thumbprint(pub) {
			t.Errorf("JWK kid %v is not the thumbprint %s of its n/e", k["kid"], Thumbprint(pub))
		}
		out = append(out, jwk{fields: k, pub: pub})
	}
	return out
}

func jwksKids(t *testing.T, r *KeyRing) []string {
	t.Helper()
	var kids []string
	for _, k := range parseJWKS(t, r.JWKS()) {
		kids = append(kids, k.fields["kid"].(string))
	}
	return kids
}

func TestJWKS(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	kid, key := e.ring.Active()
	keys := parseJWKS(t, e.ring.JWKS())
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(keys))
	}
	if keys[0].fields["kid"] != kid || !keys[0].pub.Equal(&key.PublicKey) {
		t.Errorf("JWKS key %v is not the active key %s", keys[0].fields, kid)
	}
	if len(keys[0].fields) != 6 {
		t.Errorf("JWK members = %v, want exactly kty use alg kid n e", keys[0].fields)
	}
}

// TestKeyRingRotation follows a key from active through retired to expired.
func TestKeyRingRotation(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ks, _ := b.open(t)
			c := newClock(t0)
			e := newEnv(t, ks, c)
			oldKID, _ := e.ring.Active()
			v0 := e.ring.Version()

			c.Add(time.Hour)
			old := e.mint(t, MintRequest{Subject: "42"}) // expires at t0+3h
			rotatedAt := c.Now()
			sk, err := e.ring.Rotate(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			newKID, _ := e.ring.Active()
			if newKID != sk.ID || newKID == oldKID {
				t.Fatalf("after Rotate active = %s, rotated to %s, old %s", newKID, sk.ID, oldKID)
			}
			if e.ring.Version() <= v0 {
				t.Errorf("Version did not increase on Rotate")
			}
			fresh := e.mint(t, MintRequest{Subject: "42"})
			var h map[string]any
			decodeSegment(t, strings.Split(fresh.Token, ".")[0], &h)
			if h["kid"] != newKID {
				t.Errorf("new token kid = %v, want %s", h["kid"], newKID)
			}
			if got := jwksKids(t, e.ring); !slices.Equal(got, []string{newKID, oldKID}) {
				t.Errorf("JWKS kids = %v, want [new old]", got)
			}
			verifiesUntil := rotatedAt.Add(2*time.Hour + Leeway)
			wantKeys := []KeyInfo{
				{ID: newKID, State: KeyActive, Bits: 2048, CreatedAt: rotatedAt, ActivatedAt: rotatedAt},
				{ID: oldKID, State: KeyRetired, Bits: 2048, CreatedAt: t0, ActivatedAt: t0, RetiredAt: rotatedAt, VerifiesUntil: verifiesUntil},
			}
			checkKeys(t, e.ring.Keys(), wantKeys)

			// Just before the old key's last token can have expired (with
			// leeway), it still verifies.
			c.Set(verifiesUntil.Add(-time.Second))
			v1 := e.ring.Version()
			if err := e.ring.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if e.ring.Version() != v1 {
				t.Errorf("Version changed on a Refresh that changed nothing")
			}
			if _, err := e.ver.Verify(context.Background(), old.Token); err != nil {
				t.Errorf("old key's token before VerifiesUntil: %v", err)
			}
			if got := jwksKids(t, e.ring); len(got) != 2 {
				t.Errorf("JWKS kids = %v, want both", got)
			}

			// From VerifiesUntil on, the old key is gone.
			c.Set(verifiesUntil)
			if err := e.ring.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if e.ring.Version() == v1 {
				t.Errorf("Version did not change when the old key expired")
			}
			if got := jwksKids(t, e.ring); !slices.Equal(got, []string{newKID}) {
				t.Errorf("JWKS kids = %v, want only the new key", got)
			}
			_, err = e.ver.Verify(context.Background(), old.Token)
			checkVerify(t, old.Token, nil, err, ReasonUnknownKey)
			wantKeys[1].State = KeyExpired
			checkKeys(t, e.ring.Keys(), wantKeys)
			if _, err := e.ver.Verify(context.Background(), e.mint(t, MintRequest{Subject: "1"}).Token); err != nil {
				t.Errorf("new key's token: %v", err)
			}
		})
	}
}

func checkKeys(t *testing.T, got, want []KeyInfo) {
	t.Helper()
	eq := func(a, b KeyInfo) bool {
		return a.ID == b.ID && a.State == b.State && a.Bits == b.Bits &&
			a.CreatedAt.Equal(b.CreatedAt) && a.ActivatedAt.Equal(b.ActivatedAt) &&
			a.RetiredAt.Equal(b.RetiredAt) && a.VerifiesUntil.Equal(b.VerifiesUntil)
	}
	if !slices.EqualFunc(got, want, eq) {
		t.Errorf("Keys() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestKeyRingImport(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []struct {
		name string
		pem  []byte
	}{
		{"PKCS#1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv))},
		{"PKCS#8", pkcs8(t, priv)},
	} {
		for _, b := range backends() {
			t.Run(form.name+"/"+b.name, func(t *testing.T) {
				ks, _ := b.open(t)
				c := newClock(t0)
				e := newEnv(t, ks, c)
				oldKID, _ := e.ring.Active()
				before := e.mint(t, MintRequest{Subject: "42"})

				c.Add(time.Minute)
				sk, err := KeyFromPEM(form.pem, c.Now())
				if err != nil {
					t.Fatal(err)
				}
				if err := e.ring.Import(context.Background(), sk); err != nil {
					t.Fatalf("Import: %v", err)
				}
				kid, key := e.ring.Active()
				if kid != Thumbprint(&priv.PublicKey) || !key.Equal(priv) {
					t.Errorf("active key after import is %s, want the imported key", kid)
				}
				if got := jwksKids(t, e.ring); !slices.Equal(got, []string{kid, oldKID}) {
					t.Errorf("JWKS kids = %v", got)
				}
				for _, tok := range []string{before.Token, e.mint(t, MintRequest{Subject: "42"}).Token} {
					if _, err := e.ver.Verify(context.Background(), tok); err != nil {
						t.Errorf("Verify: %v", err)
					}
				}
				if err := e.ring.Import(context.Background(), sk); !errors.Is(err, store.ErrConflict) {
					t.Errorf("importing the same key again: %v, want ErrConflict", err)
				}
			})
		}
	}
}

func TestKeyRingImportRejectsInconsistentKey(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	sk, err := GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	sk.ID = "not-the-thumbprint"
	if err := e.ring.Import(context.Background(), sk); err == nil {
		t.Error("Import accepted a key whose ID is not its thumbprint")
	}
}

func TestKeyRingMaintain(t *testing.T) {
	ks := &fakeKeyStore{}
	c := newClock(t0)
	e := newEnv(t, ks, c)
	first, _ := e.ring.Active()

	if err := e.ring.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kid, _ := e.ring.Active(); kid != first {
		t.Fatal("Maintain rotated a fresh key")
	}

	c.Add(e.cfg.RotateEvery)
	if err := e.ring.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, _ := e.ring.Active()
	if second == first {
		t.Fatal("Maintain did not rotate after rotate_every")
	}
	rotatedAt := c.Now()

	// Long after the first key expired, Maintain removes it from the store.
	c.Set(rotatedAt.Add(MaxAccessTTL + Leeway))
	if err := e.ring.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ks.count() != 2 {
		t.Errorf("store has %d keys; the first key was deleted too early", ks.count())
	}
	c.Add(time.Second)
	if err := e.ring.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ks.count() != 1 || len(e.ring.Keys()) != 1 || e.ring.Keys()[0].ID != second {
		t.Errorf("after cleanup store has %d keys, ring %+v; want only %s", ks.count(), e.ring.Keys(), second)
	}

	// rotate_every 0 never rotates.
	cfg := e.cfg
	cfg.RotateEvery = 0
	never, err := NewKeyRing(context.Background(), ks, cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(10 * 365 * 24 * time.Hour)
	if err := never.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kid, _ := never.Active(); kid != second {
		t.Error("Maintain rotated with rotate_every 0")
	}
}

// TestKeyRingMaintainReplicas runs Maintain on several replicas (one store
// handle each) at the moment the key comes due: exactly one rotates.
func TestKeyRingMaintainReplicas(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			first, reopen := b.open(t)
			c := newClock(t0)
			const replicas = 4
			rings := make([]*KeyRing, replicas)
			for i := range rings {
				ks := first
				if i > 0 {
					ks = reopen()
				}
				ring, err := NewKeyRing(context.Background(), ks, testConfig(), c.Now)
				if err != nil {
					t.Fatal(err)
				}
				rings[i] = ring
			}
			c.Add(testConfig().RotateEvery)
			for round := range 3 {
				var wg sync.WaitGroup
				start := make(chan struct{})
				for _, r := range rings {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if err := r.Maintain(context.Background()); err != nil {
							t.Error(err)
						}
					}()
				}
				close(start)
				wg.Wait()
				if n := len(storedKeys(t, first)); n != 2 {
					t.Fatalf("round %d: %d keys in the store after concurrent Maintain, want 2 (one rotation)", round, n)
				}
			}
		})
	}
}

func TestKeyRingStoreDown(t *testing.T) {
	ks := &fakeKeyStore{}
	c := newClock(t0)
	e := newEnv(t, ks, c)
	old := e.mint(t, MintRequest{Subject: "42"})
	if _, err := e.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	kid, _ := e.ring.Active()

	ks.setFail(errStoreDown)
	if err := e.ring.Refresh(context.Background()); !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh = %v, want the store's error", err)
	}
	if got, _ := e.ring.Active(); got != kid {
		t.Fatal("a failed Refresh changed the active key")
	}
	if _, err := e.ver.Verify(context.Background(), old.Token); err != nil {
		t.Errorf("verification while the store is down: %v", err)
	}
	if err := e.ring.Maintain(context.Background()); !errors.Is(err, errStoreDown) {
		t.Errorf("Maintain = %v, want the store's error", err)
	}

	// The retired key still leaves the JWKS on time.
	c.Add(2*time.Hour + Leeway)
	if err := e.ring.Refresh(context.Background()); !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh = %v, want the store's error", err)
	}
	if got := jwksKids(t, e.ring); !slices.Equal(got, []string{kid}) {
		t.Errorf("JWKS kids while the store is down = %v, want only %s", got, kid)
	}

	if _, err := NewKeyRing(context.Background(), ks, testConfig(), c.Now); !errors.Is(err, errStoreDown) {
		t.Errorf("NewKeyRing with the store down = %v", err)
	}
}

func TestKeyRingRejectsBadStoredKeys(t *testing.T) {
	good, err := GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  store.SigningKey
	}{
		{"id is not the thumbprint", store.SigningKey{ID: "x", PrivatePEM: good.PrivatePEM, CreatedAt: t0, ActivatedAt: t0}},
		{"not PEM", store.SigningKey{ID: good.ID, PrivatePEM: []byte("junk"), CreatedAt: t0, ActivatedAt: t0}},
		{"1024 bits", store.SigningKey{ID: Thumbprint(&weak.PublicKey), PrivatePEM: pkcs8(t, weak), CreatedAt: t0, ActivatedAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := &fakeKeyStore{keys: []store.SigningKey{tt.key}}
			if _, err := NewKeyRing(context.Background(), ks, testConfig(), newClock(t0).Now); err == nil {
				t.Error("NewKeyRing accepted the key")
			}
		})
	}
	t.Run("no active key", func(t *testing.T) {
		retired := good
		retired.RetiredAt = t0
		ks := &fakeKeyStore{keys: []store.SigningKey{retired}}
		e := newEnv(t, ks, newClock(t0)) // EnsureSigningKey adds an active key
		ks.mu.Lock()
		ks.keys = []store.SigningKey{retired}
		ks.mu.Unlock()
		kid, _ := e.ring.Active()
		if err := e.ring.Refresh(context.Background()); err == nil {
			t.Error("Refresh accepted a store without an active key")
		}
		if got, _ := e.ring.Active(); got != kid {
			t.Error("a failed Refresh changed the active key")
		}
	})
}

func TestNewKeyRingValidatesConfig(t *testing.T) {
	cfg := testConfig()
	cfg.AccessTTL = 0
	ks := &fakeKeyStore{}
	if _, err := NewKeyRing(context.Background(), ks, cfg, nil); err == nil {
		t.Error("NewKeyRing accepted an invalid config")
	}
	if ks.count() != 0 {
		t.Error("NewKeyRing with an invalid config created a key")
	}
}

func TestNewVerifierValidatesConfig(t *testing.T) {
	e := newEnv(t, &fakeKeyStore{}, newClock(t0))
	for _, edit := range []func(*Config){
		func(c *Config) { c.Issuer = "" },
		func(c *Config) { c.Audience = "" },
	} {
		cfg := e.cfg
		edit(&cfg)
		if _, err := NewVerifier(e.ring, cfg, nil); err == nil {
			t.Errorf("NewVerifier accepted %+v, which would skip the iss or aud check", cfg)
		}
	}
}

// TestVerifierUnknownKIDRefresh: a replica verifies a token signed by a key
// another replica has just rotated in, without waiting for its periodic
// refresh; and a flood of unknown kids reads the store at most once per
// UnknownKIDRefreshInterval.
func TestVerifierUnknownKIDRefresh(t *testing.T) {
	ks := &fakeKeyStore{}
	c := newClock(t0)
	a := newEnv(t, ks, c)
	b := newEnv(t, ks, c) // same store, its own ring: another replica
	if _, err := a.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	fresh := a.mint(t, MintRequest{Subject: "7"})
	reads := ks.readCount()
	if _, err := b.ver.Verify(context.Background(), fresh.Token); err != nil {
		t.Fatalf("replica b refused a token of the key replica a rotated in: %v", err)
	}
	if ks.readCount() != reads+1 {
		t.Fatalf("store reads: %d, want 1", ks.readCount()-reads)
	}

	// Tokens whose kid exists nowhere: one store read, then none until the
	// interval has passed.
	forged := func(kid string) string {
		h := segment(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid})
		p := segment(t, map[string]any{"iss": b.cfg.Issuer, "aud": b.cfg.Audience, "sub": "1", "exp": c.Now().Add(time.Hour).Unix()})
		return h + "." + p + ".c2ln"
	}
	c.Add(UnknownKIDRefreshInterval)
	reads = ks.readCount()
	for i := range 50 {
		_, err := b.ver.Verify(context.Background(), forged(fmt.Sprint("nope-", i)))
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Reason != ReasonUnknownKey {
			t.Fatalf("unknown kid: err = %v", err)
		}
	}
	if n := ks.readCount() - reads; n != 1 {
		t.Fatalf("50 unknown kids read the store %d times, want 1", n)
	}
	c.Add(UnknownKIDRefreshInterval)
	b.ver.Verify(context.Background(), forged("later"))
	if n := ks.readCount() - reads; n != 2 {
		t.Fatalf("after the interval: %d store reads in all, want 2", n)
	}
}
