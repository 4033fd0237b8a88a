// Package policy is frontdoor's authorisation model: roles and the
// capabilities they grant (with inheritance), the route table, matching with
// precedence, and the allow/deny decision for a request.
//
// A Policy is compiled from the roles:, routes: and tests: sections of
// config.yaml and is immutable, so a reload builds a new one and swaps it.
// The package does no I/O.
package policy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AuthMode says whether a route needs a token.
type AuthMode uint8

const (
	// AuthRequired rejects requests without a valid token.
	AuthRequired AuthMode = iota
	// AuthOptional lets requests without a token through anonymously when
	// the route requires no roles or capabilities; a token that is present
	// must still be valid, which the caller enforces.
	AuthOptional
	// AuthNone never looks at the token.
	AuthNone
)

func (m AuthMode) String() string {
	switch m {
	case AuthRequired:
		return "required"
	case AuthOptional:
		return "optional"
	case AuthNone:
		return "none"
	}
	return "AuthMode(" + strconv.Itoa(int(m)) + ")"
}

// Decision is the outcome of Authorize.
type Decision uint8

const (
	// Allow lets the request through (200 from the upstream's point of view).
	Allow Decision = iota
	// Unauthenticated means a token is needed (401).
	Unauthenticated
	// Forbidden means the token's roles are not sufficient (403).
	Forbidden
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Status returns the HTTP status that the decision stands for.
func (d Decision) Status() int {
	switch d {
	case Allow:
		return http.StatusOK
	case Unauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// Route is one compiled route. Routes belong to the Policy that compiled
// them and must not be modified.
type Route struct {
	Name    string
	Pattern string   // as written in the configuration
	Methods []string // upper-case; nil allows every method
	Auth    AuthMode
	// Roles are alternatives; Capabilities are all required.
	Roles        []string
	Capabilities []string
	Upstream     string
	StripPrefix  string
	AddPrefix    string
	Timeout      time.Duration // 0: the upstream's timeout
	Index        int           // position in the configuration's routes list

	owner    *Policy
	segs     []segment
	rolesReq sparse
	capsReq  sparse
}

// AllowsMethod reports whether the route accepts method, which is compared
// case-sensitively as HTTP requires. A route that allows GET allows HEAD.
func (r *Route) AllowsMethod(method string) bool {
	if r.Methods == nil {
		return true
	}
	for _, m := range r.Methods {
		if m == method || (m == http.MethodGet && method == http.MethodHead) {
			return true
		}
	}
	return false
}

// UpstreamPath rewrites a normalised path that matched the route into the
// path sent upstream: StripPrefix is removed, then AddPrefix prepended. The
// result always starts with "/" and keeps the trailing "/" of path.
func (r *Route) UpstreamPath(path string) string {
	rest := path
	if r.StripPrefix != "" && strings.HasPrefix(path, r.StripPrefix) {
		after := path[len(r.StripPrefix):]
		// Only whole segments are stripped: "/api" is not a prefix of "/apix".
		if after == "" || after[0] == '/' {
			rest = after
		}
	}
	if rest != "" && rest[0] != '/' {
		rest = "/" + rest
	}
	if r.AddPrefix != "" {
		return r.AddPrefix + rest
	}
	if rest == "" {
		return "/"
	}
	return rest
}

// Policy is a compiled configuration. It is immutable and safe for
// concurrent use.
type Policy struct {
	routes   []*Route // configuration order
	ordered  []*Route // precedence order
	root     node
	roles    roleTable
	tests    []TestSpec // validated, methods upper-case
	warnings []*ConfigError
}

// Match is the result of routing a request.
type Match struct {
	// Route is the matched route; nil when Status is not 0.
	Route *Route
	// Status is 0 when a route matched, http.StatusNotFound when no pattern
	// matches the path, and http.StatusMethodNotAllowed when patterns match
	// but none allows the method.
	Status int
	// Allow lists the methods that would have matched, for the Allow header
	// of a 405: sorted, ", "-separated, with HEAD wherever GET is.
	Allow string
}

// Match finds the route for a request. path must already be normalised (the
// caller rejects "//", dot segments and the like); it is matched
// case-sensitively and a trailing "/" does not change the result. Among the
// routes whose pattern matches and that allow the method, the most specific
// wins: segment by segment a literal beats "*" or "{name}", which beat "**";
// then a route listing methods beats one that does not.
func (p *Policy) Match(method, path string) Match {
	if path == "" || path[0] != '/' {
		return Match{Status: http.StatusNotFound}
	}
	r, matched := p.root.match(path[1:], method)
	switch {
	case r != nil:
		return Match{Route: r}
	case !matched:
		return Match{Status: http.StatusNotFound}
	}
	return Match{Status: http.StatusMethodNotAllowed, Allow: allowHeader(p.Candidates(path))}
}

// allowHeader joins the methods of rs. It is only used when none of rs
// allows the request's method, so every route in rs lists its methods.
func allowHeader(rs []*Route) string {
	var ms []string
	for _, r := range rs {
		for _, m := range r.Methods {
			ms = append(ms, m)
			if m == http.MethodGet {
				ms = append(ms, http.MethodHead)
			}
		}
	}
	slices.Sort(ms)
	return strings.Join(slices.Compact(ms), ", ")
}

// Candidates returns every route whose pattern matches path, whatever its
// methods, most specific first.
func (p *Policy) Candidates(path string) []*Route {
	if path == "" || path[0] != '/' {
		return nil
	}
	return p.root.collect(path[1:], nil)
}

// Routes returns every route, most specific first.
func (p *Policy) Routes() []*Route { return slices.Clone(p.ordered) }

// Evaluate makes the whole decision for a request: it returns 200, 401, 403,
// 404 or 405 and the matched route (nil for 404 and 405). anonymous means the
// request carried no token, and roles are then ignored.
func (p *Policy) Evaluate(method, path string, roles []string, anonymous bool) (status int, r *Route) {
	m := p.Match(method, path)
	if m.Route == nil {
		return m.Status, nil
	}
	return p.Authorize(m.Route, roles, !anonymous).Status(), m.Route
}

// compareRoutes orders routes by precedence: the more specific pattern
// first, then a route listing methods before one that does not, then
// configuration order.
func compareRoutes(a, b *Route) int {
	if c := comparePatterns(a.segs, b.segs); c != 0 {
		return c
	}
	if (a.Methods == nil) != (b.Methods == nil) {
		if a.Methods != nil {
			return -1
		}
		return 1
	}
	return a.Index - b.Index
}
