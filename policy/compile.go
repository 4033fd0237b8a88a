package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"frontdoor/internal/httphead"
)

// Compile validates cfg and builds the Policy. On failure it returns every
// problem found, each a *ConfigError, joined with errors.Join: roles first
// (in name order, since a map has no order), then routes and tests in
// configuration order.
func Compile(cfg Config) (*Policy, error) {
	c := &compiler{cfg: cfg}
	c.checkRoles()
	c.checkRoutes()
	c.checkTests()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return c.build(), nil
}

type compiler struct {
	cfg    Config
	errs   []error
	routes []*Route
	root   node
	tests  []TestSpec
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// checkName validates a role or capability name. Roles travel to upstreams in
// a comma-separated header, so commas, whitespace and control characters
// would corrupt it.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name must not be empty", kind)
	}
	if strings.ContainsFunc(name, func(r rune) bool {
		return r == ',' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return fmt.Errorf("invalid %s name %q: whitespace, commas and control characters are not allowed", kind, name)
	}
	return nil
}

// checkNames validates a list of role or capability names, which must not
// repeat.
func (c *compiler) checkNames(base, kind string, names []string) {
	for i, name := range names {
		path := fmt.Sprintf("%s[%d]", base, i)
		if err := checkName(kind, name); err != nil {
			c.errorf(path, "%v", err)
		} else if slices.Index(names, name) < i {
			c.errorf(path, "%s %q is listed twice", kind, name)
		}
	}
}

func (c *compiler) checkRoles() {
	names := slices.Sorted(maps.Keys(c.cfg.Roles))
	cycles := c.inheritanceCycles(names)
	for _, name := range names {
		spec := c.cfg.Roles[name]
		base := "roles." + name
		if err := checkName("role", name); err != nil {
			c.errorf(base, "%v", err)
		}
		for i, parent := range spec.Inherits {
			path := fmt.Sprintf("%s.inherits[%d]", base, i)
			if _, ok := c.cfg.Roles[parent]; !ok {
				c.errorf(path, "unknown role %q", parent)
			} else if slices.Index(spec.Inherits, parent) < i {
				c.errorf(path, "role %q is inherited twice", parent)
			}
		}
		c.checkNames(base+".capabilities", "capability", spec.Capabilities)
		c.errs = append(c.errs, cycles[name]...)
	}
}

