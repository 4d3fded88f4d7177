//go:build !unix

package driver

import (
	"io"
	"net"
	"syscall"
)

// alive cannot peek without blocking here: a closed connection is found
// when it is used (and a GET retried).
func alive(*leanConn) bool { return true }

// newRawIO: the connection's own Read and Write here.
func newRawIO(net.Conn, syscall.RawConn) io.ReadWriter { return nil }
