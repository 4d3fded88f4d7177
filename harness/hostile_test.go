package harness

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/clinic"
	"github.com/telechaos/telechaos/internal/hostile"
	"github.com/telechaos/telechaos/reports"
	"github.com/telechaos/telechaos/scenarios"
)

// hostileScenario is a small media run against url: every patient replays
// and probes, so each kind of answer a mode breaks is asked for.
func hostileScenario(t *testing.T, url string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.Parse("hostile.yaml", []byte(fmt.Sprintf(`
name: hostile
target: %s
seed: 1
population: {patients: 6, clinicians: 2}
executor: {type: closed, vus: 6}
duration: 30s
settle: 2s
behaviour: {switch_to_video: 0.5, replay: 1, abandon: 0, probe_other: 1, call_min: 1s, call_max: 1s, think_min: 0s, think_max: 0s}
`, url)))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// startClinic starts a correct embedded clinic (or one with bugs) for the
// hostile front to stand before.
func startClinic(t *testing.T, bugList ...string) *clinic.Server {
	t.Helper()
	srv, err := clinic.Start(context.Background(), clinic.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		AdvertisedIP: "127.0.0.1", Bugs: bugList, Seed: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// startFront puts a hostile front in mode before the clinic at url, closed
// when the test ends.
func startFront(t *testing.T, url string, mode hostile.Mode) *hostile.Server {
	t.Helper()
	front, err := hostile.Start(url, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	return front
}

// canaryUntouched fails t if anything reached the canary the front's
// redirects and foreign candidates point to.
func canaryUntouched(t *testing.T, front *hostile.Server) {
	t.Helper()
	if req, tok, udp := front.Canary.Seen(); req+tok+udp > 0 {
		t.Errorf("traffic left the target: %d requests (%d with a token), %d UDP packets", req, tok, udp)
	}
}

func runAgainst(t *testing.T, sc *scenarios.Scenario) *Result {
	t.Helper()
	res, err := Run(context.Background(), RunConfig{Scenario: sc, ReportDir: filepath.Join(t.TempDir(), "report"),
		Grace: 5 * time.Second, ReproBudget: -1})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	return res
}

// TestHostileTargetNeverPasses runs the harness against a correct clinic
// behind a front that breaks one kind of answer at a time. What could not
// be judged must never pass, a broken list must never be reported as a lost
// recording, and nothing may reach the canary the redirects point to.
func TestHostileTargetNeverPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("media runs against a hostile front: not in -short")
	}
	up := startClinic(t)
	for _, tc := range []struct {
		mode hostile.Mode
		// notJudged: the invariant whose judged share must fall short.
		notJudged string
	}{
		{hostile.MediaJunkSuffix, "replay-content-ownership"},
		{hostile.MediaRandom, "replay-content-ownership"},
		{hostile.MediaServerError, "replay-content-ownership"},
		{hostile.MediaReset, "replay-content-ownership"},
		{hostile.MediaTruncated, "replay-content-ownership"},
		{hostile.MediaEmpty, "replay-content-ownership"},
		{hostile.MediaHTML, "replay-content-ownership"},
		{hostile.MediaHuge, "replay-content-ownership"},
		{hostile.MediaHugeChunked, "replay-content-ownership"},
		{hostile.MediaRedirect, "replay-content-ownership"},
		{hostile.ListCut, "replay-list-ownership"},
		{hostile.ListEmptyObject, "replay-list-ownership"},
		{hostile.ListNull, "replay-list-ownership"},
		{hostile.ListGarbage, "replay-list-ownership"},
		{hostile.ListServerError, "replay-list-ownership"},
		{hostile.ListRedirect, "replay-list-ownership"},
		{hostile.ListHuge, "replay-list-ownership"},
		{hostile.SlowBody, "replay-list-ownership"},
		{hostile.ReplayGarbage, "replay-content-ownership"},
		{hostile.ReplayServerError, "replay-content-ownership"},
		{hostile.ProbeRedirect, "replay-access-control"},
		{hostile.HeaderFlood, "replay-list-ownership"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			front := startFront(t, up.URL(), tc.mode)
			res := runAgainst(t, hostileScenario(t, front.URL))
			s := res.Summary
			if front.Hits.Load() == 0 {
				t.Fatalf("the mode never applied: the test proves nothing")
			}
			if res.ExitCode == ExitPass {
				t.Fatalf("exit 0 against %s: %s", tc.mode, s.Reason)
			}
			if res.ExitCode != ExitTarget || s.Verdict != reports.VerdictNotJudged {
				t.Errorf("verdict %s exit %d (%s), want not-judged exit 3", s.Verdict, res.ExitCode, s.Reason)
			}
			if j := s.Judgement[tc.notJudged]; j.Status != reports.JudgementShort || len(j.Reasons) == 0 {
				t.Errorf("%s judgement %+v, want not-judged with reasons", tc.notJudged, j)
			}
			for _, v := range s.Violations {
				t.Errorf("broken infrastructure reported as a violation: %s: %s", v.Invariant, v.Detail)
			}
			// A 2xx whose body could not be read is a failed request, not a
			// success (error_rate saw 0 of 511 against random media).
			if s.Counts.OperationErrors == 0 {
				t.Errorf("no failed request counted: %+v", s.Counts)
			}
			canaryUntouched(t, front)
		})
	}
}

// TestHostileControlPasses: the same run through the front without a mode
// passes, so the failures above are the modes', not the front's.
func TestHostileControlPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("media run: not in -short")
	}
	front := startFront(t, startClinic(t).URL(), hostile.Pass)
	res := runAgainst(t, hostileScenario(t, front.URL))
	if res.ExitCode != ExitPass {
		t.Fatalf("verdict %s exit %d: %s %+v", res.Summary.Verdict, res.ExitCode, res.Summary.Reason, res.Summary.Judgement)
	}
}

