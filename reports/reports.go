// Package reports writes the results of a telechaos run: summary.json (the
// verdict and its figures), junit.xml (one testcase per invariant and per
// threshold, for CI), index.html (the same for humans, with plots), summary.md
// (a short CI job summary) and one evidence-N.json per distinct violation with
// a repro command. It knows nothing of the harness: the harness fills a
// Summary, and Render redraws every file from summary.json alone; Merge joins
// the summaries of shards into one verdict.
package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/telechaos/telechaos/models"
)

// Verdicts (models.Decide picks one).
const (
	VerdictPass             = models.VerdictPass
	VerdictViolation        = models.VerdictViolation
	VerdictThresholdsFailed = models.VerdictThresholdsFailed
	VerdictNotJudged        = models.VerdictNotJudged
	VerdictError            = models.VerdictError
	VerdictInterrupted      = models.VerdictInterrupted
)

// File names inside a report directory.
const (
	SummaryFile  = "summary.json"
	JUnitFile    = "junit.xml"
	HTMLFile     = "index.html"
	MarkdownFile = "summary.md"
)

// EvidenceFile names the evidence file of the n-th (1-based) distinct violation.
func EvidenceFile(n int) string { return fmt.Sprintf("evidence-%d.json", n) }

// SchemaVersion is the major version of summary.json's schema
// (docs/report-schema.md). It changes only when a field is removed, renamed
// or changes meaning; added fields keep it. A summary without the field
// (written before it existed) reads as version 1.
const SchemaVersion = 1

