package driver

import (
	"fmt"
	"io"
)

// bodyLimit is how much of an answer's body is read into memory.
type bodyLimit struct {
	// keep: the bytes kept.
	keep int64
	// refuse: a body past keep fails with ErrTooLarge (a 2xx answer, which
	// must be read whole); otherwise it is cut at keep (an error answer,
	// whose status is the news).
	refuse bool
	// drain: of a body cut at keep, how many more bytes may be read and
	// dropped to keep the connection (net/http's LimitReader + drain).
	drain int64
}

// tooLargeError is a body the driver will not buffer. size is what the
// body was known to hold when it was refused (declared, or read so far plus
// the chunk that crossed the limit), so that the Observation reports it.
type tooLargeError struct {
	size    int64
	atLeast bool // size is a lower bound (no Content-Length)
	limit   int64
	budget  bool // limit is the memory Budget's, not MaxBody
	busy    bool // the budget had no room left for the body to grow
}

func (e *tooLargeError) Error() string {
	at := ""
	if e.atLeast {
		at = "at least "
	}
	switch {
	case e.busy:
		return fmt.Sprintf("body of %s%d bytes finds no room in the %s budget, in use by other answers", at, e.size, byteSize(e.limit))
	case e.budget:
		return fmt.Sprintf("body of %s%d bytes exceeds the %s budget", at, e.size, byteSize(e.limit))
	}
	return fmt.Sprintf("body of %s%d bytes exceeds the %s limit", at, e.size, byteSize(e.limit))
}

func (e *tooLargeError) Unwrap() error { return ErrTooLarge }

// byteSize words a limit as its options are usually given ("64 MiB").
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

// bodyRead is one body being read into memory: its limit, the buffer to
// reuse (a body decoded and dropped) and the memory it holds of the budget
// (nil: none).
type bodyRead struct {
	lim     bodyLimit
	scratch *[]byte
	res     *reservation
}

// minGrowth is the first buffer of a body of unknown length.
const minGrowth = 4 << 10

// alloc returns a buffer of n bytes for a body of known length, once the
// budget has them.
func (r *bodyRead) alloc(n int64) ([]byte, error) {
	if err := r.res.reserve(n); err != nil {
		return nil, err
	}
	if r.scratch != nil && int64(cap(*r.scratch)) >= n {
		return (*r.scratch)[:n], nil
	}
	b := make([]byte, n)
	if r.scratch != nil && n <= maxScratch {
		*r.scratch = b[:0]
	}
	return b, nil
}

// grow returns b with room for n more bytes (len(b) unchanged), doubling
// its capacity up to the limit; the budget reserves the capacity.
func (r *bodyRead) grow(b []byte, n int64) ([]byte, error) {
	need := int64(len(b)) + n
	if need <= int64(cap(b)) {
		return b, r.res.reserve(need) // a pooled buffer's room is there anyway
	}
	c := min(max(need, 2*int64(cap(b)), minGrowth), max(need, r.lim.keep+1))
	if err := r.res.reserve(c); err != nil {
		return b, err
	}
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb, nil
}

// readAll reads src to its end (length < 0) or its length bytes, keeping
// r.lim.keep: a refused body past it fails (ErrTooLarge), another is cut
// and up to r.lim.drain more bytes are dropped.
func (r *bodyRead) readAll(src io.Reader, length int64) ([]byte, error) {
	if length >= 0 {
		if r.lim.refuse && length > r.lim.keep {
			return nil, &tooLargeError{size: length, limit: r.lim.keep}
		}
		b, err := r.alloc(min(length, r.lim.keep))
		if err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(src, b); err != nil {
			return nil, unexpected(err)
		}
		if length > r.lim.keep {
			io.CopyN(io.Discard, src, r.lim.drain) // let the connection be reused
		}
		return b, nil
	}
	var b []byte
	if r.scratch != nil {
		b = (*r.scratch)[:0]
	}
	for {
		if int64(len(b)) > r.lim.keep {
			if r.lim.refuse {
				return nil, &tooLargeError{size: int64(len(b)), atLeast: true, limit: r.lim.keep}
			}
			b = b[:r.lim.keep]
			io.CopyN(io.Discard, src, r.lim.drain)
			return b, nil
		}
		if len(b) == cap(b) {
			var err error
			// One byte past keep tells a body at the limit from one past it.
			if b, err = r.grow(b, min(int64(cap(b))+1, r.lim.keep+1-int64(len(b)))); err != nil {
				return nil, err
			}
		}
		room := min(int64(cap(b)), r.lim.keep+1)
		n, err := src.Read(b[len(b):room])
		b = b[:len(b)+n]
		if err == io.EOF {
			if r.scratch != nil && cap(b) <= maxScratch {
				*r.scratch = b[:0]
			}
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
