package login

import (
	"fmt"
	"time"

	"frontdoor/login/wechat"
)

// Config is the `login:` section of config.yaml.
type Config struct {
	// DefaultRoles are given to users created by WeChat login.
	DefaultRoles []string        `yaml:"default_roles"`
	WeChat       wechat.Config   `yaml:"wechat"`
	Password     PasswordConfig  `yaml:"password"`
	RateLimit    RateLimitConfig `yaml:"rate_limit"`
}

// PasswordConfig is `login.password:`.
type PasswordConfig struct {
	// Enabled serves POST /auth/login; when false it answers 404.
	Enabled bool `yaml:"enabled"`
	// Argon2MemoryKiB, Argon2Time and Argon2Threads are the argon2id cost of
	// new password hashes. Stored hashes keep the parameters they were made
	// with and are upgraded at the next successful login. The defaults
	// (64 MiB, 1 pass, 2 lanes; above OWASP's 46 MiB/1 pass minimum) take
	// 75-100 ms on two busy cores; raise them as far as login latency and
	// memory allow.
	Argon2MemoryKiB uint32 `yaml:"argon2_memory_kib"`
	Argon2Time      uint32 `yaml:"argon2_time"`
	Argon2Threads   uint8  `yaml:"argon2_threads"`
}

// ApplyDefaults fills in the default argon2id parameters.
func (c *PasswordConfig) ApplyDefaults() {
	if c.Argon2MemoryKiB == 0 {
		c.Argon2MemoryKiB = 64 << 10
	}
	if c.Argon2Time == 0 {
		c.Argon2Time = 1
	}
	if c.Argon2Threads == 0 {
		c.Argon2Threads = 2
	}
}

// RateLimitConfig is `login.rate_limit:`: protection of the login endpoints.
type RateLimitConfig struct {
	// PerIPPerMinute limits every /auth/ login endpoint per client IP.
	PerIPPerMinute int `yaml:"per_ip_per_minute"`
	// PerUsernamePerMinute limits password logins per username.
	PerUsernamePerMinute int `yaml:"per_username_per_minute"`
	// LockoutAfter consecutive failures of one username lock it for LockoutFor.
	LockoutAfter int           `yaml:"lockout_after"`
	LockoutFor   time.Duration `yaml:"lockout_for"`
}

// ApplyDefaults fills in the documented defaults.
func (c *Config) ApplyDefaults() {
	if c.DefaultRoles == nil {
		c.DefaultRoles = []string{"subscriber"}
	}
	c.WeChat.ApplyDefaults()
	c.Password.ApplyDefaults()
	r := &c.RateLimit
	if r.PerIPPerMinute == 0 {
		r.PerIPPerMinute = 20
	}
	if r.PerUsernamePerMinute == 0 {
		r.PerUsernamePerMinute = 5
	}
	if r.LockoutAfter == 0 {
		r.LockoutAfter = 10
	}
	if r.LockoutFor == 0 {
		r.LockoutFor = 15 * time.Minute
	}
}

// ConfigError is a validation error at a path of config.yaml.
type ConfigError struct{ Path, Msg string }

func (e *ConfigError) Error() string      { return e.Path + ": " + e.Msg }
func (e *ConfigError) ConfigPath() string { return e.Path }

// Validate checks the section. hasRole reports whether a role is defined in
// the policy, so default roles cannot name a role that does not exist.
func (c Config) Validate(hasRole func(string) bool) []error {
	var errs []error
	for i, r := range c.DefaultRoles {
		if hasRole != nil && !hasRole(r) {
			errs = append(errs, &ConfigError{fmt.Sprintf("login.default_roles[%d]", i), fmt.Sprintf("unknown role %q", r)})
		}
	}
	if err := c.WeChat.Validate(); err != nil {
		errs = append(errs, err)
	}
	r := c.RateLimit
	for _, f := range []struct {
		path string
		v    int
	}{
		{"login.rate_limit.per_ip_per_minute", r.PerIPPerMinute},
		{"login.rate_limit.per_username_per_minute", r.PerUsernamePerMinute},
		{"login.rate_limit.lockout_after", r.LockoutAfter},
	} {
		if f.v < 0 {
			errs = append(errs, &ConfigError{f.path, "must not be negative"})
		}
	}
	if r.LockoutFor < 0 {
		errs = append(errs, &ConfigError{"login.rate_limit.lockout_for", "must not be negative"})
	}
	if field, msg := c.Password.params().problem(); field != "" {
		errs = append(errs, &ConfigError{"login.password." + field, msg})
	}
	return errs
}
