package clinic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/telechaos/telechaos/clinic/bugs"
	"github.com/telechaos/telechaos/clinic/media"
)

// Request limits: an SDP offer with gathered candidates is a few kilobytes.
const (
	maxBody      = 64 << 10
	maxNameRunes = 200
	maxIDLen     = 128
	maxListLimit = 1000
	endTimeout   = 30 * time.Second
)

// apiError is a client-visible error: status, machine code, human text.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errUnauthorized = errf(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
	errNoSuchCall   = errf(http.StatusNotFound, "not_found", "no such consultation")
	errNoSuchReplay = errf(http.StatusNotFound, "not_found", "no such replay")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encode response"}`)
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte{'\n'})
}

func writeErr(w http.ResponseWriter, e *apiError) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clinic"`)
	}
	writeJSON(w, e.Status, e)
}

// --- decoders (pure, fuzzed) ---

// decodeJSON reads exactly one JSON value into v from a body of at most maxBody
// bytes.
func decodeJSON(body io.Reader, v any) *apiError {
	if body == nil {
		return errf(http.StatusBadRequest, "malformed_json", "request body is empty")
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, io.NopCloser(body), maxBody))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := jsonError(err); e.Status == http.StatusRequestEntityTooLarge {
				return e
			}
		}
		return errf(http.StatusBadRequest, "malformed_json", "request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) *apiError {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return errf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", maxBody)
	case errors.Is(err, io.EOF):
		return errf(http.StatusBadRequest, "malformed_json", "request body is empty")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return errf(http.StatusBadRequest, "malformed_json", "%s must be a JSON %s", field, expectedJSON(typeErr))
	default:
		return errf(http.StatusBadRequest, "malformed_json", "request body is not valid JSON: %v", err)
	}
}

func expectedJSON(e *json.UnmarshalTypeError) string {
	if e.Field == "" {
		return "object"
	}
	switch e.Type.Kind().String() {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	default:
		return e.Type.Kind().String()
	}
}

type userRequest struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

func decodeUserRequest(body io.Reader) (userRequest, *apiError) {
	var req userRequest
	if e := decodeJSON(body, &req); e != nil {
		return req, e
	}
	if req.Role != rolePatient && req.Role != roleClinician {
		return req, errf(http.StatusBadRequest, "invalid_role", `role must be "patient" or "clinician"`)
	}
	req.Name = strings.TrimSpace(req.Name)
	if utf8.RuneCountInString(req.Name) > maxNameRunes {
		return req, errf(http.StatusBadRequest, "invalid_name", "name is longer than %d characters", maxNameRunes)
	}
	if strings.ContainsFunc(req.Name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return req, errf(http.StatusBadRequest, "invalid_name", "name holds control or invalid characters")
	}
	return req, nil
}

type appointmentRequest struct {
	ClinicianID string `json:"clinician_id"`
	Mode        string `json:"mode"`
}

func decodeAppointmentRequest(body io.Reader) (appointmentRequest, *apiError) {
	var req appointmentRequest
	if e := decodeJSON(body, &req); e != nil {
		return req, e
	}
	if req.ClinicianID == "" {
		return req, errf(http.StatusBadRequest, "missing_field", "clinician_id is required")
	}
	if len(req.ClinicianID) > maxIDLen {
		return req, errf(http.StatusBadRequest, "invalid_id", "clinician_id is too long")
	}
	if req.Mode == "" {
		req.Mode = "audio"
	}
	if req.Mode != "audio" {
		return req, errf(http.StatusBadRequest, "invalid_mode", `mode must be "audio" (video is a switch during the call)`)
	}
	return req, nil
}

type sdpMessage struct {
	Type    string `json:"type"`
	SDP     string `json:"sdp"`
	Segment *int   `json:"segment,omitempty"`
}

func decodeOffer(body io.Reader) (sdpMessage, *apiError) {
	var req sdpMessage
	if e := decodeJSON(body, &req); e != nil {
		return req, e
	}
	if req.Type != "offer" {
		return req, errf(http.StatusBadRequest, "invalid_offer", `type must be "offer"`)
	}
	if strings.TrimSpace(req.SDP) == "" {
		return req, errf(http.StatusBadRequest, "invalid_offer", "sdp is required")
	}
	if !strings.HasPrefix(strings.TrimLeft(req.SDP, " \t\r\n"), "v=0") {
		return req, errf(http.StatusBadRequest, "bad_sdp", "sdp must start with v=0")
	}
	return req, nil
}

type listQuery struct {
	Limit, Offset int
}