// Summary is summary.json. Every field is documented in
// docs/report-schema.md (a test keeps the two in step).
type Summary struct {
	// SchemaVersion is set to SchemaVersion whenever a summary is written.
	SchemaVersion   int       `json:"schema_version"`
	Verdict         string    `json:"verdict"`
	ExitCode        int       `json:"exit_code"`
	Error           string    `json:"error,omitempty"`
	RunID           string    `json:"run_id"`
	Seed            uint64    `json:"seed"`
	Scenario        string    `json:"scenario"`
	Target          string    `json:"target"`
	Bugs            []string  `json:"bugs"`
	Media           bool      `json:"media"`
	StartedAt       time.Time `json:"started_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Interrupted     bool      `json:"interrupted,omitempty"`
	Repro           string    `json:"repro"`
	// ReproTraces are the commands replaying the minimised repro-N.trace files.
	ReproTraces []string `json:"repro_traces,omitempty"`
	// TraceFiles are the minimised repro-N.trace files, relative to the
	// report directory (slash-separated), in the order they were written.
	TraceFiles []string `json:"trace_files,omitempty"`
	// Reason says in one line why the verdict is what it is; Also lists the
	// other conditions that held, which the verdict outranks (an interrupted
	// run that found a violation is a violation, and says it was interrupted).
	Reason string   `json:"reason,omitempty"`
	Also   []string `json:"also,omitempty"`
	// Judgement says, per invariant id, how much of what the run observed
	// was judged: a run never passes an invariant it could not check.
	Judgement map[string]Judgement `json:"judgement,omitempty"`

	Counts                Counts         `json:"counts"`
	Invariants            []string       `json:"invariants"`
	Violations            []Violation    `json:"violations"`
	ViolationsByInvariant map[string]int `json:"violations_by_invariant"`
	FirstViolationSeconds *float64       `json:"first_violation_seconds,omitempty"`
	// IgnoredViolations of invariants the scenario does not check.
	IgnoredViolations int                `json:"ignored_violations,omitempty"`
	Thresholds        []Threshold        `json:"thresholds"`
	Latency           map[string]Latency `json:"latency"`
	Expect            string             `json:"expect"`
	ExpectMet         bool               `json:"expect_met"`
	// LatencyHistograms per timed op, in fixed log buckets (HistSchema), so
	// merged shards get exact-to-the-bucket percentiles.
	LatencyHistograms map[string]*Histogram `json:"latency_histograms,omitempty"`
	// FaultWindows are the faults injected, in the order they opened.
	FaultWindows []FaultWindow `json:"fault_windows,omitempty"`
	// Coverage counts how often each risky path ran under each fault:
	// path -> fault ("none" for no fault) -> count.
	Coverage map[string]map[string]int64 `json:"coverage,omitempty"`
	// CoverageShortfalls are unmet coverage requirements, one line each.
	CoverageShortfalls []string `json:"coverage_shortfalls,omitempty"`
	// Shards are the report directories a merged summary was made from, and
	// Seeds their seeds when they differ (Seed is the first).
	Shards []string `json:"shards,omitempty"`
	Seeds  []uint64 `json:"seeds,omitempty"`
	// Timeline samples the run about once a second (for plots).
	Timeline []Sample `json:"timeline,omitempty"`
	// ICE says how the calls' media went (media runs only).
	ICE *ICE `json:"ice,omitempty"`
	// Authz is the authorization matrix's tally per route x identity x
	// variant; status "not-run" when the target's driver declares none
	// (absent when the scenario never probed).
	Authz *models.AuthzMatrix `json:"authz,omitempty"`
}

// ICE counts the harness' peer connections that connected and, of those,
// the ones whose selected candidate pair went through a TURN relay.
type ICE struct {
	Connected    int64    `json:"connected"`
	Relayed      int64    `json:"relayed"`
	RelayedShare float64  `json:"relayed_share"` // relayed / connected; 0 with none connected
	RelayOnly    bool     `json:"relay_only,omitempty"`
	Gather       []string `json:"gather,omitempty"` // local addresses host candidates were gathered on ("" = loopback)
}

// Judgement statuses of an invariant in a run.
const (
	JudgementJudged       = "judged"        // at least the required share was judged
	JudgementShort        = "not-judged"    // less than the required share: the run cannot pass
	JudgementNotExercised = "not-exercised" // nothing to judge (no media, no replays): reported, never as passed
	JudgementNotChecked   = "not-checked"   // the scenario does not check it
)

// Judgement is one invariant's judged share in a run: the observations it
// judged and those it should have judged but could not, by reason.
type Judgement struct {
	Status    string  `json:"status"`
	Judged    int64   `json:"judged"`
	NotJudged int64   `json:"not_judged"`
	Share     float64 `json:"share"`    // judged / (judged + not judged); 1 with nothing to judge
	Required  float64 `json:"required"` // the share the run needed
	// Reasons counts what was not judged by reason; Examples holds the first
	// detail of each.
	Reasons  map[string]int64  `json:"reasons,omitempty"`
	Examples map[string]string `json:"examples,omitempty"`
}

// Classify sets Share and Status from Judged, NotJudged and Required
// (checked false: the scenario does not check inv) and returns the line that
// keeps the run from passing, "" when the share was met. The one rule for
// runs, merged shards and the Prometheus verdict.
func (j *Judgement) Classify(inv string, checked bool) string {
	n := j.Judged + j.NotJudged
	j.Share = 1
	if n > 0 {
		j.Share = float64(j.Judged) / float64(n)
	}
	switch {
	case !checked:
		j.Status = JudgementNotChecked
	case n == 0:
		j.Status = JudgementNotExercised
	case j.Share+1e-12 < j.Required:
		j.Status = JudgementShort
		return fmt.Sprintf("%s judged %d of %d (%.0f%%, %.0f%% required)", inv, j.Judged, n, 100*j.Share, 100*j.Required)
	default:
		j.Status = JudgementJudged
	}
	return ""
}

// FaultWindow is one fault injection: when it opened and healed (End zero
// while still open at the end of the run) and what went wrong.
type FaultWindow struct {
	Fault   string            `json:"fault"`
	Params  map[string]string `json:"params,omitempty"`
	Trigger string            `json:"trigger,omitempty"`
	Start   time.Time         `json:"start"`
	End     time.Time         `json:"end"`
	Err     string            `json:"err,omitempty"`
	Shard   string            `json:"shard,omitempty"` // merged summaries only
}

// Sample is one point of a run's timeline; counters are cumulative.
type Sample struct {
	T             float64 `json:"t"` // seconds since start
	UsersActive   int64   `json:"users_active"`
	CallsActive   int64   `json:"calls_active"`
	Calls         int64   `json:"calls"`
	Ops           int64   `json:"ops"`
	OpErrors      int64   `json:"op_errors"`
	FramesChecked int64   `json:"frames_checked"`
	Violations    int64   `json:"violations"`
	Dropped       int64   `json:"dropped"`
	// Media frames sent and received live, cumulative.
	FramesSent     int64 `json:"frames_sent,omitempty"`
	FramesReceived int64 `json:"frames_received,omitempty"`
	// Latency of the ops completed since the previous sample.
	Latency map[string]WindowLatency `json:"latency,omitempty"`
}

// WindowLatency is one op's percentiles (seconds) over one timeline step.
type WindowLatency struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Counts are the run's figures.
type Counts struct {
	Users              int   `json:"users"`
	Patients           int   `json:"patients"`
	Clinicians         int   `json:"clinicians"`
	ArrivalsDropped    int   `json:"arrivals_dropped"`
	Consultations      int   `json:"consultations"`
	CallsConnected     int   `json:"calls_connected"`
	CallsEnded         int   `json:"calls_ended"`
	CallsAbandoned     int   `json:"calls_abandoned"`
	CallsFailed        int   `json:"calls_failed"`
	Switches           int   `json:"switches"`
	ReplaysListed      int   `json:"replays_listed"`
	ReplaysFetched     int   `json:"replays_fetched"`
	TracksFetched      int   `json:"tracks_fetched"`
	FramesSent         int64 `json:"frames_sent"`
	FramesAcked        int64 `json:"frames_acked"`
	FramesReceivedLive int64 `json:"frames_received_live"`
	FramesChecked      int   `json:"frames_checked"`
	LiveFramesChecked  int   `json:"live_frames_checked"`
	UntaggedFrames     int   `json:"untagged_frames"`
	Probes             int   `json:"probes"`
	ProbesSkipped      int   `json:"probes_skipped"`
	DurabilityChecked  int   `json:"durability_checked"`
	Operations         int   `json:"operations"`
	OperationErrors    int   `json:"operation_errors"`
	// ProbesDenied counts the access probes the target rightly refused;
	// they are among OperationErrors (non-2xx answers) by design.
	ProbesDenied int `json:"probes_denied"`
}

// Violation is one distinct violation as summary.json lists it.
type Violation struct {
	Invariant    string    `json:"invariant"`
	Viewer       string    `json:"viewer,omitempty"`
	Owner        string    `json:"owner,omitempty"`
	Owners       []string  `json:"owners,omitempty"`
	Recording    string    `json:"recording,omitempty"`
	Consultation string    `json:"consultation,omitempty"`
	Track        string    `json:"track,omitempty"`
	At           time.Time `json:"at"`
	Detail       string    `json:"detail"`
	Evidence     string    `json:"evidence,omitempty"`    // file name in the report directory
	Shard        string    `json:"shard,omitempty"`       // merged summaries: the run directory it came from
	Repro        string    `json:"repro,omitempty"`       // merged summaries: the shard's repro command
	ReproTrace   string    `json:"repro_trace,omitempty"` // command replaying the minimised trace, when one was written
	// TraceFile is the minimised trace of this violation, relative to the
	// report directory (merged summaries: to the shard's directory, Shard).
	TraceFile string `json:"trace_file,omitempty"`
}

// Threshold is one evaluated threshold.
type Threshold struct {
	Metric string `json:"metric"`
	Stat   string `json:"stat,omitempty"`
	Limit  string `json:"limit"` // "max 500ms", "min 2", as written
	// Max and Min are the bounds in base units (seconds for latencies), as
	// the run read them: a merge judges by these, not by re-reading Limit.
	Max   *float64 `json:"max,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Value float64  `json:"value"` // seconds for latencies
	Pass  bool     `json:"pass"`
	Note  string   `json:"note,omitempty"`
	// Num and Den are the ratio's parts (errors and requests, acknowledged
	// and sent frames, calls and seconds), so merges can add them.
	Num float64 `json:"num,omitempty"`
	Den float64 `json:"den,omitempty"`
}

