package policy_test

import (
	"fmt"
	"slices"
	"testing"

	"frontdoor/policy"
)

// designRoles are the example roles of DESIGN.md.
func designRoles() map[string]policy.RoleSpec {
	return map[string]policy.RoleSpec{
		"subscriber":    {Capabilities: []string{"read"}},
		"contributor":   {Inherits: []string{"subscriber"}, Capabilities: []string{"edit_posts"}},
		"author":        {Inherits: []string{"contributor"}, Capabilities: []string{"publish_posts", "upload_files"}},
		"editor":        {Inherits: []string{"author"}, Capabilities: []string{"edit_others_posts", "moderate_comments"}},
		"administrator": {Inherits: []string{"editor"}, Capabilities: []string{"edit_users", "manage_options"}},
	}
}

func authzPolicy(t testing.TB) (*policy.Policy, map[string]*policy.Route) {
	p := mustCompile(t, policy.Config{
		Roles: designRoles(),
		Routes: []policy.RouteSpec{
			{Name: "read", Path: "/read", Upstream: "u", Capabilities: []string{"read"}},
			{Name: "publish", Path: "/publish", Upstream: "u", Capabilities: []string{"publish_posts"}},
			{Name: "publish-and-users", Path: "/pu", Upstream: "u", Capabilities: []string{"publish_posts", "edit_users"}},
			{Name: "editors", Path: "/editors", Upstream: "u", Roles: []string{"editor"}},
			{Name: "contrib-or-admin", Path: "/ca", Upstream: "u", Roles: []string{"administrator", "contributor"}},
			{Name: "authors-moderating", Path: "/am", Upstream: "u", Roles: []string{"author"}, Capabilities: []string{"moderate_comments"}},
			{Name: "optional-open", Path: "/oo", Upstream: "u", Auth: "optional"},
			{Name: "optional-subscribers", Path: "/os", Upstream: "u", Auth: "optional", Roles: []string{"subscriber"}},
			{Name: "optional-read", Path: "/or", Upstream: "u", Auth: "optional", Capabilities: []string{"read"}},
			{Name: "public", Path: "/public", Upstream: "u", Auth: "none"},
			{Name: "required-open", Path: "/ro", Upstream: "u", Auth: "required"},
			{Name: "sso-ops", Path: "/ops", Upstream: "u", Roles: []string{"ops"}},
			{Name: "ghost-capability", Path: "/ghost", Upstream: "u", Capabilities: []string{"ghost"}},
		},
	})
	byName := make(map[string]*policy.Route)
	for _, r := range p.Routes() {
		byName[r.Name] = r
	}
	return p, byName
}

