package policy_test

import (
	"slices"
	"testing"

	"frontdoor/policy"
)

// designRoutes are the example routes of DESIGN.md.
func designRoutes() []policy.RouteSpec {
	return []policy.RouteSpec{
		{Name: "articles-read", Path: "/api/articles/**", Methods: []string{"GET", "HEAD"}, Upstream: "legacy", Auth: "optional"},
		{Name: "articles-write", Path: "/api/articles/**", Methods: []string{"POST", "PUT", "PATCH", "DELETE"}, Upstream: "legacy", Capabilities: []string{"publish_posts"}},
		{Name: "admin", Path: "/api/admin/**", Upstream: "legacy", Roles: []string{"administrator"}, StripPrefix: "/api"},
	}
}

func TestEvaluate(t *testing.T) {
	p := mustCompile(t, policy.Config{Roles: designRoles(), Routes: designRoutes()})
	cases := []struct {
		method, path string
		roles        []string
		anonymous    bool
		status       int
		route        string
	}{
		{"GET", "/api/articles/1", nil, true, 200, "articles-read"},
		{"GET", "/api/articles/1", []string{"subscriber"}, false, 200, "articles-read"},
		{"POST", "/api/articles", nil, true, 401, "articles-write"},
		{"POST", "/api/articles", []string{"contributor"}, false, 403, "articles-write"},
		{"POST", "/api/articles", []string{"author"}, false, 200, "articles-write"},
		{"GET", "/api/admin/users", []string{"editor"}, false, 403, "admin"},
		{"GET", "/api/admin/users", []string{"administrator"}, false, 200, "admin"},
		{"GET", "/api/admin/users", []string{"administrator"}, true, 401, "admin"},
		{"OPTIONS", "/api/articles/1", []string{"administrator"}, false, 405, ""},
		{"GET", "/api/other", []string{"administrator"}, false, 404, ""},
	}
	for _, tc := range cases {
		status, r := p.Evaluate(tc.method, tc.path, tc.roles, tc.anonymous)
		var name string
		if r != nil {
			name = r.Name
		}
		if status != tc.status || name != tc.route {
			t.Errorf("Evaluate(%s %s, %v, anonymous=%v) = %d %q, want %d %q",
				tc.method, tc.path, tc.roles, tc.anonymous, status, name, tc.status, tc.route)
		}
	}
}

