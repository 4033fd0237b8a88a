package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"frontdoor/login/store"
)

// wechatSession is the first refresh token of a WeChat login: it names no
// user, since the login decides which.
func wechatSession(name string, at time.Time) store.RefreshToken {
	return refreshToken(0, "wechat:"+name, name, at)
}

func testWeChatSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	later := base.Add(time.Hour)
	returning, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o-returning",
		SessionKey: []byte("k0"), DefaultRoles: []string{"subscriber"}, Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	disabled, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o-disabled",
		SessionKey: []byte("k0"), DefaultRoles: []string{"subscriber"}, Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	if disabled, err = s.SetDisabled(ctx, disabled.ID, true, base); err != nil {
		t.Fatalf("SetDisabled: %v", err)
	}
	// Tokens whose hashes the conflicting cases reuse.
	alice := mustPasswordUser(t, s, "alice")
	mustCreateRefresh(t, s, refreshToken(alice.ID, "pwd:alice-1", "taken-1", base))
	mustCreateRefresh(t, s, refreshToken(alice.ID, "pwd:alice-2", "taken-2", base))

	cases := []struct {
		name   string
		openid string
		token  string // the name of the first token
		// existing is the user that the openid names; zero for a new one.
		existing store.User
		wantErr  error // nil or ErrConflict
		// wantToken says whether the first token is stored.
		wantToken bool
	}{
		{name: "new user", openid: "o-new", token: "t-new", wantToken: true},
		{name: "returning user", openid: "o-returning", token: "t-returning", existing: returning, wantToken: true},
		{name: "disabled user gets no token", openid: "o-disabled", token: "t-disabled", existing: disabled},
		{name: "taken hash creates no user", openid: "o-conflict", token: "taken-1", wantErr: store.ErrConflict},
		{name: "taken hash leaves a returning user alone", openid: "o-returning", token: "taken-2", existing: returning, wantErr: store.ErrConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(mustUsers(t, s))
			if c.existing.ID != 0 {
				c.existing = mustUserByID(t, s, c.existing.ID) // as the earlier cases left it
			}
			in := store.WeChatLogin{AppID: "wxapp", OpenID: c.openid, UnionID: "u-" + c.openid, SessionKey: []byte("k-" + c.name),
				DefaultRoles: []string{"subscriber"}, Profile: &store.Profile{Nickname: ptr("nick")}, Now: later}
			first := wechatSession(c.token, later)
			u, created, err := s.StartWeChatSession(ctx, in, first)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("StartWeChatSession = %v, want %v", err, c.wantErr)
				}
				if n := len(mustUsers(t, s)); n != before {
					t.Errorf("%d users after the failed login, want %d: it created one", n, before)
				}
				if c.existing.ID != 0 {
					checkUser(t, "user after the failed login", mustUserByID(t, s, c.existing.ID), c.existing)
				}
				// The token that was there first is untouched.
				got := mustRotate(t, s, c.token, refreshToken(0, "", c.token+"-next", later), later)
				if got.UserID != alice.ID {
					t.Errorf("the taken token now belongs to user %d, want %d", got.UserID, alice.ID)
				}
				return
			}
			if err != nil {
				t.Fatalf("StartWeChatSession: %v", err)
			}
			if created != (c.existing.ID == 0) {
				t.Errorf("created = %v, want %v", created, c.existing.ID == 0)
			}
			want := c.existing
			if created {
				want = store.User{ID: u.ID, AppID: "wxapp", OpenID: c.openid, Roles: []string{"subscriber"}, CreatedAt: utc(later)}
			}
			want.UnionID, want.Nickname, want.SessionKey = in.UnionID, "nick", in.SessionKey
			want.UpdatedAt, want.LastLoginAt = utc(later), utc(later)
			checkUser(t, "returned", u, want)
			checkUser(t, "UserByID", mustUserByID(t, s, u.ID), want)

			next := refreshToken(0, "", c.token+"-next", later)
			if !c.wantToken {
				if _, err := s.RotateRefreshToken(ctx, tokenHash(c.token), next, later); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("rotating the first token of a refused login = %v, want ErrNotFound", err)
				}
				return
			}
			got := mustRotate(t, s, c.token, next, later)
			wantTok := first
			wantTok.UserID, wantTok.RotatedAt = u.ID, later
			checkRefresh(t, "the first token", got, wantTok)
		})
	}
}

