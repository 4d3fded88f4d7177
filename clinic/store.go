package clinic

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/telechaos/telechaos/clinic/media"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver (CGO_ENABLED=0 images)
)

// Store sentinel errors; the HTTP layer maps them to status codes.
var (
	errNotFound = errors.New("not found")
	errConflict = errors.New("conflict")
)

// Consultation and recording states.
const (
	stateBooked    = "booked"
	stateActive    = "active"
	stateEnded     = "ended"
	recRecording   = "recording"
	recReady       = "ready"
	roleClinician  = "clinician"
	rolePatient    = "patient"
	timeLayout     = time.RFC3339Nano
	titleDateShape = "2006-01-02 15:04 UTC"
)

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id         TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role IN ('patient','clinician')),
	name       TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS appointments (
	id           TEXT PRIMARY KEY,
	patient_id   TEXT NOT NULL REFERENCES users(id),
	clinician_id TEXT NOT NULL REFERENCES users(id),
	mode         TEXT NOT NULL,
	created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consultations (
	id             TEXT PRIMARY KEY,
	appointment_id TEXT NOT NULL REFERENCES appointments(id),
	patient_id     TEXT NOT NULL REFERENCES users(id),
	clinician_id   TEXT NOT NULL REFERENCES users(id),
	state          TEXT NOT NULL CHECK (state IN ('booked','active','ended')),
	video          INTEGER NOT NULL DEFAULT 0,
	recording_id   TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS consultations_clinician ON consultations(clinician_id);
CREATE INDEX IF NOT EXISTS consultations_patient ON consultations(patient_id);
CREATE TABLE IF NOT EXISTS recordings (
	id              TEXT PRIMARY KEY,
	consultation_id TEXT NOT NULL UNIQUE REFERENCES consultations(id),
	state           TEXT NOT NULL CHECK (state IN ('recording','ready')),
	started_at      TEXT,
	ended_at        TEXT,
	title           TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS recording_access (
	recording_id TEXT NOT NULL REFERENCES recordings(id),
	user_id      TEXT NOT NULL REFERENCES users(id),
	PRIMARY KEY (recording_id, user_id)
);
CREATE INDEX IF NOT EXISTS recording_access_user ON recording_access(user_id);
CREATE TABLE IF NOT EXISTS tracks (
	id           TEXT PRIMARY KEY,
	recording_id TEXT NOT NULL REFERENCES recordings(id),
	owner        TEXT NOT NULL,
	kind         TEXT NOT NULL,
	codec        TEXT NOT NULL,
	format       TEXT NOT NULL,
	segment      INTEGER NOT NULL,
	path         TEXT NOT NULL,
	frames       INTEGER NOT NULL DEFAULT 0,
	bytes        INTEGER NOT NULL DEFAULT 0,
	started_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_recording ON tracks(recording_id);
`

// store is the clinic's metadata database. Writes go through a single
// connection (SQLite allows one writer; queuing in Go beats SQLITE_BUSY under
// hundreds of concurrent requests), reads through a small WAL reader pool.
type store struct {
	w *sql.DB
	r *sql.DB
}

var _ media.Catalog = (*store)(nil)

func openStore(ctx context.Context, dir string) (*store, error) {
	path := filepath.Join(dir, "clinic.db")
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &store{w: w, r: r}, nil
}

func (s *store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

type user struct {
	ID, Role, Name string
}

func now() string { return time.Now().UTC().Format(timeLayout) }

func (s *store) createUser(ctx context.Context, u user, tokenHash string) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO users(id, role, name, token_hash, created_at) VALUES (?,?,?,?,?)`,
		u.ID, u.Role, u.Name, tokenHash, now())
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

func (s *store) userByTokenHash(ctx context.Context, h string) (user, error) {
	var u user
	err := s.r.QueryRowContext(ctx, `SELECT id, role, name FROM users WHERE token_hash = ?`, h).
		Scan(&u.ID, &u.Role, &u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNotFound
	}
	if err != nil {
		return u, fmt.Errorf("look up token: %w", err)
	}
	return u, nil
}

func (s *store) userByID(ctx context.Context, id string) (user, error) {
	var u user
	err := s.r.QueryRowContext(ctx, `SELECT id, role, name FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Role, &u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNotFound
	}
	if err != nil {
		return u, fmt.Errorf("look up user: %w", err)
	}
	return u, nil
}

type consultation struct {
	ID            string `json:"id"`
	AppointmentID string `json:"appointment_id"`
	PatientID     string `json:"patient_id"`
	ClinicianID   string `json:"clinician_id"`
	State         string `json:"state"`
	Video         bool   `json:"video"`
	RecordingID   string `json:"recording_id"`
}

func (c consultation) hasParticipant(uid string) bool {
	return uid != "" && (uid == c.PatientID || uid == c.ClinicianID)
}

// book creates appointment, consultation and recording in one transaction and
// grants both participants access to the recording.
func (s *store) book(ctx context.Context, apptID, mode string, c consultation) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin booking: %w", err)
	}
	defer tx.Rollback()
	t := now()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO appointments(id, patient_id, clinician_id, mode, created_at) VALUES (?,?,?,?,?)`,
			[]any{apptID, c.PatientID, c.ClinicianID, mode, t}},
		{`INSERT INTO consultations(id, appointment_id, patient_id, clinician_id, state, video, recording_id) VALUES (?,?,?,?,?,0,?)`,
			[]any{c.ID, apptID, c.PatientID, c.ClinicianID, stateBooked, c.RecordingID}},
		{`INSERT INTO recordings(id, consultation_id, state) VALUES (?,?,?)`,
			[]any{c.RecordingID, c.ID, recRecording}},
		{`INSERT INTO recording_access(recording_id, user_id) VALUES (?,?), (?,?)`,
			[]any{c.RecordingID, c.PatientID, c.RecordingID, c.ClinicianID}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("book: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit booking: %w", err)
	}
	return nil
}

func (s *store) consultation(ctx context.Context, id string) (consultation, error) {
	var c consultation
	var video int
	err := s.r.QueryRowContext(ctx,
		`SELECT id, appointment_id, patient_id, clinician_id, state, video, recording_id FROM consultations WHERE id = ?`, id).
		Scan(&c.ID, &c.AppointmentID, &c.PatientID, &c.ClinicianID, &c.State, &video, &c.RecordingID)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotFound
	}
	if err != nil {
		return c, fmt.Errorf("look up consultation: %w", err)
	}
	c.Video = video != 0
	return c, nil
}

// markJoined moves a booked consultation to active and stamps the recording's
// start on the first join.
func (s *store) markJoined(ctx context.Context, c consultation) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin join: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE consultations SET state = ? WHERE id = ? AND state = ?`,
		stateActive, c.ID, stateBooked); err != nil {
		return fmt.Errorf("mark consultation active: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE recordings SET started_at = ? WHERE id = ? AND started_at IS NULL`,
		now(), c.RecordingID); err != nil {
		return fmt.Errorf("stamp recording start: %w", err)
	}
	return tx.Commit()
}

