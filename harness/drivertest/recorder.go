package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/models"
)

// Exchange is one request the conformance suite made through the target
// under test and the answer it got, as text a failure can quote.
type Exchange struct {
	Op      driver.Op
	User    string // acting user id ("" for register and health)
	Subject string // the id acted on
	Request string
	Answer  string
	Err     error
	value   any // the decoded answer (nil on error)
}

// recorder is the target under test as the suite's client sees it: every
// call goes through unchanged and is logged, so a failed clause names the
// request that broke it and what came back.
type recorder struct {
	t driver.Target

	mu    sync.Mutex
	log   []Exchange
	names map[string]string // user id -> the suite's name for it
}

var _ driver.Target = (*recorder)(nil)

func newRecorder(t driver.Target) *recorder { return &recorder{t: t, names: map[string]string{}} }

func (r *recorder) name(id, n string) {
	r.mu.Lock()
	r.names[id] = n
	r.mu.Unlock()
}

func (r *recorder) who(s driver.Session) string {
	r.mu.Lock()
	n := r.names[s.ID]
	r.mu.Unlock()
	if n == "" {
		n = string(s.Role)
	}
	return n + " " + s.ID
}

func (r *recorder) add(e Exchange, v any, err error) {
	e.Err = err
	if err != nil {
		e.Answer = answerOfErr(err)
	} else {
		e.value = v
	}
	r.mu.Lock()
	r.log = append(r.log, e)
	r.mu.Unlock()
}

// mark is the log position now: exchanges after it belong to what follows.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// since returns the exchanges from mark on that match (nil match: all).
func (r *recorder) since(mark int, match func(Exchange) bool) []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Exchange
	for _, e := range r.log[min(mark, len(r.log)):] {
		if match == nil || match(e) {
			out = append(out, e)
		}
	}
	return out
}

// last returns the last exchange from mark on that matches.
func (r *recorder) last(mark int, match func(Exchange) bool) (Exchange, bool) {
	ex := r.since(mark, match)
	if len(ex) == 0 {
		return Exchange{}, false
	}
	return ex[len(ex)-1], true
}

func answerOfErr(err error) string {
	var se *driver.StatusError
	if errors.As(err, &se) {
		return clip(se.Error(), maxExcerpt)
	}
	return "error: " + clip(err.Error(), maxExcerpt)
}

// maxExcerpt bounds a quoted answer or SDP.
const maxExcerpt = 240

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sdpExcerpt quotes an SDP on one line.
func sdpExcerpt(sdp string) string {
	return fmt.Sprintf("%d bytes %q", len(sdp), clip(sdp, 120))
}

func tracksText(ts []driver.TrackInfo) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("{id %s owner %s %s %s/%s segment %d frames %d}", t.ID, t.Owner, t.Kind, t.Codec, t.Format, t.Segment, t.Frames))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (r *recorder) Register(ctx context.Context, role models.Role) (driver.Session, error) {
	s, err := r.t.Register(ctx, role)
	r.add(Exchange{Op: driver.OpRegister, Request: "register role " + string(role),
		Answer: fmt.Sprintf("ok: user id %q role %q token %d bytes", s.ID, s.Role, len(s.Token))}, s, err)
	return s, err
}

func (r *recorder) Book(ctx context.Context, p driver.Session, clinicianID string) (driver.Booking, error) {
	b, err := r.t.Book(ctx, p, clinicianID)
	r.add(Exchange{Op: driver.OpBook, User: p.ID, Subject: clinicianID,
		Request: fmt.Sprintf("book as %s with clinician %s", r.who(p), clinicianID),
		Answer:  fmt.Sprintf("ok: appointment %q consultation %q patient %q clinician %q", b.AppointmentID, b.ConsultationID, b.PatientID, b.ClinicianID)}, b, err)
	return b, err
}