func TestAuthorize(t *testing.T) {
	p, routes := authzPolicy(t)
	const anon = false
	cases := []struct {
		route         string
		roles         []string
		authenticated bool
		want          policy.Decision
	}{
		// Capabilities are inherited.
		{"read", []string{"subscriber"}, true, policy.Allow},
		{"read", []string{"administrator"}, true, policy.Allow},
		{"read", nil, true, policy.Forbidden},
		{"read", nil, anon, policy.Unauthenticated},
		{"publish", []string{"contributor"}, true, policy.Forbidden},
		{"publish", []string{"author"}, true, policy.Allow},
		{"publish", []string{"editor"}, true, policy.Allow},
		// Capabilities are all required, possibly from different roles.
		{"publish-and-users", []string{"editor"}, true, policy.Forbidden},
		{"publish-and-users", []string{"administrator"}, true, policy.Allow},
		{"publish-and-users", []string{"author", "administrator"}, true, policy.Allow},
		// Roles are any-of, through inheritance.
		{"editors", []string{"editor"}, true, policy.Allow},
		{"editors", []string{"administrator"}, true, policy.Allow},
		{"editors", []string{"author"}, true, policy.Forbidden},
		{"editors", []string{"subscriber", "author"}, true, policy.Forbidden},
		{"editors", []string{"subscriber", "editor"}, true, policy.Allow},
		{"contrib-or-admin", []string{"subscriber"}, true, policy.Forbidden},
		{"contrib-or-admin", []string{"contributor"}, true, policy.Allow},
		{"contrib-or-admin", []string{"author"}, true, policy.Allow},
		{"contrib-or-admin", []string{"administrator"}, true, policy.Allow},
		// Roles and capabilities must both be satisfied.
		{"authors-moderating", []string{"author"}, true, policy.Forbidden},
		{"authors-moderating", []string{"editor"}, true, policy.Allow},
		{"authors-moderating", []string{"contributor"}, true, policy.Forbidden},
		// Unknown token roles are ignored.
		{"editors", []string{"superuser", "root"}, true, policy.Forbidden},
		{"read", []string{"superuser", "subscriber"}, true, policy.Allow},
		{"read", []string{""}, true, policy.Forbidden},
		// A role that only a route names is satisfied by a token carrying it.
		{"sso-ops", []string{"ops"}, true, policy.Allow},
		{"sso-ops", []string{"administrator"}, true, policy.Forbidden},
		// A capability no role grants can never be satisfied.
		{"ghost-capability", []string{"administrator", "ghost"}, true, policy.Forbidden},
		// Auth modes.
		{"optional-open", nil, anon, policy.Allow},
		{"optional-open", []string{"subscriber"}, true, policy.Allow},
		{"optional-open", nil, true, policy.Allow},
		{"optional-subscribers", nil, anon, policy.Unauthenticated},
		{"optional-subscribers", []string{"subscriber"}, true, policy.Allow},
		{"optional-subscribers", []string{"ops"}, true, policy.Forbidden},
		{"optional-read", nil, anon, policy.Unauthenticated},
		{"optional-read", []string{"contributor"}, true, policy.Allow},
		{"public", nil, anon, policy.Allow},
		{"public", []string{"subscriber"}, true, policy.Allow},
		{"required-open", nil, anon, policy.Unauthenticated},
		{"required-open", nil, true, policy.Allow},
		{"required-open", []string{"whatever"}, true, policy.Allow},
		// Roles are ignored without authentication.
		{"editors", []string{"editor"}, anon, policy.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%v/%v", tc.route, tc.roles, tc.authenticated), func(t *testing.T) {
			r := routes[tc.route]
			if got := p.Authorize(r, tc.roles, tc.authenticated); got != tc.want {
				t.Errorf("Authorize(%s, %v, %v) = %v, want %v", tc.route, tc.roles, tc.authenticated, got, tc.want)
			}
		})
	}
}

func TestAuthorizeUsesCurrentPolicy(t *testing.T) {
	_, oldRoutes := authzPolicy(t)
	roles := designRoles()
	// The new configuration no longer lets administrators inherit editor.
	roles["administrator"] = policy.RoleSpec{Capabilities: []string{"edit_users"}}
	current := mustCompile(t, policy.Config{Roles: roles})
	cases := []struct {
		route string
		roles []string
		want  policy.Decision
	}{
		{"editors", []string{"administrator"}, policy.Forbidden},
		{"editors", []string{"editor"}, policy.Allow},
		{"publish-and-users", []string{"administrator"}, policy.Forbidden},
		{"publish-and-users", []string{"administrator", "author"}, policy.Allow},
		{"sso-ops", []string{"ops"}, policy.Allow},
		{"public", nil, policy.Allow},
	}
	for _, tc := range cases {
		if got := current.Authorize(oldRoutes[tc.route], tc.roles, true); got != tc.want {
			t.Errorf("Authorize(%s, %v) = %v, want %v", tc.route, tc.roles, got, tc.want)
		}
	}
}

// TestAuthorizeManyRoles covers sets that span several 64-bit words,
// including a route whose capabilities spread over more words than
// Authorize keeps inline.
func TestAuthorizeManyRoles(t *testing.T) {
	roles := make(map[string]policy.RoleSpec)
	var allCaps []string
	for i := range 700 {
		allCaps = append(allCaps, fmt.Sprintf("c%03d", i))
	}
	// r000 <- r001 <- ... <- r149: each role inherits the previous one and
	// grants one capability.
	for i := range 150 {
		spec := policy.RoleSpec{Capabilities: []string{fmt.Sprintf("c%03d", i)}}
		if i > 0 {
			spec.Inherits = []string{fmt.Sprintf("r%03d", i-1)}
		}
		roles[fmt.Sprintf("r%03d", i)] = spec
	}
	roles["all"] = policy.RoleSpec{Capabilities: allCaps}
	var spread []string // one capability in each of 10 words
	for i := range 10 {
		spread = append(spread, allCaps[i*70])
	}
	p := mustCompile(t, policy.Config{
		Roles: roles,
		Routes: []policy.RouteSpec{
			{Name: "low-and-high", Path: "/lh", Upstream: "u", Capabilities: []string{"c000", "c149"}},
			{Name: "role-r100", Path: "/r", Upstream: "u", Roles: []string{"r100"}},
			{Name: "spread", Path: "/s", Upstream: "u", Capabilities: spread},
		},
	})
	byName := make(map[string]*policy.Route)
	for _, r := range p.Routes() {
		byName[r.Name] = r
	}
	cases := []struct {
		route string
		roles []string
		want  policy.Decision
	}{
		{"low-and-high", []string{"r149"}, policy.Allow},
		{"low-and-high", []string{"r148"}, policy.Forbidden},
		{"low-and-high", []string{"r148", "all"}, policy.Allow},
		{"role-r100", []string{"r149"}, policy.Allow},
		{"role-r100", []string{"r099"}, policy.Forbidden},
		{"role-r100", []string{"all"}, policy.Forbidden},
		{"spread", []string{"all"}, policy.Allow},
		{"spread", []string{"r149"}, policy.Forbidden},
		{"spread", []string{"r149", "all"}, policy.Allow},
	}
	for _, tc := range cases {
		if got := p.Authorize(byName[tc.route], tc.roles, true); got != tc.want {
			t.Errorf("Authorize(%s, %v) = %v, want %v", tc.route, tc.roles, got, tc.want)
		}
	}
	if got := len(p.Capabilities([]string{"r149"})); got != 150 {
		t.Errorf("r149 has %d capabilities, want 150", got)
	}
}

