package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestSecurityPathAndMethod tries to make the policy and the upstream read
// a request differently: encoded and doubled dot segments, separators and
// parameters, case, fragments, absolute-form targets, odd methods and the
// override headers some frameworks honour. Whatever is not refused must
// reach the upstream as exactly the method and path the policy decided on.
func TestSecurityPathAndMethod(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})
	editor := env.token(t, "5", "editor")
	admin := env.token(t, "1", "administrator")
	author := env.token(t, "42", "author")

	const (
		// goRejects marks refusals that net/http makes before frontdoor's
		// handler runs: status only, its body is plain text.
		goRejects = "-"
		bad       = "invalid_request"
	)
	cases := []struct {
		name, method, target, token string
		extra                       []string
		status                      int
		code                        string // error code; for 200, unused
		upMethod, upURI             string // what the upstream must receive on 200
	}{
		// Dot segments, raw, encoded in either case, and double-encoded,
		// climbing from a readable route into admin.
		{name: "raw ..", method: "GET", target: "/api/articles/../admin/users", token: editor, status: 400, code: bad},
		{name: "%2e%2e", method: "GET", target: "/api/articles/%2e%2e/admin/users", token: editor, status: 400, code: bad},
		{name: "%2E%2E", method: "GET", target: "/api/articles/%2E%2E/admin/users", token: editor, status: 400, code: bad},
		{name: ".%2e", method: "GET", target: "/api/articles/.%2e/admin/users", token: editor, status: 400, code: bad},
		{name: "%2e.", method: "GET", target: "/api/articles/%2e./admin/users", token: editor, status: 400, code: bad},
		{name: "%252e%252e", method: "GET", target: "/api/articles/%252e%252e/admin/users", token: editor, status: 400, code: bad},
		{name: "%252E%252E", method: "GET", target: "/api/articles/%252E%252E/admin/users", token: editor, status: 400, code: bad},
		{name: "%25%32%65 twice", method: "GET", target: "/api/articles/%25%32%65%25%32%65/admin/users", token: editor, status: 400, code: bad},
		{name: "trailing ..", method: "GET", target: "/api/admin/users/..", token: admin, status: 400, code: bad},
		{name: "raw .", method: "GET", target: "/api/articles/./1", status: 400, code: bad},
		{name: "%2e", method: "GET", target: "/api/articles/%2e/1", status: 400, code: bad},
		{name: "dot segments in front of /auth", method: "GET", target: "/auth/../api/admin/users", token: editor, status: 400, code: bad},
		{name: "encoded dots in front of /.well-known", method: "GET", target: "/.well-known/%2e%2e/api/admin/users", token: editor, status: 400, code: bad},

		// Separators and parameters.
		{name: "%2F", method: "GET", target: "/api/articles/1%2F..%2F..%2Fadmin%2Fusers", token: editor, status: 400, code: bad},
		{name: "%2f", method: "GET", target: "/api/articles%2f..%2fadmin/users", token: editor, status: 400, code: bad},
		{name: "%252F", method: "GET", target: "/api/articles/1%252F..%252Fadmin", token: editor, status: 400, code: bad},
		{name: "%5C", method: "GET", target: "/api/articles/..%5Cadmin/users", token: editor, status: 400, code: bad},
		{name: "raw backslash", method: "GET", target: `/api/articles/..\admin/users`, token: editor, status: 400, code: bad},
		{name: "// at the start", method: "GET", target: "//api/admin/users", token: editor, status: 400, code: bad},
		{name: "// inside", method: "GET", target: "/api//admin/users", token: editor, status: 400, code: bad},
		{name: ";jsessionid", method: "GET", target: "/api/articles/1;jsessionid=x", status: 400, code: bad},
		{name: "..;/", method: "GET", target: "/api/articles/..;/admin/users", token: editor, status: 400, code: bad},
		{name: "%3B", method: "GET", target: "/api/articles/..%3B/admin/users", token: editor, status: 400, code: bad},
		{name: "%00", method: "GET", target: "/api/articles/1%00.json", status: 400, code: bad},
		{name: "%0d%0a", method: "GET", target: "/api/articles/1%0d%0aX-User-Id:%201", status: 400, code: bad},
		{name: "%7F", method: "GET", target: "/api/articles/1%7F", status: 400, code: bad},
		{name: "malformed escape", method: "GET", target: "/api/articles/%zz", status: 400, code: goRejects},
		{name: "truncated escape", method: "GET", target: "/api/articles/1%2", status: 400, code: goRejects},

		// Case: routes match case-sensitively, so another case is no route.
		{name: "/API", method: "GET", target: "/API/admin/users", token: admin, status: 404, code: "not_found"},
		{name: "/api/ADMIN", method: "GET", target: "/api/ADMIN/users", token: admin, status: 404, code: "not_found"},
		{name: "/Api/articles", method: "GET", target: "/Api/articles/1", status: 404, code: "not_found"},
		{name: "/api/Articles", method: "POST", target: "/api/Articles/1", token: author, status: 404, code: "not_found"},
		{name: "/AUTH/login", method: "POST", target: "/AUTH/login", status: 404, code: "not_found"},

		// An escaped ordinary byte is decoded once, before matching.
		{name: "%61dmin, editor", method: "GET", target: "/api/%61dmin/users", token: editor, status: 403, code: "insufficient_scope"},
		{name: "%61dmin, administrator", method: "GET", target: "/api/%61dmin/users", token: admin, status: 200, upMethod: "GET", upURI: "/admin/users"},
		{name: "%41", method: "GET", target: "/api/articles/%41", status: 200, upMethod: "GET", upURI: "/api/articles/A"},

		// A trailing slash decides like none and is forwarded as sent.
		{name: "trailing slash, editor", method: "GET", target: "/api/admin/users/", token: editor, status: 403, code: "insufficient_scope"},
		{name: "trailing slash, administrator", method: "GET", target: "/api/admin/users/", token: admin, status: 200, upMethod: "GET", upURI: "/admin/users/"},
		{name: "trailing slash on an exact route", method: "GET", target: "/api/health/", status: 200, upMethod: "GET", upURI: "/api/health/"},

		// '#' is not a delimiter in a request target: it is part of the
		// path the policy matches, and the upstream gets it escaped.
		{name: "# fragment", method: "GET", target: "/api/articles/1#frag", status: 200, upMethod: "GET", upURI: "/api/articles/1%23frag"},
		{name: "# then dot segments", method: "GET", target: "/api/articles/x#/../../admin/users", token: editor, status: 400, code: bad},
		{name: "# after an admin path", method: "GET", target: "/api/admin/users#", token: editor, status: 403, code: "insufficient_scope"},
		{name: "# on an exact route", method: "GET", target: "/api/health#/x", status: 404, code: "not_found"},
		// The query is never matched, and forwarded untouched.
		{name: "dot segments in the query", method: "GET", target: "/api/articles/1?next=/../../admin/users", status: 200, upMethod: "GET", upURI: "/api/articles/1?next=/../../admin/users"},

		// Absolute-form targets are decided on their path; the client's
		// authority never becomes the upstream's Host.
		{name: "absolute-form, editor", method: "GET", target: "http://evil.example/api/admin/users", token: editor, status: 403, code: "insufficient_scope"},
		{name: "absolute-form, anonymous", method: "GET", target: "http://evil.example/api/admin/users", status: 401, code: "missing_token"},
		{name: "absolute-form, administrator", method: "GET", target: "http://evil.example/api/admin/users", token: admin, status: 200, upMethod: "GET", upURI: "/admin/users"},
		{name: "absolute-form https", method: "GET", target: "https://evil.example/api/articles/1", status: 200, upMethod: "GET", upURI: "/api/articles/1"},
		{name: "absolute-form with ..", method: "GET", target: "http://evil.example/api/articles/../admin/users", token: editor, status: 400, code: bad},
		{name: "absolute-form without a path", method: "GET", target: "http://evil.example", status: 400, code: bad},
		{name: "authority-form CONNECT", method: "CONNECT", target: "evil.example:443", status: 400, code: bad},
		{name: "asterisk-form GET", method: "GET", target: "*", status: 400, code: bad},

		// Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET, so
		// it only passes a route that allows every method, and the upstream
		// then receives "get" too.
		{name: "get", method: "get", target: "/api/articles/1", status: 405, code: "method_not_allowed"},
		{name: "post as author", method: "post", target: "/api/articles/1", token: author, status: 405, code: "method_not_allowed"},
		{name: "delete", method: "delete", target: "/api/articles/1", token: author, status: 405, code: "method_not_allowed"},
		{name: "get on a method-less route, editor", method: "get", target: "/api/admin/users", token: editor, status: 403, code: "insufficient_scope"},
		{name: "get on a method-less route, administrator", method: "get", target: "/api/admin/users", token: admin, status: 200, upMethod: "get", upURI: "/admin/users"},
		{name: "unknown method", method: "FOO", target: "/api/articles/1", status: 405, code: "method_not_allowed"},
		{name: "TRACE", method: "TRACE", target: "/api/articles/1", status: 405, code: "method_not_allowed"},
		// A TRACE echo upstream cannot reflect the token: it is not forwarded.
		{name: "TRACE on a method-less route", method: "TRACE", target: "/api/private/1", token: author, status: 200, upMethod: "TRACE", upURI: "/api/private/1"},
		{name: "OPTIONS", method: "OPTIONS", target: "/api/articles/1", status: 405, code: "method_not_allowed"},
		{name: "OPTIONS on a method-less route", method: "OPTIONS", target: "/api/private/1", status: 401, code: "missing_token"},
		{name: "HEAD where GET is allowed", method: "HEAD", target: "/api/articles/1", status: 200, upMethod: "HEAD", upURI: "/api/articles/1"},
		{name: "HEAD where a token is required", method: "HEAD", target: "/api/private/1", status: 401, code: ""},
		{name: "HEAD on a POST-only endpoint", method: "HEAD", target: "/auth/login", status: 405, code: ""},
		{name: "GET on a POST-only endpoint", method: "GET", target: "/auth/login", status: 405, code: "method_not_allowed"},

		// Override headers are not read: the decision and the upstream
		// request use the real method and path.
		{name: "X-HTTP-Method-Override on a read", method: "GET", target: "/api/articles/1", extra: []string{"X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X-Method-Override: DELETE"}, status: 200, upMethod: "GET", upURI: "/api/articles/1"},
		{name: "X-HTTP-Method-Override on a write", method: "POST", target: "/api/articles/1", extra: []string{"X-HTTP-Method-Override: GET", "Content-Length: 0"}, status: 401, code: "missing_token"},
		{name: "X-Original-URL to admin", method: "GET", target: "/api/articles/1", extra: []string{"X-Original-URL: /api/admin/users", "X-Rewrite-URL: /api/admin/users"}, status: 200, upMethod: "GET", upURI: "/api/articles/1"},
		{name: "X-Original-URL from admin", method: "GET", target: "/api/admin/users", token: editor, extra: []string{"X-Original-URL: /api/articles/1", "X-Rewrite-URL: /api/articles/1"}, status: 403, code: "insufficient_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := c.extra
			if c.token != "" {
				headers = append(headers, "Authorization: Bearer "+c.token)
			}
			n := env.up.count()
			resp, body := env.roundTrip(t, rawRequest(c.method, c.target, headers...))
			switch {
			case c.status == http.StatusOK:
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %d %s, want 200", c.method, c.target, resp.StatusCode, body)
				}
				got := env.up.only(t, n)
				if got.Method != c.upMethod || got.URI != c.upURI {
					t.Errorf("the upstream received %s %s, want %s %s", got.Method, got.URI, c.upMethod, c.upURI)
				}
				if host, _, _ := strings.Cut(got.Host, ":"); host != "127.0.0.1" {
					t.Errorf("the upstream received Host %q", got.Host)
				}
				if got.Header.Get("Authorization") != "" {
					t.Error("Authorization reached the upstream")
				}
				if c.method != "HEAD" && body != "legacy saw "+c.upMethod+" "+c.upURI {
					t.Errorf("body %q", body)
				}
			case c.code == goRejects || c.code == "":
				if resp.StatusCode != c.status {
					t.Errorf("%s %s: %d %s, want %d", c.method, c.target, resp.StatusCode, body, c.status)
				}
				env.up.none(t, n)
			default:
				if problem := apiError(resp, body, c.status, c.code); problem != "" {
					t.Errorf("%s %s: %s", c.method, c.target, problem)
				}
				if c.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
				env.up.none(t, n)
			}
		})
	}

	t.Run("OPTIONS * is answered by net/http", func(t *testing.T) {
		n := env.up.count()
		resp, body := env.roundTrip(t, rawRequest(http.MethodOptions, "*"))
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
		env.up.none(t, n)
	})

	// Frameworks that honour these headers (Laravel, Express
	// method-override, IIS URL Rewrite) would act on another method or path
	// than the one decided on, so frontdoor removes them.
	t.Run("override headers are removed", func(t *testing.T) {
		n := env.up.count()
		env.roundTrip(t, rawRequest(http.MethodGet, "/api/articles/1",
			"X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X-Method-Override: DELETE",
			"X-Original-URL: /api/admin/users", "X-Rewrite-URL: /api/admin/users", "X-Original-Method: DELETE"))
		got := env.up.only(t, n)
		if got.Method != http.MethodGet {
			t.Errorf("upstream saw method %s", got.Method)
		}
		for _, name := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-URL", "X-Rewrite-URL", "X-Original-Method"} {
			if v, ok := got.Header[http.CanonicalHeaderKey(name)]; ok {
				t.Errorf("upstream received %s: %q", name, v)
			}
		}
	})
}