func TestRunTests(t *testing.T) {
	p := mustCompile(t, policy.Config{
		Roles:  designRoles(),
		Routes: designRoutes(),
		Tests: []policy.TestSpec{
			{Name: "readers may read", Method: "GET", Path: "/api/articles/1", Roles: []string{"subscriber"}, Expect: "allow"},
			{Name: "anonymous may read", Method: "head", Path: "/api/articles/", Expect: "allow"},
			{Name: "anonymous may not write", Method: "POST", Path: "/api/articles", Expect: "401"},
			{Name: "contributors may not publish", Method: "PUT", Path: "/api/articles/1", Roles: []string{"contributor"}, Expect: "403"},
			{Name: "wrong: editors are admins", Method: "GET", Path: "/api/admin/x", Roles: []string{"editor"}, Expect: "allow"},
			{Name: "no route", Method: "GET", Path: "/nope", Expect: "404"},
			{Method: "OPTIONS", Path: "/api/articles", Expect: "404"},
		},
	})
	want := []policy.TestResult{
		{Name: "readers may read", Method: "GET", Path: "/api/articles/1", Want: "allow", Got: "allow", Route: "articles-read", Pass: true},
		{Name: "anonymous may read", Method: "HEAD", Path: "/api/articles/", Want: "allow", Got: "allow", Route: "articles-read", Pass: true},
		{Name: "anonymous may not write", Method: "POST", Path: "/api/articles", Want: "401", Got: "401", Route: "articles-write", Pass: true},
		{Name: "contributors may not publish", Method: "PUT", Path: "/api/articles/1", Want: "403", Got: "403", Route: "articles-write", Pass: true},
		{Name: "wrong: editors are admins", Method: "GET", Path: "/api/admin/x", Want: "allow", Got: "403", Route: "admin", Pass: false},
		{Name: "no route", Method: "GET", Path: "/nope", Want: "404", Got: "404", Pass: true},
		{Name: "tests[6]", Method: "OPTIONS", Path: "/api/articles", Want: "404", Got: "405", Pass: false},
	}
	if got := p.RunTests(); !slices.Equal(got, want) {
		t.Errorf("RunTests() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestWarnings(t *testing.T) {
	p := mustCompile(t, policy.Config{
		Roles: map[string]policy.RoleSpec{
			"base":    {Capabilities: []string{"read", "unused_cap"}},
			"editor":  {Inherits: []string{"base"}, Capabilities: []string{"write", "unused_cap"}},
			"tester":  {},
			"orphan":  {Capabilities: []string{"read"}},
			"another": {Capabilities: []string{"lonely"}},
		},
		Routes: []policy.RouteSpec{
			{Name: "read", Path: "/r/**", Upstream: "u", Capabilities: []string{"read"}},
			{Name: "write", Path: "/w/**", Upstream: "u", Roles: []string{"editor", "ops"}, Capabilities: []string{"write", "ghost"}},
			// /s/** is taken entirely by /s, /s/* and /s/*/**.
			{Name: "shadowed", Path: "/s/**", Methods: []string{"GET"}, Upstream: "u"},
			{Name: "s-root", Path: "/s", Upstream: "u"},
			{Name: "s-one", Path: "/s/{id}", Methods: []string{"GET", "POST"}, Upstream: "u"},
			{Name: "s-deep", Path: "/s/*/**", Methods: []string{"GET"}, Upstream: "u"},
			// GET is covered below /t but POST is not.
			{Name: "partly-covered", Path: "/t/**", Methods: []string{"GET", "POST"}, Upstream: "u"},
			{Name: "t-root", Path: "/t", Upstream: "u"},
			{Name: "t-rest", Path: "/t/*/**", Methods: []string{"GET"}, Upstream: "u"},
			// /u/** is taken by /u, /u/*, and /u/*/*/** after /u/*/*.
			{Name: "deep-shadowed", Path: "/u/**", Methods: []string{"PUT"}, Upstream: "u"},
			{Name: "u-root", Path: "/u", Methods: []string{"PUT"}, Upstream: "u"},
			{Name: "u-one", Path: "/u/*", Methods: []string{"PUT"}, Upstream: "u"},
			{Name: "u-two", Path: "/u/*/*", Methods: []string{"PUT"}, Upstream: "u"},
			{Name: "u-more", Path: "/u/*/*/**", Upstream: "u"},
			// A method-less route is only shadowed by method-less routes.
			{Name: "any-shadowed", Path: "/**", Upstream: "u"},
			{Name: "root", Path: "/", Upstream: "u"},
			{Name: "first", Path: "/*/**", Upstream: "u"},
		},
		Tests: []policy.TestSpec{{Method: "GET", Path: "/r", Roles: []string{"tester"}, Expect: "403"}},
	})
	want := []policy.ConfigError{
		{Path: "roles.another", Msg: `role "another" is not used by any route, test or inherits`},
		{Path: "roles.another.capabilities[0]", Msg: `capability "lonely" is not required by any route`},
		{Path: "roles.base.capabilities[1]", Msg: `capability "unused_cap" is not required by any route`},
		{Path: "roles.orphan", Msg: `role "orphan" is not used by any route, test or inherits`},
		{Path: "routes[1].roles[1]", Msg: `role "ops" is not defined in roles; only tokens carrying it verbatim pass`},
		{Path: "routes[1].capabilities[1]", Msg: `capability "ghost" is not granted by any role; every authenticated request is forbidden`},
		{Path: "routes[2].path", Msg: `route "shadowed" is shadowed: more specific routes take every request it matches`},
		{Path: "routes[9].path", Msg: `route "deep-shadowed" is shadowed: more specific routes take every request it matches`},
		{Path: "routes[14].path", Msg: `route "any-shadowed" is shadowed: more specific routes take every request it matches`},
	}
	got := p.Warnings()
	if len(got) != len(want) {
		t.Fatalf("Warnings() returned %d warnings, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("warning %d = %q, want %q", i, got[i], want[i].Error())
		}
	}

	// Warnings are copies: changing them does not change the Policy.
	got[0].Msg = "changed"
	if p.Warnings()[0].Msg == "changed" {
		t.Error("Warnings() returns the Policy's own values")
	}

	clean := mustCompile(t, policy.Config{Roles: map[string]policy.RoleSpec{
		"administrator": {Capabilities: []string{"publish_posts"}},
	}, Routes: designRoutes()})
	if w := clean.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() = %v, want none", w)
	}
}
