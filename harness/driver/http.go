package driver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/telechaos/telechaos/models"
)

// HTTPOptions configures NewHTTP.
type HTTPOptions struct {
	// Client sends every request. nil: a client of its own with a Transport
	// sized for hundreds of concurrent users (released by Close). Its
	// CheckRedirect is not used: redirects are never followed.
	Client *http.Client
	// Observer receives one Observation per request; nil: none.
	Observer Observer
	// Timeout bounds each request (connect to last body byte); default 15s.
	Timeout time.Duration
	// MaxBody caps a 2xx answer's body (media included); default 64 MiB.
	// A longer one fails with ErrTooLarge: at once if its Content-Length
	// says so, else when it crosses the cap.
	MaxBody int64
	// MaxList caps every list in an answer (replays, tracks, participants);
	// default 10000. A longer one fails with ErrGarbage, counted while
	// decoding rather than after building it.
	MaxList int
	// Budget bounds the memory of the answers being read at once, across
	// this target's concurrent requests and those of any other target given
	// the same Budget; nil: a budget of its own of 256 MiB. A body that
	// cannot have its memory fails with ErrTooLarge (see Budget).
	Budget *Budget
	// CAFile names a PEM file of CA certificates an https target's
	// certificate may chain to, besides the system roots (staging behind a
	// private CA). "": the system roots only (on Linux SSL_CERT_FILE and
	// SSL_CERT_DIR replace those, as for every Go program). Ignored when
	// Client is given.
	CAFile string
}

const (
	defaultTimeout = 15 * time.Second
	defaultMaxBody = 64 << 20
	maxErrorBody   = 64 << 10
	defaultMaxList = 10000
)

// HTTPTarget implements Target over the HTTP contract of docs/api.md. It is
// safe for concurrent use; connections are reused across users.
type HTTPTarget struct {
	base    *url.URL
	prefix  string // the base URL's escaped path
	client  *http.Client
	owned   *http.Transport // non-nil when NewHTTP built the client
	lean    *leanClient     // plain-http targets without a caller's client
	obs     Observer
	timeout time.Duration
	maxBody int64
	maxList int
	budget  *Budget
}

var _ Target = (*HTTPTarget)(nil)

// NewHTTP returns a Target for the contract served at baseURL (scheme http or
// https, a host, an optional path prefix).
func NewHTTP(baseURL string, opts HTTPOptions) (*HTTPTarget, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("target url %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target url %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("target url %q: no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("target url %q: no query or fragment allowed", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	h := &HTTPTarget{
		base:    u,
		client:  opts.Client,
		obs:     opts.Observer,
		timeout: opts.Timeout,
		maxBody: opts.MaxBody,
		maxList: opts.MaxList,
		budget:  opts.Budget,
	}
	if h.budget == nil {
		h.budget = NewBudget(defaultBudget)
	}
	if h.maxList <= 0 {
		h.maxList = defaultMaxList
	}
	if h.timeout <= 0 {
		h.timeout = defaultTimeout
	}
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxBody
	}
	h.prefix = u.EscapedPath()
	if h.client == nil && u.Scheme == "http" {
		port := u.Port()
		if port == "" {
			port = "80"
		}
		h.lean = newLeanClient(net.JoinHostPort(u.Hostname(), port), u.Host)
	} else if h.client == nil {
		h.owned = newTransport()
		if opts.CAFile != "" {
			roots, err := rootsWith(opts.CAFile)
			if err != nil {
				return nil, err
			}
			h.owned.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		h.client = &http.Client{Transport: h.owned, CheckRedirect: noRedirect}
	} else {
		// A copy, so the caller's client is not changed: sharing its
		// Transport shares its connections.
		c := *h.client
		c.CheckRedirect = noRedirect
		h.client = &c
	}
	return h, nil
}

// rootsWith is the system roots plus the PEM certificates in file; a file
// that cannot be read or holds no certificate is an error naming it.
func rootsWith(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool() // no system roots here: the file's alone
	}
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", file)
	}
	return roots, nil
}

// noRedirect keeps a 3xx as the answer: a hostile target must not be able to
// send the harness, and the users' bearer tokens, anywhere but itself. The
// 3xx then fails the call as a *StatusError, as the lean client's do.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport is sized for hundreds of concurrent virtual users against one
// host: keeping idle connections avoids a TCP handshake per call.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // a target is addressed directly, never via env proxies
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// Close releases the idle connections of a client NewHTTP built itself.
func (h *HTTPTarget) Close() error {
	if h.owned != nil {
		h.owned.CloseIdleConnections()
	}
	if h.lean != nil {
		h.lean.closeIdle()
	}
	return nil
}

