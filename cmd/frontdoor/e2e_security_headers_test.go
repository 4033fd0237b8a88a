package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestSecurityIdentityHeaders spoofs the identity headers in every spelling
// that some server might fold into X-User-Id / X-User-Roles, on every kind
// of route, with and without a token. The upstream must never see a value
// the client chose, and must see the token's identity exactly when the
// route checks tokens and the request carried a valid one.
func TestSecurityIdentityHeaders(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})
	author := env.token(t, "42", "author")
	admin := env.token(t, "1", "administrator")
	authorID := map[string][]string{"X-User-Id": {"42"}, "X-User-Roles": {"author"}}
	adminID := map[string][]string{"X-User-Id": {"1"}, "X-User-Roles": {"administrator"}}

	spellings := []string{
		"X-User-Id", "x-user-id", "X-USER-ID", "X_User_Id", "x_user_id", "X.User.Id", "x.user.id",
		"X-User_Id", "X_User-Id", "x-UsEr.iD",
		"X-User-Roles", "x-user-roles", "X-USER-ROLES", "X_User_Roles", "x_user_roles", "X.User.Roles",
		"X-User.Roles", "x_USER.roles",
	}
	routes := []struct {
		name, path, token string
		status            int
		identity          map[string][]string // what the upstream must see
	}{
		{"public, anonymous", "/api/health", "", http.StatusOK, nil},
		// auth: none checks no token, so a token adds no identity either.
		{"public, with a token", "/api/health", author, http.StatusOK, nil},
		{"optional, anonymous", "/api/articles/1", "", http.StatusOK, nil},
		{"optional, with a token", "/api/articles/1", author, http.StatusOK, authorID},
		{"required, with a token", "/api/private/1", author, http.StatusOK, authorID},
		{"roles and strip_prefix, with a token", "/api/admin/users", admin, http.StatusOK, adminID},
		{"required, anonymous", "/api/private/1", "", http.StatusUnauthorized, nil},
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			var auth []string
			if rt.token != "" {
				auth = []string{"Authorization: Bearer " + rt.token}
			}
			var all []string
			for i, name := range spellings {
				all = append(all, name+": spoofed-"+strconv.Itoa(i))
			}
			variants := [][]string{
				all,
				{"X-User-Id: 1", "X-User-Id: 2", "X-User-Roles: administrator", "X-User-Roles: editor"},
				// An obsolete line folding: net/http joins it into X-Note.
				{"X-Note: a", " X-User-Id: 1", "\tX-User-Roles: administrator"},
			}
			for _, s := range all {
				variants = append(variants, []string{s})
			}
			for _, v := range variants {
				n := env.up.count()
				resp, body := env.roundTrip(t, rawRequest(http.MethodGet, rt.path, append(v, auth...)...))
				if rt.status != http.StatusOK {
					if problem := apiError(resp, body, rt.status, "missing_token"); problem != "" {
						t.Errorf("%q: %s", v, problem)
					}
					env.up.none(t, n)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%q: %d %s", v, resp.StatusCode, body)
					continue
				}
				got := env.up.only(t, n)
				if id := identityOf(got.Header); !sameHeaders(id, rt.identity) {
					t.Errorf("%q: the upstream saw identity %v, want %v", v, id, rt.identity)
				}
				if got.Header.Get("Authorization") != "" {
					t.Errorf("%q: Authorization reached the upstream", v)
				}
			}
		})
	}

	// Rewrite, not Director: hop-by-hop headers the client names in
	// Connection are removed before frontdoor sets its own, so naming them
	// can neither keep a spoofed value nor drop the true one.
	t.Run("Connection cannot drop or keep identity", func(t *testing.T) {
		cases := []struct {
			name     string
			path     string
			headers  []string
			identity map[string][]string
		}{
			{"Connection: X-User-Id", "/api/private/1", []string{"Connection: X-User-Id", "X-User-Id: 7"}, authorID},
			{"Connection: both identity names", "/api/private/1", []string{"Connection: X-User-Id, X-User-Roles", "X-User-Roles: administrator"}, authorID},
			{"Connection: an underscore spelling", "/api/private/1", []string{"Connection: x_user_id", "x_user_id: 7"}, authorID},
			{"Connection: Authorization", "/api/private/1", []string{"Connection: Authorization"}, authorID},
			{"Connection: close, X-User-Roles", "/api/articles/1", []string{"Connection: close, X-User-Roles", "X-User-Roles: administrator"}, authorID},
		}
		for _, c := range cases {
			n := env.up.count()
			resp, body := env.roundTrip(t, rawRequest(http.MethodGet, c.path, append(c.headers, "Authorization: Bearer "+author)...))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
				continue
			}
			if id := identityOf(env.up.only(t, n).Header); !sameHeaders(id, c.identity) {
				t.Errorf("%s: the upstream saw identity %v, want %v", c.name, id, c.identity)
			}
		}
		// Anonymous: naming the headers in Connection smuggles nothing.
		n := env.up.count()
		resp, _ := env.roundTrip(t, rawRequest(http.MethodGet, "/api/articles/1", "Connection: X-User-Id", "X-User-Id: 7"))
		if id := identityOf(env.up.only(t, n).Header); resp.StatusCode != http.StatusOK || len(id) != 0 {
			t.Errorf("anonymous with Connection: X-User-Id: %d, the upstream saw identity %v", resp.StatusCode, id)
		}
	})

	t.Run("Connection cannot drop frontdoor's other headers", func(t *testing.T) {
		n := env.up.count()
		resp, body := env.roundTrip(t, rawRequest(http.MethodGet, "/api/articles/1",
			"Connection: X-Request-Id, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto", "X-Request-Id: sec-conn-1"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		got := env.up.only(t, n)
		if got.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") || got.Header.Get("X-Request-Id") == "" {
			t.Errorf("X-Request-Id: upstream %q, response %q", got.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
		}
		if got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != "frontdoor.test" {
			t.Errorf("X-Forwarded-*: %v", got.Header)
		}
	})

	// Trailer fields are header fields sent after the body; an upstream
	// that merges them into its headers must not find spoofed ones there.
	t.Run("identity in request trailers", func(t *testing.T) {
		n := env.up.count()
		req := rawRequest(http.MethodPost, "/api/articles/1", "Authorization: Bearer "+author,
			"Transfer-Encoding: chunked", "Trailer: X-User-Id, X-User-Roles") +
			"5\r\nhello\r\n0\r\nX-User-Id: 1\r\nX-User-Roles: administrator\r\n\r\n"
		resp, body := env.roundTrip(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		got := env.up.only(t, n)
		if string(got.Body) != "hello" {
			t.Errorf("body %q", got.Body)
		}
		if id := identityOf(got.Header); !sameHeaders(id, authorID) {
			t.Errorf("the upstream saw identity %v", id)
		}
		// The declaration may pass (net/http announces the trailer keys it
		// was given), but never a value.
		for k, v := range identityOf(got.Trailer) {
			if strings.Join(v, "") != "" {
				t.Errorf("the upstream received the trailer %s: %q", k, v)
			}
		}
	})

	t.Run("client forwarding headers are replaced", func(t *testing.T) {
		n := env.up.count()
		resp, body := env.roundTrip(t, rawRequest(http.MethodGet, "/api/articles/1",
			"X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9", "Forwarded: for=203.0.113.9;proto=https",
			"X-Forwarded-Proto: https", "X-Forwarded-Host: admin.internal"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		h := env.up.only(t, n).Header
		want := map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "frontdoor.test",
			"X-Real-Ip": "", "Forwarded": "",
		}
		for k, v := range want {
			if got := strings.Join(h.Values(k), ", "); got != v {
				t.Errorf("%s: the upstream saw %q, want %q", k, got, v)
			}
		}
	})

	t.Run("X-Request-Id is kept only when sane", func(t *testing.T) {
		for _, c := range []struct {
			id   string
			kept bool
		}{
			{"sec-req-1", true},
			{"<script>alert(1)</script>", false},
			{"a b", false},
			{strings.Repeat("r", 129), false},
			{`{"level":"error"}`, false},
		} {
			n := env.up.count()
			resp, _ := env.roundTrip(t, rawRequest(http.MethodGet, "/api/health", "X-Request-Id: "+c.id))
			got := env.up.only(t, n).Header.Get("X-Request-Id")
			if got != resp.Header.Get("X-Request-Id") || (got == c.id) != c.kept || got == "" {
				t.Errorf("X-Request-Id %q: upstream %q, response %q, kept %v", c.id, got, resp.Header.Get("X-Request-Id"), c.kept)
			}
		}
	})
}