// canonical renders the query in a fixed form (the cache key's tail).
func (q listQuery) canonical() string {
	return "limit=" + strconv.Itoa(q.Limit) + "&offset=" + strconv.Itoa(q.Offset)
}

func parseListQuery(v url.Values) (listQuery, *apiError) {
	q := listQuery{Limit: -1}
	num := func(name string, lo, hi int) (int, *apiError) {
		vals := v[name]
		if len(vals) > 1 {
			return 0, errf(http.StatusBadRequest, "invalid_query", "%s given more than once", name)
		}
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < lo || n > hi {
			return 0, errf(http.StatusBadRequest, "invalid_query", "%s must be an integer in [%d,%d]", name, lo, hi)
		}
		return n, nil
	}
	var e *apiError
	if _, ok := v["limit"]; ok {
		if q.Limit, e = num("limit", 1, maxListLimit); e != nil {
			return q, e
		}
	}
	if _, ok := v["offset"]; ok {
		if q.Offset, e = num("offset", 0, 1<<30); e != nil {
			return q, e
		}
	}
	return q, nil
}

func parseTrackQuery(v url.Values) (string, *apiError) {
	vals := v["track"]
	switch {
	case len(vals) == 0 || vals[0] == "":
		return "", errf(http.StatusBadRequest, "missing_track", "query parameter track is required")
	case len(vals) > 1:
		return "", errf(http.StatusBadRequest, "invalid_query", "track given more than once")
	case len(vals[0]) > maxIDLen:
		return "", errf(http.StatusBadRequest, "invalid_query", "track is too long")
	}
	return vals[0], nil
}

// --- identity ---

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func newToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenCache remembers token hashes already resolved: users never change, so
// the hot path skips the database.
type tokenCache struct{ m sync.Map }

func (s *Server) authenticate(r *http.Request) (user, *apiError) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(token) != 64 {
		return user{}, errUnauthorized
	}
	if _, err := hex.DecodeString(token); err != nil {
		return user{}, errUnauthorized
	}
	th := hashToken(token)
	if u, ok := s.tokens.m.Load(th); ok {
		return u.(user), nil
	}
	u, err := s.db.userByTokenHash(r.Context(), th)
	if errors.Is(err, errNotFound) {
		return user{}, errUnauthorized
	}
	if err != nil {
		s.log.Error("authenticate", "err", err)
		return user{}, errf(http.StatusServiceUnavailable, "unavailable", "try again")
	}
	s.tokens.m.Store(th, u)
	return u, nil
}

// authed wraps a handler that needs a caller.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, u user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, e := s.authenticate(r)
		if e != nil {
			writeErr(w, e)
			return
		}
		h(w, r, u)
	}
}

// --- routes ---

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /metrics", s.met.handler},
		{"POST /v1/users", http.HandlerFunc(s.createUser)},
		{"POST /v1/appointments", s.authed(s.book)},
		{"GET /v1/consultations/{cid}", s.authed(s.getConsultation)},
		{"POST /v1/consultations/{cid}/join", s.authed(s.join)},
		{"POST /v1/consultations/{cid}/video", s.authed(s.video)},
		{"POST /v1/consultations/{cid}/end", s.authed(s.end)},
		{"GET /v1/replays", s.authed(s.listReplays)},
		{"GET /v1/replays/{rid}", s.authed(s.getReplay)},
		{"GET /v1/replays/{rid}/media", s.authed(s.getMedia)},
	} {
		mux.Handle(rt.pattern, rt.h)
		s.patterns = append(s.patterns, rt.pattern)
	}
	s.mux = mux
	return s.middleware(mux)
}

// statusWriter remembers the status for metrics and the recover middleware.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter captures what the mux's own 404/405 handlers would say so the
// client gets JSON instead.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }

func (s *Server) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		_, route := mux.Handler(r)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeErr(sw, errf(http.StatusInternalServerError, "internal", "internal error"))
				}
			}
			label := route
			if label == "" {
				label = "unmatched"
			}
			s.met.observe(label, sw.status, time.Since(start))
			if sw.status >= 500 {
				s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", sw.status)
			} else {
				s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start))
			}
		}()
		if route == "" {
			d := &discardWriter{h: http.Header{}}
			mux.ServeHTTP(d, r)
			switch d.status {
			case http.StatusMethodNotAllowed:
				sw.Header().Set("Allow", d.h.Get("Allow"))
				writeErr(sw, errf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
			case http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusTemporaryRedirect, http.StatusFound:
				mux.ServeHTTP(sw, r)
			default:
				writeErr(sw, errf(http.StatusNotFound, "no_route", "no route for %s %s", r.Method, r.URL.Path))
			}
			return
		}
		mux.ServeHTTP(sw, r)
	})
}

