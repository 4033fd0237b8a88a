// Package storetest is the conformance suite that every store.Store
// implementation must pass. It only uses the Store interface, so the SQLite
// and PostgreSQL stores run the very same checks against a real database.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"frontdoor/login/store"
)

// base is an arbitrary instant with sub-microsecond digits and a non-UTC
// zone, so that the suite checks the documented normalisation: times come
// back in UTC, truncated to microseconds.
var base = time.Date(2025, time.March, 1, 12, 0, 0, 123456789, time.FixedZone("CST", 8*60*60))

// Run runs the conformance suite. open must return a Store on a new, empty
// database each time it is called, and close it with t.Cleanup; the suite
// may also close it itself (closing twice must be harmless).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Empty", testEmpty},
		{"WeChatCreate", testWeChatCreate},
		{"WeChatCreateWithProfile", testWeChatCreateWithProfile},
		{"WeChatRelogin", testWeChatRelogin},
		{"WeChatIdentityScope", testWeChatIdentityScope},
		{"WeChatInvalidInput", testWeChatInvalidInput},
		{"WeChatConcurrentFirstLogin", func(t *testing.T, s store.Store) { concurrentFirstLogin(t, s, s) }},
		{"WeChatSession", testWeChatSession},
		{"WeChatSessionInvalidInput", testWeChatSessionInvalidInput},
		{"WeChatSessionConcurrentFirst", func(t *testing.T, s store.Store) { concurrentFirstSession(t, s, s) }},
		{"PasswordUser", testPasswordUser},
		{"PasswordUserConflict", testPasswordUserConflict},
		{"PasswordUserInvalidInput", testPasswordUserInvalidInput},
		{"UsernameLiteral", testUsernameLiteral},
		{"NotFound", testNotFound},
		{"UsersOrder", testUsersOrder},
		{"UpdateProfile", testUpdateProfile},
		{"SetRoles", testSetRoles},
		{"SetDisabled", testSetDisabled},
		{"SetPasswordHash", testSetPasswordHash},
		{"RecordLogin", testRecordLogin},
		{"BinarySessionKey", testBinarySessionKey},
		{"SigningKeyEnsure", testSigningKeyEnsure},
		{"SigningKeyEnsureGenerateError", testSigningKeyEnsureGenerateError},
		{"SigningKeyEnsureConcurrent", func(t *testing.T, s store.Store) { concurrentEnsure(t, s, s) }},
		{"SigningKeyActivate", testSigningKeyActivate},
		{"SigningKeyActivateConflict", testSigningKeyActivateConflict},
		{"SigningKeyActivateInvalid", testSigningKeyActivateInvalid},
		{"SigningKeyDeleteRetired", testSigningKeyDeleteRetired},
		{"TokenVersion", testTokenVersion},
		{"UserVersionsSince", testUserVersionsSince},
		{"RefreshCreate", testRefreshCreate},
		{"RefreshRotateChain", testRefreshRotateChain},
		{"RefreshRotateRefused", testRefreshRotateRefused},
		{"RefreshReuse", testRefreshReuse},
		{"RefreshReuseAfterExpiry", testRefreshReuseAfterExpiry},
		{"RefreshConcurrentRotate", func(t *testing.T, s store.Store) { concurrentRotate(t, s, s) }},
		{"RefreshRevokeFamily", testRefreshRevokeFamily},
		{"RefreshRevokeUser", testRefreshRevokeUser},
		{"DenyJTI", testDenyJTI},
		{"DeniedJTIsSince", testDeniedJTIsSince},
		{"DeleteExpired", testDeleteExpired},
		{"TryLock", testTryLock},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// RunMultiHandle runs the cases that need two handles on one database, as
// two processes (serve and the CLI, or two replicas) would have. open must
// return two independently opened Stores on the same new, empty database,
// and close them with t.Cleanup.
func RunMultiHandle(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"Visibility", testMultiVisibility},
		{"WeChatConcurrentFirstLogin", concurrentFirstLogin},
		{"WeChatSessionConcurrentFirst", concurrentFirstSession},
		{"PasswordUserConcurrentConflict", testMultiPasswordConflict},
		{"SigningKeyEnsureConcurrent", concurrentEnsure},
		{"SigningKeyActivateConcurrent", testMultiActivate},
		{"RefreshConcurrentRotate", concurrentRotate},
		{"RefreshReuse", testMultiRefreshReuse},
		{"SessionVisibility", testMultiSessionVisibility},
		{"RefreshRevokeDuringRotation", testMultiRevokeDuringRotation},
		{"TryLock", testMultiTryLock},
		{"TryLockConcurrent", testMultiTryLockConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := open(t)
			tt.fn(t, a, b)
		})
	}
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	users, err := s.Users(ctx)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	if len(users) != 0 {
		t.Errorf("Users on an empty store = %d users, want 0", len(users))
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	if len(keys) != 0 {
		t.Errorf("SigningKeys on an empty store = %d keys, want 0", len(keys))
	}
}

func testWeChatCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := store.WeChatLogin{
		AppID:        "wxapp",
		OpenID:       "openid-1",
		UnionID:      "union-1",
		SessionKey:   []byte("sealed-1"),
		DefaultRoles: []string{"subscriber", "reader"},
		Now:          base,
	}
	u, created, err := s.UpsertWeChatUser(ctx, in)
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	if !created {
		t.Error("created = false on the first login")
	}
	want := store.User{
		ID:          u.ID,
		AppID:       "wxapp",
		OpenID:      "openid-1",
		UnionID:     "union-1",
		Roles:       []string{"subscriber", "reader"},
		SessionKey:  []byte("sealed-1"),
		CreatedAt:   utc(base),
		UpdatedAt:   utc(base),
		LastLoginAt: utc(base),
	}
	if u.ID <= 0 {
		t.Errorf("ID = %d, want > 0", u.ID)
	}
	checkUser(t, "returned", u, want)
	if !u.HasWeChat() {
		t.Error("HasWeChat() = false")
	}
	got := mustUserByID(t, s, u.ID)
	checkUser(t, "UserByID", got, want)
}

