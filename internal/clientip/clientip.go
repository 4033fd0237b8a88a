// Package clientip finds the address of the client behind a request, trusting
// X-Forwarded-For only from configured proxies. The proxy (for
// X-Forwarded-For) and the login rate limiter (per-IP limits) must agree on
// it, so both use this one implementation.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero value trusts no proxy.
type Resolver struct {
	trusted []netip.Prefix
}

// New parses trusted proxy CIDRs (bare addresses are accepted as /32 or /128).
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	for i, c := range cidrs {
		c = strings.TrimSpace(c)
		var p netip.Prefix
		var err error
		if strings.Contains(c, "/") {
			p, err = netip.ParsePrefix(c)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(c); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, &configError{path: fmt.Sprintf("server.trusted_proxies[%d]", i), err: err}
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

type configError struct {
	path string
	err  error
}

func (e *configError) Error() string      { return e.path + ": " + e.err.Error() }
func (e *configError) Unwrap() error      { return e.err }
func (e *configError) ConfigPath() string { return e.path }

// Peer returns the address of the TCP peer.
func Peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// Trusted reports whether addr is one of the trusted proxies.
func (r *Resolver) Trusted(addr netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address: the peer, or, when the peer is a
// trusted proxy, the right-most address in X-Forwarded-For that is not itself
// a trusted proxy. Right-most, because everything left of the last trusted hop
// was written by the client and can be forged.
func (r *Resolver) ClientIP(req *http.Request) netip.Addr {
	return r.Resolve(Peer(req), req.Header)
}

// Resolve is ClientIP for a caller that already knows the peer address.
func (r *Resolver) Resolve(peer netip.Addr, h http.Header) netip.Addr {
	if len(r.trusted) == 0 || !r.Trusted(peer) {
		return peer
	}
	values := h.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // garbage in the chain: stop trusting it
			}
			a = a.Unmap()
			if !r.Trusted(a) {
				return a
			}
		}
	}
	return peer
}
