package token

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	want := Config{
		Issuer: "http://localhost:8080", Audience: "miniprogram",
		AccessTTL: 2 * time.Hour, RefreshTTL: 720 * time.Hour, RotateEvery: 720 * time.Hour,
		CacheSize: DefaultCacheSize,
	}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	set := Config{Issuer: "https://a.example", Audience: "x", AccessTTL: time.Minute, RefreshTTL: time.Hour, RotateEvery: time.Hour, CacheSize: 10}
	got := set
	got.ApplyDefaults()
	if got != set {
		t.Errorf("ApplyDefaults changed set fields: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*Config)
		wantPath string // "" = valid
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "https issuer with path", edit: func(c *Config) { c.Issuer = "https://auth.example.com/fd" }},
		{name: "never rotate", edit: func(c *Config) { c.RotateEvery = 0 }},
		{name: "no token cache", edit: func(c *Config) { c.CacheSize = 0 }},
		{name: "negative cache size", edit: func(c *Config) { c.CacheSize = -1 }, wantPath: "tokens.cache_size"},
		{name: "rotate every access_ttl", edit: func(c *Config) { c.RotateEvery = c.AccessTTL }},
		{name: "access_ttl 24h", edit: func(c *Config) { c.AccessTTL, c.RotateEvery = 24*time.Hour, 24*time.Hour }},
		{name: "empty issuer", edit: func(c *Config) { c.Issuer = "" }, wantPath: "tokens.issuer"},
		{name: "relative issuer", edit: func(c *Config) { c.Issuer = "/auth" }, wantPath: "tokens.issuer"},
		{name: "issuer without scheme", edit: func(c *Config) { c.Issuer = "localhost:8080" }, wantPath: "tokens.issuer"},
		{name: "ftp issuer", edit: func(c *Config) { c.Issuer = "ftp://example.com" }, wantPath: "tokens.issuer"},
		{name: "issuer with query", edit: func(c *Config) { c.Issuer = "https://example.com/?a=b" }, wantPath: "tokens.issuer"},
		{name: "issuer with fragment", edit: func(c *Config) { c.Issuer = "https://example.com/#x" }, wantPath: "tokens.issuer"},
		{name: "issuer with user", edit: func(c *Config) { c.Issuer = "https://u:p@example.com" }, wantPath: "tokens.issuer"},
		{name: "empty audience", edit: func(c *Config) { c.Audience = "" }, wantPath: "tokens.audience"},
		{name: "zero access_ttl", edit: func(c *Config) { c.AccessTTL = 0 }, wantPath: "tokens.access_ttl"},
		{name: "negative access_ttl", edit: func(c *Config) { c.AccessTTL = -time.Hour }, wantPath: "tokens.access_ttl"},
		{name: "access_ttl over 24h", edit: func(c *Config) { c.AccessTTL = 25 * time.Hour }, wantPath: "tokens.access_ttl"},
		{name: "zero refresh_ttl", edit: func(c *Config) { c.RefreshTTL = 0 }, wantPath: "tokens.refresh_ttl"},
		{name: "rotate faster than tokens live", edit: func(c *Config) { c.RotateEvery = time.Hour }, wantPath: "tokens.rotate_every"},
		{name: "negative rotate_every", edit: func(c *Config) { c.RotateEvery = -time.Hour }, wantPath: "tokens.rotate_every"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			p, ok := err.(interface{ ConfigPath() string })
			if !ok {
				t.Fatalf("error %v has no ConfigPath", err)
			}
			if p.ConfigPath() != tt.wantPath || !strings.HasPrefix(err.Error(), tt.wantPath+": ") {
				t.Errorf("error %q at %q, want path %q", err, p.ConfigPath(), tt.wantPath)
			}
		})
	}
}
