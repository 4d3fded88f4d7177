package driver

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// alive reports whether an idle connection is still open: a non-blocking
// peek finds nothing to read (EAGAIN). An end of stream (the server closed
// it while idle), a reset or unexpected bytes mean it must not be reused.
// MSG_DONTWAIT cannot block, so the raw syscall skips the scheduler's
// syscall bookkeeping.
func alive(lc *leanConn) bool {
	if lc.raw == nil {
		return true
	}
	ok := false
	err := lc.raw.Read(func(fd uintptr) bool {
		var buf [1]byte
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		ok = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}

// rawIO reads and writes a connection's socket with raw system calls: it is
// non-blocking, so a call cannot block, and the scheduler's syscall
// bookkeeping is skipped. That matters on loopback, where a write carries
// the receiver's whole TCP path and takes longer than sysmon's 20 us tick:
// sysmon would then take the P away from every write and wake another
// thread for it. Waiting for readiness and deadlines stay the poller's.
type rawIO struct {
	rc           syscall.RawConn
	laddr, raddr net.Addr
}

func newRawIO(c net.Conn, rc syscall.RawConn) io.ReadWriter {
	if rc == nil {
		return nil
	}
	return &rawIO{rc: rc, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
}

// opErr words a failure as net.Conn's Read and Write do.
func (r *rawIO) opErr(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) { // the poller's (deadline, closed)
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.laddr, Addr: r.raddr, Err: err}
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, r.opErr("read", err)
	case errno != 0:
		return 0, r.opErr("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	done := 0
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				done += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return done, r.opErr("write", err)
	}
	return done, nil
}
