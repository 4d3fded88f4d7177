package reports

import (
	"path"
	"strings"
)

// runFailed says whether the run stopped short (an infrastructure or
// configuration failure, an interrupt): checks that judged nothing then did
// not run, and are reported "not run", never as passed.
func runFailed(s *Summary) bool {
	return s.Error != "" || s.Interrupted || s.Verdict == VerdictError || s.Verdict == VerdictInterrupted
}

// notRunCause says why checks could not run, with the first cause.
func notRunCause(s *Summary) string {
	switch {
	case s.Interrupted || s.Verdict == VerdictInterrupted:
		if s.Error != "" && s.Verdict != VerdictInterrupted {
			return "the run failed: " + s.Error
		}
		return "the run was interrupted"
	case s.Error != "":
		return "the run failed: " + s.Error
	case s.Reason != "":
		return "the run failed: " + s.Reason
	}
	return "the run failed"
}

// invariantRan says whether a checked invariant with no violation got to
// judge anything: in a run that stopped short, one that observed nothing
// did not run.
func invariantRan(s *Summary, inv string) bool {
	if !runFailed(s) {
		return true
	}
	j, ok := s.Judgement[inv]
	return ok && j.Judged+j.NotJudged > 0
}

// thresholdRan says whether a threshold was judged on something: in a run
// that stopped short, a latency threshold of an op never timed, or a ratio
// with nothing under it, did not run (its "pass" would be vacuous).
func thresholdRan(s *Summary, t Threshold) bool {
	if !runFailed(s) || !t.Pass {
		return true
	}
	if op, ok := strings.CutPrefix(t.Metric, "latency."); ok {
		return s.Latency[op].Count > 0
	}
	if t.Den > 0 {
		return true
	}
	return t.Value != 0
}

// TraceLink is the path of v's minimal trace relative to the report
// directory ("" without one, or when the recorded name is not a plain
// relative path: a summary edited by hand must not make a report link
// elsewhere).
func TraceLink(v Violation) string {
	if !safeRelPath(v.TraceFile) {
		return ""
	}
	if v.Shard != "" {
		return v.Shard + "/" + v.TraceFile
	}
	return v.TraceFile
}

// safeRelPath: a non-empty slash-separated relative path inside the
// directory, of letters, digits and ._-/ only.
func safeRelPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return false
		}
	}
	return true
}

// traceLinks are every minimal trace of s, relative to the report
// directory: the summary's list, and those only a violation names (merged
// summaries).
func traceLinks(s *Summary) []string {
	var out []string
	add := func(p string) {
		for _, o := range out {
			if o == p {
				return
			}
		}
		out = append(out, p)
	}
	for _, f := range s.TraceFiles {
		if safeRelPath(f) {
			add(f)
		}
	}
	for _, v := range s.Violations {
		if l := TraceLink(v); l != "" {
			add(l)
		}
	}
	return out
}

// linkable: a relative path (".." allowed: merged shards live beside the
// merged report) of letters, digits and ._-/ only, so no scheme, query or
// markup can ride in it.
func linkable(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return false
		}
	}
	return true
}