func testWeChatCreateWithProfile(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, created, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{
		AppID:      "wxapp",
		OpenID:     "openid-1",
		SessionKey: []byte("k"),
		Profile:    &store.Profile{Nickname: ptr("小明 🐼"), AvatarURL: ptr("https://example.com/a.png"), Gender: ptr(2)},
		Now:        base,
	})
	if err != nil || !created {
		t.Fatalf("UpsertWeChatUser = created %v, %v; want created", created, err)
	}
	if u.Nickname != "小明 🐼" || u.AvatarURL != "https://example.com/a.png" || u.Gender != 2 {
		t.Errorf("profile = %q %q %d, want the one given", u.Nickname, u.AvatarURL, u.Gender)
	}
	if u.UnionID != "" {
		t.Errorf("UnionID = %q, want empty", u.UnionID)
	}
	if u.Roles == nil || len(u.Roles) != 0 {
		t.Errorf("Roles = %#v without DefaultRoles, want an empty non-nil slice", u.Roles)
	}
	got := mustUserByID(t, s, u.ID)
	checkUser(t, "UserByID", got, u)
}

func testWeChatRelogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{
		AppID:        "wxapp",
		OpenID:       "openid-1",
		UnionID:      "union-1",
		SessionKey:   []byte("key-1"),
		DefaultRoles: []string{"subscriber"},
		Profile:      &store.Profile{Nickname: ptr("first"), AvatarURL: ptr("https://a/1"), Gender: ptr(1)},
		Now:          base,
	})
	if err != nil {
		t.Fatalf("first login: %v", err)
	}

	steps := []struct {
		name string
		in   store.WeChatLogin
		// want is the user after the step, given the one before it.
		want func(u store.User) store.User
	}{
		{
			name: "new unionid and session key, other default roles ignored",
			in: store.WeChatLogin{UnionID: "union-2", SessionKey: []byte("key-2"),
				DefaultRoles: []string{"administrator"}, Now: base.Add(time.Hour)},
			want: func(u store.User) store.User {
				u.UnionID, u.SessionKey = "union-2", []byte("key-2")
				u.UpdatedAt, u.LastLoginAt = utc(base.Add(time.Hour)), utc(base.Add(time.Hour))
				return u
			},
		},
		{
			name: "empty unionid keeps the stored one",
			in:   store.WeChatLogin{SessionKey: []byte("key-3"), Now: base.Add(2 * time.Hour)},
			want: func(u store.User) store.User {
				u.SessionKey = []byte("key-3")
				u.UpdatedAt, u.LastLoginAt = utc(base.Add(2*time.Hour)), utc(base.Add(2*time.Hour))
				return u
			},
		},
		{
			name: "partial profile changes only its fields",
			in: store.WeChatLogin{SessionKey: []byte("key-4"), Profile: &store.Profile{Nickname: ptr("second")},
				Now: base.Add(3 * time.Hour)},
			want: func(u store.User) store.User {
				u.SessionKey, u.Nickname = []byte("key-4"), "second"
				u.UpdatedAt, u.LastLoginAt = utc(base.Add(3*time.Hour)), utc(base.Add(3*time.Hour))
				return u
			},
		},
		{
			name: "full profile",
			in: store.WeChatLogin{SessionKey: []byte("key-5"),
				Profile: &store.Profile{Nickname: ptr(""), AvatarURL: ptr("https://a/2"), Gender: ptr(0)},
				Now:     base.Add(4 * time.Hour)},
			want: func(u store.User) store.User {
				u.SessionKey, u.Nickname, u.AvatarURL, u.Gender = []byte("key-5"), "", "https://a/2", 0
				u.UpdatedAt, u.LastLoginAt = utc(base.Add(4*time.Hour)), utc(base.Add(4*time.Hour))
				return u
			},
		},
	}
	prev := first
	for _, st := range steps {
		in := st.in
		in.AppID, in.OpenID = "wxapp", "openid-1"
		u, created, err := s.UpsertWeChatUser(ctx, in)
		if err != nil {
			t.Fatalf("%s: UpsertWeChatUser: %v", st.name, err)
		}
		if created {
			t.Errorf("%s: created = true on a repeated login", st.name)
		}
		want := st.want(prev)
		checkUser(t, st.name, u, want)
		checkUser(t, st.name+": UserByID", mustUserByID(t, s, first.ID), want)
		prev = u
	}
	if users := mustUsers(t, s); len(users) != 1 {
		t.Errorf("%d users after repeated logins of one openid, want 1", len(users))
	}
}

func testWeChatIdentityScope(t *testing.T, s store.Store) {
	ctx := t.Context()
	logins := []store.WeChatLogin{
		{AppID: "wxapp", OpenID: "openid-1"},
		{AppID: "wxapp", OpenID: "openid-2"},
		{AppID: "otherapp", OpenID: "openid-1"}, // openids are per appid
		{AppID: "wxapp", OpenID: "OPENID-1"},
	}
	ids := make(map[int64]bool)
	for _, in := range logins {
		in.SessionKey, in.Now = []byte("k"), base
		u, created, err := s.UpsertWeChatUser(ctx, in)
		if err != nil {
			t.Fatalf("UpsertWeChatUser(%s/%s): %v", in.AppID, in.OpenID, err)
		}
		if !created {
			t.Errorf("UpsertWeChatUser(%s/%s): created = false, want a new user", in.AppID, in.OpenID)
		}
		ids[u.ID] = true
	}
	if len(ids) != len(logins) {
		t.Errorf("%d distinct ids for %d identities", len(ids), len(logins))
	}
}

