package session

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/token"
)

func TestRefreshTokenValues(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		v, h, err := NewRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 43 || seen[v] {
			t.Fatalf("token %q: want 43 base64url characters (256 bits), unique", v)
		}
		seen[v] = true
		if string(h) != string(HashRefreshToken(v)) || len(h) != 32 {
			t.Fatal("hash mismatch")
		}
	}
}

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "fd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

const iss = "http://frontdoor.test"

func TestRevocationsFromStore(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now().UTC()
	u, _, err := st.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wx1", OpenID: "o1", DefaultRoles: []string{"subscriber"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sub := func(id int64) string { return itoa(id) }

	rev := NewRevocations(iss)
	if err := rev.Sync(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	live := &token.Claims{Issuer: iss, Subject: sub(u.ID), ID: "jti-1", Version: u.TokenVersion}
	if rev.Revoked(live) {
		t.Fatal("a fresh token is revoked")
	}

	// A logout recorded by another process reaches this view by Sync.
	if err := st.DenyJTI(ctx, "jti-1", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := rev.Sync(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	if !rev.Revoked(live) {
		t.Fatal("denied jti not revoked after sync")
	}

	// A role change by another process revokes older tokens, not newer ones.
	u2, err := st.SetRoles(ctx, u.ID, []string{"editor"}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	old := &token.Claims{Issuer: iss, Subject: sub(u.ID), ID: "jti-2", Version: u.TokenVersion}
	fresh := &token.Claims{Issuer: iss, Subject: sub(u.ID), ID: "jti-3", Version: u2.TokenVersion}
	if err := rev.Sync(ctx, st, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !rev.Revoked(old) || rev.Revoked(fresh) {
		t.Fatalf("version check: old revoked=%v fresh revoked=%v", rev.Revoked(old), rev.Revoked(fresh))
	}
	// Another issuer's subject "1" is not our user 1.
	if rev.Revoked(&token.Claims{Issuer: "https://sso.example.com", Subject: sub(u.ID)}) {
		t.Error("version check applied to another issuer's token")
	}

	// Expired denials are dropped from memory.
	if err := rev.Sync(ctx, st, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if jtis, _ := rev.Size(); jtis != 0 {
		t.Errorf("%d expired jtis still held", jtis)
	}
}

func TestLocalDenyIsImmediate(t *testing.T) {
	rev := NewRevocations(iss)
	c := &token.Claims{Issuer: iss, Subject: "5", ID: "abc"}
	rev.Deny("abc", time.Now().Add(time.Hour))
	if !rev.Revoked(c) {
		t.Fatal("local deny not applied")
	}
	rev.SetVersion(5, 2)
	if !rev.Revoked(&token.Claims{Issuer: iss, Subject: "5", Version: 1}) || rev.Revoked(&token.Claims{Issuer: iss, Subject: "5", Version: 2}) {
		t.Fatal("local version not applied")
	}
	// A lower version never wins over a higher one.
	rev.SetVersion(5, 1)
	if !rev.Revoked(&token.Claims{Issuer: iss, Subject: "5", Version: 1}) {
		t.Fatal("version went backwards")
	}
}

type failingSource struct{}

func (failingSource) DeniedJTIsSince(context.Context, time.Time, time.Time) ([]store.DeniedJTI, error) {
	return nil, store.ErrUnavailable
}
func (failingSource) UserVersionsSince(context.Context, time.Time) ([]store.UserVersion, error) {
	return nil, store.ErrUnavailable
}

func TestStoreOutageKeepsView(t *testing.T) {
	rev := NewRevocations(iss)
	rev.Deny("gone", time.Now().Add(time.Hour))
	if err := rev.Sync(context.Background(), failingSource{}, time.Now()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Sync error %v", err)
	}
	if !rev.Revoked(&token.Claims{ID: "gone"}) {
		t.Fatal("an outage forgot a revocation")
	}
}

type fixedVerifier struct{ c *token.Claims }

func (f fixedVerifier) Verify(context.Context, string) (*token.Claims, error) { return f.c, nil }

func TestVerifierRefusesRevoked(t *testing.T) {
	rev := NewRevocations(iss)
	v := NewVerifier(fixedVerifier{&token.Claims{Issuer: iss, Subject: "1", ID: "x"}}, rev)
	if _, err := v.Verify(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	rev.Deny("x", time.Now().Add(time.Minute))
	_, err := v.Verify(context.Background(), "t")
	var ve *token.VerifyError
	if !errors.As(err, &ve) || ve.Reason != token.ReasonRevoked {
		t.Fatalf("error %v, want reason revoked", err)
	}
}

func BenchmarkRevokedCheck(b *testing.B) {
	rev := NewRevocations(iss)
	for i := 0; i < 10000; i++ {
		rev.Deny(itoa(int64(i)), time.Now().Add(time.Hour))
		rev.SetVersion(int64(i), 2)
	}
	c := &token.Claims{Issuer: iss, Subject: "123456", ID: "not-denied", Version: 0}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rev.Revoked(c) {
			b.Fatal("revoked")
		}
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