// --- handlers ---

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	req, e := decodeUserRequest(r.Body)
	if e != nil {
		writeErr(w, e)
		return
	}
	u := user{ID: newID("u_"), Role: req.Role, Name: req.Name}
	if u.Name == "" {
		label := "Patient"
		if u.Role == roleClinician {
			label = "Dr."
		}
		u.Name = label + " " + u.ID[len(u.ID)-6:]
	}
	token, th := newToken()
	if err := s.db.createUser(r.Context(), u, th); err != nil {
		s.internal(w, "create user", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID, "role": u.Role, "name": u.Name, "token": token})
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.log.Error(what, "err", err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		writeErr(w, errf(http.StatusServiceUnavailable, "unavailable", "%s: request cancelled or timed out", what))
		return
	}
	writeErr(w, errf(http.StatusInternalServerError, "internal", "%s failed", what))
}

func (s *Server) book(w http.ResponseWriter, r *http.Request, u user) {
	if u.Role != rolePatient {
		writeErr(w, errf(http.StatusForbidden, "forbidden_role", "only patients book appointments"))
		return
	}
	req, e := decodeAppointmentRequest(r.Body)
	if e != nil {
		writeErr(w, e)
		return
	}
	doc, err := s.db.userByID(r.Context(), req.ClinicianID)
	if errors.Is(err, errNotFound) || (err == nil && doc.Role != roleClinician) {
		writeErr(w, errf(http.StatusNotFound, "clinician_not_found", "no clinician with id %q", req.ClinicianID))
		return
	}
	if err != nil {
		s.internal(w, "look up clinician", err)
		return
	}
	apptID := newID("a_")
	c := consultation{ID: newID("c_"), AppointmentID: apptID, PatientID: u.ID, ClinicianID: doc.ID,
		State: stateBooked, RecordingID: newID("r_")}
	if err := s.db.book(r.Context(), apptID, req.Mode, c); err != nil {
		s.internal(w, "book", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": apptID, "consultation_id": c.ID,
		"patient_id": u.ID, "clinician_id": doc.ID, "mode": req.Mode})
}

// participantCall loads the consultation in the path and checks the caller
// takes part; anyone else learns nothing (404).
func (s *Server) participantCall(w http.ResponseWriter, r *http.Request, u user) (consultation, bool) {
	cid := r.PathValue("cid")
	if len(cid) > maxIDLen {
		writeErr(w, errNoSuchCall)
		return consultation{}, false
	}
	c, err := s.db.consultation(r.Context(), cid)
	if errors.Is(err, errNotFound) || (err == nil && !c.hasParticipant(u.ID)) {
		writeErr(w, errNoSuchCall)
		return c, false
	}
	if err != nil {
		s.internal(w, "look up consultation", err)
		return c, false
	}
	return c, true
}

func (s *Server) getConsultation(w http.ResponseWriter, r *http.Request, u user) {
	c, ok := s.participantCall(w, r, u)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// mediaError maps engine errors to client errors; anything else is ours.
func (s *Server) mediaError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, media.ErrBadSDP):
		writeErr(w, errf(http.StatusBadRequest, "bad_sdp", "%s: %v", what, err))
	case errors.Is(err, media.ErrNoVideo):
		writeErr(w, errf(http.StatusBadRequest, "no_video", "%s: the re-offer adds no video transceiver", what))
	case errors.Is(err, media.ErrNotJoined):
		writeErr(w, errf(http.StatusConflict, "not_joined", "%s: join the consultation first", what))
	case errors.Is(err, media.ErrNotActive):
		writeErr(w, errf(http.StatusConflict, "not_active", "%s: the call is not active", what))
	case errors.Is(err, media.ErrNotParticipant):
		writeErr(w, errNoSuchCall)
	case errors.Is(err, media.ErrClosed):
		writeErr(w, errf(http.StatusServiceUnavailable, "unavailable", "%s: media engine is shutting down", what))
	default:
		s.internal(w, what, err)
	}
}