func testWeChatInvalidInput(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, in := range []store.WeChatLogin{
		{AppID: "wxapp", OpenID: ""},
		{AppID: "", OpenID: "openid-1"},
	} {
		in.SessionKey, in.Now = []byte("k"), base
		if _, _, err := s.UpsertWeChatUser(ctx, in); err == nil {
			t.Errorf("UpsertWeChatUser(appid %q, openid %q) succeeded, want an error", in.AppID, in.OpenID)
		}
	}
	if users := mustUsers(t, s); len(users) != 0 {
		t.Errorf("%d users after rejected logins, want 0", len(users))
	}
}

// raceLogins is the number of concurrent logins of raceFirstLogins.
const raceLogins = 8

// raceFirstLogins runs login for one new openid from raceLogins goroutines
// released together, spread over a and b (even i on a, odd on b), and
// returns what each got.
func raceFirstLogins(t *testing.T, a, b store.Store, login func(s store.Store, in store.WeChatLogin, i int) (store.User, bool, error)) (ids [raceLogins]int64, created [raceLogins]bool, errs [raceLogins]error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range raceLogins {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			u, c, err := login(s, store.WeChatLogin{
				AppID:        "wxapp",
				OpenID:       "openid-race",
				SessionKey:   fmt.Appendf(nil, "key-%d", i),
				DefaultRoles: []string{"subscriber"},
				Now:          base.Add(time.Duration(i) * time.Second),
			}, i)
			ids[i], created[i], errs[i] = u.ID, c, err
		})
	}
	close(start)
	wg.Wait()
	return ids, created, errs
}

// concurrentFirstLogin logs one new openid in from 8 goroutines spread over
// a and b: exactly one must create the user.
func concurrentFirstLogin(t *testing.T, a, b store.Store) {
	const n = raceLogins
	ctx := t.Context()
	ids, created, errs := raceFirstLogins(t, a, b, func(s store.Store, in store.WeChatLogin, _ int) (store.User, bool, error) {
		return s.UpsertWeChatUser(ctx, in)
	})
	nCreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("login %d got user %d, login 0 got %d", i, ids[i], ids[0])
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Errorf("%d logins reported created, want exactly 1", nCreated)
	}
	for _, s := range []store.Store{a, b} {
		users := mustUsers(t, s)
		if len(users) != 1 {
			t.Fatalf("%d users after concurrent first logins of one openid, want 1", len(users))
		}
		if !reflect.DeepEqual(users[0].Roles, []string{"subscriber"}) {
			t.Errorf("Roles = %q, want [subscriber]", users[0].Roles)
		}
	}
}

func testPasswordUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{
		Username:     "alice",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Roles:        []string{"editor", "author"},
		Now:          base,
	})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	want := store.User{
		ID:           u.ID,
		Username:     "alice",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Roles:        []string{"editor", "author"},
		CreatedAt:    utc(base),
		UpdatedAt:    utc(base),
	}
	if u.ID <= 0 {
		t.Errorf("ID = %d, want > 0", u.ID)
	}
	checkUser(t, "returned", u, want)
	if u.HasWeChat() {
		t.Error("HasWeChat() = true for a password user")
	}
	checkUser(t, "UserByID", mustUserByID(t, s, u.ID), want)
	got, err := s.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByUsername: %v", err)
	}
	checkUser(t, "UserByUsername", got, want)

	// A password user and a WeChat user are separate accounts.
	w, created, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base})
	if err != nil || !created || w.ID == u.ID {
		t.Errorf("UpsertWeChatUser next to a password user = id %d created %v err %v; want a new user", w.ID, created, err)
	}

	nilRoles, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "bob", PasswordHash: "h", Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser(nil roles): %v", err)
	}
	if nilRoles.Roles == nil || len(nilRoles.Roles) != 0 {
		t.Errorf("Roles = %#v for nil roles, want an empty non-nil slice", nilRoles.Roles)
	}
	if got := mustUserByID(t, s, nilRoles.ID); got.Roles == nil || len(got.Roles) != 0 {
		t.Errorf("stored Roles = %#v for nil roles, want an empty non-nil slice", got.Roles)
	}
}

func testPasswordUserConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h1", Roles: []string{"editor"}, Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	_, err = s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h2", Now: base.Add(time.Minute)})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CreatePasswordUser(alice) = %v, want ErrConflict", err)
	}
	checkUser(t, "after the conflict", mustUserByID(t, s, first.ID), first)
	if users := mustUsers(t, s); len(users) != 1 {
		t.Errorf("%d users after a conflicting insert, want 1", len(users))
	}
}

func testPasswordUserInvalidInput(t *testing.T, s store.Store) {
	_, err := s.CreatePasswordUser(t.Context(), store.NewPasswordUser{Username: "", PasswordHash: "h", Now: base})
	if err == nil {
		t.Fatal("CreatePasswordUser with an empty username succeeded")
	}
	if errors.Is(err, store.ErrConflict) {
		t.Errorf("CreatePasswordUser with an empty username = %v, want a plain error, not ErrConflict", err)
	}
	if users := mustUsers(t, s); len(users) != 0 {
		t.Errorf("%d users after a rejected insert, want 0", len(users))
	}
}

