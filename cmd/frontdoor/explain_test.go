package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"frontdoor/policy"
)

// explainConfig has routes that compete for the same paths in every way
// precedence can decide. %s is the directory for the store.
const explainConfig = `store:
  dsn: "%s/fd.db"
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
roles:
  subscriber:    { capabilities: [read] }
  editor:        { inherits: [subscriber], capabilities: [edit] }
  administrator: { inherits: [editor], capabilities: [admin] }
upstreams:
  legacy:
    urls: ["http://127.0.0.1:9000/base"]
routes:
  - name: all-api
    path: /api/**
    upstream: legacy
    auth: optional
  - name: by-id
    path: /api/{kind}/{id}
    methods: [GET]
    upstream: legacy
    roles: [editor]
  - name: articles-any
    path: /api/articles/*
    upstream: legacy
    capabilities: [edit, read]
  - name: articles-tree
    path: /api/articles/**
    methods: [DELETE]
    upstream: legacy
    roles: [administrator]
  - name: exact
    path: /api/articles
    methods: [GET]
    upstream: legacy
    auth: none
    strip_prefix: /api
    add_prefix: /v1
  - name: files-any
    path: /files
    upstream: legacy
  - name: files-get
    path: /files
    methods: [GET]
    upstream: legacy
    auth: optional
  - name: report
    path: /report
    methods: [GET]
    upstream: legacy
`

// stdEnv runs commands in-process with captured output.
func stdEnv(stdin string) (env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, &out, &errb
}

func writeExplainConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(explainConfig, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExplain(t *testing.T) {
	cfg, err := loadConfig(writeExplainConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	anon := explainInput{}
	as := func(roles ...string) explainInput { return explainInput{roles: roles, hasRoles: true} }
	tests := []struct {
		name         string
		in           explainInput
		method, path string
		status       int
		errCode      string
		route        string
		candidates   []string
		why          map[string]string // candidate → part of why it lost
		checks       map[string]bool
		upstream     string
		headers      map[string]string
		allow        string
		note         string
	}{
		{
			name: "literal beats wildcards, anonymous needs a token", in: anon, method: "GET", path: "/api/articles/7",
			status: 401, errCode: "missing_token", route: "articles-any",
			candidates: []string{"articles-any", "articles-tree", "by-id", "all-api"},
			why: map[string]string{
				"articles-tree": "less specific at segment 3 ('7'): '*' beats '**'; it also does not allow GET (it allows DELETE)",
				"by-id":         "less specific at segment 2 ('articles'): literal 'articles' beats '{kind}'",
				"all-api":       "less specific at segment 2 ('articles'): literal 'articles' beats '**'",
			},
			checks:   map[string]bool{"auth": false, "capabilities": false},
			upstream: "http://127.0.0.1:9000/base/api/articles/7",
		},
		{
			name: "inherited capabilities allow", in: as("administrator"), method: "DELETE", path: "/api/articles/7",
			status: 200, route: "articles-any",
			checks:   map[string]bool{"auth": true, "capabilities": true},
			upstream: "http://127.0.0.1:9000/base/api/articles/7",
			headers:  map[string]string{"X-User-Roles": "administrator"},
		},
		{
			name: "a missing capability forbids", in: as("subscriber"), method: "PUT", path: "/api/articles/7",
			status: 403, errCode: "insufficient_scope", route: "articles-any",
			checks: map[string]bool{"auth": true, "capabilities": false},
		},
		{
			name: "an exact pattern beats **, and prefixes are rewritten", in: anon, method: "GET", path: "/api/articles",
			status: 200, route: "exact",
			candidates: []string{"exact", "articles-tree", "all-api"},
			why: map[string]string{
				"articles-tree": "less specific at segment 3 (past the end of the path): the end of the pattern (an exact match) beats '**'",
			},
			checks:   map[string]bool{"auth": true},
			upstream: "http://127.0.0.1:9000/base/v1/articles",
		},
		{
			name: "more specific routes that refuse the method", in: anon, method: "POST", path: "/api/articles",
			status: 200, route: "all-api",
			why: map[string]string{
				"exact":         "more specific at segment 2 ('articles'): literal 'articles' beats '**'; but it does not allow POST (it allows GET, HEAD)",
				"articles-tree": "does not allow POST (it allows DELETE)",
			},
		},
		{
			name: "a route listing methods beats an equal one that does not", in: anon, method: "GET", path: "/files",
			status: 200, route: "files-get",
			candidates: []string{"files-get", "files-any"},
			why:        map[string]string{"files-any": "equally specific; a route that lists its methods beats one that allows every method"},
		},
		{
			name: "the route without methods takes the others", in: anon, method: "PUT", path: "/files",
			status: 401, errCode: "missing_token", route: "files-any",
			why: map[string]string{"files-get": "equally specific, but it does not allow PUT (it allows GET, HEAD)"},
		},
		{
			name: "roles through inheritance", in: as("administrator"), method: "GET", path: "/api/things/9",
			status: 200, route: "by-id",
			checks: map[string]bool{"auth": true, "roles": true},
		},
		{
			name: "no route", in: anon, method: "GET", path: "/nothing", status: 404, errCode: "not_found",
		},
		{
			name: "405 with Allow", in: anon, method: "POST", path: "/report", status: 405, errCode: "method_not_allowed",
			allow: "GET, HEAD", candidates: []string{"report"},
			why: map[string]string{"report": "does not allow POST (it allows GET, HEAD)"},
		},
		{
			name: "a refused path", in: anon, method: "GET", path: "/api/%2e%2e/admin", status: 400, errCode: "invalid_request",
		},
		{
			name: "the query is ignored", in: as("editor"), method: "GET", path: "/api/x/1?access_token=abc",
			status: 200, route: "by-id", upstream: "http://127.0.0.1:9000/base/api/x/1",
			note: "query string is never matched",
		},
		{
			name: "an absolute URL is routed by its path", in: anon, method: "GET", path: "http://example.com/api/articles",
			status: 200, route: "exact",
		},
		{
			name: "methods are case-sensitive", in: anon, method: "get", path: "/report",
			status: 405, errCode: "method_not_allowed", allow: "GET, HEAD", note: `"get" is not GET`,
		},
		{
			name: "an undefined role", in: as("ghost"), method: "GET", path: "/api/things/9",
			status: 403, errCode: "insufficient_scope", route: "by-id", note: `role "ghost" is not defined`,
			checks: map[string]bool{"auth": true, "roles": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := explain(cfg, tt.method, tt.path, tt.in)
			if x.Decision.Status != tt.status || x.Decision.Error != tt.errCode {
				t.Errorf("decision %d %q, want %d %q (%s)", x.Decision.Status, x.Decision.Error, tt.status, tt.errCode, x.Decision.Reason)
			}
			if got := routeName(x); got != tt.route {
				t.Errorf("route %q, want %q", got, tt.route)
			}
			var names []string
			for _, c := range x.Candidates {
				names = append(names, c.Name)
				if want, ok := tt.why[c.Name]; ok && !strings.Contains(c.Why, want) {
					t.Errorf("why %s lost: %q, want %q", c.Name, c.Why, want)
				}
				if c.Chosen != (c.Name == tt.route) || c.Chosen != (c.Why == "") {
					t.Errorf("candidate %s: chosen %v, why %q", c.Name, c.Chosen, c.Why)
				}
			}
			if tt.candidates != nil && !slices.Equal(names, tt.candidates) {
				t.Errorf("candidates %v, want %v", names, tt.candidates)
			}
			for _, c := range x.Checks {
				if want, ok := tt.checks[c.Check]; ok && c.OK != want {
					t.Errorf("check %s ok=%v (%s), want %v", c.Check, c.OK, c.Detail, want)
				}
			}
			if len(x.Checks) < len(tt.checks) {
				t.Errorf("checks %+v, want %v", x.Checks, tt.checks)
			}
			if tt.upstream != "" && x.UpstreamURL != tt.upstream {
				t.Errorf("upstream %q, want %q", x.UpstreamURL, tt.upstream)
			}
			for k, v := range tt.headers {
				if x.IdentityHeaders[k] != v {
					t.Errorf("identity header %s = %q, want %q", k, x.IdentityHeaders[k], v)
				}
			}
			if x.Decision.Allow != tt.allow {
				t.Errorf("Allow %q, want %q", x.Decision.Allow, tt.allow)
			}
			if tt.note != "" && !strings.Contains(strings.Join(x.Notes, "\n"), tt.note) {
				t.Errorf("notes %q lack %q", x.Notes, tt.note)
			}
			var text bytes.Buffer
			if err := x.writeText(&text); err != nil || !strings.Contains(text.String(), "decision") {
				t.Errorf("text output: %v\n%s", err, text.String())
			}
		})
	}
}

func routeName(x *explanation) string {
	if x.Route == nil {
		return ""
	}
	return x.Route.Name
}

// TestExplainAgreesWithThePolicy checks explain against the policy's own
// decisions and precedence order, on the shipped config and the test one.
func TestExplainAgreesWithThePolicy(t *testing.T) {
	shipped, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WECHAT_SECRET", "test-secret")
	shippedCfg, err := parseConfig("config.yaml", shipped, nil)
	if err != nil {
		t.Fatal(err)
	}
	testCfg, err := loadConfig(writeExplainConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/api", "/api/", "/api/articles", "/api/articles/", "/api/articles/1", "/api/articles/1/edit",
		"/api/admin", "/api/admin/users/3", "/api/comments/7/moderate", "/api/comments/7", "/api/health", "/api/health/",
		"/api/uploads", "/api/x/y", "/api/x/y/z", "/files", "/files/", "/report", "/elsewhere"}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}
	callers := [][]string{nil, {}, {"subscriber"}, {"author"}, {"editor"}, {"administrator"}, {"subscriber", "editor"}}
	for name, cfg := range map[string]*config{"shipped": shippedCfg, "test": testCfg} {
		pol := cfg.policy
		for _, path := range paths {
			cands := pol.Candidates(path)
			for i := 1; i < len(cands); i++ {
				a, b := patternSegments(cands[i-1].Pattern), patternSegments(cands[i].Pattern)
				if _, aWins, differ := firstDifference(a, b); differ && !aWins {
					t.Errorf("%s %s: explain ranks %s above %s, the policy the other way", name, path, cands[i].Pattern, cands[i-1].Pattern)
				}
			}
			for _, method := range methods {
				for _, roles := range callers {
					in := explainInput{roles: roles, hasRoles: roles != nil}
					x := explain(cfg, method, path, in)
					want, r := pol.Evaluate(method, path, roles, roles == nil)
					if x.Decision.Status != want || routeName(x) != nameOf(r) {
						t.Errorf("%s: %s %s as %v: explain says %d %s, policy %d %s", name, method, path, roles, x.Decision.Status, routeName(x), want, nameOf(r))
					}
					// The checks agree with the decision: all pass exactly when allowed.
					if x.Route != nil {
						allOK := true
						for _, c := range x.Checks {
							allOK = allOK && c.OK
						}
						if allOK != (want == 200) {
							t.Errorf("%s: %s %s as %v: checks %+v for status %d", name, method, path, roles, x.Checks, want)
						}
					}
				}
			}
		}
	}
}

func nameOf(r *policy.Route) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func TestExplainCommand(t *testing.T) {
	cfgPath := writeExplainConfig(t)
	ctx := context.Background()
	mintTok := func(args ...string) string {
		t.Helper()
		e, out, errb := stdEnv("")
		if err := run(ctx, e, append([]string{"token", "mint", "-config", cfgPath}, args...)); err != nil {
			t.Fatalf("mint: %v %s", err, errb)
		}
		return strings.TrimSpace(out.String())
	}
	editor := mintTok("-sub", "42", "-roles", "editor")
	expired := mintTok("-sub", "42", "-roles", "editor", "-claims", `{"exp": 1000000000}`)

	type result struct {
		Caller struct {
			Kind        string   `json:"kind"`
			UserID      string   `json:"user_id"`
			TokenValid  *bool    `json:"token_valid"`
			TokenReason string   `json:"token_reason"`
			Roles       []string `json:"roles"`
		} `json:"caller"`
		Route *struct {
			Name       string   `json:"name"`
			RolesAnyOf []string `json:"roles_any_of"`
		} `json:"route"`
		Decision struct {
			Result string `json:"result"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"decision"`
		UpstreamURL     string            `json:"upstream_url"`
		IdentityHeaders map[string]string `json:"identity_headers"`
	}
	tests := []struct {
		name   string
		stdin  string
		args   []string
		status int
		reason string // token_reason
		userID string
	}{
		{"a valid token", "", []string{"-token", editor, "GET", "/api/x/1"}, 200, "", "42"},
		{"a token from stdin", "Bearer " + editor + "\n", []string{"-token", "-", "GET", "/api/x/1"}, 200, "", "42"},
		{"an expired token", "", []string{"-token", expired, "GET", "/api/x/1"}, 401, "expired", ""},
		{"a forged token", "", []string{"-token", editor[:len(editor)-8] + "AAAAAAAA", "GET", "/api/x/1"}, 401, "signature", ""},
		{"an invalid token on a public route", "", []string{"-token", "garbage", "GET", "/api/articles"}, 200, "malformed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, out, errb := stdEnv(tt.stdin)
			args := append([]string{"explain", "-config", cfgPath, "-json"}, tt.args...)
			if err := run(ctx, e, args); err != nil {
				t.Fatalf("%v %s", err, errb)
			}
			var got result
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got.Decision.Status != tt.status || got.Caller.Kind != "token" || got.Caller.TokenReason != tt.reason || got.Caller.UserID != tt.userID {
				t.Errorf("got %+v", got)
			}
			if got.Caller.TokenValid == nil || *got.Caller.TokenValid != (tt.reason == "") {
				t.Errorf("token_valid %v", got.Caller.TokenValid)
			}
			if tt.status == 401 && got.Decision.Error != "invalid_token" {
				t.Errorf("error %q, want invalid_token", got.Decision.Error)
			}
			if tt.userID != "" && (got.IdentityHeaders["X-User-Id"] != tt.userID || got.IdentityHeaders["X-User-Roles"] != "editor") {
				t.Errorf("identity headers %v", got.IdentityHeaders)
			}
			if strings.Contains(out.String(), editor) || strings.Contains(out.String(), expired) {
				t.Error("the token was echoed")
			}
		})
	}

	// Plain output names the pieces an operator looks for.
	e, out, errb := stdEnv("")
	if err := run(ctx, e, []string{"explain", "-config", cfgPath, "-roles", "subscriber", "PUT", "/api/articles/7"}); err != nil {
		t.Fatalf("%v %s", err, errb)
	}
	for _, want := range []string{"/api/articles/7 (normalised)", "effective roles: subscriber", "=> 1. articles-any",
		"[no] capabilities: lacks edit", "403 insufficient_scope"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plain output lacks %q:\n%s", want, out)
		}
	}

	for _, args := range [][]string{
		{"explain", "-config", cfgPath, "GET"},
		{"explain", "-config", cfgPath, "-roles", "editor", "-token", editor, "GET", "/x"},
		{"explain", "-config", cfgPath, "G T", "/x"},
	} {
		e, _, errb := stdEnv("")
		if err := run(ctx, e, args); !errors.Is(err, errUsage) || errb.Len() == 0 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
