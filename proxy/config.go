package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"frontdoor/policy"
)

// UpstreamConfig is one entry of the `upstreams:` section.
type UpstreamConfig struct {
	// URLs are tried round robin; one that refuses connections is skipped
	// for a while.
	URLs []string `yaml:"urls"`
	// Timeout bounds the wait for response headers. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// ForwardAuthorization passes the client's Authorization header to the
	// upstream. Off by default: the upstream should trust the identity
	// headers, not re-check tokens.
	ForwardAuthorization bool `yaml:"forward_authorization"`
}

// IdentityHeaders is the `identity_headers:` section: the names of the
// headers frontdoor sets for the upstream (and strips from clients).
type IdentityHeaders struct {
	UserID string `yaml:"user_id"`
	Roles  string `yaml:"roles"`
}

// Config is the proxy's part of config.yaml, composed by the caller from the
// top-level keys identity_headers: and upstreams:.
type Config struct {
	IdentityHeaders IdentityHeaders
	Upstreams       map[string]UpstreamConfig
}

// DefaultUpstreamTimeout applies when an upstream sets no timeout.
const DefaultUpstreamTimeout = 30 * time.Second

// ApplyDefaults fills in the documented defaults.
func (c *Config) ApplyDefaults() {
	if c.IdentityHeaders.UserID == "" {
		c.IdentityHeaders.UserID = "X-User-Id"
	}
	if c.IdentityHeaders.Roles == "" {
		c.IdentityHeaders.Roles = "X-User-Roles"
	}
}

// ConfigError is a validation error at a path of config.yaml.
type ConfigError struct{ Path, Msg string }

func (e *ConfigError) Error() string      { return e.Path + ": " + e.Msg }
func (e *ConfigError) ConfigPath() string { return e.Path }

// Runtime is one immutable, compiled configuration of the pipeline. A reload
// builds a new Runtime and swaps it in atomically; requests in flight finish
// on the one they started with.
type Runtime struct {
	Policy *policy.Policy
	// Pools by upstream name.
	Pools map[string]*Pool
	// userIDHeader and rolesHeader are canonical header keys; strip holds
	// every spelling of them a client might use, normalised (see
	// identityKey).
	userIDHeader, rolesHeader string
	strip                     [2]string
}

// NewRuntime validates cfg against pol and builds the upstream pools, which
// share transport. Errors carry config paths.
func NewRuntime(cfg Config, pol *policy.Policy, transport http.RoundTripper, now func() time.Time) (*Runtime, error) {
	cfg.ApplyDefaults()
	var errs []error
	for _, f := range []struct{ path, name string }{
		{"identity_headers.user_id", cfg.IdentityHeaders.UserID},
		{"identity_headers.roles", cfg.IdentityHeaders.Roles},
	} {
		if !validHeaderName(f.name) {
			errs = append(errs, &ConfigError{f.path, fmt.Sprintf("%q is not a valid header name", f.name)})
		}
		if isReservedHeader(f.name) {
			errs = append(errs, &ConfigError{f.path, fmt.Sprintf("%q is a header frontdoor or HTTP itself manages", f.name)})
		}
	}
	if identityKey(cfg.IdentityHeaders.UserID) == identityKey(cfg.IdentityHeaders.Roles) {
		errs = append(errs, &ConfigError{"identity_headers.roles", "must differ from identity_headers.user_id"})
	}
	rt := &Runtime{
		Policy:       pol,
		Pools:        make(map[string]*Pool, len(cfg.Upstreams)),
		userIDHeader: textproto.CanonicalMIMEHeaderKey(cfg.IdentityHeaders.UserID),
		rolesHeader:  textproto.CanonicalMIMEHeaderKey(cfg.IdentityHeaders.Roles),
		strip:        [2]string{identityKey(cfg.IdentityHeaders.UserID), identityKey(cfg.IdentityHeaders.Roles)},
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u := cfg.Upstreams[name]
		path := "upstreams." + name
		timeout := u.Timeout
		if timeout < 0 {
			errs = append(errs, &ConfigError{path + ".timeout", "must not be negative"})
		}
		if timeout == 0 {
			timeout = DefaultUpstreamTimeout
		}
		if len(u.URLs) == 0 {
			errs = append(errs, &ConfigError{path + ".urls", "needs at least one URL"})
			continue
		}
		for i, raw := range u.URLs {
			if _, err := parseTargetURL(raw); err != nil {
				errs = append(errs, &ConfigError{fmt.Sprintf("%s.urls[%d]", path, i), err.Error()})
			}
		}
		pool, err := NewPool(name, u.URLs, timeout, transport, now)
		if err != nil {
			continue // already reported per URL
		}
		pool.ForwardAuthorization = u.ForwardAuthorization
		rt.Pools[name] = pool
	}
	if pol != nil {
		for _, r := range pol.Routes() {
			if _, ok := cfg.Upstreams[r.Upstream]; !ok {
				errs = append(errs, &ConfigError{
					fmt.Sprintf("routes[%d].upstream", r.Index),
					fmt.Sprintf("unknown upstream %q (defined: %s)", r.Upstream, strings.Join(names, ", ")),
				})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

// UnusedUpstreams lists upstreams no route sends traffic to (a `check` warning).
func (rt *Runtime) UnusedUpstreams() []string {
	used := map[string]bool{}
	for _, r := range rt.Policy.Routes() {
		used[r.Upstream] = true
	}
	var out []string
	for name := range rt.Pools {
		if !used[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// UpstreamURL is where a request for route r and the matched path would go
// (the first target; `explain` shows it).
func (rt *Runtime) UpstreamURL(r *policy.Route, path string) string {
	pool := rt.Pools[r.Upstream]
	if pool == nil {
		return ""
	}
	u := *pool.Targets[0].URL
	u.Path = u.Path + r.UpstreamPath(path)
	return u.String()
}

// identityKey folds a header name the way clients may disguise it: any case,
// and "_" or "." in place of "-". Some servers (CGI, nginx with
// underscores_in_headers, some frameworks) treat those as the same header.
func identityKey(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if c == '_' || c == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func isReservedHeader(name string) bool {
	switch identityKey(name) {
	case "authorization", "host", "content-length", "transfer-encoding", "connection",
		"x-request-id", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
		"forwarded", "cookie", "upgrade", "te", "trailer":
		return true
	}
	return false
}
