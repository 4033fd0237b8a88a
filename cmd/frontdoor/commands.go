package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"frontdoor/internal/yamlconf"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/policy"
)

// cmdCheck validates the config, runs its policy tests and prints the route
// table in precedence order, each test's result and the warnings. It fails
// (exit 1) on any error, naming file:line:column; warnings alone do not fail.
func cmdCheck(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, nil)
	// The document is read again only to give positions to what is not an
	// error: warnings and test results.
	doc := positionsOf(*cfgPath)
	if err != nil {
		// When the policy itself compiles, list every test with its result,
		// so that failing tests are seen next to the passing ones.
		if pol := policyOf(doc); pol != nil && len(pol.RunTests()) > 0 {
			writeTestResults(e.stdout, pol.RunTests(), doc)
		}
		return err
	}
	tests := cfg.policy.RunTests()
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s: OK (%d roles, %d upstreams, %d routes, %d policy tests passed)\n\n",
		cfg.path, len(cfg.policy.RoleNames()), len(cfg.runtime.Pools), len(cfg.policy.Routes()), len(tests))
	fmt.Fprintln(w, "#\tROUTE\tMETHODS\tPATH\tAUTH\tREQUIRES\tUPSTREAM")
	for i, r := range cfg.policy.Routes() {
		methods := "*"
		if len(r.Methods) > 0 {
			methods = strings.Join(r.Methods, ",")
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Name, methods, r.Pattern, r.Auth, requirement(r), r.Upstream)
	}
	w.Flush()
	if len(tests) > 0 {
		fmt.Fprintln(e.stdout)
		writeTestResults(e.stdout, tests, doc)
	}
	var warnings []error
	for _, wrn := range cfg.policy.Warnings() {
		warnings = append(warnings, wrn)
	}
	for _, u := range cfg.runtime.UnusedUpstreams() {
		warnings = append(warnings, &yamlconf.PathError{Path: "upstreams." + u, Msg: "no route uses this upstream"})
	}
	if len(warnings) > 0 {
		fmt.Fprintf(e.stdout, "\n%d warnings:\n", len(warnings))
		located := []error{errors.Join(warnings...)}
		if doc != nil {
			located = []error{doc.Locate(located[0])}
		}
		if list, ok := located[0].(interface{ Unwrap() []error }); ok {
			located = list.Unwrap()
		}
		for _, wrn := range located {
			for _, line := range strings.Split(wrn.Error(), "\n") {
				fmt.Fprintln(e.stdout, "  "+line)
			}
		}
	}
	return nil
}

// positionsOf parses the config file for the positions of its nodes; nil
// when it cannot be read or parsed (the error is reported otherwise).
func positionsOf(path string) *yamlconf.Document {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	doc, err := yamlconf.Parse(path, data, os.LookupEnv)
	if err != nil {
		return nil
	}
	return doc
}

// policyOf compiles the policy sections of doc alone; nil when they do not
// compile.
func policyOf(doc *yamlconf.Document) *policy.Policy {
	if doc == nil {
		return nil
	}
	var f fileConfig
	if err := doc.Decode(&f); err != nil {
		return nil
	}
	pol, err := policy.Compile(policy.Config{Roles: f.Roles, Routes: f.Routes, Tests: f.Tests})
	if err != nil {
		return nil
	}
	return pol
}

// writeTestResults prints every policy test with PASS or FAIL; a failure
// says what was expected and where the test is written.
func writeTestResults(out io.Writer, results []policy.TestResult, doc *yamlconf.Document) {
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(out, "policy tests: %d of %d failed\n", failed, len(results))
	} else {
		fmt.Fprintf(out, "policy tests: all %d passed\n", len(results))
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, r := range results {
		route := ""
		if r.Route != "" {
			route = " (route " + r.Route + ")"
		}
		if r.Pass {
			fmt.Fprintf(w, "  PASS\t%s\t%s %s -> %s%s\n", r.Name, r.Method, r.Path, r.Got, route)
			continue
		}
		where := ""
		if doc != nil {
			line, col := doc.Position(fmt.Sprintf("tests[%d]", i))
			where = fmt.Sprintf("  at %s:%d:%d", doc.File(), line, col)
		}
		fmt.Fprintf(w, "  FAIL\t%s\t%s %s -> %s%s, expected %s%s\n", r.Name, r.Method, r.Path, r.Got, route, r.Want, where)
	}
	w.Flush()
}

