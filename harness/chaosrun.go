package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/telechaos/telechaos/harness/chaos"
	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/harness/target"
)

// Chaos in a run: see chaos.Runtime (docs/design.md section 8).

// ExternalChaos is fault machinery a caller brings to a run whose target it
// manages (a container deployment, a remote system): the runner schedules
// these faults with the scenario's own, records their windows (the summary's
// fault windows and coverage, the loss recording-durability allows), retries
// requests across their outages and has calls rejoin after the faults that
// restart the target. Set RunConfig.Chaos to use it; it works with a URL
// target and with NewTarget (there Proxy, if any, is only for the faults:
// the target NewTarget returns is what the runner talks to).
type ExternalChaos struct {
	// Proxy is the target's HTTP front, for faults that act on it or
	// retarget it. With a URL target it replaces the runner's own proxy: the
	// driver talks to Proxy.URL(). The caller closes it.
	Proxy *chaos.HTTPProxy
	// Target restarts the target (the scenario's clinic-* faults need it).
	Target chaos.Restartable
	// Faults are scheduled by the run, with the scenario's profile.
	Faults []ExternalFault
}

// ExternalFault is one fault of an ExternalChaos with its trigger.
type ExternalFault struct {
	Fault   chaos.Fault
	Trigger chaos.Trigger
	// Restarts says the target is unreachable while the window is open and
	// comes back without its calls' media state (killed, stopped, cut off
	// its network): requests wait for the heal, and calls in progress
	// rejoin with new PeerConnections when the window closes, as after a
	// clinic restart.
	Restarts bool
}

// wantsChaos says whether the run has faults or coverage to set up.
func (r *run) wantsChaos() bool {
	return len(r.sc.Chaos.Faults) > 0 || len(r.sc.Chaos.Coverage) > 0 || (r.cfg.Chaos != nil && len(r.cfg.Chaos.Faults) > 0)
}

// setupChaos builds the profile's faults, and RunConfig.Chaos's, against
// what the run has. ctl is the opened target's Control (nil when the
// harness cannot stop it: a URL, NewTarget); upstream is the target's URL
// ("" for NewTarget or a target without one). It returns the URL the HTTP
// driver must use (upstream when there is no proxy).
func (r *run) setupChaos(ctl target.Control, upstream string, closers *[]func()) (string, error) {
	cfg := chaos.RuntimeConfig{Profile: r.sc.Chaos, Upstream: upstream, Registry: r.cfg.Registry,
		Seed: r.seed, Media: r.sc.Media, Log: r.log}
	if ext := r.cfg.Chaos; ext != nil {
		cfg.Proxy, cfg.Target = ext.Proxy, ext.Target
		for _, ef := range ext.Faults {
			cfg.External = append(cfg.External, chaos.External{Fault: ef.Fault, Trigger: ef.Trigger, Restarts: ef.Restarts})
		}
	}
	if ctl != nil {
		r.control = ctl
		cfg.Target = target.WithRestart(ctl)
	}
	rt, front, cl, err := chaos.NewRuntime(cfg)
	*closers = append(*closers, cl...)
	switch {
	case errors.Is(err, chaos.ErrRuntimeConfig):
		return "", fmt.Errorf("%w: scenario %s: %w", ErrConfig, r.sc.Name, err)
	case err != nil:
		return "", fmt.Errorf("%w: chaos: %w", ErrTarget, err)
	}
	r.chaos, r.vu.Chaos = rt, rt
	return front, nil
}

// ChaosFile is the report file with what the faults did to the run.
const ChaosFile = "chaos.json"

// ChaosReport is what the faults did to a run (chaos.json): the media
// impairment's packet counts, the runner's recoveries and, per track, the
// loss measured against what was sent and what was allowed.
type ChaosReport struct {
	Media        *chaos.MediaStats  `json:"media,omitempty"`
	Rejoins      int64              `json:"rejoins"`
	RejoinFailed int64              `json:"rejoin_failed"`
	Retries      int64              `json:"retries"`
	Restarts     int64              `json:"restarts"`
	EndAckLost   int64              `json:"end_ack_lost"`
	ClientFaults int64              `json:"client_faults"`
	UsersErrored int64              `json:"users_errored"`
	CallsFailed  int64              `json:"calls_failed"`
	Events       map[string]int     `json:"events"`
	Skipped      int64              `json:"triggers_skipped"`
	Losses       []oracle.TrackLoss `json:"losses,omitempty"`
}

// chaosReport returns what the faults did (nil for a run without a profile).
func (r *run) chaosReport() *ChaosReport {
	c := r.chaos
	if c == nil {
		return nil
	}
	cr := &ChaosReport{
		Rejoins: c.Count.Rejoins.Load(), RejoinFailed: c.Count.RejoinFailed.Load(), Retries: c.Count.Retries.Load(),
		Restarts: c.Count.Restarts.Load(), EndAckLost: c.Count.EndAckLost.Load(), ClientFaults: c.Count.ClientFaults.Load(),
		UsersErrored: c.Count.UsersErrored.Load(), CallsFailed: r.cnt.CallsFailed.Load(),
		Events: c.Events(), Skipped: c.Skipped(), Losses: r.or.Losses(),
	}
	if m := c.Media(); m != nil {
		st := m.Stats()
		cr.Media = &st
	}
	return cr
}

func (r *run) writeChaos() error {
	cr := r.chaosReport()
	if cr == nil {
		return nil
	}
	b, err := json.MarshalIndent(cr, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", ChaosFile, err)
	}
	if err := os.WriteFile(filepath.Join(r.cfg.ReportDir, ChaosFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ChaosFile, err)
	}
	return nil
}
