package policy

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// TestResult is the outcome of one policy test from the tests: section.
type TestResult struct {
	Name   string
	Method string
	Path   string
	Want   string // as written in the test: allow, 401, 403, 404 or 405
	Got    string // in the same form
	Route  string // the matched route's name; empty for 404 and 405
	Pass   bool
}

// RunTests evaluates every test of the configuration, in order. A test
// without roles is an anonymous request.
func (p *Policy) RunTests() []TestResult {
	out := make([]TestResult, len(p.tests))
	for i, t := range p.tests {
		status, r := p.Evaluate(t.Method, t.Path, t.Roles, len(t.Roles) == 0)
		got := strconv.Itoa(status)
		if status == http.StatusOK {
			got = "allow"
		}
		res := TestResult{Name: t.Name, Method: t.Method, Path: t.Path, Want: t.Expect, Got: got, Pass: got == t.Expect}
		if r != nil {
			res.Route = r.Name
		}
		out[i] = res
	}
	return out
}

// Warnings returns the non-fatal findings about the configuration: routes
// that can never be chosen because more specific routes take all their
// requests (found on a best-effort basis), roles and capabilities that
// routes require but no role defines or grants, and roles and capabilities
// that are defined but never used.
func (p *Policy) Warnings() []*ConfigError {
	out := make([]*ConfigError, len(p.warnings))
	for i, w := range p.warnings {
		cp := *w
		out[i] = &cp
	}
	return out
}

func (c *compiler) warnings(p *Policy) []*ConfigError {
	var out []*ConfigError
	warn := func(path, format string, args ...any) {
		out = append(out, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}

	usedRoles := make(map[string]bool)
	requiredCaps := make(map[string]bool)
	for _, r := range c.routes {
		for _, name := range r.Roles {
			usedRoles[name] = true
		}
		for _, name := range r.Capabilities {
			requiredCaps[name] = true
		}
	}
	for _, t := range c.tests {
		for _, name := range t.Roles {
			usedRoles[name] = true
		}
	}
	grantedCaps := make(map[string]bool)
	for _, spec := range c.cfg.Roles {
		for _, name := range spec.Inherits {
			usedRoles[name] = true
		}
		for _, name := range spec.Capabilities {
			grantedCaps[name] = true
		}
	}

	reported := make(map[string]bool)
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Roles)) {
		if !usedRoles[name] {
			warn("roles."+name, "role %q is not used by any route, test or inherits", name)
		}
		for i, capName := range c.cfg.Roles[name].Capabilities {
			if !requiredCaps[capName] && !reported[capName] {
				reported[capName] = true
				warn(fmt.Sprintf("roles.%s.capabilities[%d]", name, i), "capability %q is not required by any route", capName)
			}
		}
	}

	for _, r := range c.routes {
		base := fmt.Sprintf("routes[%d]", r.Index)
		if shadowed(&p.root, r) {
			warn(base+".path", "route %q is shadowed: more specific routes take every request it matches", r.Name)
		}
		for k, name := range r.Roles {
			if _, ok := c.cfg.Roles[name]; !ok {
				warn(fmt.Sprintf("%s.roles[%d]", base, k), "role %q is not defined in roles; only tokens carrying it verbatim pass", name)
			}
		}
		for k, name := range r.Capabilities {
			if !grantedCaps[name] {
				warn(fmt.Sprintf("%s.capabilities[%d]", base, k), "capability %q is not granted by any role; every authenticated request is forbidden", name)
			}
		}
	}
	return out
}

// shadowed reports whether every request that r's pattern matches is taken
// by a more specific route. Only a "**" route can be shadowed: a route
// ending in a literal or one-segment wildcard is the most specific for the
// paths that reach it, except for routes with an equivalent pattern, which
// validation keeps from sharing methods.
func shadowed(root *node, r *Route) bool {
	if len(r.segs) == 0 || r.segs[len(r.segs)-1].kind != segGlob {
		return false
	}
	n := root
	for _, s := range r.segs[:len(r.segs)-1] {
		if s.kind == segLiteral {
			n = n.lit[s.text]
		} else {
			n = n.param
		}
	}
	if r.Methods == nil {
		return n.covers(anyMethod)
	}
	for _, m := range r.Methods {
		if !n.covers(m) {
			return false
		}
	}
	return true
}
