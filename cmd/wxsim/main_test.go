package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// start runs wxsim until the test ends and returns its printed base URL.
func start(t *testing.T, args []string, getenv func(string) string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, io.Discard, getenv)
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the base URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(line)
}

func login(t *testing.T, base, appID, secret string) int {
	t.Helper()
	resp, err := http.Post(base+"/sim/code", "application/json", strings.NewReader(`{"openid":"o-main"}`))
	if err != nil {
		t.Fatal(err)
	}
	var code struct{ Code string }
	err = json.NewDecoder(resp.Body).Decode(&code)
	resp.Body.Close()
	if err != nil || code.Code == "" {
		t.Fatalf("POST /sim/code: %v", err)
	}
	q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code.Code}, "grant_type": {"authorization_code"}}
	resp, err = http.Get(base + "/sns/jscode2session?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		ErrCode int
		OpenID  string
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if a.ErrCode == 0 && a.OpenID != "o-main" {
		t.Errorf("openid %q, want o-main", a.OpenID)
	}
	return a.ErrCode
}

func TestRunSecretSources(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		appID      string
		goodSecret string
	}{
		{"defaults", nil, nil, "wx0123456789abcdef", "wxsim-dev-secret"},
		{"environment", nil, map[string]string{"WXSIM_SECRET": "from-env"}, "wx0123456789abcdef", "from-env"},
		{"flags win", []string{"-appid", "wx00000000000000aa", "-secret", "from-flag"}, map[string]string{"WXSIM_SECRET": "from-env"}, "wx00000000000000aa", "from-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := start(t, append([]string{"-listen", "127.0.0.1:0"}, tt.args...), env(tt.env))
			if u, err := url.Parse(base); err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" {
				t.Fatalf("base URL %q", base)
			}
			if errcode := login(t, base, tt.appID, tt.goodSecret); errcode != 0 {
				t.Errorf("login with the expected secret: errcode %d", errcode)
			}
			if errcode := login(t, base, tt.appID, "something-else"); errcode != 40125 {
				t.Errorf("login with another secret: errcode %d, want 40125", errcode)
			}
		})
	}
}

func TestRunRefusesBadCommandLines(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name  string
		args  []string
		usage bool
	}{
		{"unknown flag", []string{"-port", "1"}, true},
		{"extra argument", []string{"serve"}, true},
		{"empty appid", []string{"-appid", ""}, true},
		{"zero ttl", []string{"-code-ttl", "0s"}, true},
		{"address in use", []string{"-listen", busy.Addr().String()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard, env(nil))
			if err == nil || errors.Is(err, errUsage) != tt.usage {
				t.Errorf("run = %v, want a usage error: %v", err, tt.usage)
			}
		})
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, io.Discard, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -h = %v, want flag.ErrHelp", err)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		addr     net.Addr
		url      string
		loopback bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9100}, "http://127.0.0.1:9100", true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9100}, "http://[::1]:9100", true},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9100}, "http://127.0.0.1:9100", false},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 80}, "http://192.168.1.2:80", false},
	}
	for _, tt := range tests {
		if u, lo := baseURL(tt.addr); u != tt.url || lo != tt.loopback {
			t.Errorf("baseURL(%v) = %q, %v; want %q, %v", tt.addr, u, lo, tt.url, tt.loopback)
		}
	}
}
