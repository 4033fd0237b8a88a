package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"frontdoor/login/token"
	"frontdoor/policy"
	"frontdoor/proxy"
)

// explanation is what `frontdoor explain` finds out about one request. With
// -json it is printed as is: the field names are a stable interface,
// documented in docs/operators.md, so change them only by adding fields.
type explanation struct {
	Method string `json:"method"`
	// Path is the request target as given, without its query string.
	Path string `json:"path"`
	// NormalizedPath is what routes match and the upstream receives; empty
	// when the path is refused, and then PathError says why.
	NormalizedPath string        `json:"normalized_path,omitempty"`
	PathError      string        `json:"path_error,omitempty"`
	Caller         explainCaller `json:"caller"`
	// Candidates are the routes whose pattern matches the path, whatever
	// their methods, most specific first.
	Candidates []explainCandidate `json:"candidates"`
	// Route is the chosen route; null when none is.
	Route *explainRoute `json:"route"`
	// Checks are the route's requirements tested against the caller, in
	// the order the proxy tests them.
	Checks   []explainCheck  `json:"checks"`
	Decision explainDecision `json:"decision"`
	// UpstreamURL is where an allowed request goes (the first URL of the
	// upstream; the query string is passed on unchanged).
	UpstreamURL string `json:"upstream_url,omitempty"`
	// IdentityHeaders are the headers the upstream receives about the
	// caller; the user id is known only from a token.
	IdentityHeaders map[string]string `json:"identity_headers,omitempty"`
	Notes           []string          `json:"notes,omitempty"`
}

// explainCaller is who the request comes from.
type explainCaller struct {
	// Kind is "anonymous" (no token), "roles" (-roles: as if a valid token
	// carried them) or "token" (-token, verified with the configured keys).
	Kind   string `json:"kind"`
	UserID string `json:"user_id,omitempty"`
	// TokenValid is set for Kind "token"; TokenReason and TokenError say
	// why an invalid token was refused (the reason is the label of
	// frontdoor_auth_failures_total).
	TokenValid     *bool    `json:"token_valid,omitempty"`
	TokenReason    string   `json:"token_reason,omitempty"`
	TokenError     string   `json:"token_error,omitempty"`
	Roles          []string `json:"roles"`
	EffectiveRoles []string `json:"effective_roles"`
	Capabilities   []string `json:"capabilities"`
}

// explainCandidate is a route whose pattern matches the path.
type explainCandidate struct {
	Name    string   `json:"name"`
	Pattern string   `json:"pattern"`
	Methods []string `json:"methods"` // null: every method
	// AllowsMethod says whether the route accepts the request's method.
	AllowsMethod bool `json:"allows_method"`
	Chosen       bool `json:"chosen"`
	// Why says, for a route not chosen, why it lost.
	Why string `json:"why,omitempty"`
}

// explainRoute is the chosen route and what it requires.
type explainRoute struct {
	Name    string   `json:"name"`
	Index   int      `json:"index"` // position in routes:, from 0
	Pattern string   `json:"pattern"`
	Methods []string `json:"methods"` // null: every method
	// Auth is required, optional or none.
	Auth              string   `json:"auth"`
	RolesAnyOf        []string `json:"roles_any_of"`
	CapabilitiesAllOf []string `json:"capabilities_all_of"`
	Upstream          string   `json:"upstream"`
	StripPrefix       string   `json:"strip_prefix,omitempty"`
	AddPrefix         string   `json:"add_prefix,omitempty"`
}

// explainCheck is one requirement of the route: "auth", "roles" or
// "capabilities".
type explainCheck struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// explainDecision is the answer the request gets.
type explainDecision struct {
	// Result is "allow", "deny", or "frontdoor" for paths that frontdoor
	// serves itself (/auth/, /.well-known/), to which routes do not apply.
	Result string `json:"result"`
	// Status is the HTTP status: 200 for allow (the upstream's own answer
	// then reaches the client), 400, 401, 403, 404 or 405; 0 for
	// "frontdoor".
	Status int `json:"status"`
	// Error is the error code of the response body.
	Error string `json:"error,omitempty"`
	// Allow is the Allow header of a 405.
	Allow  string `json:"allow,omitempty"`
	Reason string `json:"reason"`
}