// testUsernameLiteral stores names that SQL, LIKE patterns, case folding,
// trimming or Unicode normalisation would confuse, and checks that each is
// matched only by itself.
func testUsernameLiteral(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{
		"alice",
		"Alice",
		"alice ",
		" alice",
		"ali%",
		"ali_e",
		`a\lice`,
		"' OR '1'='1",
		"alice'; DROP TABLE users; --",
		`"; DELETE FROM users WHERE "1"="1`,
		"Robert'); DROP TABLE students;--",
		"\u00e9",  // é precomposed
		"e\u0301", // e + combining acute: a different name
		"用户名",
		"emoji🙂",
	}
	ids := make(map[string]int64)
	for _, name := range names {
		u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: name, PasswordHash: "h:" + name, Now: base})
		if err != nil {
			t.Fatalf("CreatePasswordUser(%q): %v", name, err)
		}
		if u.Username != name {
			t.Errorf("CreatePasswordUser(%q) returned username %q", name, u.Username)
		}
		ids[name] = u.ID
	}
	for _, name := range names {
		u, err := s.UserByUsername(ctx, name)
		if err != nil {
			t.Errorf("UserByUsername(%q): %v", name, err)
			continue
		}
		if u.ID != ids[name] || u.Username != name || u.PasswordHash != "h:"+name {
			t.Errorf("UserByUsername(%q) = user %d %q, want user %d", name, u.ID, u.Username, ids[name])
		}
	}
	for _, name := range []string{"ALICE", "alic", "ali", "alice%", "%", "_", "alice  ", "' OR 1=1 --", "Ali"} {
		if u, err := s.UserByUsername(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByUsername(%q) = user %d %q, %v; want ErrNotFound", name, u.ID, u.Username, err)
		}
	}
	if users := mustUsers(t, s); len(users) != len(names) {
		t.Errorf("%d users, want %d: an injection string was not treated as data", len(users), len(names))
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	// A WeChat-only user has no username; "" must not find it.
	w, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	missing := w.ID + 1000
	checks := []struct {
		name string
		err  error
	}{
		{"UserByID", second(s.UserByID(ctx, missing))},
		{"UserByID(0)", second(s.UserByID(ctx, 0))},
		{"UserByID(-1)", second(s.UserByID(ctx, -1))},
		{"UserByUsername", second(s.UserByUsername(ctx, "nobody"))},
		{`UserByUsername("")`, second(s.UserByUsername(ctx, ""))},
		{"UpdateProfile", second(s.UpdateProfile(ctx, missing, store.Profile{Nickname: ptr("x")}, base))},
		{"SetRoles", second(s.SetRoles(ctx, missing, []string{"x"}, base))},
		{"SetDisabled", second(s.SetDisabled(ctx, missing, true, base))},
		{"SetPasswordHash", second(s.SetPasswordHash(ctx, missing, "h", base))},
		{"RecordLogin", s.RecordLogin(ctx, missing, base)},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s of a missing user = %v, want ErrNotFound", c.name, c.err)
		}
	}
	if users := mustUsers(t, s); len(users) != 1 {
		t.Errorf("%d users after updates of a missing user, want 1", len(users))
	}
}

func testUsersOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []int64
	for i := range 5 {
		var id int64
		if i%2 == 0 {
			u, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: fmt.Sprintf("o-%d", i),
				SessionKey: []byte("k"), Now: base.Add(-time.Duration(i) * time.Hour)})
			if err != nil {
				t.Fatalf("UpsertWeChatUser: %v", err)
			}
			id = u.ID
		} else {
			// Usernames sorted against creation order, so that ordering by
			// name or time would show.
			u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: fmt.Sprintf("z%d", 9-i), PasswordHash: "h",
				Now: base.Add(-time.Duration(i) * time.Hour)})
			if err != nil {
				t.Fatalf("CreatePasswordUser: %v", err)
			}
			id = u.ID
		}
		if len(want) > 0 && id <= want[len(want)-1] {
			t.Errorf("user %d created after user %d got a smaller id", id, want[len(want)-1])
		}
		want = append(want, id)
	}
	var got []int64
	for _, u := range mustUsers(t, s) {
		got = append(got, u.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Users ids = %v, want %v (by id)", got, want)
	}
}

func testUpdateProfile(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"),
		DefaultRoles: []string{"subscriber"}, Profile: &store.Profile{Nickname: ptr("old"), AvatarURL: ptr("https://a/old"), Gender: ptr(1)},
		Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	steps := []struct {
		name string
		p    store.Profile
		want func(u store.User) store.User
	}{
		{"nickname only", store.Profile{Nickname: ptr("Zoë 王 🐉 \u200d")},
			func(u store.User) store.User { u.Nickname = "Zoë 王 🐉 \u200d"; return u }},
		{"avatar only", store.Profile{AvatarURL: ptr("https://thirdwx.qlogo.cn/mmopen/vi_32/x?a=1&b=2")},
			func(u store.User) store.User {
				u.AvatarURL = "https://thirdwx.qlogo.cn/mmopen/vi_32/x?a=1&b=2"
				return u
			}},
		{"gender only", store.Profile{Gender: ptr(2)},
			func(u store.User) store.User { u.Gender = 2; return u }},
		{"empty values are values", store.Profile{Nickname: ptr(""), AvatarURL: ptr(""), Gender: ptr(0)},
			func(u store.User) store.User { u.Nickname, u.AvatarURL, u.Gender = "", "", 0; return u }},
		{"nothing", store.Profile{},
			func(u store.User) store.User { return u }},
	}
	prev := u
	for i, st := range steps {
		now := base.Add(time.Duration(i+1) * time.Minute)
		got, err := s.UpdateProfile(ctx, u.ID, st.p, now)
		if err != nil {
			t.Fatalf("%s: UpdateProfile: %v", st.name, err)
		}
		want := st.want(prev)
		want.UpdatedAt = utc(now)
		checkUser(t, st.name, got, want)
		checkUser(t, st.name+": UserByID", mustUserByID(t, s, u.ID), want)
		prev = got
	}
}

func testSetRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Roles: []string{"subscriber"}, Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	// bump: the role set changed, so the token version must increase.
	cases := []struct {
		name  string
		roles []string
		want  []string
		bump  bool
	}{
		{"several, order kept", []string{"editor", "author", "administrator"}, []string{"editor", "author", "administrator"}, true},
		{"same set, other order", []string{"administrator", "editor", "author"}, []string{"administrator", "editor", "author"}, false},
		{"same set, repeated", []string{"author", "author", "editor", "administrator"}, []string{"author", "author", "editor", "administrator"}, false},
		{"names JSON and CSV would mangle", []string{`a,b`, `quote"d`, `back\slash`, "角色"}, []string{`a,b`, `quote"d`, `back\slash`, "角色"}, true},
		{"one removed", []string{`a,b`, `quote"d`, `back\slash`}, []string{`a,b`, `quote"d`, `back\slash`}, true},
		{"one replaced", []string{`a,b`, `quote"d`, "a"}, []string{`a,b`, `quote"d`, "a"}, true},
		{"nil", nil, []string{}, true},
		{"empty", []string{}, []string{}, false},
		{"one again", []string{"subscriber"}, []string{"subscriber"}, true},
	}
	prev := u
	for i, c := range cases {
		now := base.Add(time.Duration(i+1) * time.Minute)
		got, err := s.SetRoles(ctx, u.ID, c.roles, now)
		if err != nil {
			t.Fatalf("%s: SetRoles: %v", c.name, err)
		}
		want := prev
		want.Roles, want.UpdatedAt = c.want, utc(now)
		if c.bump {
			want.TokenVersion, want.TokenVersionAt = prev.TokenVersion+1, utc(now)
		}
		checkUser(t, c.name, got, want)
		stored := mustUserByID(t, s, u.ID)
		checkUser(t, c.name+": UserByID", stored, want)
		if stored.Roles == nil {
			t.Errorf("%s: stored Roles is nil, want an empty non-nil slice", c.name)
		}
		prev = got
	}
}

func testSetDisabled(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	prev := u
	// Every disable cuts off the user's tokens, also a repeated one; an
	// enable does not.
	for i, disabled := range []bool{true, true, false, false, true} {
		now := base.Add(time.Duration(i+1) * time.Minute)
		got, err := s.SetDisabled(ctx, u.ID, disabled, now)
		if err != nil {
			t.Fatalf("SetDisabled(%v): %v", disabled, err)
		}
		want := prev
		want.Disabled, want.UpdatedAt = disabled, utc(now)
		if disabled {
			want.TokenVersion, want.TokenVersionAt = prev.TokenVersion+1, utc(now)
		}
		checkUser(t, fmt.Sprintf("SetDisabled(%v)", disabled), got, want)
		checkUser(t, fmt.Sprintf("SetDisabled(%v): UserByID", disabled), mustUserByID(t, s, u.ID), want)
		prev = got
	}
}

func testSetPasswordHash(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "old", Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	got, err := s.SetPasswordHash(ctx, u.ID, "new", base.Add(time.Minute))
	if err != nil {
		t.Fatalf("SetPasswordHash: %v", err)
	}
	want := u
	want.PasswordHash, want.UpdatedAt = "new", utc(base.Add(time.Minute))
	checkUser(t, "SetPasswordHash", got, want)
	byName, err := s.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByUsername: %v", err)
	}
	checkUser(t, "UserByUsername", byName, want)

	// A WeChat user can be given a password hash; that alone gives it no username.
	w, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	got, err = s.SetPasswordHash(ctx, w.ID, "wx-hash", base.Add(time.Minute))
	if err != nil {
		t.Fatalf("SetPasswordHash(wechat user): %v", err)
	}
	want = w
	want.PasswordHash, want.UpdatedAt = "wx-hash", utc(base.Add(time.Minute))
	checkUser(t, "SetPasswordHash(wechat user)", got, want)
}

func testRecordLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, err := s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	if !u.LastLoginAt.IsZero() {
		t.Errorf("LastLoginAt = %v before any login, want zero", u.LastLoginAt)
	}
	for _, d := range []time.Duration{time.Hour, 2 * time.Hour} {
		if err := s.RecordLogin(ctx, u.ID, base.Add(d)); err != nil {
			t.Fatalf("RecordLogin: %v", err)
		}
		want := u
		want.LastLoginAt = utc(base.Add(d))
		checkUser(t, "after RecordLogin", mustUserByID(t, s, u.ID), want)
	}
}

func testBinarySessionKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := make([]byte, 0, 512)
	for i := range 512 {
		key = append(key, byte(i)) // every byte value, NUL and invalid UTF-8 included
	}
	u, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: key, Now: base})
	if err != nil {
		t.Fatalf("UpsertWeChatUser: %v", err)
	}
	if !bytes.Equal(u.SessionKey, key) {
		t.Errorf("returned SessionKey differs from the stored one")
	}
	if got := mustUserByID(t, s, u.ID); !bytes.Equal(got.SessionKey, key) {
		t.Errorf("SessionKey read back differs from the stored one")
	}
}

