package policy_test

import (
	"net/http"
	"slices"
	"testing"

	"frontdoor/policy"
)

func mustCompile(tb testing.TB, cfg policy.Config) *policy.Policy {
	tb.Helper()
	p, err := policy.Compile(cfg)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return p
}

// route builds a route spec with the fields matching cares about.
func route(name, path string, methods ...string) policy.RouteSpec {
	return policy.RouteSpec{Name: name, Path: path, Methods: methods, Upstream: "legacy"}
}

type matchCase struct {
	method, path string
	want         string // route name; empty when status is not 0
	status       int
	allow        string
}

func runMatchCases(t *testing.T, p *policy.Policy, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			m := p.Match(tc.method, tc.path)
			var got string
			if m.Route != nil {
				got = m.Route.Name
			}
			if got != tc.want || m.Status != tc.status || m.Allow != tc.allow {
				t.Errorf("Match(%s, %s) = {route %q, status %d, allow %q}, want {route %q, status %d, allow %q}",
					tc.method, tc.path, got, m.Status, m.Allow, tc.want, tc.status, tc.allow)
			}
		})
	}
}

func TestMatchPrecedence(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("glob-root", "/**", "GET"),
		route("glob-a", "/a/**", "GET"),
		route("star", "/a/*", "GET"),
		route("named", "/a/{x}/c", "GET"),
		route("exact", "/a/b", "GET"),
		route("root", "/", "GET"),
		route("deep", "/a/b/c/d/e/f/g", "GET"),
	}})
	runMatchCases(t, p, []matchCase{
		{method: "GET", path: "/a/b", want: "exact"},
		{method: "GET", path: "/a/b/", want: "exact"},
		{method: "HEAD", path: "/a/b", want: "exact"},
		{method: "GET", path: "/a/z", want: "star"},
		{method: "GET", path: "/a/z/", want: "star"},
		{method: "GET", path: "/a/z/c", want: "named"},
		{method: "GET", path: "/a/b/c", want: "named"},
		{method: "GET", path: "/a/z/d", want: "glob-a"},
		{method: "GET", path: "/a/b/c/d", want: "glob-a"},
		{method: "GET", path: "/a/b/c/d/e/f/g", want: "deep"},
		{method: "GET", path: "/a/b/c/d/e/f/g/h", want: "glob-a"},
		{method: "GET", path: "/a", want: "glob-a"},
		{method: "GET", path: "/a/", want: "glob-a"},
		{method: "GET", path: "/b", want: "glob-root"},
		{method: "GET", path: "/A/b", want: "glob-root"},
		{method: "GET", path: "/", want: "root"},
		{method: "POST", path: "/a/b", status: 405, allow: "GET, HEAD"},
		{method: "get", path: "/a/b", status: 405, allow: "GET, HEAD"},
		{method: "GET", path: "", status: 404},
		{method: "GET", path: "a/b", status: 404},
	})
}

func TestMatchArticles(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("articles-read", "/api/articles/**", "GET", "HEAD"),
		route("articles-write", "/api/articles/**", "POST", "PUT", "PATCH", "DELETE"),
		route("admin", "/api/admin/**"),
		route("api-get", "/api/*", "GET"),
		route("api-any", "/api/**"),
	}})
	runMatchCases(t, p, []matchCase{
		{method: "GET", path: "/api/articles", want: "articles-read"},
		{method: "GET", path: "/api/articles/", want: "articles-read"},
		{method: "HEAD", path: "/api/articles/1", want: "articles-read"},
		{method: "GET", path: "/api/articles/1/comments/2", want: "articles-read"},
		{method: "DELETE", path: "/api/articles/1", want: "articles-write"},
		{method: "POST", path: "/api/articles", want: "articles-write"},
		// No articles route allows OPTIONS, so the less specific /api/** does.
		{method: "OPTIONS", path: "/api/articles/1", want: "api-any"},
		{method: "GET", path: "/api/x", want: "api-get"},
		{method: "POST", path: "/api/x", want: "api-any"},
		{method: "GET", path: "/api/admin", want: "admin"},
		{method: "PUT", path: "/api/admin/users/1", want: "admin"},
		{method: "GET", path: "/api", want: "api-any"},
		{method: "GET", path: "/API/x", status: 404},
		{method: "GET", path: "/Api/articles", status: 404},
		{method: "GET", path: "/other", status: 404},
		{method: "GET", path: "/", status: 404},
	})
}