// offerUnderLock is the common start of join and switch: the caller must be a
// participant, the body an SDP offer, and the consultation is re-read under
// its lock (an end may have won meanwhile). On success the caller holds the
// read lock and must call unlock; on failure the answer is written.
func (s *Server) offerUnderLock(w http.ResponseWriter, r *http.Request, u user) (consultation, sdpMessage, func(), bool) {
	c, ok := s.participantCall(w, r, u)
	if !ok {
		return consultation{}, sdpMessage{}, nil, false
	}
	offer, e := decodeOffer(r.Body)
	if e != nil {
		writeErr(w, e)
		return consultation{}, sdpMessage{}, nil, false
	}
	l := s.locks.of(c.ID)
	l.RLock()
	if c, ok = s.participantCall(w, r, u); !ok {
		l.RUnlock()
		return consultation{}, sdpMessage{}, nil, false
	}
	return c, offer, l.RUnlock, true
}

func (s *Server) join(w http.ResponseWriter, r *http.Request, u user) {
	c, offer, unlock, ok := s.offerUnderLock(w, r, u)
	if !ok {
		return
	}
	defer unlock()
	if c.State == stateEnded {
		writeErr(w, errf(http.StatusConflict, "consultation_ended", "the consultation has ended"))
		return
	}
	base, err := s.db.segmentBase(r.Context(), c.RecordingID)
	if err != nil {
		s.internal(w, "join", err)
		return
	}
	call := media.Call{ConsultationID: c.ID, RecordingID: c.RecordingID, Patient: c.PatientID, Clinician: c.ClinicianID,
		SegmentBase: base}
	answer, seg, err := s.eng.Join(r.Context(), call, u.ID, offer.SDP)
	if err != nil {
		s.mediaError(w, "join", err)
		return
	}
	if err := s.db.markJoined(context.WithoutCancel(r.Context()), c); err != nil {
		s.internal(w, "mark joined", err)
		return
	}
	writeJSON(w, http.StatusOK, sdpMessage{Type: "answer", SDP: answer, Segment: &seg})
}

func (s *Server) video(w http.ResponseWriter, r *http.Request, u user) {
	c, offer, unlock, ok := s.offerUnderLock(w, r, u)
	if !ok {
		return
	}
	defer unlock()
	switch c.State {
	case stateBooked:
		writeErr(w, errf(http.StatusConflict, "not_joined", "join the consultation before switching to video"))
		return
	case stateEnded:
		writeErr(w, errf(http.StatusConflict, "consultation_ended", "the consultation has ended"))
		return
	}
	answer, err := s.eng.Switch(r.Context(), c.ID, u.ID, offer.SDP)
	if err != nil {
		s.mediaError(w, "switch", err)
		return
	}
	if !c.Video {
		if err := s.db.markVideo(context.WithoutCancel(r.Context()), c.ID); err != nil {
			s.internal(w, "mark video", err)
			return
		}
	}
	s.met.switches.Inc()
	writeJSON(w, http.StatusOK, sdpMessage{Type: "answer", SDP: answer})
}

type endResponse struct {
	ConsultationID string     `json:"consultation_id"`
	RecordingID    string     `json:"recording_id"`
	State          string     `json:"state"`
	Tracks         []trackRow `json:"tracks"`
}

func (s *Server) end(w http.ResponseWriter, r *http.Request, u user) {
	c, ok := s.participantCall(w, r, u)
	if !ok {
		return
	}
	l := s.locks.of(c.ID)
	l.Lock()
	defer l.Unlock()
	// The client hanging up must not abort finalisation half way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), endTimeout)
	defer cancel()
	if err := s.db.claimEnd(ctx, c.ID); errors.Is(err, errConflict) {
		writeErr(w, errf(http.StatusConflict, "already_ended", "the consultation has already ended"))
		return
	} else if err != nil {
		s.internal(w, "end", err)
		return
	}
	recs, err := s.eng.End(ctx, c.ID)
	if err != nil && !errors.Is(err, media.ErrNotActive) {
		// The files and the counts already in the database are what we have;
		// finalise with them rather than leave the recording dangling.
		s.log.Error("engine end", "consultation", c.ID, "err", err)
	}
	if err := s.db.finalise(ctx, c.RecordingID, recs); err != nil {
		s.internal(w, "finalise recording", err)
		return
	}
	s.met.finalised.Inc()
	viewers, err := s.db.viewersOf(ctx, c.RecordingID)
	if err != nil {
		s.log.Error("list viewers", "recording", c.RecordingID, "err", err)
	}
	s.cache.invalidate(append(viewers, c.PatientID, c.ClinicianID)...)
	tracks, err := s.db.tracks(ctx, s.db.w, c.RecordingID)
	if err != nil {
		s.internal(w, "list tracks", err)
		return
	}
	writeJSON(w, http.StatusOK, endResponse{ConsultationID: c.ID, RecordingID: c.RecordingID, State: stateEnded, Tracks: tracks})
}