func testSigningKeyEnsure(t *testing.T, s store.Store) {
	ctx := t.Context()
	calls := 0
	k1 := signingKey("kid-1", base)
	inserted, err := s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
		calls++
		return k1, nil
	})
	if err != nil {
		t.Fatalf("EnsureSigningKey: %v", err)
	}
	if !inserted || calls != 1 {
		t.Errorf("EnsureSigningKey on an empty store = inserted %v after %d generate calls, want true after 1", inserted, calls)
	}
	checkKeys(t, s, []store.SigningKey{k1})

	inserted, err = s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
		calls++
		return signingKey("kid-2", base.Add(time.Hour)), nil
	})
	if err != nil {
		t.Fatalf("second EnsureSigningKey: %v", err)
	}
	if inserted || calls != 1 {
		t.Errorf("EnsureSigningKey with an active key = inserted %v, generate called %d times in all; want false, once", inserted, calls)
	}
	checkKeys(t, s, []store.SigningKey{k1})

	// After a rotation there is still an active key: nothing to do.
	k2 := signingKey("kid-2", base.Add(time.Hour))
	if err := s.ActivateSigningKey(ctx, k2); err != nil {
		t.Fatalf("ActivateSigningKey: %v", err)
	}
	inserted, err = s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
		calls++
		return signingKey("kid-3", base.Add(2*time.Hour)), nil
	})
	if err != nil || inserted || calls != 1 {
		t.Errorf("EnsureSigningKey after a rotation = inserted %v, %v, %d generate calls; want false, nil, 1", inserted, err, calls)
	}
}

func testSigningKeyEnsureGenerateError(t *testing.T, s store.Store) {
	errGen := errors.New("entropy ran out")
	inserted, err := s.EnsureSigningKey(t.Context(), func() (store.SigningKey, error) {
		return store.SigningKey{}, errGen
	})
	if !errors.Is(err, errGen) || inserted {
		t.Errorf("EnsureSigningKey with a failing generate = %v, %v; want false and the generate error", inserted, err)
	}
	checkKeys(t, s, nil)
}

// concurrentEnsure runs EnsureSigningKey from 8 goroutines spread over a
// and b on an empty database: exactly one key must be inserted.
func concurrentEnsure(t *testing.T, a, b store.Store) {
	const n = 8
	ctx := t.Context()
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		calls    int
		made     = make(map[string]store.SigningKey)
		inserted [n]bool
		errs     [n]error
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			inserted[i], errs[i] = s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
				k := signingKey(fmt.Sprintf("kid-%d", i), base.Add(time.Duration(i)*time.Second))
				mu.Lock()
				defer mu.Unlock()
				calls++
				made[k.ID] = k
				return k, nil
			})
		})
	}
	close(start)
	wg.Wait()
	nInserted := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureSigningKey %d: %v", i, errs[i])
		}
		if inserted[i] {
			nInserted++
		}
	}
	if nInserted != 1 {
		t.Errorf("%d concurrent EnsureSigningKey calls inserted a key, want exactly 1", nInserted)
	}
	if calls < 1 || calls > n {
		t.Errorf("generate called %d times by %d callers, want between 1 and %d", calls, n, n)
	}
	for _, s := range []store.Store{a, b} {
		keys, err := s.SigningKeys(ctx)
		if err != nil {
			t.Fatalf("SigningKeys: %v", err)
		}
		if len(keys) != 1 || !keys[0].Active() {
			t.Fatalf("%d keys after concurrent EnsureSigningKey, want one active key", len(keys))
		}
		checkKey(t, keys[0], made[keys[0].ID])
	}
	// The key is in place for everyone now: no further generation.
	for _, s := range []store.Store{a, b} {
		ins, err := s.EnsureSigningKey(ctx, func() (store.SigningKey, error) {
			t.Error("generate called although a key is active")
			return signingKey("late", base), nil
		})
		if err != nil || ins {
			t.Errorf("EnsureSigningKey with an active key = %v, %v; want false, nil", ins, err)
		}
	}
}

func testSigningKeyActivate(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Activating on an empty store needs no previous key.
	k1 := signingKey("kid-1", base)
	if err := s.ActivateSigningKey(ctx, k1); err != nil {
		t.Fatalf("ActivateSigningKey(kid-1): %v", err)
	}
	checkKeys(t, s, []store.SigningKey{k1})

	k2 := signingKey("kid-2", base.Add(time.Hour))
	if err := s.ActivateSigningKey(ctx, k2); err != nil {
		t.Fatalf("ActivateSigningKey(kid-2): %v", err)
	}
	k1.RetiredAt = k2.ActivatedAt
	checkKeys(t, s, []store.SigningKey{k2, k1})

	// RetiredAt on the new key is ignored: the new key is the active one.
	k3 := signingKey("kid-3", base.Add(2*time.Hour))
	k3.RetiredAt = base.Add(3 * time.Hour)
	if err := s.ActivateSigningKey(ctx, k3); err != nil {
		t.Fatalf("ActivateSigningKey(kid-3): %v", err)
	}
	k3.RetiredAt = time.Time{}
	k2.RetiredAt = k3.ActivatedAt
	checkKeys(t, s, []store.SigningKey{k3, k2, k1})
}

func testSigningKeyActivateConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	k1 := signingKey("kid-1", base)
	k2 := signingKey("kid-2", base.Add(time.Hour))
	for _, k := range []store.SigningKey{k1, k2} {
		if err := s.ActivateSigningKey(ctx, k); err != nil {
			t.Fatalf("ActivateSigningKey(%s): %v", k.ID, err)
		}
	}
	k1.RetiredAt = k2.ActivatedAt
	for _, id := range []string{"kid-1", "kid-2"} {
		dup := signingKey(id, base.Add(2*time.Hour))
		dup.PrivatePEM = []byte("another key")
		if err := s.ActivateSigningKey(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ActivateSigningKey(duplicate %s) = %v, want ErrConflict", id, err)
		}
		// The retirement of the active key was rolled back with the insert.
		checkKeys(t, s, []store.SigningKey{k2, k1})
	}
}

func testSigningKeyActivateInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	k1 := signingKey("kid-1", base)
	if err := s.ActivateSigningKey(ctx, k1); err != nil {
		t.Fatalf("ActivateSigningKey: %v", err)
	}
	bad := []struct {
		name string
		k    store.SigningKey
	}{
		{"no id", store.SigningKey{PrivatePEM: []byte("pem"), CreatedAt: base, ActivatedAt: base.Add(time.Hour)}},
		{"no pem", store.SigningKey{ID: "kid-x", CreatedAt: base, ActivatedAt: base.Add(time.Hour)}},
		{"no activation time", store.SigningKey{ID: "kid-x", PrivatePEM: []byte("pem"), CreatedAt: base}},
	}
	for _, b := range bad {
		if err := s.ActivateSigningKey(ctx, b.k); err == nil {
			t.Errorf("ActivateSigningKey(%s) succeeded, want an error", b.name)
		}
		if _, err := s.EnsureSigningKey(ctx, func() (store.SigningKey, error) { return b.k, nil }); err != nil {
			// An active key exists, so the bad key is never looked at.
			t.Errorf("EnsureSigningKey with an active key and a bad generated key: %v", err)
		}
	}
	checkKeys(t, s, []store.SigningKey{k1})
}

func testSigningKeyDeleteRetired(t *testing.T, s store.Store) {
	ctx := t.Context()
	var keys []store.SigningKey
	for i := range 4 {
		k := signingKey(fmt.Sprintf("kid-%d", i), base.Add(time.Duration(i)*time.Hour))
		if err := s.ActivateSigningKey(ctx, k); err != nil {
			t.Fatalf("ActivateSigningKey: %v", err)
		}
		if i > 0 {
			keys[i-1].RetiredAt = k.ActivatedAt
		}
		keys = append(keys, k)
	}
	// Retired at base+1h, +2h, +3h; kid-3 is active.
	steps := []struct {
		before time.Time
		n      int
		left   []store.SigningKey
	}{
		{base, 0, []store.SigningKey{keys[3], keys[2], keys[1], keys[0]}},
		{base.Add(time.Hour), 0, []store.SigningKey{keys[3], keys[2], keys[1], keys[0]}}, // not strictly before
		{base.Add(time.Hour + time.Microsecond), 1, []store.SigningKey{keys[3], keys[2], keys[1]}},
		{base.Add(100 * time.Hour), 2, []store.SigningKey{keys[3]}}, // the active key always stays
		{base.Add(100 * time.Hour), 0, []store.SigningKey{keys[3]}},
	}
	for _, st := range steps {
		n, err := s.DeleteSigningKeysRetiredBefore(ctx, st.before)
		if err != nil {
			t.Fatalf("DeleteSigningKeysRetiredBefore(%v): %v", st.before, err)
		}
		if n != st.n {
			t.Errorf("DeleteSigningKeysRetiredBefore(%v) = %d, want %d", st.before, n, st.n)
		}
		checkKeys(t, s, st.left)
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.UserByID(ctx, 1); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("UserByID after Close = %v, want ErrUnavailable", err)
	}
	if _, _, err := s.UpsertWeChatUser(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("UpsertWeChatUser after Close = %v, want ErrUnavailable", err)
	}
	if _, _, err := s.StartWeChatSession(ctx, store.WeChatLogin{AppID: "wxapp", OpenID: "o", SessionKey: []byte("k"), Now: base},
		wechatSession("t0", base)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("StartWeChatSession after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.RotateRefreshToken(ctx, tokenHash("t0"), refreshToken(0, "", "t1", base), base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("RotateRefreshToken after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.DeniedJTIsSince(ctx, time.Time{}, base); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("DeniedJTIsSince after Close = %v, want ErrUnavailable", err)
	}
	ran, err := s.TryLock(ctx, "rotate-keys", func(context.Context) error {
		t.Error("TryLock after Close ran fn")
		return nil
	})
	if ran || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("TryLock after Close = %v, %v; want false, ErrUnavailable", ran, err)
	}
}

func testMultiVisibility(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	u, err := a.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: "h", Roles: []string{"subscriber"}, Now: base})
	if err != nil {
		t.Fatalf("CreatePasswordUser: %v", err)
	}
	checkUser(t, "b sees a's insert", mustUserByID(t, b, u.ID), u)
	changed, err := b.SetRoles(ctx, u.ID, []string{"editor"}, base.Add(time.Minute))
	if err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	checkUser(t, "a sees b's update", mustUserByID(t, a, u.ID), changed)

	k := signingKey("kid-1", base)
	if err := a.ActivateSigningKey(ctx, k); err != nil {
		t.Fatalf("ActivateSigningKey: %v", err)
	}
	checkKeys(t, b, []store.SigningKey{k})
}

func testMultiPasswordConflict(t *testing.T, a, b store.Store) {
	const n = 8
	ctx := t.Context()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			_, errs[i] = s.CreatePasswordUser(ctx, store.NewPasswordUser{Username: "alice", PasswordHash: fmt.Sprintf("h%d", i), Now: base})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("CreatePasswordUser %d = %v, want nil or ErrConflict", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent CreatePasswordUser(alice) calls succeeded, want exactly 1", ok)
	}
	if users := mustUsers(t, b); len(users) != 1 {
		t.Errorf("%d users, want 1", len(users))
	}
}