// TestHostileTargetCannotHideALeak: a clinic with a leak behind a front that
// corrupts every track still exits 1: the leak shows in the lists, and a
// found violation outranks what could not be judged.
func TestHostileTargetCannotHideALeak(t *testing.T) {
	if testing.Short() {
		t.Skip("media run: not in -short")
	}
	front := startFront(t, startClinic(t, "list-scope").URL(), hostile.MediaJunkSuffix)
	sc := hostileScenario(t, front.URL)
	sc.Population.Clinicians = 1 // list-scope leaks between patients of one clinician
	res := runAgainst(t, sc)
	s := res.Summary
	if res.ExitCode != ExitViolation || s.ViolationsByInvariant["replay-list-ownership"] == 0 {
		t.Fatalf("verdict %s exit %d, want the leak (exit 1): %s", s.Verdict, res.ExitCode, s.Reason)
	}
	if len(s.Also) == 0 {
		t.Errorf("what could not be judged must still be reported beside the violation: %+v", s)
	}
}

// TestHostileTargetCannotHideAFrameLeak: foreign frames at the start of
// each recording (preroll-leak) behind a front that appends junk to every
// track are still found: the frames before the junk are judged.
func TestHostileTargetCannotHideAFrameLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("media run: not in -short")
	}
	front := startFront(t, startClinic(t, "preroll-leak").URL(), hostile.MediaJunkSuffix)
	// The shape of bug-preroll-leak: frames wait in the pre-roll only while
	// tracks open, which takes calls arriving several at a time.
	sc, err := scenarios.Parse("preroll.yaml", []byte(fmt.Sprintf(`
name: hostile-preroll
target: %s
seed: 1
population: {patients: 30, clinicians: 5}
executor: {type: constant-arrival-rate, rate: 3}
duration: 10s
settle: 5s
behaviour: {switch_to_video: 0.5, replay: 1, probe_other: 0, call_min: 1s, call_max: 2s}
`, front.URL)))
	if err != nil {
		t.Fatal(err)
	}
	res := runAgainst(t, sc)
	s := res.Summary
	if res.ExitCode != ExitViolation || s.ViolationsByInvariant["replay-content-ownership"] == 0 {
		t.Fatalf("verdict %s exit %d %v, want the frame leak (exit 1): %s", s.Verdict, res.ExitCode, s.ViolationsByInvariant, s.Reason)
	}
}

// TestHostileCandidatesGetNoTraffic: SDP answers naming an address the
// harness was not given (the canary's UDP socket on 127.0.0.2) never get a
// connectivity check. With only that address the calls cannot connect and
// the run does not pass; with the real address beside it, the run is judged
// in full and passes.
func TestHostileCandidatesGetNoTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("media runs against a hostile front: not in -short")
	}
	up := startClinic(t)
	for _, tc := range []struct {
		mode hostile.Mode
		pass bool
	}{{hostile.CandidateOffhost, false}, {hostile.CandidateExtra, true}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			front := startFront(t, up.URL(), tc.mode)
			res := runAgainst(t, hostileScenario(t, front.URL))
			s := res.Summary
			if front.Hits.Load() == 0 {
				t.Fatalf("the mode never applied")
			}
			if got := res.ExitCode == ExitPass; got != tc.pass {
				t.Errorf("verdict %s exit %d (%s), want pass=%v", s.Verdict, res.ExitCode, s.Reason, tc.pass)
			}
			for _, v := range s.Violations {
				t.Errorf("a refused answer reported as a violation: %s: %s", v.Invariant, v.Detail)
			}
			canaryUntouched(t, front)
		})
	}
}

// TestHostileRedirectAllIsAFailure: a target that answers everything with a
// redirect is not followed anywhere, and the run fails before its traffic.
func TestHostileRedirectAllIsAFailure(t *testing.T) {
	front := startFront(t, startClinic(t).URL(), hostile.RedirectAll)
	res := runAgainst(t, hostileScenario(t, front.URL))
	if res.ExitCode != ExitTarget || res.Summary.Verdict != reports.VerdictError {
		t.Errorf("verdict %s exit %d (%s), want error exit 3", res.Summary.Verdict, res.ExitCode, res.Summary.Reason)
	}
	if !strings.Contains(res.Summary.Error, "302") {
		t.Errorf("the error does not name the redirect: %s", res.Summary.Error)
	}
	canaryUntouched(t, front)
}

// TestICEAllowReplacesTheDefault: a scenario's ice_allow is the whole list
// of where ICE checks may go: one that leaves out the target's own address
// makes every join fail on its answer, never a passing run.
func TestICEAllowReplacesTheDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("media run: not in -short")
	}
	sc := hostileScenario(t, startClinic(t).URL())
	sc.ICEAllow = []string{"10.9.9.9"}
	res := runAgainst(t, sc)
	if res.ExitCode != ExitTarget || !strings.Contains(res.Summary.Error, "no allowed ICE candidate") {
		t.Fatalf("verdict %s exit %d error %q, want exit 3 naming the refused candidates", res.Summary.Verdict, res.ExitCode, res.Summary.Error)
	}
}