// explainInput is the caller as the command line describes it.
type explainInput struct {
	roles    []string      // -roles
	hasRoles bool          // -roles was given (possibly empty)
	claims   *token.Claims // -token, verified
	tokenErr error         // -token, refused
}

const explainUsage = "usage: frontdoor explain [-config FILE] [-roles a,b | -token T] [-json] METHOD PATH"

// cmdExplain shows how the config decides one request: the normalised
// path, the routes that match it and why one wins, what that route
// requires of the caller, the decision and where the request would go.
func cmdExplain(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "explain")
	roles := fs.String("roles", "", "the caller's roles, comma-separated, as if a valid token carried them")
	tok := fs.String("token", "", "an access token, verified with the configured keys (\"-\": read it from stdin)")
	asJSON := fs.Bool("json", false, "print a JSON object (see docs/operators.md)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, explainUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rolesGiven := false
	fs.Visit(func(f *flag.Flag) { rolesGiven = rolesGiven || f.Name == "roles" })
	switch {
	case fs.NArg() != 2:
		fmt.Fprintln(e.stderr, explainUsage)
		return errUsage
	case rolesGiven && *tok != "":
		fmt.Fprintln(e.stderr, "frontdoor explain: -roles and -token exclude each other")
		return errUsage
	case !isMethod(fs.Arg(0)):
		fmt.Fprintf(e.stderr, "frontdoor explain: %q is not an HTTP method\n", fs.Arg(0))
		return errUsage
	}

	in := explainInput{roles: splitList(*roles), hasRoles: rolesGiven}
	var cfg *config
	if *tok == "" {
		var err error
		if cfg, err = loadConfig(*cfgPath, nil); err != nil {
			return err
		}
	} else {
		raw := *tok
		if raw == "-" {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the token from stdin: %w", err)
			}
			raw = line
		}
		raw = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(raw), "Bearer "))
		c, st, ring, err := openKeys(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer st.Close()
		v, err := token.NewVerifier(ring, c.file.Tokens, time.Now)
		if err != nil {
			return err
		}
		cfg = c
		in.claims, in.tokenErr = v.Verify(ctx, raw)
	}

	x := explain(cfg, fs.Arg(0), fs.Arg(1), in)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(x)
	}
	return x.writeText(e.stdout)
}