func testWeChatSessionInvalidInput(t *testing.T, s store.Store) {
	ctx := t.Context()
	login := store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base}
	bad := []struct {
		name  string
		in    store.WeChatLogin
		first store.RefreshToken
	}{
		{"no openid", store.WeChatLogin{AppID: "wxapp", SessionKey: []byte("k"), Now: base}, wechatSession("t", base)},
		{"no appid", store.WeChatLogin{OpenID: "o", SessionKey: []byte("k"), Now: base}, wechatSession("t", base)},
		{"token names a user", login, refreshToken(1, "wechat:t", "t", base)},
		{"token has no family", login, refreshToken(0, "", "t", base)},
		{"short hash", login, func() store.RefreshToken {
			tok := wechatSession("t", base)
			tok.Hash = tok.Hash[:31]
			return tok
		}()},
		{"no expiry", login, func() store.RefreshToken {
			tok := wechatSession("t", base)
			tok.ExpiresAt = time.Time{}
			return tok
		}()},
		{"expires when issued", login, func() store.RefreshToken {
			tok := wechatSession("t", base)
			tok.ExpiresAt = tok.IssuedAt
			return tok
		}()},
	}
	for _, b := range bad {
		_, _, err := s.StartWeChatSession(ctx, b.in, b.first)
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("StartWeChatSession(%s) = %v, want an input error", b.name, err)
		}
	}
	if users := mustUsers(t, s); len(users) != 0 {
		t.Errorf("%d users after rejected logins, want 0", len(users))
	}
	if _, err := s.RotateRefreshToken(ctx, tokenHash("t"), refreshToken(0, "", "t-next", base), base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating a token refused by StartWeChatSession = %v, want ErrNotFound", err)
	}
}

// concurrentFirstSession starts sessions for one new openid from 8
// goroutines spread over a and b. One of them presents a token hash that is
// taken, so its transaction rolls back, possibly after inserting the user
// while the others wait for it. Every other login must succeed for one
// user, which exactly one of them created, and store its token.
func concurrentFirstSession(t *testing.T, a, b store.Store) {
	const n = raceLogins
	ctx := t.Context()
	alice := mustPasswordUser(t, a, "alice")
	mustCreateRefresh(t, a, refreshToken(alice.ID, "pwd:alice", "taken", base))
	name := func(i int) string {
		if i == n/2 {
			return "taken"
		}
		return fmt.Sprintf("t-%d", i)
	}
	ids, created, errs := raceFirstLogins(t, a, b, func(s store.Store, in store.WeChatLogin, i int) (store.User, bool, error) {
		return s.StartWeChatSession(ctx, in, wechatSession(name(i), base))
	})
	nCreated, id := 0, int64(0)
	for i := range n {
		if i == n/2 {
			if !errors.Is(errs[i], store.ErrConflict) {
				t.Errorf("login %d with a taken token hash = %v, want ErrConflict", i, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if id == 0 {
			id = ids[i]
		}
		if ids[i] != id {
			t.Errorf("login %d got user %d, another got %d", i, ids[i], id)
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Errorf("%d logins reported created, want exactly 1", nCreated)
	}
	for _, s := range []store.Store{a, b} {
		if users := mustUsers(t, s); len(users) != 2 { // alice and the WeChat user
			t.Fatalf("%d users after concurrent first logins of one openid, want 2", len(users))
		}
	}
	for i := range n {
		if i == n/2 {
			continue
		}
		got := mustRotate(t, b, name(i), refreshToken(0, "", name(i)+"-next", base), base.Add(time.Minute))
		if got.UserID != id {
			t.Errorf("token of login %d belongs to user %d, want %d", i, got.UserID, id)
		}
	}
}