func requirement(r *policy.Route) string {
	var parts []string
	if len(r.Roles) > 0 {
		parts = append(parts, "role "+strings.Join(r.Roles, "|"))
	}
	if len(r.Capabilities) > 0 {
		parts = append(parts, "caps "+strings.Join(r.Capabilities, "+"))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// openKeys opens the store named by the config and its key ring, for the
// subcommands that work on keys and tokens.
func openKeys(ctx context.Context, cfgPath string) (*config, store.Store, *token.KeyRing, error) {
	cfg, err := loadConfig(cfgPath, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := store.Open(ctx, cfg.file.Store)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open store: %w", err)
	}
	ring, err := token.NewKeyRing(ctx, st, cfg.file.Tokens, time.Now)
	if err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("load signing keys: %w", err)
	}
	return cfg, st, ring, nil
}

func cmdToken(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "mint" {
		fmt.Fprintln(e.stderr, "usage: frontdoor token mint -sub ID -roles a,b [-ttl 2h] [-claims JSON] [-config FILE]")
		return errUsage
	}
	fs, cfgPath := newFlags(e, "token mint")
	sub := fs.String("sub", "", "subject (user id)")
	roles := fs.String("roles", "", "comma-separated roles")
	ttl := fs.Duration("ttl", 0, "lifetime (default tokens.access_ttl)")
	claims := fs.String("claims", "", "JSON object of claims to add or override")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *sub == "" {
		fmt.Fprintln(e.stderr, "frontdoor token mint: -sub is required")
		return errUsage
	}
	var extra map[string]any
	if *claims != "" {
		if err := json.Unmarshal([]byte(*claims), &extra); err != nil {
			return fmt.Errorf("-claims must be a JSON object: %w", err)
		}
	}
	cfg, st, ring, err := openKeys(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	roleList := splitList(*roles)
	for _, r := range roleList {
		if !cfg.policy.HasRole(r) {
			return fmt.Errorf("unknown role %q (defined: %s)", r, strings.Join(cfg.policy.RoleNames(), ", "))
		}
	}
	m, err := token.NewIssuer(ring, cfg.file.Tokens, time.Now).Mint(ctx, token.MintRequest{
		Subject: *sub, Roles: roleList, AMR: []string{"mint"}, TTL: *ttl, Extra: extra,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, m.Token)
	return nil
}

func cmdKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "usage: frontdoor keys list | rotate | import -pem FILE [-config FILE]")
		return errUsage
	}
	sub := args[0]
	fs, cfgPath := newFlags(e, "keys "+sub)
	pemPath := fs.String("pem", "", "PEM file with an RSA private key (import)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch sub {
	case "list", "rotate", "import":
	default:
		fmt.Fprintf(e.stderr, "frontdoor keys: unknown subcommand %q\n", sub)
		return errUsage
	}
	if sub == "import" && *pemPath == "" {
		fmt.Fprintln(e.stderr, "frontdoor keys import: -pem FILE is required")
		return errUsage
	}
	_, st, ring, err := openKeys(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "rotate":
		k, err := ring.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "new signing key %s is active; running servers pick it up within 5s\n", k.ID)
	case "import":
		data, err := os.ReadFile(*pemPath)
		if err != nil {
			return err
		}
		k, err := token.KeyFromPEM(data, time.Now())
		if err != nil {
			return err
		}
		if err := ring.Import(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "imported key %s; it signs from now on\n", k.ID)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tSTATE\tBITS\tACTIVATED\tRETIRED\tVERIFIES UNTIL")
	for _, k := range ring.Keys() {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", k.ID, k.State, k.Bits, fmtTime(k.ActivatedAt), fmtTime(k.RetiredAt), fmtTime(k.VerifiesUntil))
	}
	return w.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
