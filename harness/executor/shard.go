package executor

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Sharding (docs/design.md section 11): one run's population split over N processes
// (a Kubernetes Indexed Job, or N shells) that share a target and a run id.
//
// Shard I of N takes the patients with global index i ≡ I (mod N). Patient
// i's plan stays seeded by the run seed and its GLOBAL index, so the union of
// the shards draws exactly the users and decisions of the unsharded run. The
// arrival schedule is split the same way: shard I starts global arrival
// I+kN at the offset the unsharded executor gives arrival I+kN, so each shard
// runs at rate/N (ramping stages' targets /N) and the N shards together make
// the unsharded schedule; closed VUs and max_in_flight are divided (the
// remainder goes to the lowest shards).
//
// Clinicians: patient i books with round-robin slot i mod C, as unsharded,
// but each shard registers its OWN clinician for each slot its patients use,
// so users of different shards never share a consultation and each shard's
// oracle sees every participant of its calls. What that changes vs unsharded:
// up to N×C clinician users instead of C (summary counts.clinicians adds up to
// more), and a clinician's replay list holds only its shard's patients (the
// patients of slot c split by i mod N). List-scope bugs still show: a shard's
// clinician has every patient i ≡ I (mod N), i ≡ c (mod C), i.e. about
// P/lcm(N,C) of them; with lcm(N,C) > P/2 no clinician has two patients and
// list-scope cannot be seen: keep P >= 2·lcm(N,C).
//
// Probes draw from the shard's own recordings, so cross-shard access
// (a patient of shard 0 fetching a recording of shard 1) is not probed.
// Closing that gap needs a shared id pool (harvested recording ids written to
// a file or ConfigMap by a first-pass shard and loaded by all); see
// deploy/k8s/README.md.

// ErrShard: a --shard or --shards value is malformed or out of range.
var ErrShard = errors.New("invalid shard")

// EnvShardIndex is the variable a Kubernetes Indexed Job sets in each pod.
const EnvShardIndex = "JOB_COMPLETION_INDEX"

// Shard is one slice of a sharded run: Index in [0, Count). The zero value
// (and Count 1) is the whole run.
type Shard struct{ Index, Count int }

// ParseShard reads "I/N".
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("%w %q: want I/N, e.g. 0/4", ErrShard, s)
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%w %q: I and N must be integers", ErrShard, s)
	}
	if n < 1 {
		return Shard{}, fmt.Errorf("%w %q: N must be >= 1", ErrShard, s)
	}
	sh := Shard{Index: i, Count: n}
	return sh, sh.Validate()
}

// ShardFromEnv is shard $JOB_COMPLETION_INDEX of count (the Indexed Job form).
func ShardFromEnv(count int) (Shard, error) {
	v, ok := os.LookupEnv(EnvShardIndex)
	if !ok || v == "" {
		return Shard{}, fmt.Errorf("%w: --shards %d needs %s in the environment (set by an Indexed Job) or use --shard I/N", ErrShard, count, EnvShardIndex)
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return Shard{}, fmt.Errorf("%w: %s=%q is not an integer", ErrShard, EnvShardIndex, v)
	}
	sh := Shard{Index: i, Count: count}
	return sh, sh.Validate()
}

// Validate checks 0 <= Index < Count.
func (s Shard) Validate() error {
	if s.Count == 0 && s.Index == 0 {
		return nil
	}
	if s.Count < 1 {
		return fmt.Errorf("%w %d/%d: N must be >= 1", ErrShard, s.Index, s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("%w %d/%d: I must be in [0, %d)", ErrShard, s.Index, s.Count, s.Count)
	}
	return nil
}

// Sharded reports whether s is a proper slice (N > 1).
func (s Shard) Sharded() bool { return s.Count > 1 }

func (s Shard) n() int { return max(s.Count, 1) }

// String is "I/N" ("" for the whole run).
func (s Shard) String() string {
	if !s.Sharded() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Patients is how many of total patients the shard runs.
func (s Shard) Patients(total int) int {
	if total <= s.Index {
		return 0
	}
	return (total - s.Index + s.n() - 1) / s.n()
}

// Global is the global index of the shard's k-th patient.
func (s Shard) Global(k int) int { return s.Index + k*s.n() }

// Split is the shard's part of n (VUs, max_in_flight): n/N, plus one for
// the first n mod N shards; at least 1 when n > 0.
func (s Shard) Split(n int) int { return Split(n, s.Index, s.n()) }

// ClinicianSlots are the round-robin slots (of clinicians, at least 1) that
// the shard's patients book with, in order; unsharded, every slot.
func (s Shard) ClinicianSlots(patients, clinicians int) []int {
	c := max(clinicians, 1)
	if !s.Sharded() {
		out := make([]int, c)
		for i := range out {
			out[i] = i
		}
		return out
	}
	seen := make([]bool, c)
	var out []int
	for k := range s.Patients(patients) {
		slot := s.Global(k) % c
		if !seen[slot] {
			seen[slot] = true
			out = append(out, slot)
		}
		if len(out) == c {
			break
		}
	}
	slices.Sort(out)
	return out
}

// Check reports a shard that cannot run a scenario of that many patients.
func (s Shard) Check(patients int) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Sharded() && s.Patients(patients) == 0 {
		return fmt.Errorf("%w %s: population.patients %d leaves this shard no patient (want patients >= shards)", ErrShard, s, patients)
	}
	return nil
}

// Apply restricts e to the shard's arrivals and slots (each executor knows
// how: Executor.Shard).
func (s Shard) Apply(e Executor) Executor {
	if !s.Sharded() {
		return e
	}
	return e.Shard(s.Index, s.Count)
}
