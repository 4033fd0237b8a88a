//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// probe peeks at an idle connection without blocking: a connection the
// upstream closed reads EOF (or a reset), one with unasked-for data is not
// in a state to carry a request, and one that is fine has nothing to read.
// It is built once per connection, so that probing before each reuse
// allocates nothing.
type probe struct {
	rc     syscall.RawConn
	peek   func(fd uintptr) bool
	isOpen bool
	buf    [1]byte
}

// newProbe returns nc's probe, or nil if nc is not a socket, whose
// connections are then taken as open.
func newProbe(nc net.Conn) *probe {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &probe{rc: rc}
	p.peek = func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.isOpen = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // never wait for readability
	}
	return p
}

// open reports whether the connection is open with nothing to read.
func (p *probe) open() bool {
	if p == nil {
		return true
	}
	p.isOpen = false
	err := p.rc.Read(p.peek)
	return err == nil && p.isOpen
}
