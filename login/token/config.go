package token

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Leeway is the clock skew tolerated when checking exp, nbf and iat, and the
// extra time a retired key stays published after its last token expired.
const Leeway = 30 * time.Second

// MaxAccessTTL is the longest access_ttl Validate accepts. Access tokens
// cannot be recalled one by one without a store lookup, so their lifetime is
// kept short.
const MaxAccessTTL = 24 * time.Hour

// Config is the `tokens:` section of config.yaml.
type Config struct {
	// Issuer is the iss claim of minted tokens and the only iss accepted.
	Issuer string `yaml:"issuer"`
	// Audience is the aud claim of minted tokens and the audience required.
	Audience string `yaml:"audience"`
	// AccessTTL is the lifetime of an access token.
	AccessTTL time.Duration `yaml:"access_ttl"`
	// RefreshTTL is the lifetime of a refresh token.
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// RotateEvery is how long a signing key signs before KeyRing.Maintain
	// replaces it; 0 means never.
	RotateEvery time.Duration `yaml:"rotate_every"`
	// CacheSize bounds the verified-token cache (see Cache): how many
	// distinct live tokens skip signature verification. 0 turns the cache
	// off.
	CacheSize int `yaml:"cache_size"`
}

// ApplyDefaults fills every zero field with its default. Because it cannot
// tell an explicit `rotate_every: 0` from an absent one, call it before
// decoding the section into c when an explicit 0 (never rotate) must survive.
func (c *Config) ApplyDefaults() {
	if c.Issuer == "" {
		c.Issuer = "http://localhost:8080"
	}
	if c.Audience == "" {
		c.Audience = "miniprogram"
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 2 * time.Hour
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 720 * time.Hour
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = 720 * time.Hour
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
}

// Validate reports the first invalid field. The error implements
// ConfigPath() string, which names the field ("tokens.issuer", …).
func (c Config) Validate() error {
	if c.Issuer == "" {
		return configErr("tokens.issuer", "must not be empty")
	}
	if err := validateIssuer(c.Issuer); err != nil {
		return &configError{path: "tokens.issuer", err: err}
	}
	if c.Audience == "" {
		return configErr("tokens.audience", "must not be empty")
	}
	if c.AccessTTL <= 0 {
		return configErr("tokens.access_ttl", "must be positive")
	}
	if c.AccessTTL > MaxAccessTTL {
		return configErr("tokens.access_ttl", fmt.Sprintf("%v is longer than the maximum %v", c.AccessTTL, MaxAccessTTL))
	}
	if c.RefreshTTL <= 0 {
		return configErr("tokens.refresh_ttl", "must be positive")
	}
	if c.CacheSize < 0 {
		return configErr("tokens.cache_size", "must not be negative (0 turns the cache off)")
	}
	if c.RotateEvery < 0 {
		return configErr("tokens.rotate_every", "must not be negative (0 means never)")
	}
	if c.RotateEvery != 0 && c.RotateEvery < c.AccessTTL {
		// Rotating faster than tokens live would keep several retired keys
		// published at once for no gain.
		return configErr("tokens.rotate_every", fmt.Sprintf("%v is shorter than access_ttl %v (use 0 to never rotate)", c.RotateEvery, c.AccessTTL))
	}
	return nil
}

// validateIssuer requires what OpenID Connect Discovery requires of an
// issuer identifier, except that plain http is allowed for development.
func validateIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q must not contain user info", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q must not contain a query", s)
	case u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("%q must not contain a fragment", s)
	}
	return nil
}

// configError is a validation error that names the offending config.yaml
// field, so the loader can point at its line and column.
type configError struct {
	path string
	err  error
}

func configErr(path, msg string) error { return &configError{path: path, err: errors.New(msg)} }

func (e *configError) Error() string      { return e.path + ": " + e.err.Error() }
func (e *configError) Unwrap() error      { return e.err }
func (e *configError) ConfigPath() string { return e.path }