// FailureLine names a failed threshold with its value, limit and note.
func (t Threshold) FailureLine() string {
	line := fmt.Sprintf("%s = %.4g (limit %s)", thresholdName(t), t.Value, t.Limit)
	if t.Note != "" {
		line += ": " + t.Note
	}
	return line
}

// Latency holds one op's percentiles in seconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Evidence is one evidence-N.json: the violation as the oracle recorded it (with
// its frames and the recent operations of the users involved) and how to replay
// the run that found it.
type Evidence struct {
	N         int    `json:"n"`
	RunID     string `json:"run_id"`
	Invariant string `json:"invariant"`
	Summary   string `json:"summary"`
	Repro     string `json:"repro"`
	// ReproTrace replays the violation's minimised trace (when one was written).
	ReproTrace string `json:"repro_trace,omitempty"`
	// TraceFile is that trace, relative to the report directory.
	TraceFile string `json:"trace_file,omitempty"`
	Violation any    `json:"violation"`
}

// Write writes summary.json, junit.xml and the evidence files into dir (created
// if needed). It writes as much as it can and returns every error joined.
// ErrReportDir: the report directory cannot be created or written.
var ErrReportDir = errors.New("report directory not writable")

// Prepare creates dir and proves it writable (a probe file is written and
// removed), so a run finds an unwritable report directory before it sends
// any traffic, not after.
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrReportDir, dir, err)
	}
	f, err := os.CreateTemp(dir, ".telechaos-probe-*")
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrReportDir, dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("probe\n"))
	cerr := f.Close()
	os.Remove(name)
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrReportDir, dir, err)
	}
	return nil
}