// inheritanceCycles finds the cycles among roles by depth-first search and
// returns an error for each, keyed by the role whose inherits entry closes it.
func (c *compiler) inheritanceCycles(names []string) map[string][]error {
	const (
		unvisited = iota
		visiting
		done
	)
	found := make(map[string][]error)
	state := make(map[string]int, len(names))
	var stack []string
	var visit func(string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		inherits := c.cfg.Roles[name].Inherits
		for i, parent := range inherits {
			if _, ok := c.cfg.Roles[parent]; !ok || slices.Index(inherits, parent) < i {
				continue
			}
			switch state[parent] {
			case unvisited:
				visit(parent)
			case visiting:
				// stack[k:] runs from parent to name; name's entry closes the
				// cycle, so the cycle is named from there.
				k := slices.Index(stack, parent)
				cycle := append([]string{name}, stack[k:]...)
				found[name] = append(found[name], &ConfigError{
					Path: fmt.Sprintf("roles.%s.inherits[%d]", name, i),
					Msg:  "inheritance cycle: " + strings.Join(cycle, " -> "),
				})
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range names {
		if state[name] == unvisited {
			visit(name)
		}
	}
	return found
}

func parseAuth(s string) (AuthMode, bool) {
	switch s {
	case "", "required":
		return AuthRequired, true
	case "optional":
		return AuthOptional, true
	case "none":
		return AuthNone, true
	}
	return 0, false
}

// reservedFirstSegments are served by frontdoor itself before routing, so a
// route under them could never be reached.
var reservedFirstSegments = [...]string{"auth", ".well-known"}

func (c *compiler) checkRoutes() {
	byName := make(map[string]int, len(c.cfg.Routes))
	for i, spec := range c.cfg.Routes {
		base := fmt.Sprintf("routes[%d]", i)
		r := &Route{
			Name:        spec.Name,
			Pattern:     spec.Path,
			Upstream:    spec.Upstream,
			StripPrefix: spec.StripPrefix,
			AddPrefix:   spec.AddPrefix,
			Timeout:     spec.Timeout,
			Index:       i,
		}
		if strings.TrimSpace(spec.Name) == "" {
			c.errorf(base+".name", "name is required")
		} else if j, dup := byName[spec.Name]; dup {
			c.errorf(base+".name", "duplicate route name %q (also routes[%d])", spec.Name, j)
		} else {
			byName[spec.Name] = i
		}

		segs, err := parsePattern(spec.Path)
		patternOK := err == nil
		if err != nil {
			c.errorf(base+".path", "%v", err)
		} else if len(segs) > 0 && segs[0].kind == segLiteral && slices.Contains(reservedFirstSegments[:], segs[0].text) {
			c.errorf(base+".path", "pattern %q would shadow frontdoor's own /%s/ endpoints", spec.Path, segs[0].text)
			patternOK = false
		}
		r.segs = segs

		methodsOK := true
		for k, m := range spec.Methods {
			path := fmt.Sprintf("%s.methods[%d]", base, k)
			if !httphead.IsToken(m) {
				c.errorf(path, "invalid method %q", m)
				methodsOK = false
				continue
			}
			up := strings.ToUpper(m)
			if slices.Contains(r.Methods, up) {
				c.errorf(path, "method %s is listed twice", up)
				continue
			}
			r.Methods = append(r.Methods, up)
		}

		if strings.TrimSpace(spec.Upstream) == "" {
			c.errorf(base+".upstream", "upstream is required")
		}

		mode, ok := parseAuth(spec.Auth)
		if !ok {
			c.errorf(base+".auth", "invalid auth %q: want required, optional or none", spec.Auth)
		}
		r.Auth = mode
		c.checkNames(base+".roles", "role", spec.Roles)
		c.checkNames(base+".capabilities", "capability", spec.Capabilities)
		r.Roles = slices.Clone(spec.Roles)
		r.Capabilities = slices.Clone(spec.Capabilities)
		if mode == AuthNone && (len(spec.Roles) > 0 || len(spec.Capabilities) > 0) {
			c.errorf(base+".auth", "auth none cannot be combined with roles or capabilities: they need a token to be checked")
		}

		if spec.StripPrefix != "" {
			if err := checkPrefix(spec.StripPrefix); err != nil {
				c.errorf(base+".strip_prefix", "strip_prefix: %v", err)
			} else if patternOK && !isLiteralPrefix(spec.StripPrefix, segs) {
				c.errorf(base+".strip_prefix", "strip_prefix %q is not a whole-segment literal prefix of the path %q", spec.StripPrefix, spec.Path)
			}
		}
		if spec.AddPrefix != "" {
			if err := checkPrefix(spec.AddPrefix); err != nil {
				c.errorf(base+".add_prefix", "add_prefix: %v", err)
			}
		}
		if spec.Timeout < 0 {
			c.errorf(base+".timeout", "timeout must not be negative")
		}

		if patternOK && methodsOK {
			c.insert(base, r)
		}
		c.routes = append(c.routes, r)
	}
}

// insert adds r to the trie unless a route with an equivalent pattern
// already claims one of its methods.
func (c *compiler) insert(base string, r *Route) {
	list := c.root.insert(r.segs)
	for _, other := range *list {
		if overlap, ok := methodsOverlap(other, r); ok {
			c.errorf(base+".path", "route %q conflicts with route %q (routes[%d]): equivalent patterns %q and %q both take %s",
				r.Name, other.Name, other.Index, r.Pattern, other.Pattern, overlap)
			return
		}
	}
	*list = append(*list, r)
	slices.SortFunc(*list, compareRoutes)
}

// methodsOverlap reports whether two routes with equivalent patterns would
// both take some method, and describes it. A route without methods only
// takes the methods that routes listing them do not, as precedence prefers
// the latter, so it conflicts only with another route without methods.
func methodsOverlap(a, b *Route) (string, bool) {
	switch {
	case a.Methods == nil && b.Methods == nil:
		return "every method", true
	case a.Methods == nil || b.Methods == nil:
		return "", false
	}
	var both []string
	for _, m := range a.Methods {
		if b.AllowsMethod(m) {
			both = append(both, m)
		}
	}
	for _, m := range b.Methods {
		if a.AllowsMethod(m) && !slices.Contains(both, m) {
			both = append(both, m)
		}
	}
	if len(both) == 0 {
		return "", false
	}
	slices.Sort(both)
	return "method " + strings.Join(both, ", "), true
}

// checkPrefix validates a strip_prefix or add_prefix value: an absolute
// path of clean segments without a trailing "/".
func checkPrefix(p string) error {
	if p[0] != '/' {
		return fmt.Errorf("%q must start with \"/\"", p)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q must not end with \"/\"", p)
	}
	for _, s := range strings.Split(p[1:], "/") {
		if err := checkLiteral(s); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
	}
	return nil
}

// isLiteralPrefix reports whether the segments of prefix equal the leading
// literal segments of a pattern.
func isLiteralPrefix(prefix string, segs []segment) bool {
	parts := strings.Split(prefix[1:], "/")
	if len(parts) > len(segs) {
		return false
	}
	for i, s := range parts {
		if segs[i].kind != segLiteral || segs[i].text != s {
			return false
		}
	}
	return true
}

var expectations = [...]string{"allow", "401", "403", "404", "405"}

func (c *compiler) checkTests() {
	for i, spec := range c.cfg.Tests {
		base := fmt.Sprintf("tests[%d]", i)
		t := spec
		switch {
		case spec.Method == "":
			c.errorf(base+".method", "method is required")
		case !httphead.IsToken(spec.Method):
			c.errorf(base+".method", "invalid method %q", spec.Method)
		default:
			t.Method = strings.ToUpper(spec.Method)
		}
		if err := checkRequestPath(spec.Path); err != nil {
			c.errorf(base+".path", "%v", err)
		}
		if !slices.Contains(expectations[:], spec.Expect) {
			c.errorf(base+".expect", "invalid expect %q: want allow, 401, 403, 404 or 405", spec.Expect)
		}
		for k, role := range spec.Roles {
			if _, ok := c.cfg.Roles[role]; !ok {
				c.errorf(fmt.Sprintf("%s.roles[%d]", base, k), "unknown role %q", role)
			}
		}
		t.Roles = slices.Clone(spec.Roles)
		if t.Name == "" {
			t.Name = base
		}
		c.tests = append(c.tests, t)
	}
}

// checkRequestPath accepts what the proxy would pass to the policy: a
// normalised path. Anything else would be rejected with 400 before routing,
// so a test of it could only mislead.
func checkRequestPath(p string) error {
	if p == "" {
		return errors.New("path is required")
	}
	if p[0] != '/' {
		return fmt.Errorf("path %q must start with \"/\"", p)
	}
	if strings.ContainsAny(p, "?#") {
		return fmt.Errorf("path %q: the query and fragment are never matched; leave them out", p)
	}
	if p == "/" {
		return nil
	}
	for _, s := range strings.Split(strings.TrimSuffix(p[1:], "/"), "/") {
		switch {
		case s == "":
			return fmt.Errorf("path %q has an empty segment (\"//\")", p)
		case s == "." || s == "..":
			return fmt.Errorf("path %q has a dot segment", p)
		case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return fmt.Errorf("path %q has a control character", p)
		}
	}
	return nil
}

// build assembles the Policy from a configuration that passed validation.
func (c *compiler) build() *Policy {
	p := &Policy{routes: c.routes, root: c.root, tests: c.tests}
	p.roles = buildRoleTable(c.cfg.Roles, c.routes)
	t := &p.roles
	for _, r := range c.routes {
		r.owner = p
		req := newBitset(len(t.roleNames))
		for _, name := range r.Roles {
			req.set(t.roleIndex[name])
		}
		r.rolesReq = toSparse(req)
		req = newBitset(len(t.capNames))
		for _, name := range r.Capabilities {
			req.set(t.capIndex[name])
		}
		r.capsReq = toSparse(req)
	}
	p.ordered = slices.Clone(c.routes)
	slices.SortFunc(p.ordered, compareRoutes)
	p.warnings = c.warnings(p)
	return p
}

// buildRoleTable indexes roles and capabilities and computes each role's
// closure. The roles have no cycles: validation rejected them.
func buildRoleTable(specs map[string]RoleSpec, routes []*Route) roleTable {
	t := roleTable{
		roleIndex: make(map[string]int32),
		capIndex:  make(map[string]int32),
	}
	t.roleNames = slices.Sorted(maps.Keys(specs))
	t.numDefined = len(t.roleNames)
	for i, name := range t.roleNames {
		t.roleIndex[name] = int32(i)
	}
	var caps []string
	for _, spec := range specs {
		caps = append(caps, spec.Capabilities...)
	}
	for _, r := range routes {
		for _, name := range r.Roles {
			if _, ok := t.roleIndex[name]; !ok {
				t.roleIndex[name] = int32(len(t.roleNames))
				t.roleNames = append(t.roleNames, name)
			}
		}
		caps = append(caps, r.Capabilities...)
	}
	slices.Sort(caps)
	t.capNames = slices.Compact(caps)
	for i, name := range t.capNames {
		t.capIndex[name] = int32(i)
	}

	t.closures = make([]roleClosure, len(t.roleNames))
	computed := make([]bool, len(t.roleNames))
	var compute func(i int32) *roleClosure
	compute = func(i int32) *roleClosure {
		cl := &t.closures[i]
		if computed[i] {
			return cl
		}
		computed[i] = true
		cl.roles = newBitset(len(t.roleNames))
		cl.caps = newBitset(len(t.capNames))
		cl.roles.set(i)
		spec := specs[t.roleNames[i]]
		for _, name := range spec.Capabilities {
			cl.caps.set(t.capIndex[name])
		}
		for _, parent := range spec.Inherits {
			pc := compute(t.roleIndex[parent])
			cl.roles.or(pc.roles)
			cl.caps.or(pc.caps)
		}
		return cl
	}
	for i := range t.roleNames {
		compute(int32(i))
	}
	return t
}
