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
func alive(lc *leanConn) bool {
	r, ok := lc.rw.(*rawIO)
	if !ok {
		return true
	}
	r.peekOK = false
	err := r.rc.Read(r.peekFn)
	return err == nil && r.peekOK
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
	// The call in progress (a connection serves one request at a time) and
	// the functions RawConn runs, bound once so that a call allocates
	// nothing.
	p                               []byte
	n                               int
	errno                           syscall.Errno
	peekOK                          bool
	readFn, writeFn, peekFn, sendFn func(fd uintptr) bool
	// A request queued to go out from within the next Read (see queue).
	out    []byte
	outN   int
	outErr syscall.Errno
}

func newRawIO(c net.Conn, rc syscall.RawConn) io.ReadWriter {
	if rc == nil {
		return nil
	}
	r := &rawIO{rc: rc, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	r.readFn, r.writeFn, r.peekFn, r.sendFn = r.read, r.write, r.peek, r.send
	return r
}

// opErr words a failure as net.Conn's Read and Write do.
func (r *rawIO) opErr(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) { // the poller's (deadline, closed)
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.laddr, Addr: r.raddr, Err: err}
}

// peek: MSG_DONTWAIT cannot block.
func (r *rawIO) peek(fd uintptr) bool {
	var buf [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	r.peekOK = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
	return true
}

// queue has b sent by the next Read, from within its wait for the answer:
// the poller's read readiness is reset before b goes out, so the answer's
// cannot be missed, and no read is tried before the answer can have come
// (a plain write then read costs a read that finds nothing).
func (r *rawIO) queue(b []byte) { r.out, r.outN, r.outErr = b, 0, 0 }

// dequeue reports how much of the queued request was written and drops it.
func (r *rawIO) dequeue() (n int, all bool) {
	n, all = r.outN, r.out == nil
	r.out, r.outN, r.outErr = nil, 0, 0
	return n, all
}

// writeAll writes p[*n:] to fd, advancing *n, until all is written or the
// write fails (EAGAIN included); it retries on EINTR.
func writeAll(fd uintptr, p []byte, n *int) syscall.Errno {
	for *n < len(p) {
		k, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[*n])), uintptr(len(p)-*n))
		switch e {
		case 0:
			*n += int(k)
		case syscall.EINTR:
		default:
			return e
		}
	}
	return 0
}

func (r *rawIO) read(fd uintptr) bool {
	if r.out != nil {
		if e := writeAll(fd, r.out, &r.outN); e != 0 {
			r.outErr = e // EAGAIN included: Read finishes sending
			return true
		}
		r.out = nil
		return false // sent: wait for the answer
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		if errno != syscall.EINTR {
			r.n, r.errno = int(n), errno
			return errno != syscall.EAGAIN
		}
	}
}

// send writes the rest of a queued request that did not fit at once; false
// (EAGAIN) has the poller wait until the socket is writable.
func (r *rawIO) send(fd uintptr) bool {
	e := writeAll(fd, r.out, &r.outN)
	if e != syscall.EAGAIN {
		r.outErr = e
	}
	return e != syscall.EAGAIN
}

func (r *rawIO) write(fd uintptr) bool {
	e := writeAll(fd, r.p, &r.n)
	if e != syscall.EAGAIN {
		r.errno = e
	}
	return e != syscall.EAGAIN
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.readFn)
	if err == nil && r.outErr != 0 {
		// The queued request did not go out in full.
		e := r.outErr
		r.outErr = 0
		if e != syscall.EAGAIN {
			r.p = nil
			return 0, r.opErr("write", os.NewSyscallError("write", e))
		}
		if err := r.rc.Write(r.sendFn); err != nil || r.outErr != 0 {
			r.p = nil
			if err == nil {
				err = os.NewSyscallError("write", r.outErr)
			}
			return 0, r.opErr("write", err)
		}
		r.out = nil
		err = r.rc.Read(r.readFn)
	}
	n, errno := r.n, r.errno
	r.p = nil
	switch {
	case err != nil:
		return 0, r.opErr("read", err)
	case errno != 0:
		return 0, r.opErr("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n, errno := r.n, r.errno
	r.p = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return n, r.opErr("write", err)
	}
	return n, nil
}
