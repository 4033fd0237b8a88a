package wechat

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by Config.ApplyDefaults.
const (
	DefaultAPIBase = "https://api.weixin.qq.com"
	DefaultTimeout = 5 * time.Second
)

// Config is the `login.wechat:` section of config.yaml.
type Config struct {
	// AppID is the mini-program's AppID. Empty disables WeChat login.
	AppID string `yaml:"appid"`
	// Secret is the mini-program's AppSecret. It is sent to WeChat and never
	// appears in an error or log line.
	Secret string `yaml:"secret"`
	// APIBase is the scheme and host (and optional path prefix) of the WeChat
	// API; tests and `frontdoor dev` point it at the simulator.
	APIBase string `yaml:"api_base"`
	// Timeout bounds one whole Code2Session exchange, retries included.
	Timeout time.Duration `yaml:"timeout"`
}

// ConfigError is a validation failure of one field of the section.
type ConfigError struct {
	// Path is the dotted config path, e.g. "login.wechat.appid".
	Path string
	// Msg says what is wrong; it never contains the secret.
	Msg string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

// ConfigPath returns the dotted path of the offending field, which lets the
// config loader point at its line and column.
func (e *ConfigError) ConfigPath() string { return e.Path }

// ApplyDefaults fills in the fields left empty.
func (c *Config) ApplyDefaults() {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Enabled reports whether WeChat login is configured.
func (c Config) Enabled() bool { return c.AppID != "" }

// Validate checks the section after ApplyDefaults. It returns the first
// problem found as a *ConfigError.
func (c Config) Validate() error {
	if c.AppID != "" {
		if err := checkAppID(c.AppID); err != nil {
			return &ConfigError{Path: "login.wechat.appid", Msg: err.Error()}
		}
		if c.Secret == "" {
			return &ConfigError{Path: "login.wechat.secret", Msg: "must be set when appid is set"}
		}
	}
	if strings.TrimSpace(c.Secret) != c.Secret {
		// A stray space or newline (a secret pasted from a file) would make
		// every login fail with a confusing 40125 from WeChat.
		return &ConfigError{Path: "login.wechat.secret", Msg: "must not start or end with white space"}
	}
	if err := checkAPIBase(c.APIBase); err != nil {
		return &ConfigError{Path: "login.wechat.api_base", Msg: err.Error()}
	}
	if c.Timeout <= 0 {
		return &ConfigError{Path: "login.wechat.timeout", Msg: fmt.Sprintf("must be positive, got %v", c.Timeout)}
	}
	return nil
}

// checkAppID accepts what WeChat issues: "wx" followed by 16 hex digits.
func checkAppID(id string) error {
	const hexLen = 16
	if !strings.HasPrefix(id, "wx") || len(id) != 2+hexLen {
		return fmt.Errorf("%q is not a mini-program AppID (want \"wx\" and 16 hex digits)", id)
	}
	for _, r := range id[2:] {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return fmt.Errorf("%q is not a mini-program AppID (want \"wx\" and 16 hex digits)", id)
		}
	}
	return nil
}

func checkAPIBase(base string) error {
	if base == "" {
		return fmt.Errorf("must be set")
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an absolute http or https URL", base)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", base)
	}
	if u.User != nil {
		return fmt.Errorf("must not contain user information")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("%q must not have a query or fragment", base)
	}
	return nil
}
