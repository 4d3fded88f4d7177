// Package history is the run's record of what each user did: a bounded,
// sharded log of every request's observation, kept per user in completion
// order. It is the oracle's evidence (the last requests of a violation's
// viewer and owner) and the source of repro traces (harness/repro).
package history

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/models"
)

// Bounds of the log.
const (
	// PatientCap bounds the ops kept per patient (a patient's whole
	// lifecycle is about 15 requests); clinicians serve many patients, so
	// they keep more, and are few.
	PatientCap   = 64
	ClinicianCap = 1024
	// MaxUsers bounds the users logged; later users are not logged.
	MaxUsers = 200_000
)

// Entry is one logged request.
type Entry struct {
	Seq        uint64 // completion order over the whole run
	Op         driver.Op
	Subject    string
	Start, End int64 // unix nanos
	Status     int
	Bytes      int
	Err        error // transport error (no answer), for evidence
	OK         bool  // a 2xx (or a status-less success)
}

// Note is the entry as violations' evidence shows it.
func (e Entry) Note() oracle.OpNote {
	return oracle.OpNote{Op: string(e.Op), Subject: e.Subject, Status: e.Status, Bytes: e.Bytes, Dur: time.Duration(e.End - e.Start), Err: e.Err}
}

// ring keeps a user's last cap entries.
type ring struct {
	user string
	buf  []Entry
	next int // oldest entry once full
	cap  int
}

func (r *ring) add(e Entry) {
	if len(r.buf) < r.cap {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % r.cap
}

// entries returns the ring's entries, oldest first.
func (r *ring) entries() []Entry {
	out := make([]Entry, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Log is the run's per-user op log. The zero value is ready to use; safe for
// concurrent use. It is sharded by user like the oracle, so the run's
// observer does not serialise every request of every user on one lock;
// completion order over the whole run comes from one atomic sequence.
type Log struct {
	seq     atomic.Uint64
	nUsers  atomic.Int64 // users logged, at most MaxUsers
	dropped atomic.Int64 // observations of users beyond MaxUsers
	shards  [nShards]logShard
}

const nShards = 64

type logShard struct {
	mu sync.Mutex
	// users is keyed by the user's 64-bit tag: hashing and comparing an
	// integer touches less memory than a string on this per-request path.
	// A ring whose user differs (a tag collision, about one in 10^9 runs of
	// 200,000 users) sends that user to other.
	users map[uint64]*ring
	other map[string]*ring
	_     [32]byte // keep neighbouring shards' locks off one cache line
}

// ring returns user's ring, or nil; the caller holds s.mu.
func (s *logShard) ring(tag uint64, user string) *ring {
	r := s.users[tag]
	if r != nil && r.user != user {
		r = s.other[user]
	}
	return r
}

func (l *Log) shard(tag uint64) *logShard { return &l.shards[tag%nShards] }

// Add logs an observation (register and health carry no user and are not
// logged: trace users register implicitly). It reports whether the
// observation was logged: not for a user past MaxUsers.
func (l *Log) Add(ledger *models.Ledger, o driver.Observation) bool {
	if o.User == "" || o.Op == driver.OpRegister || o.Op == driver.OpHealth {
		return true
	}
	ok := o.Err == nil && (o.Status == 0 || o.Status/100 == 2)
	tag := models.TagOf(o.User)
	s := l.shard(tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(tag, o.User)
	if r == nil {
		if l.nUsers.Add(1) > MaxUsers {
			l.nUsers.Add(-1)
			l.dropped.Add(1)
			return false
		}
		// One allocation for a patient's usual lifecycle, not one per
		// doubling from a single entry.
		r = &ring{user: o.User, cap: PatientCap, buf: make([]Entry, 0, firstCap)}
		switch {
		case s.users == nil:
			s.users = map[uint64]*ring{tag: r}
		case s.users[tag] == nil:
			s.users[tag] = r
		default:
			if s.other == nil {
				s.other = map[string]*ring{}
			}
			s.other[o.User] = r
		}
	}
	if len(r.buf) == PatientCap && r.cap == PatientCap {
		// Full at a patient's bound: clinicians serve many patients and keep
		// more (the role is looked up once, here, not for every new user).
		if role, _ := ledger.Role(o.User); role == models.Clinician {
			r.cap = ClinicianCap
		}
	}
	e := Entry{Seq: l.seq.Add(1), Op: o.Op, Subject: o.Subject, Start: o.Start.UnixNano(), End: o.End.UnixNano(), Status: o.Status, Bytes: o.Bytes, OK: ok}
	if o.Status == 0 {
		e.Err = o.Err
	}
	r.add(e)
	return true
}

// firstCap is a new user's first ring capacity: a media-free patient's
// whole lifecycle.
const firstCap = 16

// Notes returns a user's last n entries as evidence notes (the oracle's
// Options.History), oldest first.
func (l *Log) Notes(user string, n int) []oracle.OpNote {
	es := l.Of(user)
	es = es[max(len(es)-n, 0):]
	out := make([]oracle.OpNote, len(es))
	for i, e := range es {
		out[i] = e.Note()
	}
	return out
}

// Of returns a copy of a user's entries, oldest first.
func (l *Log) Of(user string) []Entry {
	tag := models.TagOf(user)
	s := l.shard(tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ring(tag, user); r != nil {
		return r.entries()
	}
	return nil
}

// Dropped counts observations of users beyond MaxUsers.
func (l *Log) Dropped() int64 { return l.dropped.Load() }
