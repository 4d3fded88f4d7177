package trace

import (
	"fmt"
	"strconv"
	"strings"
)

// Explain says, in a few lines for the terminal, why a repro of tr against
// target (the --target given; "" = the trace's own) reproduced reproduced
// of total times, when that needs saying: never against the embedded
// clinic at 100% or 0% of a deterministic bug, always when the count is
// partial or the target is not one whose bugs the trace can seed. It
// returns "" when there is nothing to add.
func Explain(tr *Trace, target string, reproduced, total int) string {
	if target == "" {
		target = tr.Header.Target
	}
	embedded := target == "" || target == TargetEmbedded
	var probabilistic []string
	for _, spec := range tr.Header.Bugs {
		for part := range strings.SplitSeq(spec, ",") {
			id, p, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			if v, err := strconv.ParseFloat(p, 64); err == nil && v < 1 {
				probabilistic = append(probabilistic, fmt.Sprintf("%s (p=%s)", id, p))
			}
		}
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	switch {
	case total == 0:
		return ""
	case embedded && reproduced == total:
		return ""
	case embedded && len(probabilistic) > 0:
		line("note: the trace's bugs fire with a probability: %s; the embedded clinic draws them from bug seed %d, so a replay", strings.Join(probabilistic, ", "), tr.Header.BugSeed)
		line("  fires them where the original run did only when the same requests reach the same draws; timing (concurrent groups, media arrival) can move them.")
		line("  For a deterministic repro set the bug to probability 1 in the trace header (\"bugs\": [\"ID:1\"]) and replay again.")
	case embedded && reproduced == 0:
		line("note: the trace did not reproduce against a fresh embedded clinic with its bugs %v: the violation depended on something the trace does not hold", tr.Header.Bugs)
		line("  (timing of the original run, faults, or other users). Re-run the scenario with its seed (the report's repro command) to get a fresh minimal trace.")
	case embedded:
		line("note: %d of %d: the violation depends on timing (concurrent groups, media arrival); --times N measures the rate.", reproduced, total)
	default:
		line("note: %s is not seeded by the trace: a bug in it that fires with a probability, or only under load or a race,", target)
		line("  reproduces only sometimes (%d of %d here), and nothing the harness sends can fix its draws.", reproduced, total)
		if len(tr.Header.Bugs) > 0 {
			line("  The trace was found with the embedded clinic's bugs %v: replay it there, seeded, with --target embedded.", tr.Header.Bugs)
		}
		line("  To make your own target deterministic, start it with a fixed seed where it has one (the reference clinic: --seed N or CLINIC_SEED)")
		line("  and a single instance, then replay with --times N to measure the rate.")
	}
	return b.String()
}
