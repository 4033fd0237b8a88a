package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"frontdoor/login"
	"frontdoor/login/store"
)

const usersUsage = `usage:
  frontdoor users add -username U [-roles a,b] [-config FILE] < password-file
  frontdoor users list [-config FILE]
  frontdoor users roles -set a,b [-config FILE] USER
  frontdoor users disable | enable [-config FILE] USER
  frontdoor users passwd [-config FILE] USER < password-file

USER is a numeric user id or a username. Flags go before USER.
Passwords are read from stdin, one line, and never from the command line
(where ps and shell history would see them):
  frontdoor users add -username alice -roles editor < alice.pw
  printf '%s\n' "$NEW_PASSWORD" | frontdoor users passwd alice
A password has at least 8 characters and at most 1024 bytes.
`

// cmdUsers manages accounts in the store named by -config. It is safe to run
// while `serve` runs on the same store: serve reads the user at every login,
// so changes apply from the next one.
func cmdUsers(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		io.WriteString(e.stderr, usersUsage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		return usersAdd(ctx, e, args)
	case "list":
		return usersList(ctx, e, args)
	case "roles":
		return usersRoles(ctx, e, args)
	case "disable", "enable":
		return usersSetDisabled(ctx, e, sub, args)
	case "passwd":
		return usersPasswd(ctx, e, args)
	case "help", "-h", "--help":
		io.WriteString(e.stdout, usersUsage)
		return nil
	default:
		fmt.Fprintf(e.stderr, "frontdoor users: unknown subcommand %q\n\n", sub)
		io.WriteString(e.stderr, usersUsage)
		return errUsage
	}
}

func usersAdd(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "users add")
	username := fs.String("username", "", "login name of the new user (taken literally: case and spaces count)")
	roles := fs.String("roles", "", "comma-separated roles, each defined in the config (default: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "frontdoor users add: unexpected argument %q: the password is read from stdin, never from the command line\n", fs.Arg(0))
		return errUsage
	}
	if *username == "" {
		fmt.Fprintln(e.stderr, "frontdoor users add: -username is required")
		return errUsage
	}
	if err := login.CheckUsername(*username); err != nil {
		return err
	}
	cfg, st, err := openUserStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	roleList, err := checkRoles(cfg, *roles)
	if err != nil {
		return err
	}
	hash, err := readPasswordHash(e, cfg, "password for "+displayName(*username))
	if err != nil {
		return err
	}
	u, err := st.CreatePasswordUser(ctx, store.NewPasswordUser{
		Username: *username, PasswordHash: hash, Roles: roleList, Now: time.Now(),
	})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("username %s is taken", displayName(*username))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created user %d (%s), roles: %s\n", u.ID, displayName(u.Username), roleText(u.Roles))
	if !cfg.file.Login.Password.Enabled {
		fmt.Fprintf(e.stderr, "note: login.password.enabled is false in %s: POST /auth/login answers 404 until it is enabled\n", cfg.path)
	}
	return nil
}

func usersList(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "users list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "frontdoor users list: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	_, st, err := openUserStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSERNAME\tWECHAT\tROLES\tDISABLED\tLAST LOGIN")
	for _, u := range users {
		name := "-"
		if u.Username != "" {
			name = displayName(u.Username)
		}
		lastLogin := "never"
		if !u.LastLoginAt.IsZero() {
			lastLogin = u.LastLoginAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, name, yesNo(u.HasWeChat()), roleText(u.Roles), yesNo(u.Disabled), lastLogin)
	}
	return w.Flush()
}