// isMethod reports whether s is an RFC 9110 token, the syntax of a method.
func isMethod(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// explain works out the decision for one request the way the proxy makes
// it, step by step (DESIGN.md, "Request pipeline").
func explain(cfg *config, method, target string, in explainInput) *explanation {
	pol := cfg.policy
	x := &explanation{Method: method, Candidates: []explainCandidate{}, Checks: []explainCheck{}}
	x.Caller = describeCaller(pol, in, &x.Notes)
	if up := strings.ToUpper(method); up != method && isStandardMethod(up) {
		x.Notes = append(x.Notes, fmt.Sprintf("methods are case-sensitive: %q is not %s", method, up))
	}

	// An absolute URL is routed by its path, as the proxy does with an
	// absolute-form request target.
	if !strings.HasPrefix(target, "/") {
		if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			target = u.EscapedPath()
			if u.RawQuery != "" {
				target += "?" + u.RawQuery
			}
		}
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
		x.Notes = append(x.Notes, "the query string is never matched; it is passed to the upstream unchanged")
	}
	x.Path = target

	path, err := proxy.NormalizePath(target)
	if err != nil {
		x.PathError = err.Error()
		var pe *proxy.PathError
		if errors.As(err, &pe) {
			x.PathError = pe.Reason
		}
		x.Decision = explainDecision{Result: "deny", Status: http.StatusBadRequest, Error: "invalid_request",
			Reason: "the path is refused before routing: " + x.PathError}
		return x
	}
	x.NormalizedPath = path
	if isFrontdoorPath(path) {
		x.Decision = explainDecision{Result: "frontdoor",
			Reason: "frontdoor serves /auth/ and /.well-known/ itself (login API and key discovery); routes do not apply"}
		return x
	}

	m := pol.Match(method, path)
	segs := pathSegments(path)
	for _, r := range pol.Candidates(path) {
		c := explainCandidate{Name: r.Name, Pattern: r.Pattern, Methods: r.Methods, AllowsMethod: r.AllowsMethod(method)}
		switch {
		case m.Route == r:
			c.Chosen = true
		case m.Route != nil:
			c.Why = whyLost(m.Route, r, method, segs)
		default:
			c.Why = fmt.Sprintf("does not allow %s (it allows %s)", method, allowedMethods(r))
		}
		x.Candidates = append(x.Candidates, c)
	}
	switch m.Status {
	case http.StatusNotFound:
		x.Decision = explainDecision{Result: "deny", Status: http.StatusNotFound, Error: "not_found",
			Reason: "no route's pattern matches the path (deny by default)"}
		return x
	case http.StatusMethodNotAllowed:
		x.Decision = explainDecision{Result: "deny", Status: http.StatusMethodNotAllowed, Error: "method_not_allowed", Allow: m.Allow,
			Reason: fmt.Sprintf("routes match the path but none allows %s", method)}
		return x
	}

	r := m.Route
	x.Route = &explainRoute{
		Name: r.Name, Index: r.Index, Pattern: r.Pattern, Methods: r.Methods, Auth: r.Auth.String(),
		RolesAnyOf: orEmpty(r.Roles), CapabilitiesAllOf: orEmpty(r.Capabilities), Upstream: r.Upstream,
		StripPrefix: r.StripPrefix, AddPrefix: r.AddPrefix,
	}
	x.UpstreamURL = cfg.runtime.UpstreamURL(r, path)
	x.Checks = requirementChecks(pol, r, in)
	x.Decision = decide(pol, r, in)
	if x.Decision.Result == "allow" && r.Auth != policy.AuthNone && (in.claims != nil || in.hasRoles) {
		ids := proxy.Config{IdentityHeaders: cfg.file.IdentityHeaders}
		ids.ApplyDefaults()
		x.IdentityHeaders = map[string]string{ids.IdentityHeaders.Roles: strings.Join(callerRoles(in), ",")}
		if in.claims != nil {
			x.IdentityHeaders[ids.IdentityHeaders.UserID] = in.claims.Subject
		}
	}
	return x
}

// decide is the proxy's decision for the chosen route r (steps 4 and 5 of
// the pipeline), with the policy's own Authorize.
func decide(pol *policy.Policy, r *policy.Route, in explainInput) explainDecision {
	if r.Auth != policy.AuthNone && in.tokenErr != nil {
		return explainDecision{Result: "deny", Status: http.StatusUnauthorized, Error: "invalid_token",
			Reason: "a token that is present must be valid: " + tokenReason(in.tokenErr)}
	}
	authenticated := in.claims != nil || in.hasRoles
	switch pol.Authorize(r, callerRoles(in), authenticated) {
	case policy.Unauthenticated:
		return explainDecision{Result: "deny", Status: http.StatusUnauthorized, Error: "missing_token",
			Reason: "the route requires an access token and the request has none"}
	case policy.Forbidden:
		return explainDecision{Result: "deny", Status: http.StatusForbidden, Error: "insufficient_scope",
			Reason: "the caller's roles do not meet the route's requirements"}
	}
	reason := "the caller meets the route's requirements"
	switch {
	case r.Auth == policy.AuthNone:
		reason = "the route is public (auth none)"
	case !authenticated:
		reason = "the route allows anonymous requests (auth optional, no roles or capabilities)"
	}
	return explainDecision{Result: "allow", Status: http.StatusOK, Reason: reason}
}

