//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// connOpen peeks at an idle connection without blocking: a connection the
// upstream closed reads EOF (or a reset), one with unasked-for data is not
// in a state to carry a request, and one that is fine has nothing to read.
func connOpen(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true // never wait for readability
	})
	return err == nil && open
}