func TestMatchMethods(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("items-any", "/items/*"),
		route("items-read", "/items/*", "GET", "POST"),
		route("items-delete", "/items/{id}", "DELETE"),
		route("only-put", "/only/**", "PUT"),
		route("only-x", "/only/x", "GET"),
		route("only-x-del", "/only/x", "DELETE"),
		route("head-only", "/head", "HEAD"),
	}})
	runMatchCases(t, p, []matchCase{
		// The route listing methods beats the one without on the same pattern.
		{method: "GET", path: "/items/1", want: "items-read"},
		{method: "HEAD", path: "/items/1", want: "items-read"},
		{method: "DELETE", path: "/items/1", want: "items-delete"},
		{method: "PUT", path: "/items/1", want: "items-any"},
		{method: "GET", path: "/items", status: 404},
		{method: "GET", path: "/only/x", want: "only-x"},
		{method: "PUT", path: "/only/x", want: "only-put"},
		{method: "OPTIONS", path: "/only/x", status: 405, allow: "DELETE, GET, HEAD, PUT"},
		{method: "GET", path: "/only/y", status: 405, allow: "PUT"},
		{method: "GET", path: "/only", status: 405, allow: "PUT"},
		{method: "HEAD", path: "/head", want: "head-only"},
		{method: "GET", path: "/head", status: 405, allow: "HEAD"},
		{method: "GET", path: "/nothing", status: 404},
	})
}

func TestMatchRootOnly(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{route("root", "/")}})
	runMatchCases(t, p, []matchCase{
		{method: "GET", path: "/", want: "root"},
		{method: "DELETE", path: "/", want: "root"},
		{method: "GET", path: "/x", status: 404},
	})

	p = mustCompile(t, policy.Config{Routes: []policy.RouteSpec{route("all", "/**")}})
	runMatchCases(t, p, []matchCase{
		{method: "GET", path: "/", want: "all"},
		{method: "GET", path: "/x/y/z/", want: "all"},
	})

	p = mustCompile(t, policy.Config{})
	runMatchCases(t, p, []matchCase{{method: "GET", path: "/", status: 404}})
}

func TestMatchTrailingSlashPattern(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{route("a", "/a/")}})
	runMatchCases(t, p, []matchCase{
		{method: "GET", path: "/a", want: "a"},
		{method: "GET", path: "/a/", want: "a"},
		{method: "GET", path: "/a/b", status: 404},
	})
}

func names(rs []*policy.Route) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

func TestRoutesAndCandidatesOrder(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("glob-root", "/**", "GET"),
		route("root", "/", "GET"),
		route("glob-a", "/a/**", "GET"),
		route("star", "/a/*", "GET"),
		route("star-any", "/a/*"),
		route("named", "/a/{x}/c", "GET"),
		route("exact", "/a/b", "GET"),
	}})
	want := []string{"exact", "named", "star", "star-any", "glob-a", "root", "glob-root"}
	if got := names(p.Routes()); !slices.Equal(got, want) {
		t.Errorf("Routes() = %v, want %v", got, want)
	}
	for i, r := range p.Routes() {
		wantIndex := []int{6, 5, 3, 4, 2, 1, 0}[i]
		if r.Index != wantIndex {
			t.Errorf("route %s: Index = %d, want %d", r.Name, r.Index, wantIndex)
		}
	}

	cases := []struct {
		path string
		want []string
	}{
		{"/a/b", []string{"exact", "star", "star-any", "glob-a", "glob-root"}},
		{"/a/b/c", []string{"named", "glob-a", "glob-root"}},
		{"/a", []string{"glob-a", "glob-root"}},
		{"/", []string{"root", "glob-root"}},
		{"/zzz", []string{"glob-root"}},
		{"zzz", nil},
	}
	for _, tc := range cases {
		if got := names(p.Candidates(tc.path)); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestRouteFields(t *testing.T) {
	p := mustCompile(t, policy.Config{
		Roles: map[string]policy.RoleSpec{"editor": {Capabilities: []string{"edit"}}},
		Routes: []policy.RouteSpec{
			route("open", "/open/**"),
			{
				Name: "admin", Path: "/api/admin/**", Methods: []string{"get", "Post"}, Upstream: "legacy",
				Auth: "optional", Roles: []string{"editor"}, Capabilities: []string{"edit"},
				StripPrefix: "/api", AddPrefix: "/v1", Timeout: 3e9,
			},
		},
	})
	rs := p.Routes()
	r := rs[slices.IndexFunc(rs, func(r *policy.Route) bool { return r.Name == "admin" })]
	if !slices.Equal(r.Methods, []string{"GET", "POST"}) {
		t.Errorf("Methods = %v, want [GET POST]", r.Methods)
	}
	if r.Auth != policy.AuthOptional || r.Auth.String() != "optional" {
		t.Errorf("Auth = %v, want optional", r.Auth)
	}
	if r.Pattern != "/api/admin/**" || r.Upstream != "legacy" || r.StripPrefix != "/api" ||
		r.AddPrefix != "/v1" || r.Timeout != 3e9 || r.Index != 1 {
		t.Errorf("route fields = %+v", r)
	}
	if !slices.Equal(r.Roles, []string{"editor"}) || !slices.Equal(r.Capabilities, []string{"edit"}) {
		t.Errorf("Roles = %v, Capabilities = %v", r.Roles, r.Capabilities)
	}
	open := rs[slices.IndexFunc(rs, func(r *policy.Route) bool { return r.Name == "open" })]
	if open.Methods != nil || open.Auth != policy.AuthRequired {
		t.Errorf("open route: Methods = %v, Auth = %v; want nil, required", open.Methods, open.Auth)
	}
}

func TestAllowsMethod(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("get", "/get", "GET"),
		route("head", "/head", "HEAD"),
		route("any", "/any"),
	}})
	routes := map[string]*policy.Route{}
	for _, r := range p.Routes() {
		routes[r.Name] = r
	}
	cases := []struct {
		route, method string
		want          bool
	}{
		{"get", http.MethodGet, true},
		{"get", http.MethodHead, true},
		{"get", http.MethodPost, false},
		{"get", "get", false},
		{"head", http.MethodHead, true},
		{"head", http.MethodGet, false},
		{"any", "PROPFIND", true},
		{"any", http.MethodHead, true},
	}
	for _, tc := range cases {
		if got := routes[tc.route].AllowsMethod(tc.method); got != tc.want {
			t.Errorf("%s.AllowsMethod(%s) = %v, want %v", tc.route, tc.method, got, tc.want)
		}
	}
}