// listKey is the replay-list cache key. The cache-key defect builds it from
// the page parameters alone, so one user's cached list is served to the next
// caller with the same (usually empty) query.
func (s *Server) listKey(uid string, q listQuery) string {
	if s.bugs.Fire(bugs.CacheKey) {
		return "replays?" + q.canonical()
	}
	return "replays/" + uid + "?" + q.canonical()
}

type listResponse struct {
	Replays []replaySummary `json:"replays"`
	Count   int             `json:"count"`
}

func (s *Server) listReplays(w http.ResponseWriter, r *http.Request, u user) {
	q, e := parseListQuery(r.URL.Query())
	if e != nil {
		writeErr(w, e)
		return
	}
	key := s.listKey(u.ID, q)
	if body, ok := s.cache.get(key); ok {
		writeBody(w, http.StatusOK, body)
		return
	}
	gen := s.cache.generation(u.ID)
	list, err := s.db.listReplays(r.Context(), u.ID, s.bugs.Fire(bugs.ListScope), q.Limit, q.Offset)
	if err != nil {
		s.internal(w, "list replays", err)
		return
	}
	body, err := json.Marshal(listResponse{Replays: list, Count: len(list)})
	if err != nil {
		s.internal(w, "encode replays", err)
		return
	}
	s.cache.put(u.ID, key, gen, body)
	writeBody(w, http.StatusOK, body)
}

// viewableReplay loads the replay in the path if the caller may view it. The
// bola-media defect skips the viewer check: any valid token will do.
func (s *Server) viewableReplay(w http.ResponseWriter, r *http.Request, u user) (replaySummary, bool) {
	rid := r.PathValue("rid")
	if len(rid) > maxIDLen {
		writeErr(w, errNoSuchReplay)
		return replaySummary{}, false
	}
	rep, viewer, err := s.db.replay(r.Context(), rid, u.ID)
	if errors.Is(err, errNotFound) {
		writeErr(w, errNoSuchReplay)
		return rep, false
	}
	if err != nil {
		s.internal(w, "look up replay", err)
		return rep, false
	}
	if !viewer && !s.bugs.Fire(bugs.BOLAMedia) {
		writeErr(w, errNoSuchReplay)
		return rep, false
	}
	if rep.state != recReady {
		writeErr(w, errf(http.StatusConflict, "recording_not_ready", "the recording is not finalised yet"))
		return rep, false
	}
	return rep, true
}

type replayResponse struct {
	ID             string     `json:"id"`
	ConsultationID string     `json:"consultation_id"`
	Title          string     `json:"title"`
	Participants   []string   `json:"participants"`
	StartedAt      string     `json:"started_at"`
	EndedAt        string     `json:"ended_at"`
	Tracks         []trackRow `json:"tracks"`
}

func (s *Server) getReplay(w http.ResponseWriter, r *http.Request, u user) {
	rep, ok := s.viewableReplay(w, r, u)
	if !ok {
		return
	}
	tracks, err := s.db.tracks(r.Context(), s.db.r, rep.ID)
	if err != nil {
		s.internal(w, "list tracks", err)
		return
	}
	writeJSON(w, http.StatusOK, replayResponse{ID: rep.ID, ConsultationID: rep.ConsultationID, Title: rep.Title,
		Participants: rep.Participants, StartedAt: rep.StartedAt, EndedAt: rep.EndedAt, Tracks: tracks})
}

var contentTypes = map[string]string{"ogg": "audio/ogg", "ivf": "video/x-ivf", "webm": "video/webm"}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, u user) {
	tid, e := parseTrackQuery(r.URL.Query())
	if e != nil {
		writeErr(w, e)
		return
	}
	rep, ok := s.viewableReplay(w, r, u)
	if !ok {
		return
	}
	t, err := s.db.track(r.Context(), tid)
	if errors.Is(err, errNotFound) || (err == nil && t.rid != rep.ID) {
		writeErr(w, errf(http.StatusNotFound, "not_found", "no such track in this replay"))
		return
	}
	if err != nil {
		s.internal(w, "look up track", err)
		return
	}
	f, err := os.Open(t.path)
	if err != nil {
		s.internal(w, "open track file", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.internal(w, "stat track file", err)
		return
	}
	ct := contentTypes[t.Format]
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, t.ID, t.Format))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, io.LimitReader(f, st.Size())); err != nil {
		s.log.Debug("stream track", "track", t.ID, "err", err)
	}
}