func Write(dir string, s *Summary, evidence []Evidence) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	var errs []error
	// Evidence of an earlier run into the same directory would be mistaken
	// for this run's.
	if stale, err := filepath.Glob(filepath.Join(dir, "evidence-*.json")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	for _, e := range evidence {
		if err := writeJSON(filepath.Join(dir, EvidenceFile(e.N)), e); err != nil {
			errs = append(errs, err)
		}
	}
	if err := WriteSummary(dir, s); err != nil {
		errs = append(errs, err)
	}
	if err := Render(dir, s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Render writes the files derived from a summary (junit.xml, index.html,
// summary.md) into dir, which must exist. `telechaos report DIR` calls it.
func Render(dir string, s *Summary) error {
	var errs []error
	if err := WriteJUnit(filepath.Join(dir, JUnitFile), s); err != nil {
		errs = append(errs, err)
	}
	if err := WriteHTML(filepath.Join(dir, HTMLFile), s); err != nil {
		errs = append(errs, err)
	}
	if err := WriteMarkdown(filepath.Join(dir, MarkdownFile), s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WriteSummary writes s as summary.json into dir, stamped with the current
// SchemaVersion.
func WriteSummary(dir string, s *Summary) error {
	s.SchemaVersion = SchemaVersion
	return writeJSON(filepath.Join(dir, SummaryFile), s)
}

// ErrSchema: a summary.json of a schema major version this build does not
// read.
var ErrSchema = errors.New("unsupported summary.json schema_version")

// Schema returns s's schema major version (1 for summaries written before
// the field existed).
func (s *Summary) Schema() int {
	if s.SchemaVersion == 0 {
		return 1
	}
	return s.SchemaVersion
}

// CheckSchema fails with ErrSchema, naming path, when s is of another major
// schema version than this build writes.
func CheckSchema(path string, s *Summary) error {
	if v := s.Schema(); v != SchemaVersion {
		return fmt.Errorf("%w: %s has schema_version %d, this telechaos reads %d (redo the run or use the telechaos that wrote it)",
			ErrSchema, path, v, SchemaVersion)
	}
	return nil
}

// ReadSummary reads a summary.json.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse summary %s: %w", path, err)
	}
	return &s, nil
}

func writeJSON(path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "->" in recent ops stays readable
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFileAtomic(path, b.Bytes())
}

// writeFileAtomic writes through a temporary file so a reader (CI, a human
// tailing the directory) never sees half a report.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
