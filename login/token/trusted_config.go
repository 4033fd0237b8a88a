package token

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Limits on the JWKS refresh intervals of a trusted issuer. Below them a
// misconfiguration would turn frontdoor into a load generator against the
// issuer.
const (
	MinTrustedRefreshInterval    = time.Minute
	MinTrustedUnknownKIDInterval = time.Second
)

// TrustedIssuerConfig is one entry of the `trusted_issuers:` section of
// config.yaml: another issuer whose tokens frontdoor accepts, checked against
// the issuer's published JWKS.
type TrustedIssuerConfig struct {
	// Issuer is the exact iss claim of the issuer's tokens.
	Issuer string `yaml:"issuer"`
	// JWKSURL is where the issuer publishes its public keys.
	JWKSURL string `yaml:"jwks_url"`
	// Audience must be among the token's aud values. It is required: without
	// it, a token the issuer minted for any other service would pass.
	Audience string `yaml:"audience"`
	// RolesClaim is the dot path of the claim holding the roles, an array of
	// strings ("realm_access.roles"); empty means the tokens carry no roles.
	// Claim names may themselves contain dots (namespaced claims such as
	// "https://example.com/roles"): at each level the longest name present
	// wins.
	RolesClaim string `yaml:"roles_claim"`
	// UserIDClaim is the dot path of the claim holding the user id, a
	// non-empty string or an integer; default "sub".
	UserIDClaim string `yaml:"user_id_claim"`
	// RefreshInterval is how often the JWKS is fetched again; default 1h.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// UnknownKIDInterval is the least time between two fetches triggered by
	// tokens whose kid is not among the cached keys (the issuer rotated its
	// key, or someone is sending made-up kids); default 1m.
	UnknownKIDInterval time.Duration `yaml:"unknown_kid_interval"`
}

// ApplyDefaults fills every zero field that has a default.
func (c *TrustedIssuerConfig) ApplyDefaults() {
	if c.UserIDClaim == "" {
		c.UserIDClaim = "sub"
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = time.Hour
	}
	if c.UnknownKIDInterval == 0 {
		c.UnknownKIDInterval = time.Minute
	}
}

// ValidateTrustedIssuers reports the first invalid field of list, whose
// entries have had ApplyDefaults applied. ownIssuer is tokens.issuer, which
// no entry may claim: tokens with it are verified with frontdoor's own keys
// only. The error implements ConfigPath() string, which names the field
// ("trusted_issuers[1].jwks_url", …).
func ValidateTrustedIssuers(list []TrustedIssuerConfig, ownIssuer string) error {
	seen := make(map[string]int, len(list))
	for i, c := range list {
		path := func(field string) string { return fmt.Sprintf("trusted_issuers[%d].%s", i, field) }
		switch {
		case c.Issuer == "":
			return configErr(path("issuer"), "must not be empty")
		case c.Issuer == ownIssuer:
			return configErr(path("issuer"), fmt.Sprintf("%q is tokens.issuer, whose tokens only frontdoor's own keys may sign", c.Issuer))
		}
		if j, dup := seen[c.Issuer]; dup {
			return configErr(path("issuer"), fmt.Sprintf("%q is already trusted by trusted_issuers[%d]", c.Issuer, j))
		}
		seen[c.Issuer] = i
		if err := validateJWKSURL(c.JWKSURL); err != nil {
			return &configError{path: path("jwks_url"), err: err}
		}
		if c.Audience == "" {
			return configErr(path("audience"), "must not be empty: without it, tokens the issuer minted for other services would be accepted")
		}
		if c.RolesClaim != "" {
			if err := validateDotPath(c.RolesClaim); err != nil {
				return &configError{path: path("roles_claim"), err: err}
			}
		}
		if c.UserIDClaim == "" {
			return configErr(path("user_id_claim"), "must not be empty")
		}
		if err := validateDotPath(c.UserIDClaim); err != nil {
			return &configError{path: path("user_id_claim"), err: err}
		}
		if c.RefreshInterval < MinTrustedRefreshInterval {
			return configErr(path("refresh_interval"), fmt.Sprintf("%v is shorter than the minimum %v", c.RefreshInterval, MinTrustedRefreshInterval))
		}
		if c.UnknownKIDInterval < MinTrustedUnknownKIDInterval {
			return configErr(path("unknown_kid_interval"), fmt.Sprintf("%v is shorter than the minimum %v", c.UnknownKIDInterval, MinTrustedUnknownKIDInterval))
		}
	}
	return nil
}

// validateJWKSURL requires an absolute https URL. Plain http is allowed only
// to a loopback host (tests, a sidecar): elsewhere anyone on the path could
// substitute their own keys.
func validateJWKSURL(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q must be an absolute https URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		// The URL appears in fetch errors, which are logged.
		return fmt.Errorf("%q must not contain user info", s)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q must use https (http is allowed only for 127.0.0.1, ::1 and localhost)", s)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// validateDotPath requires a claim path of non-empty names separated by
// dots.
func validateDotPath(p string) error {
	for seg := range strings.SplitSeq(p, ".") {
		if seg == "" {
			return fmt.Errorf("%q has an empty name: write names separated by single dots", p)
		}
	}
	return nil
}
