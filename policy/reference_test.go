package policy_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"frontdoor/policy"
)

// splitPath splits a normalised path or pattern into segments, ignoring one
// trailing "/".
func splitPath(p string) []string {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// refMatches is a direct reading of the pattern rules, to check the trie
// against.
func refMatches(pattern, path string) bool {
	ps, xs := splitPath(pattern), splitPath(path)
	for i, s := range ps {
		if s == "**" {
			return true
		}
		if i >= len(xs) {
			return false
		}
		if s != "*" && !strings.HasPrefix(s, "{") && s != xs[i] {
			return false
		}
	}
	return len(ps) == len(xs)
}

// refMatch decides like Match by scanning every route in precedence order.
func refMatch(p *policy.Policy, method, path string) (string, int, string) {
	var candidates []*policy.Route
	for _, r := range p.Routes() {
		if refMatches(r.Pattern, path) {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		return "", 404, ""
	}
	var allow []string
	for _, r := range candidates {
		if r.AllowsMethod(method) {
			return r.Name, 0, ""
		}
		for _, m := range r.Methods {
			allow = append(allow, m)
			if m == "GET" {
				allow = append(allow, "HEAD")
			}
		}
	}
	slices.Sort(allow)
	return "", 405, strings.Join(slices.Compact(allow), ", ")
}

// randomPolicy compiles up to n random routes over a small alphabet, so that
// patterns overlap a lot; routes that conflict with earlier ones are dropped.
func randomPolicy(t testing.TB, rng *rand.Rand, n int) *policy.Policy {
	segs := []string{"a", "b", "c", "*", "{x}", "{y}", "**"}
	methodSets := [][]string{nil, {"GET"}, {"POST"}, {"HEAD"}, {"GET", "DELETE"}, {"PUT", "POST"}, {"DELETE"}}
	var routes []policy.RouteSpec
	for i := range n {
		var parts []string
		for range rng.IntN(4) {
			s := segs[rng.IntN(len(segs))]
			parts = append(parts, s)
			if s == "**" {
				break
			}
		}
		pattern := "/" + strings.Join(parts, "/")
		if strings.Count(pattern, "{x}") > 1 || strings.Count(pattern, "{y}") > 1 {
			continue
		}
		candidate := append(slices.Clone(routes), policy.RouteSpec{
			Name: fmt.Sprintf("r%d", i), Path: pattern, Upstream: "u",
			Methods: methodSets[rng.IntN(len(methodSets))],
		})
		if _, err := policy.Compile(policy.Config{Routes: candidate}); err == nil {
			routes = candidate
		}
	}
	return mustCompile(t, policy.Config{Routes: routes})
}

// allPaths returns every path of up to depth segments over alphabet, with
// and without a trailing "/".
func allPaths(alphabet []string, depth int) []string {
	paths := []string{"/"}
	level := []string{""}
	for range depth {
		var next []string
		for _, prefix := range level {
			for _, s := range alphabet {
				next = append(next, prefix+"/"+s)
			}
		}
		for _, p := range next {
			paths = append(paths, p, p+"/")
		}
		level = next
	}
	return paths
}

func TestMatchAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := allPaths([]string{"a", "b", "c", "d"}, 4)
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
	for round := range 20 {
		p := randomPolicy(t, rng, 40)
		for _, path := range paths {
			want := p.Routes()
			want = slices.DeleteFunc(want, func(r *policy.Route) bool { return !refMatches(r.Pattern, path) })
			if got := p.Candidates(path); !slices.Equal(names(got), names(want)) {
				t.Fatalf("round %d: Candidates(%s) = %v, want %v", round, path, names(got), names(want))
			}
			for _, method := range methods {
				m := p.Match(method, path)
				var got string
				if m.Route != nil {
					got = m.Route.Name
				}
				wantName, wantStatus, wantAllow := refMatch(p, method, path)
				if got != wantName || m.Status != wantStatus || m.Allow != wantAllow {
					t.Fatalf("round %d: Match(%s, %s) = {%q %d %q}, want {%q %d %q}\nroutes: %v",
						round, method, path, got, m.Status, m.Allow, wantName, wantStatus, wantAllow, describe(p))
				}
			}
		}
	}
}

func describe(p *policy.Policy) []string {
	var out []string
	for _, r := range p.Routes() {
		out = append(out, fmt.Sprintf("%s %s %v", r.Name, r.Pattern, r.Methods))
	}
	return out
}

func FuzzMatch(f *testing.F) {
	p := mustCompile(f, policy.Config{Routes: []policy.RouteSpec{
		route("read", "/api/articles/**", "GET"),
		route("write", "/api/articles/{id}", "PUT", "DELETE"),
		route("one", "/api/*"),
		route("exact", "/api/admin", "GET"),
		route("deep", "/x/*/y/*/z", "GET"),
		route("root", "/", "GET"),
	}})
	for _, s := range []string{"/", "/api", "/api/", "/api/articles/1", "/api/admin/", "/x/1/y/2/z", "/x/1/y/2/z/"} {
		f.Add("GET", s)
		f.Add("DELETE", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		// The caller hands Match normalised paths only.
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "//") || path == "//" {
			return
		}
		for _, s := range splitPath(path) {
			if s == "." || s == ".." {
				return
			}
		}
		m := p.Match(method, path)
		var got string
		if m.Route != nil {
			got = m.Route.Name
		}
		wantName, wantStatus, wantAllow := refMatch(p, method, path)
		if got != wantName || m.Status != wantStatus || m.Allow != wantAllow {
			t.Fatalf("Match(%q, %q) = {%q %d %q}, want {%q %d %q}", method, path, got, m.Status, m.Allow, wantName, wantStatus, wantAllow)
		}
	})
}

// TestConcurrentUse lets the race detector check that a Policy is only read
// after Compile.
func TestConcurrentUse(t *testing.T) {
	p, routes := authzPolicy(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if m := p.Match("GET", "/editors"); m.Route != routes["editors"] {
					t.Errorf("Match returned %v", m.Route)
				}
				p.Authorize(routes["editors"], []string{"administrator"}, true)
				p.Evaluate("POST", "/nope", nil, true)
				p.Candidates("/read")
				p.Capabilities([]string{"editor"})
				p.RunTests()
			}
		})
	}
	wg.Wait()
}
