package policy_test

import (
	"fmt"
	"testing"

	"frontdoor/policy"
)

// benchRoutes generates n routes shaped like a real gateway's: per service,
// an item API with a catch-all below it and a static file route.
func benchRoutes(n int) []policy.RouteSpec {
	routes := make([]policy.RouteSpec, 0, n)
	for i := 0; len(routes) < n; i++ {
		routes = append(routes,
			policy.RouteSpec{Name: fmt.Sprintf("svc%d-items", i), Path: fmt.Sprintf("/svc%d/items/{id}/**", i),
				Methods: []string{"GET", "POST"}, Upstream: "u", Capabilities: []string{"read"}},
			policy.RouteSpec{Name: fmt.Sprintf("svc%d-static", i), Path: fmt.Sprintf("/svc%d/static/*", i),
				Upstream: "u", Auth: "none"},
		)
	}
	return routes[:n]
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		p := mustCompile(b, policy.Config{
			Roles:  map[string]policy.RoleSpec{"reader": {Capabilities: []string{"read"}}},
			Routes: benchRoutes(n),
		})
		last := n/2 - 1
		cases := []struct{ name, method, path string }{
			{"items", "GET", fmt.Sprintf("/svc%d/items/42/reviews/7", last)},
			{"static", "GET", fmt.Sprintf("/svc%d/static/app.js", last/2)},
			{"405", "DELETE", fmt.Sprintf("/svc%d/items/42", last)},
			{"404", "GET", "/nowhere/at/all"},
		}
		for _, tc := range cases {
			b.Run(fmt.Sprintf("routes=%d/%s", n, tc.name), func(b *testing.B) {
				if p.Match(tc.method, tc.path).Status == 0 != (tc.name == "items" || tc.name == "static") {
					b.Fatalf("unexpected result for %s %s", tc.method, tc.path)
				}
				b.ReportAllocs()
				for b.Loop() {
					p.Match(tc.method, tc.path)
				}
			})
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	p, routes := authzPolicy(b)
	cases := []struct {
		name, route string
		roles       []string
	}{
		{"capability-inherited", "read", []string{"administrator"}},
		{"two-capabilities", "publish-and-users", []string{"subscriber", "administrator"}},
		{"role-any-of", "contrib-or-admin", []string{"author"}},
		{"forbidden", "editors", []string{"subscriber", "unknown"}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := routes[tc.route]
			b.ReportAllocs()
			for b.Loop() {
				p.Authorize(r, tc.roles, true)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	cfg := policy.Config{
		Roles:  map[string]policy.RoleSpec{"reader": {Capabilities: []string{"read"}}},
		Routes: benchRoutes(1000),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
