package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to the whole config.yaml parser:
// YAML decoding, ${VAR} expansion, every section's validation, policy
// compilation and the policy tests. Whatever the input, it must return a
// config or an error, never panic, and a config it accepts must be complete.
func FuzzParseConfig(f *testing.F) {
	shipped, err := os.ReadFile("../../config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	f.Add([]byte(fmt.Sprintf(e2eConfig, "x.db", "http://127.0.0.1:1")))
	for _, s := range []string{
		"",
		"roles: {a: {inherits: [a]}}",
		"routes:\n  - {path: /a/{id}/**, upstream: u}\nupstreams: {u: {url: http://127.0.0.1:1}}",
		"server: {listen: ':0', shutdown_grace: -1s}",
		"store: {driver: postgres}",
		"tokens: {access_ttl: 1ns, rotate_every: 0}",
		"login: {wechat: {appid: x, secret: '${NOPE}'}}",
		"trusted_issuers: [{issuer: 'https://sso', jwks_url: 'https://sso/jwks', audience: a}]",
		"routes: [&a {path: /x}, *a]",
		"tests:\n  - {request: 'GET /x', roles: [a], expect: allow}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig("config.yaml", data, nil)
		if err != nil {
			if cfg != nil {
				t.Fatalf("parseConfig returned a config with the error %v", err)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if cfg.policy == nil || cfg.runtime == nil || cfg.clientIP == nil {
			t.Fatalf("accepted config is incomplete: %+v", cfg)
		}
	})
}
