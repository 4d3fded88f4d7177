//go:build unix && !linux

package driver

import (
	"io"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: a non-blocking
// peek finds nothing to read (EAGAIN). An end of stream (the server closed
// it while idle), a reset or unexpected bytes mean it must not be reused.
func alive(lc *leanConn) bool {
	if lc.raw == nil {
		return true
	}
	ok := false
	err := lc.raw.Read(func(fd uintptr) bool {
		var buf [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}

// newRawIO: the connection's own Read and Write here.
func newRawIO(net.Conn, syscall.RawConn) io.ReadWriter { return nil }
