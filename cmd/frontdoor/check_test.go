package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkBase is a valid config up to its routes; tests append routes and
// policy tests.
const checkBase = `store:
  dsn: "data/fd.db"
tokens:
  issuer: "http://frontdoor.test"
  audience: "miniprogram"
roles:
  subscriber: { capabilities: [read] }
  editor:     { inherits: [subscriber], capabilities: [edit] }
upstreams:
  legacy:
    urls: ["http://127.0.0.1:9000"]
  spare:
    urls: ["http://127.0.0.1:9001"]
routes:
  - name: read
    path: /api/**
    methods: [GET]
    upstream: legacy
    capabilities: [read]
  - name: edit
    path: /api/{id}
    methods: [PUT]
    upstream: legacy
    capabilities: [edit]
`

func runCheck(t *testing.T, text string) (path, stdout string, err error) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e, out, _ := stdEnv("")
	err = run(context.Background(), e, []string{"check", "-config", path})
	return path, out.String(), err
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		text string
		// wantErr are parts of the error, in which "FILE" stands for the
		// config's path; nil means check succeeds.
		wantErr []string
		wantOut []string
		// notOut must not appear in the output.
		notOut []string
	}{
		{
			name: "a valid config prints routes in precedence order, tests and warnings",
			text: checkBase + `tests:
  - name: editors edit
    method: PUT
    path: /api/7
    roles: [editor]
    expect: allow
  - name: readers do not
    method: PUT
    path: /api/7
    roles: [subscriber]
    expect: 403
`,
			wantOut: []string{
				"OK (2 roles, 2 upstreams, 2 routes, 2 policy tests passed)",
				"1  edit", "2  read",
				"policy tests: all 2 passed",
				"PASS  editors edit    PUT /api/7 -> allow (route edit)",
				"PASS  readers do not  PUT /api/7 -> 403 (route edit)",
				"1 warnings:",
				"FILE:12:3: upstreams.spare: no route uses this upstream",
			},
		},
		{
			name: "auth none with roles is an error",
			text: checkBase + `  - name: public
    path: /public
    upstream: spare
    auth: none
    roles: [editor]
`,
			wantErr: []string{"FILE:28:11: routes[2].auth: auth none cannot be combined with roles or capabilities"},
		},
		{
			name: "auth none with capabilities is an error",
			text: checkBase + `  - name: public
    path: /public
    upstream: spare
    capabilities: [read]
    auth: none
`,
			wantErr: []string{"FILE:29:11: routes[2].auth: auth none cannot be combined"},
		},
		{
			name: "every failing test is named with its expectation",
			text: checkBase + `  - name: spare
    path: /spare
    upstream: spare
tests:
  - name: editors edit
    method: PUT
    path: /api/7
    roles: [editor]
    expect: allow
  - name: readers edit too
    method: PUT
    path: /api/7
    roles: [subscriber]
    expect: allow
  - name: anonymous reads
    method: GET
    path: /api/7
    expect: allow
`,
			wantErr: []string{
				`FILE:34:5: tests[1]: policy test "readers edit too" failed: PUT /api/7 expected allow, got 403`,
				`FILE:39:5: tests[2]: policy test "anonymous reads" failed: GET /api/7 expected allow, got 401`,
			},
			wantOut: []string{
				"policy tests: 2 of 3 failed",
				"PASS  editors edit",
				"FAIL  readers edit too  PUT /api/7 -> 403 (route edit), expected allow  at FILE:34:5",
				"FAIL  anonymous reads   GET /api/7 -> 401 (route read), expected allow  at FILE:39:5",
			},
			notOut: []string{"OK ("},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, out, err := runCheck(t, tt.text)
			subst := func(s string) string { return strings.ReplaceAll(s, "FILE", path) }
			if tt.wantErr == nil && err != nil {
				t.Fatalf("check failed: %v", err)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("check passed:\n%s", out)
				}
				if exitCode(err) != 1 {
					t.Errorf("exit code %d, want 1", exitCode(err))
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), subst(want)) {
						t.Errorf("error lacks %q:\n%v", subst(want), err)
					}
				}
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, subst(want)) {
					t.Errorf("output lacks %q:\n%s", subst(want), out)
				}
			}
			for _, bad := range tt.notOut {
				if strings.Contains(out, bad) {
					t.Errorf("output has %q:\n%s", bad, out)
				}
			}
		})
	}
}

// TestCheckShippedConfig runs check on config.yaml: its tests all pass and
// its warnings carry positions.
func TestCheckShippedConfig(t *testing.T) {
	t.Setenv("WECHAT_SECRET", "test-secret")
	e, out, _ := stdEnv("")
	if err := run(context.Background(), e, []string{"check", "-config", "../../config.yaml"}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	passes := strings.Count(text, "\n  PASS  ")
	if passes == 0 || strings.Contains(text, "FAIL") || !strings.Contains(text, fmt.Sprintf("all %d passed", passes)) {
		t.Errorf("tests in the output:\n%s", text)
	}
	if _, warnings, ok := strings.Cut(text, "warnings:\n"); ok {
		located := regexp.MustCompile(`^  \.\./\.\./config\.yaml:\d+:\d+: `)
		for _, line := range strings.Split(strings.TrimRight(warnings, "\n"), "\n") {
			if !located.MatchString(line) {
				t.Errorf("warning without a position: %q", line)
			}
		}
	}
}