func usersRoles(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "users roles")
	set := fs.String("set", "", "comma-separated roles that replace the user's roles (\"\" removes all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "set" })
	if !given {
		fmt.Fprintln(e.stderr, "frontdoor users roles: -set is required (-set \"\" removes every role)")
		return errUsage
	}
	userArg, err := oneUserArg(e, fs, "users roles")
	if err != nil {
		return err
	}
	cfg, st, err := openUserStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	roleList, err := checkRoles(cfg, *set)
	if err != nil {
		return err
	}
	u, err := resolveUser(ctx, st, userArg)
	if err != nil {
		return err
	}
	updated, err := st.SetRoles(ctx, u.ID, roleList, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s: roles %s (were %s)\n", userLabel(updated), roleText(updated.Roles), roleText(u.Roles))
	return nil
}

func usersSetDisabled(ctx context.Context, e env, sub string, args []string) error {
	fs, cfgPath := newFlags(e, "users "+sub)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	userArg, err := oneUserArg(e, fs, "users "+sub)
	if err != nil {
		return err
	}
	_, st, u, err := openUser(ctx, *cfgPath, userArg)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	updated, err := st.SetDisabled(ctx, u.ID, sub == "disable", now)
	if err != nil {
		return err
	}
	if sub == "disable" {
		// Disabling bumped the user's token version, which running servers
		// honour within seconds; ending the refresh sessions too means the
		// user cannot simply mint new access tokens.
		if _, err := st.RevokeUserRefreshTokens(ctx, u.ID, now); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "user %s %sd\n", userLabel(updated), sub)
	return nil
}

func usersPasswd(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "users passwd")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	userArg, err := oneUserArg(e, fs, "users passwd")
	if err != nil {
		return err
	}
	cfg, st, u, err := openUser(ctx, *cfgPath, userArg)
	if err != nil {
		return err
	}
	defer st.Close()
	if u.Username == "" {
		return fmt.Errorf("user %d has no username (a WeChat-only account), so it cannot log in with a password", u.ID)
	}
	hash, err := readPasswordHash(e, cfg, "new password for "+displayName(u.Username))
	if err != nil {
		return err
	}
	updated, err := st.SetPasswordHash(ctx, u.ID, hash, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s: password changed\n", userLabel(updated))
	return nil
}

// openUserStore loads the config (validated as `serve` would) and opens its
// store.
func openUserStore(ctx context.Context, cfgPath string) (*config, store.Store, error) {
	cfg, err := loadConfig(cfgPath, nil)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, cfg.file.Store)
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return cfg, st, nil
}

// oneUserArg returns the single USER argument.
func oneUserArg(e env, fs *flag.FlagSet, name string) (string, error) {
	switch {
	case fs.NArg() == 0:
		fmt.Fprintf(e.stderr, "frontdoor %s: USER (a numeric id or a username) is required\n", name)
		return "", errUsage
	case fs.NArg() > 1:
		fmt.Fprintf(e.stderr, "frontdoor %s: unexpected argument %q after USER; flags go before USER\n", name, fs.Arg(1))
		return "", errUsage
	}
	return fs.Arg(0), nil
}

// checkRoles parses a comma-separated role list, refusing roles the config
// does not define. Duplicates are dropped.
func checkRoles(cfg *config, list string) ([]string, error) {
	var roles []string
	for _, r := range splitList(list) {
		if !cfg.policy.HasRole(r) {
			return nil, fmt.Errorf("unknown role %q (defined in %s: %s)", r, cfg.path, strings.Join(cfg.policy.RoleNames(), ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// resolveUser resolves USER: all digits is an id (usernames cannot be all
// digits), anything else a username, matched exactly.
// openUser opens the configured store and finds the user named by arg (an
// id or a username). The caller closes the store.
func openUser(ctx context.Context, cfgPath, arg string) (*config, store.Store, store.User, error) {
	cfg, st, err := openUserStore(ctx, cfgPath)
	if err != nil {
		return nil, nil, store.User{}, err
	}
	u, err := resolveUser(ctx, st, arg)
	if err != nil {
		st.Close()
		return nil, nil, store.User{}, err
	}
	return cfg, st, u, nil
}

func resolveUser(ctx context.Context, st store.Store, arg string) (store.User, error) {
	if arg != "" && strings.Trim(arg, "0123456789") == "" {
		id, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return store.User{}, fmt.Errorf("user id %s is out of range", arg)
		}
		u, err := st.UserByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, fmt.Errorf("no user with id %d", id)
		}
		return u, err
	}
	u, err := st.UserByUsername(ctx, arg)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("no user named %s", displayName(arg))
	}
	return u, err
}

// readPasswordHash reads one line from stdin, checks it against the password
// policy and hashes it under the config's argon2id parameters.
func readPasswordHash(e env, cfg *config, prompt string) (string, error) {
	if isTerminal(e.stdin) {
		// Without golang.org/x/term the echo cannot be turned off; say so
		// rather than let the operator believe the input is hidden.
		fmt.Fprintf(e.stderr, "%s (input is visible; redirect stdin from a file to avoid that): ", prompt)
	}
	// One line of at most MaxPasswordBytes plus "\r\n"; anything longer is
	// refused by CheckPassword below.
	line, err := bufio.NewReader(io.LimitReader(e.stdin, login.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("no password on stdin: pipe or redirect it in (the command line never takes passwords)")
	}
	return login.HashPassword(pw, cfg.file.Login.Password)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// displayName shows a username unambiguously: quoted when it has spaces,
// quotes or characters that a terminal would not show as themselves.
func displayName(name string) string {
	for _, r := range name {
		if r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsGraphic(r) {
			return strconv.Quote(name)
		}
	}
	return name
}

func userLabel(u store.User) string {
	if u.Username == "" {
		return strconv.FormatInt(u.ID, 10)
	}
	return fmt.Sprintf("%d (%s)", u.ID, displayName(u.Username))
}

func roleText(roles []string) string {
	if len(roles) == 0 {
		return "-"
	}
	return strings.Join(roles, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
