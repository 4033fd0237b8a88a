package clientip

import (
	"net/http"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "192.168.1.7", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer ignores XFF", "203.0.113.9:1234", []string{"1.2.3.4"}, "203.0.113.9"},
		{"trusted peer, one hop", "10.1.2.3:80", []string{"198.51.100.4"}, "198.51.100.4"},
		{"right-most untrusted wins", "10.1.2.3:80", []string{"6.6.6.6, 198.51.100.4, 10.9.9.9"}, "198.51.100.4"},
		{"several headers", "10.1.2.3:80", []string{"6.6.6.6", "198.51.100.4"}, "198.51.100.4"},
		{"bare address entry", "192.168.1.7:80", []string{"198.51.100.5"}, "198.51.100.5"},
		{"all trusted falls back to peer", "10.1.2.3:80", []string{"10.2.2.2"}, "10.1.2.3"},
		{"garbage stops trust", "10.1.2.3:80", []string{"6.6.6.6, not-an-ip"}, "10.1.2.3"},
		{"no XFF", "10.1.2.3:80", nil, "10.1.2.3"},
		{"ipv6 trusted peer", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:203.0.113.9]:80", nil, "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.ClientIP(req).String(); got != tc.want {
				t.Errorf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadCIDR(t *testing.T) {
	_, err := New([]string{"10.0.0.0/8", "nonsense"})
	if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies[1]") {
		t.Fatalf("error %v must name server.trusted_proxies[1]", err)
	}
	if p, ok := err.(interface{ ConfigPath() string }); !ok || p.ConfigPath() != "server.trusted_proxies[1]" {
		t.Errorf("error has no config path")
	}
}