func TestAuthorizeDoesNotAllocate(t *testing.T) {
	p, routes := authzPolicy(t)
	cases := []struct {
		route string
		roles []string
	}{
		{"publish-and-users", []string{"subscriber", "administrator"}},
		{"editors", []string{"author", "unknown"}},
		{"authors-moderating", []string{"editor"}},
	}
	for _, tc := range cases {
		r := routes[tc.route]
		if n := testing.AllocsPerRun(100, func() { p.Authorize(r, tc.roles, true) }); n != 0 {
			t.Errorf("Authorize(%s, %v) allocates %v times", tc.route, tc.roles, n)
		}
	}
}

func TestRoleQueries(t *testing.T) {
	p, _ := authzPolicy(t)
	capCases := []struct {
		roles []string
		want  []string
	}{
		{nil, nil},
		{[]string{"nobody"}, nil},
		{[]string{"subscriber"}, []string{"read"}},
		{[]string{"author"}, []string{"edit_posts", "publish_posts", "read", "upload_files"}},
		{[]string{"contributor", "subscriber", "contributor"}, []string{"edit_posts", "read"}},
		{[]string{"administrator"}, []string{"edit_others_posts", "edit_posts", "edit_users", "manage_options",
			"moderate_comments", "publish_posts", "read", "upload_files"}},
	}
	for _, tc := range capCases {
		if got := p.Capabilities(tc.roles); !slices.Equal(got, tc.want) {
			t.Errorf("Capabilities(%v) = %v, want %v", tc.roles, got, tc.want)
		}
	}

	roleCases := []struct {
		roles []string
		want  []string
	}{
		{nil, nil},
		{[]string{"subscriber"}, []string{"subscriber"}},
		{[]string{"editor", "zz-unknown", "editor"}, []string{"author", "contributor", "editor", "subscriber", "zz-unknown"}},
		{[]string{"ops"}, []string{"ops"}},
	}
	for _, tc := range roleCases {
		if got := p.EffectiveRoles(tc.roles); !slices.Equal(got, tc.want) {
			t.Errorf("EffectiveRoles(%v) = %v, want %v", tc.roles, got, tc.want)
		}
	}

	want := []string{"administrator", "author", "contributor", "editor", "subscriber"}
	if got := p.RoleNames(); !slices.Equal(got, want) {
		t.Errorf("RoleNames() = %v, want %v", got, want)
	}
	for _, name := range want {
		if !p.HasRole(name) {
			t.Errorf("HasRole(%q) = false", name)
		}
	}
	// "ops" is named by a route but not defined.
	for _, name := range []string{"ops", "Editor", ""} {
		if p.HasRole(name) {
			t.Errorf("HasRole(%q) = true", name)
		}
	}
}

func TestDecisionAndAuthModeStrings(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{policy.Allow.String(), "allow"},
		{policy.Unauthenticated.String(), "unauthenticated"},
		{policy.Forbidden.String(), "forbidden"},
		{policy.Decision(9).String(), "Decision(9)"},
		{policy.AuthRequired.String(), "required"},
		{policy.AuthOptional.String(), "optional"},
		{policy.AuthNone.String(), "none"},
		{policy.AuthMode(7).String(), "AuthMode(7)"},
		{fmt.Sprint(policy.Allow.Status(), policy.Unauthenticated.Status(), policy.Forbidden.Status()), "200 401 403"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