// testMultiActivate rotates from both handles at once: every rotation must
// succeed, and afterwards exactly one key is active and every other key was
// retired by its successor.
func testMultiActivate(t *testing.T, a, b store.Store) {
	const n = 8
	ctx := t.Context()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			errs[i] = s.ActivateSigningKey(ctx, signingKey(fmt.Sprintf("kid-%d", i), base.Add(time.Duration(i)*time.Minute)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ActivateSigningKey %d: %v", i, err)
		}
	}
	keys, err := a.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	if len(keys) != n {
		t.Fatalf("%d keys after %d rotations, want %d", len(keys), n, n)
	}
	active := 0
	for _, k := range keys {
		if k.Active() {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active keys after concurrent rotations, want exactly 1", active)
	}
}

// signingKey returns a key activated (and created) at at. The store never
// parses PrivatePEM, so it need not be a real key.
func signingKey(id string, at time.Time) store.SigningKey {
	return store.SigningKey{
		ID:          id,
		PrivatePEM:  []byte("-----BEGIN PRIVATE KEY-----\n" + id + "\n-----END PRIVATE KEY-----\n"),
		CreatedAt:   at.Add(-time.Second),
		ActivatedAt: at,
	}
}

// checkKeys compares the stored keys, in order, with want.
func checkKeys(t *testing.T, s store.Store, want []store.SigningKey) {
	t.Helper()
	got, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("SigningKeys returned %d keys (%v), want %d (%v)", len(got), keyIDs(got), len(want), keyIDs(want))
	}
	active := 0
	for i := range got {
		checkKey(t, got[i], want[i])
		if got[i].Active() {
			active++
		}
	}
	if len(got) > 0 && active != 1 {
		t.Errorf("%d active keys, want exactly 1", active)
	}
}

func checkKey(t *testing.T, got, want store.SigningKey) {
	t.Helper()
	want.CreatedAt, want.ActivatedAt, want.RetiredAt = utc(want.CreatedAt), utc(want.ActivatedAt), utc(want.RetiredAt)
	if got.ID != want.ID || !bytes.Equal(got.PrivatePEM, want.PrivatePEM) ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ActivatedAt, want.ActivatedAt) || !sameTime(got.RetiredAt, want.RetiredAt) {
		t.Errorf("key = {%s created %v activated %v retired %v pem %q},\nwant  {%s created %v activated %v retired %v pem %q}",
			got.ID, got.CreatedAt, got.ActivatedAt, got.RetiredAt, got.PrivatePEM,
			want.ID, want.CreatedAt, want.ActivatedAt, want.RetiredAt, want.PrivatePEM)
	}
}

func keyIDs(keys []store.SigningKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// checkUser compares every field of got with want. Times must be in UTC.
// The session key is compared but never printed.
func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	type diff struct {
		field     string
		got, want any
	}
	var diffs []diff
	add := func(field string, equal bool, got, want any) {
		if !equal {
			diffs = append(diffs, diff{field, got, want})
		}
	}
	add("ID", got.ID == want.ID, got.ID, want.ID)
	add("AppID", got.AppID == want.AppID, got.AppID, want.AppID)
	add("OpenID", got.OpenID == want.OpenID, got.OpenID, want.OpenID)
	add("UnionID", got.UnionID == want.UnionID, got.UnionID, want.UnionID)
	add("Username", got.Username == want.Username, got.Username, want.Username)
	add("PasswordHash", got.PasswordHash == want.PasswordHash, got.PasswordHash, want.PasswordHash)
	add("Nickname", got.Nickname == want.Nickname, got.Nickname, want.Nickname)
	add("AvatarURL", got.AvatarURL == want.AvatarURL, got.AvatarURL, want.AvatarURL)
	add("Gender", got.Gender == want.Gender, got.Gender, want.Gender)
	add("Roles", sameRoles(got.Roles, want.Roles), got.Roles, want.Roles)
	add("Disabled", got.Disabled == want.Disabled, got.Disabled, want.Disabled)
	add("SessionKey", bytes.Equal(got.SessionKey, want.SessionKey), fmt.Sprintf("%d bytes", len(got.SessionKey)), fmt.Sprintf("other %d bytes", len(want.SessionKey)))
	add("CreatedAt", sameTime(got.CreatedAt, want.CreatedAt), got.CreatedAt, want.CreatedAt)
	add("UpdatedAt", sameTime(got.UpdatedAt, want.UpdatedAt), got.UpdatedAt, want.UpdatedAt)
	add("LastLoginAt", sameTime(got.LastLoginAt, want.LastLoginAt), got.LastLoginAt, want.LastLoginAt)
	add("TokenVersion", got.TokenVersion == want.TokenVersion, got.TokenVersion, want.TokenVersion)
	add("TokenVersionAt", sameTime(got.TokenVersionAt, want.TokenVersionAt), got.TokenVersionAt, want.TokenVersionAt)
	for _, d := range diffs {
		t.Errorf("%s: %s = %#v, want %#v", what, d.field, d.got, d.want)
	}
}

// sameRoles treats nil and empty alike only on the want side: a store must
// never return nil roles.
func sameRoles(got, want []string) bool {
	if got == nil {
		return false
	}
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// sameTime reports whether got is want, both in UTC (the zero time has no
// location to check).
func sameTime(got, want time.Time) bool {
	if !got.IsZero() && got.Location() != time.UTC {
		return false
	}
	return got.Equal(want) && got.IsZero() == want.IsZero()
}

// utc is how a store returns t: UTC, microsecond precision.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

func mustUserByID(t *testing.T, s store.Store, id int64) store.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%d): %v", id, err)
	}
	return u
}

func mustUsers(t *testing.T, s store.Store) []store.User {
	t.Helper()
	users, err := s.Users(t.Context())
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	return users
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }
