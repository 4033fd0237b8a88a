package policy_test

import (
	"errors"
	"strings"
	"testing"

	"frontdoor/policy"
)

// configErrors returns the *ConfigError values joined in err.
func configErrors(t *testing.T, err error) []*policy.ConfigError {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v (%T) is not a joined error", err, err)
	}
	var out []*policy.ConfigError
	for _, e := range joined.Unwrap() {
		var ce *policy.ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("error %v (%T) is not a *ConfigError", e, e)
		}
		out = append(out, ce)
	}
	return out
}

// wantErr is an expected error: its path and a fragment of its message.
type wantErr struct{ path, msg string }

func checkErrors(t *testing.T, err error, want []wantErr) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Compile: unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Compile succeeded, want errors %v", want)
	}
	got := configErrors(t, err)
	if len(got) != len(want) {
		t.Fatalf("Compile returned %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if got[i].ConfigPath() != w.path || !strings.Contains(got[i].Msg, w.msg) {
			t.Errorf("error %d = %q, want path %q and a message containing %q", i, got[i].Error(), w.path, w.msg)
		}
		if got[i].Error() != got[i].Path+": "+got[i].Msg {
			t.Errorf("Error() = %q, want path and message", got[i].Error())
		}
	}
}

func TestCompileRoleErrors(t *testing.T) {
	cases := []struct {
		name  string
		roles map[string]policy.RoleSpec
		want  []wantErr
	}{
		{"valid", designRoles(), nil},
		{"unknown inherits", map[string]policy.RoleSpec{
			"a": {Inherits: []string{"b", "nope"}},
			"b": {},
		}, []wantErr{{"roles.a.inherits[1]", `unknown role "nope"`}}},
		{"self cycle", map[string]policy.RoleSpec{
			"a": {Inherits: []string{"a"}},
		}, []wantErr{{"roles.a.inherits[0]", "inheritance cycle: a -> a"}}},
		{"two-role cycle", map[string]policy.RoleSpec{
			"a": {Inherits: []string{"b"}},
			"b": {Inherits: []string{"a"}},
		}, []wantErr{{"roles.b.inherits[0]", "inheritance cycle: b -> a -> b"}}},
		{"longer cycle beside a valid chain", map[string]policy.RoleSpec{
			"a":  {Inherits: []string{"ok", "b"}},
			"b":  {Inherits: []string{"c"}},
			"c":  {Inherits: []string{"a"}},
			"ok": {},
		}, []wantErr{{"roles.c.inherits[0]", "inheritance cycle: c -> a -> b -> c"}}},
		{"duplicate inherits", map[string]policy.RoleSpec{
			"a": {Inherits: []string{"b", "b"}},
			"b": {},
		}, []wantErr{{"roles.a.inherits[1]", `role "b" is inherited twice`}}},
		{"bad names", map[string]policy.RoleSpec{
			"a b": {},
			"c,d": {},
			"e":   {Capabilities: []string{"ok", "", "x y", "ok", "z,w"}},
		}, []wantErr{
			{"roles.a b", `invalid role name "a b"`},
			{"roles.c,d", `invalid role name "c,d"`},
			{"roles.e.capabilities[1]", "capability name must not be empty"},
			{"roles.e.capabilities[2]", `invalid capability name "x y"`},
			{"roles.e.capabilities[3]", `capability "ok" is listed twice`},
			{"roles.e.capabilities[4]", `invalid capability name "z,w"`},
		}},
		{"errors sorted by role", map[string]policy.RoleSpec{
			"a": {Inherits: []string{"z"}, Capabilities: []string{"bad cap"}},
			"z": {Inherits: []string{"a", "missing"}},
		}, []wantErr{
			{"roles.a.capabilities[0]", "invalid capability name"},
			{"roles.z.inherits[1]", `unknown role "missing"`},
			{"roles.z.inherits[0]", "inheritance cycle: z -> a -> z"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(policy.Config{Roles: tc.roles})
			checkErrors(t, err, tc.want)
		})
	}
}

func TestCompilePatternErrors(t *testing.T) {
	cases := []struct {
		pattern string
		msg     string // empty: valid
	}{
		{"/", ""},
		{"/**", ""},
		{"/a/", ""},
		{"/*/auth", ""},
		{"/{x}/.well-known", ""},
		{"/a/{id}/b/{Other_1}/**", ""},
		{"/文章/{id}", ""},
		{"/a.b/c-d/~e", ""},
		{"", "path is required"},
		{"api", `must start with "/"`},
		{"//", "empty segment"},
		{"//a", "empty segment"},
		{"/a//b", "empty segment"},
		{"/a//", "empty segment"},
		{"/a/./b", "dot segments"},
		{"/a/..", "dot segments"},
		{"/.", "dot segments"},
		{"/a%2Fb", `"%" is not allowed`},
		{"/a?x=1", "'?' is not allowed"},
		{"/a#frag", "'#' is not allowed"},
		{"/a\x00b", "control characters"},
		{"/a\\b", `"\" is not allowed`},
		{"/a*", "wildcard must be a whole segment"},
		{"/a/b*c", "wildcard must be a whole segment"},
		{"/a/***", "wildcard must be a whole segment"},
		{"/{x}y", "wildcard must be a whole segment"},
		{"/x{y}", "wildcard must be a whole segment"},
		{"/{x", "wildcard must be a whole segment"},
		{"/{}", "parameter names"},
		{"/{1x}", "parameter names"},
		{"/{a-b}", "parameter names"},
		{"/{x}/{x}", "parameter {x} is used twice"},
		{"/**/a", `"**" is only allowed as the last segment`},
		{"/a/**/**", `"**" is only allowed as the last segment`},
		{"/auth", "would shadow frontdoor's own /auth/ endpoints"},
		{"/auth/**", "would shadow frontdoor's own /auth/ endpoints"},
		{"/.well-known/jwks.json", "would shadow frontdoor's own /.well-known/ endpoints"},
	}
	for _, tc := range cases {
		t.Run(tc.pattern, func(t *testing.T) {
			_, err := policy.Compile(policy.Config{Routes: []policy.RouteSpec{route("r", tc.pattern)}})
			var want []wantErr
			if tc.msg != "" {
				want = []wantErr{{"routes[0].path", tc.msg}}
			}
			checkErrors(t, err, want)
		})
	}
}

func TestCompileRouteErrors(t *testing.T) {
	roles := map[string]policy.RoleSpec{"editor": {Capabilities: []string{"edit"}}}
	cases := []struct {
		name   string
		routes []policy.RouteSpec
		want   []wantErr
	}{
		{"equivalent wildcards", []policy.RouteSpec{
			route("a", "/x/*", "GET"),
			route("b", "/x/{id}", "get"),
		}, []wantErr{{"routes[1].path", `route "b" conflicts with route "a" (routes[0]): equivalent patterns "/x/{id}" and "/x/*" both take method GET`}}},
		{"GET implies HEAD", []policy.RouteSpec{
			route("a", "/x", "HEAD"),
			route("b", "/x/", "GET"),
		}, []wantErr{{"routes[1].path", "both take method HEAD"}}},
		{"two routes without methods", []policy.RouteSpec{
			route("a", "/x/**"),
			route("b", "/x/**"),
		}, []wantErr{{"routes[1].path", "both take every method"}}},
		{"disjoint methods and a method-less fallback", []policy.RouteSpec{
			route("a", "/x/{id}", "GET"),
			route("b", "/x/*", "POST", "DELETE"),
			route("c", "/x/*"),
			route("d", "/x/**"),
			route("e", "/x", "HEAD"),
		}, nil},
		{"auth none with roles", []policy.RouteSpec{
			{Name: "a", Path: "/a", Upstream: "u", Auth: "none", Roles: []string{"editor"}},
			{Name: "b", Path: "/b", Upstream: "u", Auth: "none", Capabilities: []string{"edit"}},
		}, []wantErr{
			{"routes[0].auth", "auth none cannot be combined with roles or capabilities"},
			{"routes[1].auth", "auth none cannot be combined with roles or capabilities"},
		}},
		{"bad auth", []policy.RouteSpec{
			{Name: "a", Path: "/a", Upstream: "u", Auth: "public"},
			{Name: "b", Path: "/b", Upstream: "u", Auth: "Required"},
		}, []wantErr{
			{"routes[0].auth", `invalid auth "public"`},
			{"routes[1].auth", `invalid auth "Required"`},
		}},
		{"name and upstream", []policy.RouteSpec{
			{Path: "/a", Upstream: "u"},
			{Name: "b", Path: "/b"},
			{Name: "b", Path: "/c", Upstream: " "},
			{Name: "c", Path: "/d", Upstream: "u", Timeout: -1},
		}, []wantErr{
			{"routes[0].name", "name is required"},
			{"routes[1].upstream", "upstream is required"},
			{"routes[2].name", `duplicate route name "b" (also routes[1])`},
			{"routes[2].upstream", "upstream is required"},
			{"routes[3].timeout", "must not be negative"},
		}},
		{"methods", []policy.RouteSpec{
			route("a", "/a", "GET", "GE T", "get", ""),
		}, []wantErr{
			{"routes[0].methods[1]", `invalid method "GE T"`},
			{"routes[0].methods[2]", "method GET is listed twice"},
			{"routes[0].methods[3]", `invalid method ""`},
		}},
		{"role and capability names", []policy.RouteSpec{
			{Name: "a", Path: "/a", Upstream: "u", Roles: []string{"editor", "a b", "editor"}, Capabilities: []string{"x,y"}},
		}, []wantErr{
			{"routes[0].roles[1]", `invalid role name "a b"`},
			{"routes[0].roles[2]", `role "editor" is listed twice`},
			{"routes[0].capabilities[0]", `invalid capability name "x,y"`},
		}},
		{"strip_prefix", []policy.RouteSpec{
			{Name: "ok-1", Path: "/api/admin/**", Upstream: "u", StripPrefix: "/api"},
			{Name: "ok-2", Path: "/api/admin2/**", Upstream: "u", StripPrefix: "/api/admin2"},
			{Name: "ok-3", Path: "/api/v/x", Upstream: "u", StripPrefix: "/api/v/x"},
			{Name: "partial", Path: "/api/admin3/**", Upstream: "u", StripPrefix: "/ap"},
			{Name: "wildcard", Path: "/api/*/x", Upstream: "u", StripPrefix: "/api/foo"},
			{Name: "named", Path: "/api/{v}/y", Upstream: "u", StripPrefix: "/api/{v}"},
			{Name: "too-long", Path: "/api/z", Upstream: "u", StripPrefix: "/api/z/w"},
			{Name: "relative", Path: "/api/q", Upstream: "u", StripPrefix: "api"},
			{Name: "trailing", Path: "/api/r", Upstream: "u", StripPrefix: "/api/"},
			{Name: "slash", Path: "/api/s", Upstream: "u", StripPrefix: "/"},
			{Name: "bad-pattern", Path: "/api/t*", Upstream: "u", StripPrefix: "/api"},
		}, []wantErr{
			{"routes[3].strip_prefix", `strip_prefix "/ap" is not a whole-segment literal prefix of the path "/api/admin3/**"`},
			{"routes[4].strip_prefix", "not a whole-segment literal prefix"},
			{"routes[5].strip_prefix", "not a whole-segment literal prefix"},
			{"routes[6].strip_prefix", "not a whole-segment literal prefix"},
			{"routes[7].strip_prefix", `must start with "/"`},
			{"routes[8].strip_prefix", `must not end with "/"`},
			{"routes[9].strip_prefix", `must not end with "/"`},
			{"routes[10].path", "wildcard must be a whole segment"},
		}},
		{"add_prefix", []policy.RouteSpec{
			{Name: "ok", Path: "/a", Upstream: "u", AddPrefix: "/v1/legacy"},
			{Name: "relative", Path: "/b", Upstream: "u", AddPrefix: "v1"},
			{Name: "trailing", Path: "/c", Upstream: "u", AddPrefix: "/v1/"},
			{Name: "empty-seg", Path: "/d", Upstream: "u", AddPrefix: "/v1//x"},
			{Name: "dot", Path: "/e", Upstream: "u", AddPrefix: "/v1/../x"},
			{Name: "query", Path: "/f", Upstream: "u", AddPrefix: "/v1?x"},
		}, []wantErr{
			{"routes[1].add_prefix", `must start with "/"`},
			{"routes[2].add_prefix", `must not end with "/"`},
			{"routes[3].add_prefix", "empty segment"},
			{"routes[4].add_prefix", "dot segments"},
			{"routes[5].add_prefix", "'?' is not allowed"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(policy.Config{Roles: roles, Routes: tc.routes})
			checkErrors(t, err, tc.want)
		})
	}
}

func TestCompileTestErrors(t *testing.T) {
	_, err := policy.Compile(policy.Config{
		Roles:  map[string]policy.RoleSpec{"editor": {}},
		Routes: []policy.RouteSpec{route("a", "/a")},
		Tests: []policy.TestSpec{
			{Method: "get", Path: "/a", Roles: []string{"editor"}, Expect: "allow"},
			{Path: "/a", Expect: "401"},
			{Method: "G T", Path: "/a", Expect: "403"},
			{Method: "GET", Path: "a", Expect: "404"},
			{Method: "GET", Path: "/a//b", Expect: "405"},
			{Method: "GET", Path: "/a/../b", Expect: "allow"},
			{Method: "GET", Path: "/a?x=1", Expect: "allow"},
			{Method: "GET", Path: "/a", Expect: "200"},
			{Method: "GET", Path: "/a", Expect: "Allow"},
			{Method: "GET", Path: "/a", Roles: []string{"editor", "ghost"}, Expect: "allow"},
			{Method: "GET", Path: "", Expect: "allow"},
		},
	})
	checkErrors(t, err, []wantErr{
		{"tests[1].method", "method is required"},
		{"tests[2].method", `invalid method "G T"`},
		{"tests[3].path", `must start with "/"`},
		{"tests[4].path", "empty segment"},
		{"tests[5].path", "dot segment"},
		{"tests[6].path", "query and fragment"},
		{"tests[7].expect", `invalid expect "200"`},
		{"tests[8].expect", `invalid expect "Allow"`},
		{"tests[9].roles[1]", `unknown role "ghost"`},
		{"tests[10].path", "path is required"},
	})
}

func TestCompileReportsEveryError(t *testing.T) {
	_, err := policy.Compile(policy.Config{
		Roles: map[string]policy.RoleSpec{
			"a": {Inherits: []string{"a"}},
			"b": {Inherits: []string{"nope"}},
		},
		Routes: []policy.RouteSpec{
			route("ok", "/ok", "GET"),
			route("dup", "/ok", "GET"),
			{Name: "auth", Path: "/auth/login", Upstream: "u"},
			{Name: "", Path: "/x/**/y"},
		},
		Tests: []policy.TestSpec{{Method: "GET", Path: "/ok", Expect: "maybe"}},
	})
	checkErrors(t, err, []wantErr{
		{"roles.a.inherits[0]", "inheritance cycle: a -> a"},
		{"roles.b.inherits[0]", `unknown role "nope"`},
		{"routes[1].path", `route "dup" conflicts with route "ok"`},
		{"routes[2].path", "/auth/"},
		{"routes[3].name", "name is required"},
		{"routes[3].path", `"**" is only allowed as the last segment`},
		{"routes[3].upstream", "upstream is required"},
		{"tests[0].expect", `invalid expect "maybe"`},
	})
}

func TestConfigError(t *testing.T) {
	e := &policy.ConfigError{Path: "routes[3].methods[1]", Msg: `invalid method "G T"`}
	if got, want := e.Error(), `routes[3].methods[1]: invalid method "G T"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if e.ConfigPath() != "routes[3].methods[1]" {
		t.Errorf("ConfigPath() = %q", e.ConfigPath())
	}
	if got := (&policy.ConfigError{Msg: "no path"}).Error(); got != "no path" {
		t.Errorf("Error() without path = %q, want %q", got, "no path")
	}
}