// URL returns the base URL.
func (h *HTTPTarget) URL() string { return h.base.String() }

// call describes one request.
type call struct {
	op      Op
	user    string
	subject string
	method  string
	path    string // already escaped
	token   string
	in      []byte // JSON body, nil for none
}

// do performs c and returns the 2xx body, or if decode is not nil decodes
// it with decode and returns no body: the body is then not kept after decode
// returns (its buffer is reused). decode also checks the answer against the
// contract, so that the one Observation of the call, emitted on return,
// carries an answer that does not decode or does not hold as its error
// (the harness's error_rate counts it).
func (h *HTTPTarget) do(ctx context.Context, c call, decode func(body []byte) error) (body []byte, err error) {
	obs := Observation{Op: c.op, User: c.user, Subject: c.subject, Start: time.Now()}
	defer func() {
		if h.obs != nil {
			obs.End = time.Now()
			obs.Err = err
			h.obs(obs)
		}
	}()
	var scratch *[]byte
	if decode != nil && h.lean != nil {
		scratch = scratchPool.Get().(*[]byte)
		defer scratchPool.Put(scratch)
	}
	// The body's memory is the budget's until decode is done with it; a
	// body returned (media) is the caller's, and leaves the budget here.
	res := reservation{budget: h.budget, ctx: ctx}
	defer res.release()
	body, err = h.send(ctx, c, scratch, &obs, &res)
	if err != nil || decode == nil {
		return body, err
	}
	return nil, decode(body)
}

// send performs c and returns the 2xx body (in *scratch if not nil),
// noting the answer's status and size in obs.
func (h *HTTPTarget) send(ctx context.Context, c call, scratch *[]byte, obs *Observation, res *reservation) (body []byte, err error) {
	in := c.in
	var ans leanAnswer
	if h.lean != nil {
		req := leanRequest{method: c.method, path: c.path, token: c.token, body: in, json: in != nil, limit: h.limits, res: res}
		if h.prefix != "" {
			req.path = h.prefix + c.path
		}
		req.scratch = scratch
		ans, err = h.lean.roundTrip(ctx, h.timeout, &req)
	} else {
		ans, err = h.stdRoundTrip(ctx, c, in, res)
	}
	var be buildError
	if errors.As(err, &be) {
		return nil, fmt.Errorf("%s: build request: %w", c.op, be.err)
	}
	if err != nil {
		return nil, h.transportErr(ctx, c, err)
	}
	obs.Status = ans.status
	obs.Bytes = len(ans.body)
	var tl *tooLargeError
	if errors.As(ans.bodyErr, &tl) {
		// The report shows the size refused, not the 0 bytes kept.
		obs.Bytes = int(tl.size)
	}

	if ans.status < 200 || ans.status > 299 {
		se := &StatusError{Op: c.op, Code: ans.status}
		if eb, ok := errorBody(ans.body); ok {
			se.ErrCode, se.Message = eb.Error, eb.Message
		} else if ans.bodyErr == nil {
			// Tolerate non-JSON error bodies (proxies, crashes): keep a short excerpt.
			se.Message = excerpt(ans.body)
		}
		return nil, se
	}
	if tl != nil {
		return nil, fmt.Errorf("%s: %w", c.op, tl)
	}
	if ans.bodyErr != nil {
		return nil, h.transportErr(ctx, c, fmt.Errorf("read body: %w", ans.bodyErr))
	}
	return ans.body, nil
}

// errorBody decodes the contract's error body; false if it is not one.
func errorBody(b []byte) (errorOut, bool) {
	var eb errorOut
	if d := (jdec{b: b}); eb.fastDecode(&d) && d.end() {
		return eb, true
	}
	fastMisses.Add(1)
	eb = errorOut{}
	return eb, json.Unmarshal(b, &eb) == nil
}

// limits is how much of an answer's body is kept: a 2xx body up to MaxBody,
// past which it fails; an error body up to maxErrorBody, past which it is
// cut (and up to as much again read and dropped to keep the connection).
func (h *HTTPTarget) limits(status int) bodyLimit {
	if status < 200 || status > 299 {
		return bodyLimit{keep: maxErrorBody, drain: maxErrorBody}
	}
	return bodyLimit{keep: h.maxBody, refuse: true}
}