func (s *store) markVideo(ctx context.Context, cid string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE consultations SET video = 1 WHERE id = ?`, cid)
	if err != nil {
		return fmt.Errorf("mark video: %w", err)
	}
	return nil
}

// claimEnd moves the consultation to ended; exactly one caller wins, the others
// get errConflict.
func (s *store) claimEnd(ctx context.Context, cid string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE consultations SET state = ? WHERE id = ? AND state != ?`,
		stateEnded, cid, stateEnded)
	if err != nil {
		return fmt.Errorf("end consultation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errConflict
	}
	return nil
}

// finalise marks a recording ready, with its end time and title, recording the
// engine's final counts for the tracks it returned.
func (s *store) finalise(ctx context.Context, rid string, final []media.TrackRecord) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin finalise: %w", err)
	}
	defer tx.Rollback()
	for _, t := range final {
		if err := upsertTrack(ctx, tx, t); err != nil {
			return err
		}
	}
	var started sql.NullString
	var clinicianName string
	err = tx.QueryRowContext(ctx, `
		SELECT r.started_at, u.name FROM recordings r
		JOIN consultations c ON c.id = r.consultation_id
		JOIN users u ON u.id = c.clinician_id
		WHERE r.id = ?`, rid).Scan(&started, &clinicianName)
	if err != nil {
		return fmt.Errorf("read recording %s: %w", rid, err)
	}
	end := time.Now().UTC()
	st := end
	if started.Valid {
		if t, err := time.Parse(timeLayout, started.String); err == nil {
			st = t
		}
	}
	title := fmt.Sprintf("Consultation with %s on %s", clinicianName, st.Format(titleDateShape))
	if _, err := tx.ExecContext(ctx,
		`UPDATE recordings SET state = ?, started_at = ?, ended_at = ?, title = ? WHERE id = ?`,
		recReady, st.Format(timeLayout), end.Format(timeLayout), title, rid); err != nil {
		return fmt.Errorf("mark recording ready: %w", err)
	}
	return tx.Commit()
}