// requirementChecks tests each of r's requirements against the caller, for
// the operator to see which one fails.
func requirementChecks(pol *policy.Policy, r *policy.Route, in explainInput) []explainCheck {
	restricted := len(r.Roles) > 0 || len(r.Capabilities) > 0
	authenticated := in.claims != nil || in.hasRoles
	var auth explainCheck
	auth.Check = "auth"
	switch {
	case r.Auth == policy.AuthNone:
		auth.OK, auth.Detail = true, "auth none: the token is not looked at and no identity headers are sent"
	case in.tokenErr != nil:
		auth.Detail = fmt.Sprintf("auth %s: the token is invalid (%s)", r.Auth, tokenReason(in.tokenErr))
	case authenticated:
		auth.OK, auth.Detail = true, fmt.Sprintf("auth %s: a valid token is present", r.Auth)
	case r.Auth == policy.AuthOptional && !restricted:
		auth.OK, auth.Detail = true, "auth optional: no token, so the request goes through anonymously"
	case r.Auth == policy.AuthOptional:
		auth.Detail = "auth optional, but the route requires roles or capabilities, which need a token"
	default:
		auth.Detail = "auth required: the request has no token"
	}
	checks := []explainCheck{auth}
	if r.Auth == policy.AuthNone || !restricted {
		return checks
	}
	roles := callerRoles(in)
	checked := auth.OK // without a valid token there is nothing to compare
	if len(r.Roles) > 0 {
		c := explainCheck{Check: "roles", Detail: "not checked: no valid token"}
		if checked {
			c.OK, c.Detail = rolesCheck(pol, r.Roles, roles)
		}
		checks = append(checks, c)
	}
	if len(r.Capabilities) > 0 {
		c := explainCheck{Check: "capabilities", Detail: "not checked: no valid token"}
		if checked {
			have := pol.Capabilities(roles)
			var missing []string
			for _, name := range r.Capabilities {
				if !slices.Contains(have, name) {
					missing = append(missing, name)
				}
			}
			c.OK = len(missing) == 0
			if c.OK {
				c.Detail = "has " + strings.Join(r.Capabilities, ", ")
			} else {
				c.Detail = "lacks " + strings.Join(missing, ", ")
				if len(r.Capabilities) > 1 {
					c.Detail += " (all of " + strings.Join(r.Capabilities, ", ") + " are required)"
				}
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// rolesCheck tells which of the required roles (any of) the caller holds,
// and through which of its own roles.
func rolesCheck(pol *policy.Policy, required, held []string) (bool, string) {
	var via []string
	for _, want := range required {
		for _, h := range held {
			if !slices.Contains(pol.EffectiveRoles([]string{h}), want) {
				continue
			}
			if h == want {
				via = append(via, want)
			} else {
				via = append(via, fmt.Sprintf("%s (inherited through %s)", want, h))
			}
			break
		}
	}
	if len(via) == 0 {
		return false, "holds none of " + strings.Join(required, ", ")
	}
	return true, "holds " + strings.Join(via, ", ")
}

func describeCaller(pol *policy.Policy, in explainInput, notes *[]string) explainCaller {
	c := explainCaller{Kind: "anonymous"}
	switch {
	case in.claims != nil:
		valid := true
		c.Kind, c.UserID, c.TokenValid = "token", in.claims.Subject, &valid
	case in.tokenErr != nil:
		valid := false
		c.Kind, c.TokenValid = "token", &valid
		c.TokenError = tokenReason(in.tokenErr)
		var ve *token.VerifyError
		if errors.As(in.tokenErr, &ve) {
			c.TokenReason = ve.Reason
		}
	case in.hasRoles:
		c.Kind = "roles"
	}
	roles := callerRoles(in)
	c.Roles = orEmpty(roles)
	c.EffectiveRoles = orEmpty(pol.EffectiveRoles(roles))
	c.Capabilities = orEmpty(pol.Capabilities(roles))
	for _, r := range roles {
		if !pol.HasRole(r) {
			*notes = append(*notes, fmt.Sprintf("role %q is not defined in roles: it grants no capabilities and satisfies only routes that name it", r))
		}
	}
	return c
}

// callerRoles are the roles the proxy would see: a verified token's, or
// those given with -roles.
func callerRoles(in explainInput) []string {
	if in.claims != nil {
		return in.claims.Roles
	}
	if in.tokenErr != nil {
		return nil
	}
	return in.roles
}

// tokenReason is why a token was refused, without the "invalid token"
// prefix the rest of the sentence already says.
func tokenReason(err error) string {
	var ve *token.VerifyError
	switch {
	case errors.As(err, &ve) && ve.Err != nil:
		return ve.Reason + ": " + ve.Err.Error()
	case errors.As(err, &ve):
		return ve.Reason
	}
	return err.Error()
}

func isStandardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

// isFrontdoorPath mirrors the proxy: frontdoor's own endpoints are served
// before routing.
func isFrontdoorPath(path string) bool {
	for _, p := range []string{"/auth", "/.well-known"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// allowedMethods spells out what a route accepts, HEAD included where GET is.
func allowedMethods(r *policy.Route) string {
	if r.Methods == nil {
		return "every method"
	}
	var ms []string
	for _, m := range r.Methods {
		ms = append(ms, m)
		if m == http.MethodGet && !slices.Contains(r.Methods, http.MethodHead) {
			ms = append(ms, http.MethodHead)
		}
	}
	return strings.Join(ms, ", ")
}

// Precedence, as DESIGN.md states it and the policy package implements it:
// segment by segment, a literal beats "*" or "{name}", which beat "**"; a
// pattern that ends at a segment beats a "**" there ("/a" is more specific
// than "/a/**" for the path "/a").
const (
	precGlob = iota
	precEnd
	precParam
	precLiteral
)

// patternSegments splits a route pattern into its segments; "/" has none.
// Patterns reaching here were validated by the policy package.
func patternSegments(pattern string) []string {
	p := strings.TrimSuffix(strings.TrimPrefix(pattern, "/"), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// pathSegments splits a normalised path the same way; a trailing "/"
// does not count, as in matching.
func pathSegments(path string) []string { return patternSegments(path) }

func precedenceAt(segs []string, i int) int {
	if i >= len(segs) {
		return precEnd
	}
	switch s := segs[i]; {
	case s == "**":
		return precGlob
	case s == "*", strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
		return precParam
	}
	return precLiteral
}

// firstDifference compares two patterns that match the same path: it
// returns the first segment index where they rank differently, and whether
// a is the more specific there. ok is false when they are equally specific.
func firstDifference(a, b []string) (i int, aWins, ok bool) {
	for i = 0; ; i++ {
		ra, rb := precedenceAt(a, i), precedenceAt(b, i)
		if ra != rb {
			return i, ra > rb, true
		}
		if ra == precEnd || ra == precGlob {
			return i, false, false
		}
	}
}

func describeSegment(segs []string, i int) string {
	switch precedenceAt(segs, i) {
	case precEnd:
		return "the end of the pattern (an exact match)"
	case precLiteral:
		return "literal '" + segs[i] + "'"
	}
	return "'" + segs[i] + "'"
}

// whyLost explains in words why winner was chosen over other, another
// route whose pattern matches the path (segs).
func whyLost(winner, other *policy.Route, method string, segs []string) string {
	w, o := patternSegments(winner.Pattern), patternSegments(other.Pattern)
	i, winnerMore, differ := firstDifference(w, o)
	where := fmt.Sprintf("segment %d", i+1)
	if i < len(segs) {
		where += fmt.Sprintf(" ('%s')", segs[i])
	} else {
		where += " (past the end of the path)"
	}
	noMethod := fmt.Sprintf("does not allow %s (it allows %s)", method, allowedMethods(other))
	switch {
	case differ && winnerMore:
		why := fmt.Sprintf("less specific at %s: %s beats %s", where, describeSegment(w, i), describeSegment(o, i))
		if !other.AllowsMethod(method) {
			why += "; it also " + noMethod
		}
		return why
	case differ:
		return fmt.Sprintf("more specific at %s: %s beats %s; but it %s", where, describeSegment(o, i), describeSegment(w, i), noMethod)
	case !other.AllowsMethod(method):
		return "equally specific, but it " + noMethod
	case winner.Methods != nil && other.Methods == nil:
		return "equally specific; a route that lists its methods beats one that allows every method"
	}
	return fmt.Sprintf("equally specific; routes[%d] comes first in the config (this is routes[%d])", winner.Index, other.Index)
}

// writeText prints the explanation for people.
func (x *explanation) writeText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", "", fmt.Sprintf(format, args...))
	}
	line("request", "%s %s", x.Method, x.Path)
	if x.PathError != "" {
		line("path", "refused: %s", x.PathError)
	} else {
		line("path", "%s (normalised)", x.NormalizedPath)
	}

	c := x.Caller
	switch {
	case c.Kind == "anonymous":
		line("caller", "anonymous (no token)")
	case c.Kind == "roles":
		line("caller", "roles %s (as if a valid token carried them)", listOrNone(c.Roles))
	case c.TokenValid != nil && *c.TokenValid:
		line("caller", "valid token for user %s, roles %s", c.UserID, listOrNone(c.Roles))
	default:
		line("caller", "invalid token: %s", c.TokenError)
	}
	if c.Kind == "roles" || c.UserID != "" {
		more("effective roles: %s", listOrNone(c.EffectiveRoles))
		more("capabilities:    %s", listOrNone(c.Capabilities))
	}

	if x.Decision.Result != "frontdoor" && x.PathError == "" {
		if len(x.Candidates) == 0 {
			line("routes", "none matches the path")
		} else {
			line("routes", "matching the path, most specific first:")
			nameW, patW := 0, 0
			for _, cand := range x.Candidates {
				nameW, patW = max(nameW, len(cand.Name)), max(patW, len(cand.Pattern))
			}
			for i, cand := range x.Candidates {
				mark := "  "
				if cand.Chosen {
					mark = "=>"
				}
				methods := "every method"
				if cand.Methods != nil {
					methods = strings.Join(cand.Methods, ", ")
				}
				more("%s %d. %-*s  %-*s  [%s]", mark, i+1, nameW, cand.Name, patW, cand.Pattern, methods)
				if cand.Why != "" {
					more("        %s", cand.Why)
				}
			}
		}
	}
	if r := x.Route; r != nil {
		line("route", "%s (routes[%d])", r.Name, r.Index)
		req := "auth " + r.Auth
		if len(r.RolesAnyOf) > 0 {
			req += "; roles (any of): " + strings.Join(r.RolesAnyOf, ", ")
		}
		if len(r.CapabilitiesAllOf) > 0 {
			req += "; capabilities (all of): " + strings.Join(r.CapabilitiesAllOf, ", ")
		}
		line("requires", "%s", req)
		for _, ch := range x.Checks {
			mark := "[ok]"
			if !ch.OK {
				mark = "[no]"
			}
			if ch.Check == "auth" {
				more("%s %s", mark, ch.Detail) // the detail starts with the auth mode
			} else {
				more("%s %s: %s", mark, ch.Check, ch.Detail)
			}
		}
	}

	d := x.Decision
	switch {
	case d.Result == "frontdoor":
		line("decision", "%s", d.Reason)
	case d.Result == "allow":
		line("decision", "allow (%d): %s", d.Status, d.Reason)
	default:
		line("decision", "%d %s: %s", d.Status, d.Error, d.Reason)
	}
	if d.Allow != "" {
		more("Allow: %s", d.Allow)
	}
	if x.UpstreamURL != "" {
		if d.Result == "allow" {
			line("upstream", "%s", x.UpstreamURL)
		} else {
			line("upstream", "%s (if it were allowed)", x.UpstreamURL)
		}
	}
	if len(x.IdentityHeaders) > 0 {
		names := make([]string, 0, len(x.IdentityHeaders))
		for k := range x.IdentityHeaders {
			names = append(names, k)
		}
		slices.Sort(names)
		var hs []string
		for _, k := range names {
			hs = append(hs, k+": "+x.IdentityHeaders[k])
		}
		if c.Kind == "roles" {
			hs = append(hs, "and the user id from the token")
		}
		line("headers", "%s", strings.Join(hs, "; "))
	}
	for _, n := range x.Notes {
		line("note", "%s", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