// buildError: net/http refused to build the request (not the target's fault).
type buildError struct{ err error }

func (e buildError) Error() string { return "build request: " + e.err.Error() }

// stdRoundTrip sends c through net/http (https targets, callers' clients).
func (h *HTTPTarget) stdRoundTrip(ctx context.Context, c call, in []byte, res *reservation) (leanAnswer, error) {
	var rd io.Reader
	if in != nil {
		rd = bytes.NewReader(in)
	}
	rctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, c.method, h.base.String()+c.path, rd)
	if err != nil {
		return leanAnswer{}, buildError{err}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return leanAnswer{}, err
	}
	defer resp.Body.Close()
	ans := leanAnswer{status: resp.StatusCode}
	res.deadline, _ = rctx.Deadline()
	r := bodyRead{lim: h.limits(resp.StatusCode), res: res}
	// A refused Content-Length fails here unread: closing the body then
	// closes the connection.
	ans.body, ans.bodyErr = r.readAll(resp.Body, resp.ContentLength)
	return ans, nil
}

// transportErr classifies a failure without an HTTP answer: the caller's own
// cancellation is not the target's fault, everything else is ErrUnreachable.
func (h *HTTPTarget) transportErr(ctx context.Context, c call, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", c.op, c.path, ctx.Err())
	}
	return fmt.Errorf("%s %s: %w: %w", c.op, c.path, ErrUnreachable, err)
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// garbage builds an ErrGarbage error naming op and field.
func garbage(op Op, field, format string, args ...any) error {
	return fmt.Errorf("%s: %w: field %s: %s", op, ErrGarbage, field, fmt.Sprintf(format, args...))
}

// decode unmarshals a 2xx body, naming the offending field on a type mismatch.
func decode(op Op, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return fmt.Errorf("%s: %w: body is not a JSON object (got %s)", op, ErrGarbage, te.Value)
			}
			return garbage(op, te.Field, "got JSON %s, want %s", te.Value, te.Type.Kind())
		}
		return fmt.Errorf("%s: %w: body is not JSON: %v (%q)", op, ErrGarbage, err, excerpt(b))
	}
	return nil
}

func need(op Op, field, v string) error {
	if v == "" {
		return garbage(op, field, "missing or empty")
	}
	return nil
}

func esc(id string) string { return url.PathEscape(id) }

