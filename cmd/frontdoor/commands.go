package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/policy"
)

// cmdCheck validates the config, runs its policy tests and prints the route
// table in precedence order.
func cmdCheck(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s: OK (%d roles, %d upstreams, %d routes, %d policy tests passed)\n\n",
		cfg.path, len(cfg.policy.RoleNames()), len(cfg.runtime.Pools), len(cfg.policy.Routes()), len(cfg.policy.RunTests()))
	fmt.Fprintln(w, "#\tROUTE\tMETHODS\tPATH\tAUTH\tREQUIRES\tUPSTREAM")
	for i, r := range cfg.policy.Routes() {
		methods := "*"
		if len(r.Methods) > 0 {
			methods = strings.Join(r.Methods, ",")
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Name, methods, r.Pattern, r.Auth, requirement(r), r.Upstream)
	}
	w.Flush()
	var warnings []string
	for _, wrn := range cfg.policy.Warnings() {
		warnings = append(warnings, wrn.Error())
	}
	for _, u := range cfg.runtime.UnusedUpstreams() {
		warnings = append(warnings, fmt.Sprintf("upstreams.%s: no route uses this upstream", u))
	}
	if len(warnings) > 0 {
		fmt.Fprintln(e.stdout, "\nwarnings:")
		for _, wrn := range warnings {
			fmt.Fprintln(e.stdout, "  "+wrn)
		}
	}
	return nil
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
