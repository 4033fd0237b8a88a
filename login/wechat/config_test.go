package wechat

import (
	"strings"
	"testing"
	"time"
)

func TestConfigApplyDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.APIBase != "https://api.weixin.qq.com" || c.Timeout != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	c = Config{APIBase: "http://127.0.0.1:9100", Timeout: time.Second}
	c.ApplyDefaults()
	if c.APIBase != "http://127.0.0.1:9100" || c.Timeout != time.Second {
		t.Errorf("ApplyDefaults overwrote set fields: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	valid := func(edit func(*Config)) Config {
		c := Config{AppID: "wx4f4bc4dec97d474b", Secret: secret}
		c.ApplyDefaults()
		if edit != nil {
			edit(&c)
		}
		return c
	}
	tests := []struct {
		name     string
		cfg      Config
		wantPath string // "" = valid
	}{
		{"valid", valid(nil), ""},
		{"upper-case hex appid", valid(func(c *Config) { c.AppID = "wx4F4BC4DEC97D474B" }), ""},
		{"disabled", valid(func(c *Config) { c.AppID, c.Secret = "", "" }), ""},
		{"plain http base with path", valid(func(c *Config) { c.APIBase = "http://127.0.0.1:9100/wx/" }), ""},
		{"appid without wx", valid(func(c *Config) { c.AppID = "4f4bc4dec97d474b00" }), "login.wechat.appid"},
		{"appid too short", valid(func(c *Config) { c.AppID = "wx4f4bc4dec97d474" }), "login.wechat.appid"},
		{"appid not hex", valid(func(c *Config) { c.AppID = "wx4f4bc4dec97d474g" }), "login.wechat.appid"},
		{"appid with space", valid(func(c *Config) { c.AppID = " wx4f4bc4dec97d474b" }), "login.wechat.appid"},
		{"appid without secret", valid(func(c *Config) { c.Secret = "" }), "login.wechat.secret"},
		{"secret with newline", valid(func(c *Config) { c.Secret = secret + "\n" }), "login.wechat.secret"},
		{"relative api_base", valid(func(c *Config) { c.APIBase = "api.weixin.qq.com" }), "login.wechat.api_base"},
		{"ftp api_base", valid(func(c *Config) { c.APIBase = "ftp://api.weixin.qq.com" }), "login.wechat.api_base"},
		{"api_base without host", valid(func(c *Config) { c.APIBase = "https://" }), "login.wechat.api_base"},
		{"api_base with query", valid(func(c *Config) { c.APIBase = "https://api.weixin.qq.com?x=1" }), "login.wechat.api_base"},
		{"api_base with user", valid(func(c *Config) { c.APIBase = "https://u:p@api.weixin.qq.com" }), "login.wechat.api_base"},
		{"api_base unparsable", valid(func(c *Config) { c.APIBase = "http://[::1" }), "login.wechat.api_base"},
		{"empty api_base", valid(func(c *Config) { c.APIBase = "" }), "login.wechat.api_base"},
		{"zero timeout", valid(func(c *Config) { c.Timeout = 0 }), "login.wechat.timeout"},
		{"negative timeout", valid(func(c *Config) { c.Timeout = -time.Second }), "login.wechat.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			p, ok := err.(interface{ ConfigPath() string })
			if !ok {
				t.Fatalf("Validate = %v (%T), want an error with ConfigPath", err, err)
			}
			if p.ConfigPath() != tt.wantPath {
				t.Errorf("ConfigPath = %q, want %q (%v)", p.ConfigPath(), tt.wantPath, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestConfigEnabled(t *testing.T) {
	if (Config{}).Enabled() {
		t.Error("empty config enabled")
	}
	if !(Config{AppID: "wx4f4bc4dec97d474b"}).Enabled() {
		t.Error("config with appid disabled")
	}
}