// Register creates a user of role.
func (h *HTTPTarget) Register(ctx context.Context, role models.Role) (Session, error) {
	var out registerOut
	_, err := h.do(ctx, call{op: OpRegister, subject: string(role), method: http.MethodPost, path: "/v1/users",
		in: jsonObject("role", string(role))}, func(b []byte) error {
		if err := decodeFast(OpRegister, b, h.maxList, out.fastDecode, func() error { return slowDecode(OpRegister, b, &out) }); err != nil {
			return err
		}
		if err := errors.Join(need(OpRegister, "id", out.ID), need(OpRegister, "token", out.Token)); err != nil {
			return err
		}
		if out.Role != string(role) {
			return garbage(OpRegister, "role", "got %q, asked for %q", out.Role, role)
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return Session{ID: out.ID, Role: role, Token: out.Token}, nil
}

// Book books an audio appointment of patient with clinicianID.
func (h *HTTPTarget) Book(ctx context.Context, patient Session, clinicianID string) (Booking, error) {
	var out bookOut
	_, err := h.do(ctx, call{op: OpBook, user: patient.ID, subject: clinicianID, method: http.MethodPost,
		path: "/v1/appointments", token: patient.Token,
		in: jsonObject("clinician_id", clinicianID, "mode", "audio")}, func(b []byte) error {
		if err := decodeFast(OpBook, b, h.maxList, out.fastDecode, func() error { return slowDecode(OpBook, b, &out) }); err != nil {
			return err
		}
		return errors.Join(need(OpBook, "id", out.ID), need(OpBook, "consultation_id", out.ConsultationID),
			need(OpBook, "patient_id", out.PatientID), need(OpBook, "clinician_id", out.ClinicianID))
	})
	if err != nil {
		return Booking{}, err
	}
	return Booking{AppointmentID: out.ID, ConsultationID: out.ConsultationID, PatientID: out.PatientID, ClinicianID: out.ClinicianID}, nil
}

type sdpMsg struct {
	Type    string `json:"type"`
	SDP     string `json:"sdp"`
	Segment *int   `json:"segment,omitempty"`
}

// signal sends an offer and returns the answer; check, if not nil, holds
// the answer to what op needs of it beyond an SDP answer.
func (h *HTTPTarget) signal(ctx context.Context, op Op, s Session, cid, route, offer string, check func(sdpMsg) error) (sdpMsg, error) {
	var out sdpMsg
	_, err := h.do(ctx, call{op: op, user: s.ID, subject: cid, method: http.MethodPost,
		path: "/v1/consultations/" + esc(cid) + "/" + route, token: s.Token,
		in: jsonObject("type", "offer", "sdp", offer)}, func(b []byte) error {
		if err := decodeFast(op, b, h.maxList, out.fastDecode, func() error { return slowDecode(op, b, &out) }); err != nil {
			return err
		}
		if out.Type != "answer" {
			return garbage(op, "type", "got %q, want \"answer\"", out.Type)
		}
		if err := need(op, "sdp", out.SDP); err != nil {
			return err
		}
		if check != nil {
			return check(out)
		}
		return nil
	})
	if err != nil {
		return sdpMsg{}, err
	}
	return out, nil
}

// Join sends the audio offer of s for consultationID and returns the answer and
// the recording segment the target opened.
func (h *HTTPTarget) Join(ctx context.Context, s Session, consultationID, offerSDP string) (string, int, error) {
	out, err := h.signal(ctx, OpJoin, s, consultationID, "join", offerSDP, func(out sdpMsg) error {
		if out.Segment == nil {
			return garbage(OpJoin, "segment", "missing")
		}
		if *out.Segment < 0 {
			return garbage(OpJoin, "segment", "negative (%d)", *out.Segment)
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return out.SDP, *out.Segment, nil
}

// SwitchVideo sends the re-offer that adds video and returns the answer.
func (h *HTTPTarget) SwitchVideo(ctx context.Context, s Session, consultationID, offerSDP string) (string, error) {
	out, err := h.signal(ctx, OpSwitch, s, consultationID, "video", offerSDP, nil)
	if err != nil {
		return "", err
	}
	return out.SDP, nil
}

type trackJSON struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Kind    string `json:"kind"`
	Codec   string `json:"codec"`
	Format  string `json:"format"`
	Segment int    `json:"segment"`
	Frames  int    `json:"frames"`
	Bytes   int64  `json:"bytes"`
}

func tracks(op Op, in []trackJSON) ([]TrackInfo, error) {
	out := make([]TrackInfo, 0, len(in))
	for i, t := range in {
		if t.ID == "" || t.Owner == "" {
			f := fmt.Sprintf("tracks[%d].", i)
			return nil, errors.Join(need(op, f+"id", t.ID), need(op, f+"owner", t.Owner))
		}
		if t.Kind != string(models.Audio) && t.Kind != string(models.Video) {
			return nil, garbage(op, fmt.Sprintf("tracks[%d].kind", i), "got %q, want audio or video", t.Kind)
		}
		if t.Frames < 0 || t.Bytes < 0 || t.Segment < 0 {
			return nil, garbage(op, fmt.Sprintf("tracks[%d].frames", i), "negative count (frames %d, bytes %d, segment %d)", t.Frames, t.Bytes, t.Segment)
		}
		out = append(out, TrackInfo{ID: t.ID, Owner: t.Owner, Kind: t.Kind, Codec: t.Codec, Format: t.Format,
			Segment: t.Segment, Frames: t.Frames, Bytes: t.Bytes})
	}
	return out, nil
}

// End hangs up consultationID for both participants.
func (h *HTTPTarget) End(ctx context.Context, s Session, consultationID string) (EndResult, error) {
	var out endOut
	var res EndResult
	_, err := h.do(ctx, call{op: OpEnd, user: s.ID, subject: consultationID, method: http.MethodPost,
		path: "/v1/consultations/" + esc(consultationID) + "/end", token: s.Token}, func(b []byte) error {
		if err := decodeFast(OpEnd, b, h.maxList, out.fastDecode, func() error { return slowDecode(OpEnd, b, &out) }); err != nil {
			return err
		}
		if err := errors.Join(need(OpEnd, "consultation_id", out.ConsultationID), need(OpEnd, "recording_id", out.RecordingID)); err != nil {
			return err
		}
		if out.Tracks == nil {
			return garbage(OpEnd, "tracks", "missing")
		}
		ts, err := tracks(OpEnd, *out.Tracks)
		res = EndResult{ConsultationID: out.ConsultationID, RecordingID: out.RecordingID, Tracks: ts}
		return err
	})
	if err != nil {
		return EndResult{}, err
	}
	return res, nil
}

// Consultation reads consultationID as participant s.
func (h *HTTPTarget) Consultation(ctx context.Context, s Session, consultationID string) (ConsultationInfo, error) {
	var out consultationOut
	_, err := h.do(ctx, call{op: OpConsultation, user: s.ID, subject: consultationID, method: http.MethodGet,
		path: "/v1/consultations/" + esc(consultationID), token: s.Token}, func(b []byte) error {
		if err := decodeFast(OpConsultation, b, h.maxList, out.fastDecode, func() error { return slowDecode(OpConsultation, b, &out) }); err != nil {
			return err
		}
		if err := errors.Join(need(OpConsultation, "id", out.ID), need(OpConsultation, "patient_id", out.PatientID),
			need(OpConsultation, "clinician_id", out.ClinicianID)); err != nil {
			return err
		}
		switch out.State {
		case "booked", "active", "ended":
			return nil
		}
		return garbage(OpConsultation, "state", "got %q, want booked, active or ended", out.State)
	})
	if err != nil {
		return ConsultationInfo{}, err
	}
	return ConsultationInfo{ID: out.ID, AppointmentID: out.AppointmentID, PatientID: out.PatientID,
		ClinicianID: out.ClinicianID, State: out.State, RecordingID: out.RecordingID, Video: out.Video}, nil
}

// ListReplays returns the replay list the target offers s.
func (h *HTTPTarget) ListReplays(ctx context.Context, s Session) ([]ReplaySummary, error) {
	var out listAnswer
	_, err := h.do(ctx, call{op: OpList, user: s.ID, subject: s.ID, method: http.MethodGet, path: "/v1/replays", token: s.Token}, func(b []byte) error {
		if err := out.decode(b, h.maxList); err != nil {
			return err
		}
		return out.check()
	})
	if err != nil {
		return nil, err
	}
	return *out.replays, nil
}

// check holds a decoded list to the contract.
func (o *listAnswer) check() error {
	if o.replays == nil {
		return garbage(OpList, "replays", "missing")
	}
	res := *o.replays
	if o.count != nil && *o.count != len(res) {
		return garbage(OpList, "count", "says %d, list holds %d", *o.count, len(res))
	}
	for i, r := range res {
		if r.ID == "" || r.ConsultationID == "" {
			f := fmt.Sprintf("replays[%d].", i)
			return errors.Join(need(OpList, f+"id", r.ID), need(OpList, f+"consultation_id", r.ConsultationID))
		}
	}
	return nil
}

// GetReplay returns the metadata of replayID as s sees it.
func (h *HTTPTarget) GetReplay(ctx context.Context, s Session, replayID string) (Replay, error) {
	var out replayOut
	var res Replay
	_, err := h.do(ctx, call{op: OpReplay, user: s.ID, subject: replayID, method: http.MethodGet,
		path: "/v1/replays/" + esc(replayID), token: s.Token}, func(b []byte) error {
		if err := decodeFast(OpReplay, b, h.maxList, out.fastDecode, func() error { return slowDecode(OpReplay, b, &out) }); err != nil {
			return err
		}
		if err := errors.Join(need(OpReplay, "id", out.ID), need(OpReplay, "consultation_id", out.ConsultationID)); err != nil {
			return err
		}
		if out.Tracks == nil {
			return garbage(OpReplay, "tracks", "missing")
		}
		ts, err := tracks(OpReplay, *out.Tracks)
		res = Replay{ID: out.ID, ConsultationID: out.ConsultationID, Title: out.Title, Participants: out.Participants, Tracks: ts}
		return err
	})
	if err != nil {
		return Replay{}, err
	}
	return res, nil
}

// FetchMedia returns the raw bytes (Ogg or IVF) of one track of replayID.
// They are the caller's: the Budget covers them while they are read, not
// once they are returned.
func (h *HTTPTarget) FetchMedia(ctx context.Context, s Session, replayID, trackID string) ([]byte, error) {
	return h.do(ctx, call{op: OpMedia, user: s.ID, subject: replayID, method: http.MethodGet,
		path: "/v1/replays/" + esc(replayID) + "/media?track=" + url.QueryEscape(trackID), token: s.Token}, nil)
}

// Health checks /healthz.
func (h *HTTPTarget) Health(ctx context.Context) error {
	_, err := h.do(ctx, call{op: OpHealth, method: http.MethodGet, path: "/healthz"}, nil)
	return err
}