func upsertTrack(ctx context.Context, tx *sql.Tx, t media.TrackRecord) error {
	started := t.Started
	if started.IsZero() {
		started = time.Now()
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO tracks(id, recording_id, owner, kind, codec, format, segment, path, frames, bytes, started_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET frames = excluded.frames, bytes = excluded.bytes`,
		t.ID, t.RecordingID, t.Owner, t.Kind, t.Codec, t.Format, t.Segment, t.Path, t.Frames, t.Bytes,
		started.UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("store track %s: %w", t.ID, err)
	}
	return nil
}

// TrackOpened implements media.Catalog.
func (s *store) TrackOpened(t media.TrackRecord) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin track: %w", err)
	}
	defer tx.Rollback()
	if err := upsertTrack(ctx, tx, t); err != nil {
		return err
	}
	return tx.Commit()
}

// TrackProgress implements media.Catalog.
func (s *store) TrackProgress(trackID string, frames, bytes int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.w.ExecContext(ctx, `UPDATE tracks SET frames = ?, bytes = ? WHERE id = ?`, frames, bytes, trackID)
	if err != nil {
		return fmt.Errorf("update track %s: %w", trackID, err)
	}
	return nil
}

// GrantAccess implements media.Catalog.
func (s *store) GrantAccess(recordingID, userID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO recording_access(recording_id, user_id) VALUES (?,?) ON CONFLICT DO NOTHING`, recordingID, userID)
	if err != nil {
		return fmt.Errorf("grant %s access to %s: %w", userID, recordingID, err)
	}
	return nil
}

// segmentBase maps each participant of a recording to the highest segment
// already recorded (by this or an earlier process), so the engine numbers a
// rejoin after a restart after it.
func (s *store) segmentBase(ctx context.Context, recordingID string) (map[string]int, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT owner, MAX(segment) FROM tracks WHERE recording_id = ? GROUP BY owner`, recordingID)
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var owner string
		var seg int
		if err := rows.Scan(&owner, &seg); err != nil {
			return nil, fmt.Errorf("read segment: %w", err)
		}
		out[owner] = seg
	}
	return out, rows.Err()
}

// trackRow is a track as stored.
type trackRow struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Kind    string `json:"kind"`
	Codec   string `json:"codec"`
	Format  string `json:"format"`
	Segment int    `json:"segment"`
	Frames  int64  `json:"frames"`
	Bytes   int64  `json:"bytes"`
	path    string
	rid     string
}

func (s *store) tracks(ctx context.Context, db *sql.DB, rid string) ([]trackRow, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT id, owner, kind, codec, format, segment, frames, bytes, path, recording_id
		FROM tracks WHERE recording_id = ? ORDER BY owner, kind, segment, id`, rid)
	if err != nil {
		return nil, fmt.Errorf("list tracks: %w", err)
	}
	defer rows.Close()
	out := []trackRow{}
	for rows.Next() {
		var t trackRow
		if err := rows.Scan(&t.ID, &t.Owner, &t.Kind, &t.Codec, &t.Format, &t.Segment, &t.Frames, &t.Bytes, &t.path, &t.rid); err != nil {
			return nil, fmt.Errorf("read track: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *store) track(ctx context.Context, tid string) (trackRow, error) {
	var t trackRow
	err := s.r.QueryRowContext(ctx, `
		SELECT id, owner, kind, codec, format, segment, frames, bytes, path, recording_id
		FROM tracks WHERE id = ?`, tid).
		Scan(&t.ID, &t.Owner, &t.Kind, &t.Codec, &t.Format, &t.Segment, &t.Frames, &t.Bytes, &t.path, &t.rid)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errNotFound
	}
	if err != nil {
		return t, fmt.Errorf("look up track: %w", err)
	}
	return t, nil
}

// replaySummary is one entry of the replay list.
type replaySummary struct {
	ID             string   `json:"id"`
	ConsultationID string   `json:"consultation_id"`
	Title          string   `json:"title"`
	Participants   []string `json:"participants"`
	StartedAt      string   `json:"started_at"`
	EndedAt        string   `json:"ended_at"`
	Tracks         int      `json:"tracks"`
	state          string
}

const replayColumns = `
	r.id, r.consultation_id, r.title, COALESCE(r.started_at, ''), COALESCE(r.ended_at, ''), r.state,
	(SELECT COUNT(*) FROM tracks t WHERE t.recording_id = r.id),
	(SELECT group_concat(user_id, ',') FROM (SELECT user_id FROM recording_access ra WHERE ra.recording_id = r.id ORDER BY user_id))`

// The caller's replay list: recordings joined with recording_access for the
// caller, finalised only.
const listForCaller = `SELECT` + replayColumns + `
	FROM recordings r JOIN recording_access a ON a.recording_id = r.id
	WHERE a.user_id = ? AND r.state = 'ready'
	ORDER BY r.ended_at DESC, r.id
	LIMIT ? OFFSET ?`

// listByClinician is the list-scope defect: the access join goes through the
// consultation's clinician, so a patient sees every recording of every clinician
// they have seen (a join on the wrong column that looks right for clinicians).
const listByClinician = `SELECT` + replayColumns + `
	FROM recordings r JOIN consultations c ON c.id = r.consultation_id
	WHERE r.state = 'ready' AND c.clinician_id IN (
		SELECT c2.clinician_id FROM consultations c2
		JOIN recording_access a ON a.recording_id = c2.recording_id
		WHERE a.user_id = ?)
	ORDER BY r.ended_at DESC, r.id
	LIMIT ? OFFSET ?`

func scanSummaries(rows *sql.Rows) ([]replaySummary, error) {
	defer rows.Close()
	out := []replaySummary{}
	for rows.Next() {
		var r replaySummary
		var parts sql.NullString
		if err := rows.Scan(&r.ID, &r.ConsultationID, &r.Title, &r.StartedAt, &r.EndedAt, &r.state, &r.Tracks, &parts); err != nil {
			return nil, fmt.Errorf("read replay: %w", err)
		}
		r.Participants = []string{}
		if parts.String != "" {
			r.Participants = strings.Split(parts.String, ",")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *store) listReplays(ctx context.Context, uid string, byClinician bool, limit, offset int) ([]replaySummary, error) {
	q := listForCaller
	if byClinician {
		q = listByClinician
	}
	rows, err := s.r.QueryContext(ctx, q, uid, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	return scanSummaries(rows)
}

// replay reads one recording's summary and whether uid may view it.
func (s *store) replay(ctx context.Context, rid, uid string) (replaySummary, bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT`+replayColumns+` FROM recordings r WHERE r.id = ?`, rid)
	if err != nil {
		return replaySummary{}, false, fmt.Errorf("read replay: %w", err)
	}
	list, err := scanSummaries(rows)
	if err != nil {
		return replaySummary{}, false, err
	}
	if len(list) == 0 {
		return replaySummary{}, false, errNotFound
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM recording_access WHERE recording_id = ? AND user_id = ?`,
		rid, uid).Scan(&n); err != nil {
		return replaySummary{}, false, fmt.Errorf("check access: %w", err)
	}
	return list[0], n > 0, nil
}

// viewersOf lists who may view a recording (for cache invalidation).
func (s *store) viewersOf(ctx context.Context, rid string) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT user_id FROM recording_access WHERE recording_id = ?`, rid)
	if err != nil {
		return nil, fmt.Errorf("list viewers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("read viewer: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// unfinishedTrack is a track of a recording that was not finalised.
type unfinishedTrack struct {
	ID, Path, Format string
}

func (s *store) unfinishedTracks(ctx context.Context) ([]unfinishedTrack, error) {
	rows, err := s.w.QueryContext(ctx, `
		SELECT t.id, t.path, t.format FROM tracks t JOIN recordings r ON r.id = t.recording_id
		WHERE r.state = 'recording'`)
	if err != nil {
		return nil, fmt.Errorf("list unfinished tracks: %w", err)
	}
	defer rows.Close()
	var out []unfinishedTrack
	for rows.Next() {
		var t unfinishedTrack
		if err := rows.Scan(&t.ID, &t.Path, &t.Format); err != nil {
			return nil, fmt.Errorf("read unfinished track: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// endedUnfinalised lists recordings whose consultation ended but which were not
// marked ready (the clinic stopped between the two).
func (s *store) endedUnfinalised(ctx context.Context) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, `
		SELECT r.id FROM recordings r JOIN consultations c ON c.id = r.consultation_id
		WHERE c.state = 'ended' AND r.state = 'recording'`)
	if err != nil {
		return nil, fmt.Errorf("list unfinalised recordings: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read recording id: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
