package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"frontdoor/internal/clientip"
	"frontdoor/internal/yamlconf"
	"frontdoor/login"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/policy"
	"frontdoor/proxy"
)

// fileConfig is config.yaml. Each section's type belongs to the package that
// uses it; this file only composes them.
type fileConfig struct {
	Server          serverConfig                    `yaml:"server"`
	Store           store.Config                    `yaml:"store"`
	Tokens          token.Config                    `yaml:"tokens"`
	Login           login.Config                    `yaml:"login"`
	IdentityHeaders proxy.IdentityHeaders           `yaml:"identity_headers"`
	TrustedIssuers  []token.TrustedIssuerConfig     `yaml:"trusted_issuers"`
	Roles           map[string]policy.RoleSpec      `yaml:"roles"`
	Upstreams       map[string]proxy.UpstreamConfig `yaml:"upstreams"`
	Routes          []policy.RouteSpec              `yaml:"routes"`
	Tests           []policy.TestSpec               `yaml:"tests"`
}

// serverConfig is `server:`: the listeners, owned by the binary.
type serverConfig struct {
	Listen         string        `yaml:"listen"`
	AdminListen    string        `yaml:"admin_listen"`
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`
	TrustedProxies []string      `yaml:"trusted_proxies"`
	// ReadHeaderTimeout cuts clients that send headers too slowly (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers; beyond it the
	// client gets 431.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

func (s *serverConfig) applyDefaults() {
	if s.Listen == "" {
		s.Listen = ":8080"
	}
	if s.AdminListen == "" {
		s.AdminListen = "127.0.0.1:9090"
	}
	if s.ShutdownGrace == 0 {
		s.ShutdownGrace = 20 * time.Second
	}
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = 10 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 120 * time.Second
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 32 << 10
	}
}

func (s serverConfig) validate() []error {
	var errs []error
	for _, a := range []struct{ path, addr string }{{"server.listen", s.Listen}, {"server.admin_listen", s.AdminListen}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, &yamlconf.PathError{Path: a.path, Msg: fmt.Sprintf("%q is not host:port", a.addr)})
		}
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"server.shutdown_grace", s.ShutdownGrace}, {"server.read_header_timeout", s.ReadHeaderTimeout}, {"server.idle_timeout", s.IdleTimeout}} {
		if d.v < 0 {
			errs = append(errs, &yamlconf.PathError{Path: d.path, Msg: "must not be negative"})
		}
	}
	if s.MaxHeaderBytes < 4096 {
		errs = append(errs, &yamlconf.PathError{Path: "server.max_header_bytes", Msg: "must be at least 4096"})
	}
	return errs
}

// config is a loaded, fully validated config.yaml.
type config struct {
	file     fileConfig
	path     string
	hash     string
	policy   *policy.Policy
	runtime  *proxy.Runtime
	clientIP *clientip.Resolver
}

// loadConfig reads, parses and validates the whole file. transport is shared
// by the upstream pools (nil for commands that never proxy). Every error
// names the file, line and column.
func loadConfig(path string, transport http.RoundTripper) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parseConfig(path, data, transport)
}

func parseConfig(path string, data []byte, transport http.RoundTripper) (*config, error) {
	doc, err := yamlconf.Parse(path, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	// Defaults go in before decoding, so that a value written in the file,
	// even an explicit zero ("rotate_every: 0" = never), wins over them.
	var f fileConfig
	f.Server.applyDefaults()
	f.Store.ApplyDefaults()
	f.Tokens.ApplyDefaults()
	f.Login.ApplyDefaults()
	if err := doc.Decode(&f); err != nil {
		return nil, err
	}

	var errs []error
	errs = append(errs, f.Server.validate()...)
	if err := f.Store.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.Tokens.Validate(); err != nil {
		errs = append(errs, err)
	}
	// List entries exist only once decoded, so their defaults come after.
	for i := range f.TrustedIssuers {
		f.TrustedIssuers[i].ApplyDefaults()
	}
	if err := token.ValidateTrustedIssuers(f.TrustedIssuers, f.Tokens.Issuer); err != nil {
		errs = append(errs, err)
	}
	resolver, err := clientip.New(f.Server.TrustedProxies)
	if err != nil {
		errs = append(errs, err)
	}
	pol, err := policy.Compile(policy.Config{Roles: f.Roles, Routes: f.Routes, Tests: f.Tests})
	if err != nil {
		errs = append(errs, err)
	}
	var hasRole func(string) bool
	if pol != nil {
		hasRole = pol.HasRole
		// Policy tests guard every load: startup, `check` and reload alike.
		for i, res := range pol.RunTests() {
			if !res.Pass {
				errs = append(errs, &yamlconf.PathError{Path: fmt.Sprintf("tests[%d]", i),
					Msg: fmt.Sprintf("policy test %q failed: %s %s expected %s, got %s", res.Name, res.Method, res.Path, res.Want, res.Got)})
			}
		}
	}
	errs = append(errs, f.Login.Validate(hasRole)...)
	var rt *proxy.Runtime
	if pol != nil {
		rt, err = proxy.NewRuntime(proxy.Config{IdentityHeaders: f.IdentityHeaders, Upstreams: f.Upstreams}, pol, transport, time.Now)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, doc.Locate(err)
	}
	sum := sha256.Sum256(data)
	return &config{
		file:     f,
		path:     path,
		hash:     hex.EncodeToString(sum[:8]),
		policy:   pol,
		runtime:  rt,
		clientIP: resolver,
	}, nil
}
