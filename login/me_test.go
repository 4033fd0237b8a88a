package login

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/policy"
)

// newMeUser stores a WeChat user with a profile and mints a token for it.
func newMeUser(t *testing.T, fx *fixture, openid string, roles []string) (store.User, string) {
	t.Helper()
	nick, avatar := "Frank", "https://thirdwx.qlogo.cn/frank/132"
	u, _, err := fx.store.UpsertWeChatUser(t.Context(), store.WeChatLogin{
		AppID: testAppID, OpenID: openid, DefaultRoles: roles, Now: time.Now(),
		Profile: &store.Profile{Nickname: &nick, AvatarURL: &avatar},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u, mintFor(t, fx, strconv.FormatInt(u.ID, 10), roles)
}

func mintFor(t *testing.T, fx *fixture, sub string, roles []string) string {
	t.Helper()
	m, err := fx.issuer.Mint(t.Context(), token.MintRequest{Subject: sub, Roles: roles, AMR: []string{"wechat"}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

// me decodes a 200 profile answer.
func decodeMe(t *testing.T, status int, body []byte) meView {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", status, body)
	}
	var m struct {
		ID           string   `json:"id"`
		Nickname     string   `json:"nickname"`
		AvatarURL    string   `json:"avatar_url"`
		Roles        []string `json:"roles"`
		Capabilities []string `json:"capabilities"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return meView{userView: userView{ID: m.ID, Nickname: m.Nickname, AvatarURL: m.AvatarURL, Roles: m.Roles}, Capabilities: m.Capabilities}
}

func TestGetMe(t *testing.T) {
	fx := newFixture(t)
	a := fx.newAPI(t, apiSetup{})
	u, tok := newMeUser(t, fx, "o-frank", []string{"subscriber"})

	w := a.send(http.MethodGet, "/auth/me", tok, "", "")
	me := decodeMe(t, w.Code, w.Body.Bytes())
	want := meView{
		userView:     userView{ID: strconv.FormatInt(u.ID, 10), Nickname: "Frank", AvatarURL: "https://thirdwx.qlogo.cn/frank/132", Roles: []string{"subscriber"}},
		Capabilities: []string{"read"},
	}
	if me.ID != want.ID || me.Nickname != want.Nickname || me.AvatarURL != want.AvatarURL ||
		!slices.Equal(me.Roles, want.Roles) || !slices.Equal(me.Capabilities, want.Capabilities) {
		t.Errorf("GET /auth/me = %+v, want %+v", me, want)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, secret := range []string{"o-frank", "session_key", "openid"} {
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("the profile reveals %q: %s", secret, w.Body)
		}
	}

	// Roles are read from the store, capabilities from the current policy,
	// inheritance included.
	if _, err := fx.store.SetRoles(t.Context(), u.ID, []string{"author"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tok = mintFor(t, fx, want.ID, []string{"author"})
	w = a.send(http.MethodGet, "/auth/me", tok, "", "")
	me = decodeMe(t, w.Code, w.Body.Bytes())
	if !slices.Equal(me.Roles, []string{"author"}) || !slices.Equal(me.Capabilities, []string{"edit_posts", "publish_posts", "read", "upload_files"}) {
		t.Errorf("author: roles %v capabilities %v", me.Roles, me.Capabilities)
	}
	roles := testRoles()
	roles["subscriber"] = policy.RoleSpec{Capabilities: []string{"read", "comment"}}
	a.Reload(a.cfg, compilePolicy(t, roles))
	w = a.send(http.MethodGet, "/auth/me", tok, "", "")
	if me = decodeMe(t, w.Code, w.Body.Bytes()); !slices.Contains(me.Capabilities, "comment") {
		t.Errorf("a policy edit did not apply at once: %v", me.Capabilities)
	}

	// A user without roles has empty lists, not null.
	_, bare := newMeUser(t, fx, "o-bare", nil)
	w = a.send(http.MethodGet, "/auth/me", bare, "", "")
	if !strings.Contains(w.Body.String(), `"roles":[]`) || !strings.Contains(w.Body.String(), `"capabilities":[]`) {
		t.Errorf("a user without roles: %s", w.Body)
	}
}

func TestMeAuthentication(t *testing.T) {
	fx := newFixture(t)
	a := fx.newAPI(t, apiSetup{})
	u, tok := newMeUser(t, fx, "o-grace", []string{"subscriber"})
	disabled, disabledTok := newMeUser(t, fx, "o-heidi", []string{"subscriber"})
	if _, err := fx.store.SetDisabled(t.Context(), disabled.ID, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, authorization string
		status              int
		code, challenge     string
	}{
		{"no token", "", 401, "missing_token", `Bearer realm="frontdoor"`},
		{"another scheme", "Basic dXNlcjpwYXNz", 401, "missing_token", `Bearer realm="frontdoor"`},
		{"garbage", "Bearer not-a-jwt", 401, "invalid_token", `Bearer realm="frontdoor", error="invalid_token"`},
		{"tampered", "Bearer " + tamper(tok), 401, "invalid_token", `Bearer realm="frontdoor", error="invalid_token"`},
		{"empty bearer", "Bearer", 401, "invalid_token", `Bearer realm="frontdoor", error="invalid_token"`},
		{"subject that is not a user id", "Bearer " + mintFor(t, fx, "ops-robot", []string{"administrator"}), 404, "not_found", ""},
		{"user that does not exist", "Bearer " + mintFor(t, fx, strconv.FormatInt(u.ID+1000, 10), []string{"subscriber"}), 404, "not_found", ""},
		{"disabled user", "Bearer " + disabledTok, 403, "access_denied", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The token is judged before the body: a bad body changes nothing.
			for _, req := range []struct{ method, body string }{
				{http.MethodGet, ""},
				{http.MethodPatch, `{"nickname":"Mallory"}`},
				{http.MethodPatch, `{"nickname":"Mallory","roles":["administrator"]`},
			} {
				r := newRequest(req.method, "/auth/me", "application/json", req.body)
				if tc.authorization != "" {
					r.Header.Set("Authorization", tc.authorization)
				}
				w := a.do(r)
				checkError(t, w, tc.status, tc.code)
				if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("%s %s: WWW-Authenticate %q, want %q", req.method, req.body, got, tc.challenge)
				}
			}
		})
	}
	for _, id := range []int64{u.ID, disabled.ID} {
		got, err := fx.store.UserByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Nickname != "Frank" {
			t.Errorf("user %d renamed to %q by a refused PATCH", id, got.Nickname)
		}
	}
	checkError(t, a.send(http.MethodDelete, "/auth/me", tok, "", ""), http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestPatchMe(t *testing.T) {
	fx := newFixture(t)
	a := fx.newAPI(t, apiSetup{})
	u, tok := newMeUser(t, fx, "o-ivan", []string{"subscriber"})
	const (
		startNick   = "Frank"
		startAvatar = "https://thirdwx.qlogo.cn/frank/132"
	)
	url1024 := "https://cdn.example.com/" + strings.Repeat("a", 1024-len("https://cdn.example.com/"))
	cases := []struct {
		name, contentType, body string
		status                  int
		nick, avatar            string // the profile afterwards
	}{
		{"nickname", "application/json", `{"nickname":"Ivan"}`, 200, "Ivan", startAvatar},
		{"nickname trimmed", "application/json", `{"nickname":"  Ivan the Great \t"}`, 200, "Ivan the Great", startAvatar},
		{"nickname of 64 characters", "application/json", `{"nickname":"` + strings.Repeat("伊", 64) + `"}`, 200, strings.Repeat("伊", 64), startAvatar},
		{"nickname of 65 characters", "application/json", `{"nickname":"` + strings.Repeat("a", 65) + `"}`, 400, "", ""},
		{"empty nickname", "application/json", `{"nickname":""}`, 400, "", ""},
		{"blank nickname", "application/json", `{"nickname":"   "}`, 400, "", ""},
		{"nickname with a control character", "application/json", `{"nickname":"Iv\u0007an"}`, 400, "", ""},
		{"nickname with a newline", "application/json", `{"nickname":"Iv\nan"}`, 400, "", ""},
		{"nickname of the wrong type", "application/json", `{"nickname":42}`, 400, "", ""},
		{"avatar https", "application/json", `{"avatar_url":"https://cdn.example.com/i.png"}`, 200, startNick, "https://cdn.example.com/i.png"},
		{"avatar http", "application/json", `{"avatar_url":"http://cdn.example.com/i.png"}`, 200, startNick, "http://cdn.example.com/i.png"},
		{"avatar of 1024 bytes", "application/json", `{"avatar_url":"` + url1024 + `"}`, 200, startNick, url1024},
		{"avatar of 1025 bytes", "application/json", `{"avatar_url":"` + url1024 + `b"}`, 400, "", ""},
		{"avatar ftp", "application/json", `{"avatar_url":"ftp://cdn.example.com/i.png"}`, 400, "", ""},
		{"avatar javascript", "application/json", `{"avatar_url":"javascript:alert(1)"}`, 400, "", ""},
		{"avatar data URL", "application/json", `{"avatar_url":"data:image/png;base64,AAAA"}`, 400, "", ""},
		{"avatar relative", "application/json", `{"avatar_url":"/i.png"}`, 400, "", ""},
		{"avatar without host", "application/json", `{"avatar_url":"https:///i.png"}`, 400, "", ""},
		{"avatar with credentials", "application/json", `{"avatar_url":"https://u:p@cdn.example.com/i.png"}`, 400, "", ""},
		{"empty avatar", "application/json", `{"avatar_url":""}`, 400, "", ""},
		{"both", "application/json", `{"nickname":"Judy","avatar_url":"https://cdn.example.com/j.png"}`, 200, "Judy", "https://cdn.example.com/j.png"},
		{"one good, one bad", "application/json", `{"nickname":"Judy","avatar_url":"ftp://x/j.png"}`, 400, "", ""},
		{"nothing", "application/json", `{}`, 200, startNick, startAvatar},
		{"nulls", "application/json", `{"nickname":null,"avatar_url":null}`, 200, startNick, startAvatar},
		{"unknown field", "application/json", `{"nickname":"Ivan","roles":["administrator"]}`, 400, "", ""},
		{"field in WeChat's spelling", "application/json", `{"avatarUrl":"https://cdn.example.com/i.png"}`, 400, "", ""},
		{"wrong content type", "text/plain", `{"nickname":"Ivan"}`, 400, "", ""},
		{"no content type", "", `{"nickname":"Ivan"}`, 400, "", ""},
		{"malformed JSON", "application/json", `{"nickname":`, 400, "", ""},
		{"trailing data", "application/json", `{"nickname":"Ivan"} {}`, 400, "", ""},
		{"body over 64 KiB", "application/json", `{"nickname":"Ivan","x":"` + strings.Repeat("x", bodyLimit) + `"}`, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every case starts from the same profile.
			nick, avatar := startNick, startAvatar
			if _, err := fx.store.UpdateProfile(t.Context(), u.ID, store.Profile{Nickname: &nick, AvatarURL: &avatar}, time.Now()); err != nil {
				t.Fatal(err)
			}
			w := a.send(http.MethodPatch, "/auth/me", tok, tc.contentType, tc.body)
			wantNick, wantAvatar := tc.nick, tc.avatar
			if tc.status == http.StatusOK {
				me := decodeMe(t, w.Code, w.Body.Bytes())
				if me.Nickname != wantNick || me.AvatarURL != wantAvatar || !slices.Equal(me.Capabilities, []string{"read"}) {
					t.Errorf("PATCH answered %+v", me)
				}
			} else {
				checkError(t, w, tc.status, "invalid_request")
				wantNick, wantAvatar = startNick, startAvatar
			}
			got, err := fx.store.UserByID(t.Context(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Nickname != wantNick || got.AvatarURL != wantAvatar {
				t.Errorf("stored profile %q %q, want %q %q", got.Nickname, got.AvatarURL, wantNick, wantAvatar)
			}
			// GET shows what PATCH stored.
			w = a.send(http.MethodGet, "/auth/me", tok, "", "")
			if me := decodeMe(t, w.Code, w.Body.Bytes()); me.Nickname != wantNick || me.AvatarURL != wantAvatar {
				t.Errorf("GET after PATCH: %+v", me)
			}
		})
	}
}

// tamper changes one character of the token's signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
