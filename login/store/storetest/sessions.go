package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"frontdoor/login/store"
)

// refreshTTL is the lifetime the suite gives refresh tokens unless a case
// needs them to expire.
const refreshTTL = 30 * 24 * time.Hour

// tokenHash is the stored form of the refresh token whose value is name.
func tokenHash(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return h[:]
}

// refreshToken returns the token named name, issued at at for refreshTTL.
// A zero userID and an empty family are what a caller of RotateRefreshToken
// passes to have them copied from the rotated token.
func refreshToken(userID int64, family, name string, at time.Time) store.RefreshToken {
	return store.RefreshToken{
		Hash:      tokenHash(name),
		FamilyID:  family,
		UserID:    userID,
		IssuedAt:  at,
		ExpiresAt: at.Add(refreshTTL),
	}
}

func testTokenVersion(t *testing.T, s store.Store) {
	ctx := t.Context()
	login := store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), DefaultRoles: []string{"subscriber"}, Now: base}
	u, _, err := s.UpsertWeChatUser(ctx, login)
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	if u.TokenVersion != 0 || !u.TokenVersionAt.IsZero() {
		t.Fatalf("new user: TokenVersion %d at %v, want 0 at the zero time", u.TokenVersion, u.TokenVersionAt)
	}
	// relogin returns the user as a login sees it: its token version is the
	// one the login's access token must carry.
	relogin := func(now time.Time) (store.User, error) {
		in := login
		in.Now = now
		u, _, err := s.UpsertWeChatUser(ctx, in)
		return u, err
	}
	steps := []struct {
		name string
		do   func(now time.Time) (store.User, error)
		bump bool
	}{
		{"update profile", func(now time.Time) (store.User, error) {
			return s.UpdateProfile(ctx, u.ID, store.Profile{Nickname: ptr("n")}, now)
		}, false},
		{"set password hash", func(now time.Time) (store.User, error) { return s.SetPasswordHash(ctx, u.ID, "h", now) }, false},
		{"record login", func(now time.Time) (store.User, error) {
			if err := s.RecordLogin(ctx, u.ID, now); err != nil {
				return store.User{}, err
			}
			return s.UserByID(ctx, u.ID)
		}, false},
		{"same roles", func(now time.Time) (store.User, error) { return s.SetRoles(ctx, u.ID, []string{"subscriber"}, now) }, false},
		{"other roles", func(now time.Time) (store.User, error) {
			return s.SetRoles(ctx, u.ID, []string{"subscriber", "editor"}, now)
		}, true},
		{"relogin", relogin, false},
		{"disable", func(now time.Time) (store.User, error) { return s.SetDisabled(ctx, u.ID, true, now) }, true},
		{"relogin while disabled", relogin, false},
		{"enable", func(now time.Time) (store.User, error) { return s.SetDisabled(ctx, u.ID, false, now) }, false},
		{"no roles", func(now time.Time) (store.User, error) { return s.SetRoles(ctx, u.ID, nil, now) }, true},
		{"relogin after the change", relogin, false},
	}
	version, at := int64(0), time.Time{}
	for i, st := range steps {
		now := base.Add(time.Duration(i+1) * time.Minute)
		got, err := st.do(now)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.bump {
			version, at = version+1, utc(now)
		}
		for _, c := range []struct {
			what string
			u    store.User
		}{{"returned", got}, {"UserByID", mustUserByID(t, s, u.ID)}} {
			if c.u.TokenVersion != version || !sameTime(c.u.TokenVersionAt, at) {
				t.Errorf("%s: %s TokenVersion %d at %v, want %d at %v", st.name, c.what, c.u.TokenVersion, c.u.TokenVersionAt, version, at)
			}
		}
	}
	users := mustUsers(t, s)
	if len(users) != 1 || users[0].TokenVersion != version || !sameTime(users[0].TokenVersionAt, at) {
		t.Errorf("Users = %d users, want one with TokenVersion %d at %v", len(users), version, at)
	}
}

func testUserVersionsSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []int64
	for _, name := range []string{"u1", "u2", "u3"} {
		u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: name, PasswordHash: "h", Now: base})
		if err != nil {
			t.Fatalf("CreatePasswordUser: %v", err)
		}
		ids = append(ids, u.ID)
	}
	// Creating users is no change of their tokens.
	checkVersions(t, s, time.Time{}, nil)

	changes := []struct {
		name string
		do   func() error
	}{
		{"u2 roles", func() error { return second(s.SetRoles(ctx, ids[1], []string{"editor"}, base.Add(time.Minute))) }},
		{"u1 disabled", func() error { return second(s.SetDisabled(ctx, ids[0], true, base.Add(2*time.Minute))) }},
		{"u2 roles again", func() error { return second(s.SetRoles(ctx, ids[1], []string{"author"}, base.Add(3*time.Minute))) }},
		// No change of the role set: u3 stays out of the list.
		{"u3 same roles", func() error { return second(s.SetRoles(ctx, ids[2], []string{}, base.Add(4*time.Minute))) }},
	}
	for _, c := range changes {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	u1 := store.UserVersion{UserID: ids[0], Version: 1, ChangedAt: utc(base.Add(2 * time.Minute))}
	u2 := store.UserVersion{UserID: ids[1], Version: 2, ChangedAt: utc(base.Add(3 * time.Minute))}
	cases := []struct {
		name  string
		since time.Time
		want  []store.UserVersion
	}{
		{"all, oldest change first", time.Time{}, []store.UserVersion{u1, u2}},
		{"just before a change", base.Add(2*time.Minute - time.Microsecond), []store.UserVersion{u1, u2}},
		{"since is exclusive", base.Add(2 * time.Minute), []store.UserVersion{u2}},
		{"nothing newer", base.Add(3 * time.Minute), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkVersions(t, s, c.since, c.want) })
	}
}

func checkVersions(t *testing.T, s store.Store, since time.Time, want []store.UserVersion) {
	t.Helper()
	got, err := s.UserVersionsSince(t.Context(), since)
	if err != nil {
		t.Fatalf("UserVersionsSince(%v): %v", since, err)
	}
	equal := len(got) == len(want)
	for i := 0; equal && i < len(got); i++ {
		equal = got[i].UserID == want[i].UserID && got[i].Version == want[i].Version && sameTime(got[i].ChangedAt, want[i].ChangedAt)
	}
	if !equal {
		t.Errorf("UserVersionsSince(%v) = %+v, want %+v", since, got, want)
	}
}

func testRefreshCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	t0 := refreshToken(u.ID, "fam-1", "t0", base)
	if err := s.CreateRefreshToken(ctx, t0); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
	// The rotated token comes back whole: every field round-trips.
	got := mustRotate(t, s, "t0", refreshToken(0, "", "t1", base.Add(time.Minute)), base.Add(time.Minute))
	want := t0
	want.RotatedAt = base.Add(time.Minute)
	checkRefresh(t, "rotated t0", got, want)

	// A new token is live whatever its RotatedAt and RevokedAt say.
	odd := refreshToken(u.ID, "fam-2", "odd", base)
	odd.RotatedAt, odd.RevokedAt = base, base
	if err := s.CreateRefreshToken(ctx, odd); err != nil {
		t.Fatalf("CreateRefreshToken(rotated and revoked): %v", err)
	}
	mustRotate(t, s, "odd", refreshToken(0, "", "odd-next", base.Add(time.Minute)), base.Add(time.Minute))

	dup := refreshToken(u.ID, "fam-3", "t0", base.Add(time.Hour))
	if err := s.CreateRefreshToken(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateRefreshToken(existing hash) = %v, want ErrConflict", err)
	}

	bad := []struct {
		name string
		tok  store.RefreshToken
	}{
		{"short hash", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.Hash = tok.Hash[:31]
			return tok
		}()},
		{"long hash", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.Hash = append(tok.Hash, 0)
			return tok
		}()},
		{"no hash", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.Hash = nil
			return tok
		}()},
		{"no family", refreshToken(u.ID, "", "bad", base)},
		{"no issue time", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.IssuedAt = time.Time{}
			return tok
		}()},
		{"no expiry", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.ExpiresAt = time.Time{}
			return tok
		}()},
		{"expires when issued", func() store.RefreshToken {
			tok := refreshToken(u.ID, "fam-4", "bad", base)
			tok.ExpiresAt = tok.IssuedAt
			return tok
		}()},
	}
	for _, b := range bad {
		err := s.CreateRefreshToken(ctx, b.tok)
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateRefreshToken(%s) = %v, want an input error", b.name, err)
		}
	}
	if _, err := s.RotateRefreshToken(ctx, tokenHash("bad"), refreshToken(0, "", "bad-next", base), base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a token refused by CreateRefreshToken = %v, want ErrNotFound", err)
	}

	missing := refreshToken(u.ID+1000, "fam-5", "orphan", base)
	if err := s.CreateRefreshToken(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateRefreshToken(missing user) = %v, want ErrNotFound", err)
	}
	if _, err := s.RotateRefreshToken(ctx, tokenHash("orphan"), refreshToken(0, "", "orphan-next", base), base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating the token of a missing user = %v, want ErrNotFound", err)
	}
}

func testRefreshRotateChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	prev := refreshToken(u.ID, "fam", "t0", base)
	mustCreateRefresh(t, s, prev)
	for i := 1; i <= 3; i++ {
		now := base.Add(time.Duration(i) * time.Hour)
		next := refreshToken(0, "", fmt.Sprintf("t%d", i), now)
		got, err := s.RotateRefreshToken(ctx, prev.Hash, next, now)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		want := prev
		want.RotatedAt = now
		checkRefresh(t, fmt.Sprintf("rotation %d", i), got, want)
		next.FamilyID, next.UserID = "fam", u.ID
		prev = next
	}

	// Naming old's family and user explicitly is the same as leaving them
	// zero.
	now := base.Add(4 * time.Hour)
	got := mustRotate(t, s, "t3", refreshToken(u.ID, "fam", "t4", now), now)
	if got.UserID != u.ID || got.FamilyID != "fam" {
		t.Errorf("rotated t3 = user %d family %q, want %d %q", got.UserID, got.FamilyID, u.ID, "fam")
	}
	// Naming others is a caller's bug, refused without consuming old.
	for _, next := range []store.RefreshToken{
		refreshToken(u.ID, "other-family", "t5", now),
		refreshToken(u.ID+1, "fam", "t5", now),
		refreshToken(u.ID+1, "", "t5", now),
	} {
		_, err := s.RotateRefreshToken(ctx, tokenHash("t4"), next, now)
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRefreshReused) {
			t.Errorf("RotateRefreshToken(next of family %q, user %d) = %v, want an input error", next.FamilyID, next.UserID, err)
		}
	}
	mustRotate(t, s, "t4", refreshToken(0, "", "t5", now), now)
}

func testRefreshRotateRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	mustCreateRefresh(t, s, refreshToken(u.ID, "fam-live", "live", base))
	short := refreshToken(u.ID, "fam-short", "short", base)
	short.ExpiresAt = base.Add(time.Hour)
	mustCreateRefresh(t, s, short)
	mustCreateRefresh(t, s, refreshToken(u.ID, "fam-revoked", "revoked", base))
	if _, err := s.RevokeRefreshFamily(ctx, tokenHash("revoked"), base.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeRefreshFamily: %v", err)
	}

	later := base.Add(2 * time.Minute)
	cases := []struct {
		name string
		old  string
		next store.RefreshToken
		now  time.Time
		// want is ErrNotFound, ErrConflict, or nil for an input error that
		// is neither.
		want error
	}{
		{"unknown", "unknown", refreshToken(0, "", "n-unknown", later), later, store.ErrNotFound},
		{"expired at the instant of expiry", "short", refreshToken(0, "", "n-expired", short.ExpiresAt), short.ExpiresAt, store.ErrNotFound},
		{"expired", "short", refreshToken(0, "", "n-expired-2", base.Add(2*time.Hour)), base.Add(2 * time.Hour), store.ErrNotFound},
		{"revoked", "revoked", refreshToken(0, "", "n-revoked", later), later, store.ErrNotFound},
		{"next hash taken", "live", refreshToken(0, "", "revoked", later), later, store.ErrConflict},
		{"next hash malformed", "live", store.RefreshToken{Hash: []byte("short"), IssuedAt: later, ExpiresAt: later.Add(time.Hour)}, later, nil},
		{"next expires when issued", "live", store.RefreshToken{Hash: tokenHash("n-bad"), IssuedAt: later, ExpiresAt: later}, later, nil},
	}
	for _, c := range cases {
		got, err := s.RotateRefreshToken(ctx, tokenHash(c.old), c.next, c.now)
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: RotateRefreshToken = %v, want %v", c.name, err, c.want)
		}
		if c.want == nil && (err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRefreshReused) || errors.Is(err, store.ErrConflict)) {
			t.Errorf("%s: RotateRefreshToken = %v, want an input error", c.name, err)
		}
		if got.UserID != 0 || got.Hash != nil {
			t.Errorf("%s: RotateRefreshToken returned a token (user %d) with its error", c.name, got.UserID)
		}
	}
	// No refusal stored its next token.
	for _, name := range []string{"n-unknown", "n-expired", "n-expired-2", "n-revoked", "n-bad"} {
		if _, err := s.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", later), later); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotating %s, the next token of a refused rotation = %v, want ErrNotFound", name, err)
		}
	}
	// Nor consumed a live old token: the first real rotation succeeds.
	mustRotate(t, s, "live", refreshToken(0, "", "live-next", later), later)
	// A microsecond before its expiry a token still rotates.
	edge := short.ExpiresAt.Add(-time.Microsecond)
	mustRotate(t, s, "short", refreshToken(0, "", "short-next", edge), edge)
}

func testRefreshReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	t0 := refreshToken(u.ID, "fam", "t0", base)
	mustCreateRefresh(t, s, t0)
	mustRotate(t, s, "t0", refreshToken(0, "", "t1", base.Add(time.Minute)), base.Add(time.Minute))
	mustRotate(t, s, "t1", refreshToken(0, "", "t2", base.Add(2*time.Minute)), base.Add(2*time.Minute))
	mustCreateRefresh(t, s, refreshToken(u.ID, "other", "o0", base))

	// t0 is presented again: a thief's copy, or the client's own replay.
	now := base.Add(3 * time.Minute)
	got, err := s.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", "stolen", now), now)
	if !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("RotateRefreshToken(rotated t0) = %v, want ErrRefreshReused", err)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateRefreshToken(rotated t0) = %v, also ErrNotFound; want only ErrRefreshReused", err)
	}
	want := t0
	want.RotatedAt, want.RevokedAt = base.Add(time.Minute), now
	checkRefresh(t, "reused t0", got, want)

	// The whole family is dead, the newest token and the one the reuse
	// asked for included; a second reuse is no longer news.
	later := base.Add(4 * time.Minute)
	for _, name := range []string{"t2", "t1", "t0", "stolen"} {
		if _, err := s.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", later), later); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RotateRefreshToken(%s) after the reuse = %v, want ErrNotFound", name, err)
		}
	}
	// The family still exists for logout, and other sessions live on.
	if uid, err := s.RevokeRefreshFamily(ctx, tokenHash("t2"), later); err != nil || uid != u.ID {
		t.Errorf("RevokeRefreshFamily(t2) after the reuse = %d, %v; want %d, nil", uid, err, u.ID)
	}
	mustRotate(t, s, "o0", refreshToken(0, "", "o1", later), later)
}

// testRefreshReuseAfterExpiry presents a rotated token after it expired:
// it is refused like any expired token, without revoking its family.
func testRefreshReuseAfterExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	t0 := refreshToken(u.ID, "fam", "t0", base)
	t0.ExpiresAt = base.Add(time.Hour)
	mustCreateRefresh(t, s, t0)
	mustRotate(t, s, "t0", refreshToken(0, "", "t1", base.Add(time.Minute)), base.Add(time.Minute))

	now := base.Add(time.Hour)
	if _, err := s.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", "t0-again", now), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateRefreshToken(rotated and expired t0) = %v, want ErrNotFound", err)
	}
	mustRotate(t, s, "t1", refreshToken(0, "", "t2", now), now)
}

// concurrentRotate rotates one token from 8 goroutines spread over a and b:
// exactly one must succeed, and the others, finding it rotated, revoke the
// family, so that even the winner's new token is dead.
func concurrentRotate(t *testing.T, a, b store.Store) {
	const n = 8
	ctx := t.Context()
	u := mustPasswordUser(t, a, "alice")
	mustCreateRefresh(t, a, refreshToken(u.ID, "fam", "t0", base))
	now := base.Add(time.Minute)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   [n]store.RefreshToken
		errs  [n]error
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", fmt.Sprintf("next-%d", i), now), now)
		})
	}
	close(start)
	wg.Wait()
	ok, reused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			if got[i].UserID != u.ID || got[i].FamilyID != "fam" || !sameTime(got[i].RotatedAt, utc(now)) {
				t.Errorf("winning rotation %d returned user %d family %q rotated at %v", i, got[i].UserID, got[i].FamilyID, got[i].RotatedAt)
			}
		case errors.Is(err, store.ErrRefreshReused):
			reused++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("rotation %d = %v, want nil, ErrRefreshReused or ErrNotFound", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent rotations of one token succeeded, want exactly 1", ok, n)
	}
	if reused < 1 {
		t.Errorf("no concurrent rotation reported ErrRefreshReused, want at least 1")
	}
	later := base.Add(2 * time.Minute)
	for _, s := range []store.Store{a, b} {
		for i := range n {
			name := fmt.Sprintf("next-%d", i)
			if _, err := s.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", later), later); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RotateRefreshToken(%s) after the race = %v, want ErrNotFound", name, err)
			}
		}
	}
}

func testRefreshRevokeFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustPasswordUser(t, s, "alice")
	bob := mustPasswordUser(t, s, "bob")
	mustCreateRefresh(t, s, refreshToken(alice.ID, "fam-a", "a0", base))
	mustRotate(t, s, "a0", refreshToken(0, "", "a1", base.Add(time.Minute)), base.Add(time.Minute))
	mustCreateRefresh(t, s, refreshToken(alice.ID, "fam-b", "b0", base))
	mustCreateRefresh(t, s, refreshToken(bob.ID, "fam-c", "c0", base))

	// Logging out with an already rotated token of the family ends it too.
	now := base.Add(2 * time.Minute)
	uid, err := s.RevokeRefreshFamily(ctx, tokenHash("a0"), now)
	if err != nil || uid != alice.ID {
		t.Fatalf("RevokeRefreshFamily(a0) = %d, %v; want %d, nil", uid, err, alice.ID)
	}
	for _, name := range []string{"a1", "a0"} {
		if _, err := s.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", now), now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RotateRefreshToken(%s) after logout = %v, want ErrNotFound", name, err)
		}
	}
	if uid, err := s.RevokeRefreshFamily(ctx, tokenHash("a1"), now.Add(time.Minute)); err != nil || uid != alice.ID {
		t.Errorf("RevokeRefreshFamily of a revoked family = %d, %v; want %d, nil", uid, err, alice.ID)
	}
	mustRotate(t, s, "b0", refreshToken(0, "", "b1", now), now)
	mustRotate(t, s, "c0", refreshToken(0, "", "c1", now), now)

	for _, h := range [][]byte{tokenHash("unknown"), nil, {}} {
		if uid, err := s.RevokeRefreshFamily(ctx, h, now); !errors.Is(err, store.ErrNotFound) || uid != 0 {
			t.Errorf("RevokeRefreshFamily(%d-byte unknown hash) = %d, %v; want 0, ErrNotFound", len(h), uid, err)
		}
	}
}

func testRefreshRevokeUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := mustPasswordUser(t, s, "alice")
	bob := mustPasswordUser(t, s, "bob")
	// Alice: a session with a rotated and a current token, a second
	// session, an expired one and one already logged out. Bob: one session.
	mustCreateRefresh(t, s, refreshToken(alice.ID, "fam-a", "a0", base))
	mustRotate(t, s, "a0", refreshToken(0, "", "a1", base.Add(time.Minute)), base.Add(time.Minute))
	mustCreateRefresh(t, s, refreshToken(alice.ID, "fam-b", "b0", base))
	expired := refreshToken(alice.ID, "fam-c", "c0", base)
	expired.ExpiresAt = base.Add(time.Hour)
	mustCreateRefresh(t, s, expired)
	mustCreateRefresh(t, s, refreshToken(alice.ID, "fam-d", "d0", base))
	if _, err := s.RevokeRefreshFamily(ctx, tokenHash("d0"), base.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeRefreshFamily: %v", err)
	}
	mustCreateRefresh(t, s, refreshToken(bob.ID, "fam-e", "e0", base))

	now := base.Add(2 * time.Hour)
	n, err := s.RevokeUserRefreshTokens(ctx, alice.ID, now)
	if err != nil {
		t.Fatalf("RevokeUserRefreshTokens: %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeUserRefreshTokens(alice) = %d, want 2 live sessions", n)
	}
	// The rotated a0 was revoked too: presenting it is no longer a reuse.
	for _, name := range []string{"a1", "b0", "a0"} {
		if _, err := s.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", now), now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RotateRefreshToken(%s) after RevokeUserRefreshTokens = %v, want ErrNotFound", name, err)
		}
	}
	mustRotate(t, s, "e0", refreshToken(0, "", "e1", now), now)

	for _, c := range []struct {
		name string
		id   int64
	}{{"alice again", alice.ID}, {"unknown user", bob.ID + 1000}} {
		if n, err := s.RevokeUserRefreshTokens(ctx, c.id, now); err != nil || n != 0 {
			t.Errorf("RevokeUserRefreshTokens(%s) = %d, %v; want 0, nil", c.name, n, err)
		}
	}
	// Bob's new token survived the calls above.
	mustRotate(t, s, "e1", refreshToken(0, "", "e2", now), now)
}

func testDenyJTI(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.DenyJTI(ctx, "jti-1", base.Add(2*time.Hour), base); err != nil {
		t.Fatalf("DenyJTI: %v", err)
	}
	// A second logout with the same access token is no error and changes
	// nothing.
	if err := s.DenyJTI(ctx, "jti-1", base.Add(5*time.Hour), base.Add(time.Minute)); err != nil {
		t.Fatalf("DenyJTI again: %v", err)
	}
	for _, c := range []struct {
		name string
		jti  string
		exp  time.Time
	}{
		{"empty jti", "", base.Add(time.Hour)},
		{"no expiry", "jti-2", time.Time{}},
	} {
		if err := s.DenyJTI(ctx, c.jti, c.exp, base); err == nil {
			t.Errorf("DenyJTI(%s) succeeded, want an error", c.name)
		}
	}
	checkDenied(t, s, time.Time{}, base, []store.DeniedJTI{{JTI: "jti-1", ExpiresAt: base.Add(2 * time.Hour), DeniedAt: base}})
}

func testDeniedJTIsSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	j0 := store.DeniedJTI{JTI: "jti-e", ExpiresAt: sec(2), DeniedAt: base}
	j1 := store.DeniedJTI{JTI: "jti-c", ExpiresAt: sec(3600), DeniedAt: sec(1)}
	j2 := store.DeniedJTI{JTI: "jti-d", ExpiresAt: sec(3600), DeniedAt: sec(2)}
	j3 := store.DeniedJTI{JTI: "jti-a", ExpiresAt: sec(3600), DeniedAt: sec(3)}
	j4 := store.DeniedJTI{JTI: "jti-b", ExpiresAt: sec(10), DeniedAt: sec(4)}
	// Inserted out of order, and named against it, so that ordering by
	// insertion or name would show.
	for _, d := range []store.DeniedJTI{j3, j1, j4, j0, j2} {
		if err := s.DenyJTI(ctx, d.JTI, d.ExpiresAt, d.DeniedAt); err != nil {
			t.Fatalf("DenyJTI(%s): %v", d.JTI, err)
		}
	}
	cases := []struct {
		name       string
		since, now time.Time
		want       []store.DeniedJTI
	}{
		{"all, oldest first", time.Time{}, sec(1), []store.DeniedJTI{j0, j1, j2, j3, j4}},
		{"expired at the instant of expiry", time.Time{}, sec(2), []store.DeniedJTI{j1, j2, j3, j4}},
		{"just before an entry", sec(2).Add(-time.Microsecond), sec(1), []store.DeniedJTI{j2, j3, j4}},
		{"since is exclusive", sec(2), sec(1), []store.DeniedJTI{j3, j4}},
		{"window and expiry", sec(2), sec(10), []store.DeniedJTI{j3}},
		{"nothing newer", sec(4), sec(1), nil},
		{"everything expired", time.Time{}, sec(3600), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkDenied(t, s, c.since, c.now, c.want) })
	}
}

func checkDenied(t *testing.T, s store.Store, since, now time.Time, want []store.DeniedJTI) {
	t.Helper()
	got, err := s.DeniedJTIsSince(t.Context(), since, now)
	if err != nil {
		t.Fatalf("DeniedJTIsSince: %v", err)
	}
	equal := len(got) == len(want)
	for i := 0; equal && i < len(got); i++ {
		equal = got[i].JTI == want[i].JTI && sameTime(got[i].ExpiresAt, utc(want[i].ExpiresAt)) && sameTime(got[i].DeniedAt, utc(want[i].DeniedAt))
	}
	if !equal {
		t.Errorf("DeniedJTIsSince(%v, %v) = %+v, want %+v", since, now, got, want)
	}
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, s, "alice")
	now := base.Add(2 * time.Hour)
	at := func(name, family string, issued, expires time.Time) store.RefreshToken {
		tok := refreshToken(u.ID, family, name, issued)
		tok.ExpiresAt = expires
		return tok
	}
	// Family f: an expired rotated token, a live rotated one and the live
	// current one.
	mustCreateRefresh(t, s, at("f0", "f", base, base.Add(time.Hour)))
	mustRotate(t, s, "f0", refreshToken(0, "", "f1", base.Add(time.Minute)), base.Add(time.Minute))
	mustRotate(t, s, "f1", refreshToken(0, "", "f2", base.Add(2*time.Minute)), base.Add(2*time.Minute))
	// Expiring exactly now; revoked and live; revoked and expired.
	mustCreateRefresh(t, s, at("now", "g", base, now))
	mustCreateRefresh(t, s, refreshToken(u.ID, "h", "revoked-live", base))
	mustCreateRefresh(t, s, at("revoked-expired", "i", base, base.Add(time.Hour)))
	for _, name := range []string{"revoked-live", "revoked-expired"} {
		if _, err := s.RevokeRefreshFamily(ctx, tokenHash(name), base.Add(time.Minute)); err != nil {
			t.Fatalf("RevokeRefreshFamily(%s): %v", name, err)
		}
	}
	live := store.DeniedJTI{JTI: "j-live", ExpiresAt: now.Add(time.Microsecond), DeniedAt: base}
	for _, d := range []store.DeniedJTI{
		{JTI: "j-now", ExpiresAt: now, DeniedAt: base},
		{JTI: "j-old", ExpiresAt: base.Add(time.Hour), DeniedAt: base},
		live,
	} {
		if err := s.DenyJTI(ctx, d.JTI, d.ExpiresAt, d.DeniedAt); err != nil {
			t.Fatalf("DenyJTI(%s): %v", d.JTI, err)
		}
	}

	for i, want := range [][2]int{{3, 2}, {0, 0}} {
		refresh, jtis, err := s.DeleteExpired(ctx, now)
		if err != nil {
			t.Fatalf("DeleteExpired %d: %v", i, err)
		}
		if refresh != want[0] || jtis != want[1] {
			t.Errorf("DeleteExpired %d = %d refresh tokens, %d jtis; want %d, %d", i, refresh, jtis, want[0], want[1])
		}
	}
	checkDenied(t, s, time.Time{}, base, []store.DeniedJTI{live})
	for _, name := range []string{"f0", "now", "revoked-expired"} {
		if _, err := s.RevokeRefreshFamily(ctx, tokenHash(name), now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeRefreshFamily(%s) after DeleteExpired = %v, want ErrNotFound: it expired", name, err)
		}
	}
	if uid, err := s.RevokeRefreshFamily(ctx, tokenHash("revoked-live"), now); err != nil || uid != u.ID {
		t.Errorf("RevokeRefreshFamily(revoked-live) after DeleteExpired = %d, %v; want it kept", uid, err)
	}
	// The rotated, unexpired f1 was kept: its reuse is still detected.
	if _, err := s.RotateRefreshToken(ctx, tokenHash("f1"), refreshToken(0, "", "f1-again", now), now); !errors.Is(err, store.ErrRefreshReused) {
		t.Errorf("reusing f1 after DeleteExpired = %v, want ErrRefreshReused", err)
	}
	if _, err := s.RotateRefreshToken(ctx, tokenHash("f2"), refreshToken(0, "", "f3", now), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateRefreshToken(f2) after the reuse of f1 = %v, want ErrNotFound", err)
	}
}

// testMultiRefreshReuse detects on b the reuse of a token rotated on a, and
// a sees the family revoked.
func testMultiRefreshReuse(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, a, "alice")
	mustCreateRefresh(t, a, refreshToken(u.ID, "fam", "t0", base))
	mustRotate(t, a, "t0", refreshToken(0, "", "t1", base.Add(time.Minute)), base.Add(time.Minute))
	now := base.Add(2 * time.Minute)
	if _, err := b.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", "stolen", now), now); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse of t0 on the other handle = %v, want ErrRefreshReused", err)
	}
	if _, err := a.RotateRefreshToken(ctx, tokenHash("t1"), refreshToken(0, "", "t2", now), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateRefreshToken(t1) after the reuse = %v, want ErrNotFound", err)
	}
}

// testMultiSessionVisibility checks that what one process revokes, the
// others see: that is how every replica honours a logout or a cutoff.
func testMultiSessionVisibility(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	u := mustPasswordUser(t, a, "alice")
	d := store.DeniedJTI{JTI: "jti-1", ExpiresAt: base.Add(time.Hour), DeniedAt: base}
	if err := a.DenyJTI(ctx, d.JTI, d.ExpiresAt, d.DeniedAt); err != nil {
		t.Fatalf("DenyJTI: %v", err)
	}
	checkDenied(t, b, time.Time{}, base, []store.DeniedJTI{d})

	if _, err := a.SetDisabled(ctx, u.ID, true, base.Add(time.Minute)); err != nil {
		t.Fatalf("SetDisabled: %v", err)
	}
	checkVersions(t, b, time.Time{}, []store.UserVersion{{UserID: u.ID, Version: 1, ChangedAt: utc(base.Add(time.Minute))}})

	mustCreateRefresh(t, b, refreshToken(u.ID, "fam", "t0", base))
	if uid, err := a.RevokeRefreshFamily(ctx, tokenHash("t0"), base.Add(time.Minute)); err != nil || uid != u.ID {
		t.Fatalf("RevokeRefreshFamily on the other handle = %d, %v; want %d, nil", uid, err, u.ID)
	}
	now := base.Add(2 * time.Minute)
	if _, err := b.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", "t1", now), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateRefreshToken after a logout on the other handle = %v, want ErrNotFound", err)
	}
}

// checkRefresh compares every field of got with want, whose times are
// normalised as a store returns them.
func checkRefresh(t *testing.T, what string, got, want store.RefreshToken) {
	t.Helper()
	if !bytes.Equal(got.Hash, want.Hash) || got.FamilyID != want.FamilyID || got.UserID != want.UserID ||
		!sameTime(got.IssuedAt, utc(want.IssuedAt)) || !sameTime(got.ExpiresAt, utc(want.ExpiresAt)) ||
		!sameTime(got.RotatedAt, utc(want.RotatedAt)) || !sameTime(got.RevokedAt, utc(want.RevokedAt)) {
		t.Errorf("%s = %+v,\nwant %+v", what, got, want)
	}
}

func mustPasswordUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u, err := s.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: name, PasswordHash: "h", Roles: []string{"subscriber"}, Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser(%s): %v", name, err)
	}
	return u
}

func mustCreateRefresh(t *testing.T, s store.Store, tok store.RefreshToken) {
	t.Helper()
	if err := s.CreateRefreshToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateRefreshToken(family %s): %v", tok.FamilyID, err)
	}
}

// mustRotate rotates the token named old into next at now and returns the
// rotated token.
func mustRotate(t *testing.T, s store.Store, old string, next store.RefreshToken, now time.Time) store.RefreshToken {
	t.Helper()
	got, err := s.RotateRefreshToken(t.Context(), tokenHash(old), next, now)
	if err != nil {
		t.Fatalf("RotateRefreshToken(%s): %v", old, err)
	}
	if !bytes.Equal(got.Hash, tokenHash(old)) || got.RotatedAt.IsZero() || !got.RevokedAt.IsZero() {
		t.Errorf("RotateRefreshToken(%s) returned %+v, want the rotated, unrevoked token", old, got)
	}
	return got
}

// testMultiRevokeDuringRotation logs a session out (or disables its user)
// on a while b refreshes it, round after round. Whichever wins, once
// RevokeRefreshFamily or RevokeUserRefreshTokens has returned no token of
// the family may be live: not even the one that a rotation committing just
// before the revocation created.
func testMultiRevokeDuringRotation(t *testing.T, a, b store.Store) {
	const rounds = 20
	ctx := t.Context()
	u := mustPasswordUser(t, a, "alice")
	now := base.Add(time.Minute)
	later := base.Add(2 * time.Minute)
	for r := range rounds {
		t0, t1 := fmt.Sprintf("r%d-t0", r), fmt.Sprintf("r%d-t1", r)
		mustCreateRefresh(t, a, refreshToken(u.ID, fmt.Sprintf("fam-%d", r), t0, base))
		var (
			wg             sync.WaitGroup
			start          = make(chan struct{})
			rotErr, revErr error
		)
		wg.Go(func() {
			<-start
			_, rotErr = b.RotateRefreshToken(ctx, tokenHash(t0), refreshToken(0, "", t1, now), now)
		})
		wg.Go(func() {
			<-start
			if r%2 == 0 {
				_, revErr = a.RevokeRefreshFamily(ctx, tokenHash(t0), now)
			} else {
				_, revErr = a.RevokeUserRefreshTokens(ctx, u.ID, now)
			}
		})
		close(start)
		wg.Wait()
		if revErr != nil {
			t.Fatalf("round %d: revocation: %v", r, revErr)
		}
		if rotErr != nil && !errors.Is(rotErr, store.ErrNotFound) {
			t.Fatalf("round %d: RotateRefreshToken = %v, want nil or ErrNotFound", r, rotErr)
		}
		for _, name := range []string{t1, t0} {
			if _, err := a.RotateRefreshToken(ctx, tokenHash(name), refreshToken(0, "", name+"-next", later), later); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("round %d (the rotation returned %v): RotateRefreshToken(%s) after the revocation = %v, want ErrNotFound",
					r, rotErr, name, err)
			}
		}
	}
}