func TestUpstreamPath(t *testing.T) {
	cases := []struct {
		pattern, strip, add, path, want string
	}{
		{"/api/**", "", "", "/api/x", "/api/x"},
		{"/api/**", "", "", "/api/x/", "/api/x/"},
		{"/api/**", "/api", "", "/api/x", "/x"},
		{"/api/**", "/api", "", "/api/x/", "/x/"},
		{"/api/**", "/api", "", "/api", "/"},
		{"/api/**", "/api", "", "/api/", "/"},
		{"/api/admin/**", "/api/admin", "", "/api/admin/users/1", "/users/1"},
		{"/api/**", "/api", "/v1", "/api/x", "/v1/x"},
		{"/api/**", "/api", "/v1", "/api", "/v1"},
		{"/api/**", "/api", "/v1", "/api/", "/v1/"},
		{"/api/**", "", "/legacy", "/api/x", "/legacy/api/x"},
		{"/**", "", "/legacy", "/", "/legacy/"},
		{"/**", "", "", "/", "/"},
		{"/a/b", "/a/b", "", "/a/b", "/"},
	}
	for _, tc := range cases {
		p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{{
			Name: "r", Path: tc.pattern, Upstream: "u", StripPrefix: tc.strip, AddPrefix: tc.add,
		}}})
		m := p.Match("GET", tc.path)
		if m.Route == nil {
			t.Fatalf("pattern %s did not match %s", tc.pattern, tc.path)
		}
		if got := m.Route.UpstreamPath(tc.path); got != tc.want {
			t.Errorf("pattern %s strip %q add %q: UpstreamPath(%q) = %q, want %q",
				tc.pattern, tc.strip, tc.add, tc.path, got, tc.want)
		}
	}

	// Paths the route did not match are left alone but still made absolute.
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{{Name: "r", Path: "/a/**", Upstream: "u", StripPrefix: "/a"}}})
	r := p.Routes()[0]
	for path, want := range map[string]string{"/ab": "/ab", "x": "/x", "": "/"} {
		if got := r.UpstreamPath(path); got != want {
			t.Errorf("UpstreamPath(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p := mustCompile(t, policy.Config{Routes: []policy.RouteSpec{
		route("read", "/api/articles/**", "GET"),
		route("one", "/api/articles/{id}", "PUT"),
		route("all", "/**"),
	}})
	cases := []struct{ method, path string }{
		{"GET", "/api/articles/1/comments"},
		{"PUT", "/api/articles/1"},
		{"DELETE", "/api/articles/1"},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(100, func() { p.Match(tc.method, tc.path) }); n != 0 {
			t.Errorf("Match(%s, %s) allocates %v times", tc.method, tc.path, n)
		}
	}
	p = mustCompile(t, policy.Config{Routes: []policy.RouteSpec{route("read", "/api/**", "GET")}})
	if n := testing.AllocsPerRun(100, func() { p.Match("GET", "/other/path") }); n != 0 {
		t.Errorf("Match of a 404 allocates %v times", n)
	}
}