func (r *recorder) Join(ctx context.Context, s driver.Session, cid, offer string) (string, int, error) {
	answer, seg, err := r.t.Join(ctx, s, cid, offer)
	r.add(Exchange{Op: driver.OpJoin, User: s.ID, Subject: cid,
		Request: fmt.Sprintf("join %s as %s with an audio offer (%d bytes SDP)", cid, r.who(s), len(offer)),
		Answer:  fmt.Sprintf("ok: segment %d, answer %s", seg, sdpExcerpt(answer))}, answer, err)
	return answer, seg, err
}

func (r *recorder) SwitchVideo(ctx context.Context, s driver.Session, cid, offer string) (string, error) {
	answer, err := r.t.SwitchVideo(ctx, s, cid, offer)
	r.add(Exchange{Op: driver.OpSwitch, User: s.ID, Subject: cid,
		Request: fmt.Sprintf("switch %s to video as %s with a re-offer (%d bytes SDP)", cid, r.who(s), len(offer)),
		Answer:  "ok: answer " + sdpExcerpt(answer)}, answer, err)
	return answer, err
}

func (r *recorder) End(ctx context.Context, s driver.Session, cid string) (driver.EndResult, error) {
	res, err := r.t.End(ctx, s, cid)
	r.add(Exchange{Op: driver.OpEnd, User: s.ID, Subject: cid,
		Request: fmt.Sprintf("end %s as %s", cid, r.who(s)),
		Answer:  fmt.Sprintf("ok: consultation %q recording %q tracks %s", res.ConsultationID, res.RecordingID, tracksText(res.Tracks))}, res, err)
	return res, err
}

func (r *recorder) Consultation(ctx context.Context, s driver.Session, cid string) (driver.ConsultationInfo, error) {
	ci, err := r.t.Consultation(ctx, s, cid)
	r.add(Exchange{Op: driver.OpConsultation, User: s.ID, Subject: cid,
		Request: fmt.Sprintf("get consultation %s as %s", cid, r.who(s)),
		Answer: fmt.Sprintf("ok: id %q patient %q clinician %q state %q recording %q", ci.ID, ci.PatientID, ci.ClinicianID,
			ci.State, ci.RecordingID)}, ci, err)
	return ci, err
}

func (r *recorder) ListReplays(ctx context.Context, s driver.Session) ([]driver.ReplaySummary, error) {
	items, err := r.t.ListReplays(ctx, s)
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, fmt.Sprintf("{id %s consultation %s participants %v}", it.ID, it.ConsultationID, it.Participants))
	}
	r.add(Exchange{Op: driver.OpList, User: s.ID,
		Request: "list replays as " + r.who(s),
		Answer:  clip(fmt.Sprintf("ok: %d replays %s", len(items), strings.Join(parts, " ")), 2*maxExcerpt)}, items, err)
	return items, err
}

func (r *recorder) GetReplay(ctx context.Context, s driver.Session, rid string) (driver.Replay, error) {
	rep, err := r.t.GetReplay(ctx, s, rid)
	r.add(Exchange{Op: driver.OpReplay, User: s.ID, Subject: rid,
		Request: fmt.Sprintf("get replay %s as %s", rid, r.who(s)),
		Answer: clip(fmt.Sprintf("ok: id %q consultation %q participants %v tracks %s", rep.ID, rep.ConsultationID,
			rep.Participants, tracksText(rep.Tracks)), 2*maxExcerpt)}, rep, err)
	return rep, err
}

func (r *recorder) FetchMedia(ctx context.Context, s driver.Session, rid, tid string) ([]byte, error) {
	b, err := r.t.FetchMedia(ctx, s, rid, tid)
	r.add(Exchange{Op: driver.OpMedia, User: s.ID, Subject: rid + "/" + tid,
		Request: fmt.Sprintf("fetch track %s of replay %s as %s", tid, rid, r.who(s)),
		Answer:  fmt.Sprintf("ok: %d bytes, starting % x", len(b), b[:min(len(b), 16)])}, b, err)
	return b, err
}

func (r *recorder) Health(ctx context.Context) error {
	err := r.t.Health(ctx)
	r.add(Exchange{Op: driver.OpHealth, Request: "health", Answer: "ok"}, struct{}{}, err)
	return err
}
