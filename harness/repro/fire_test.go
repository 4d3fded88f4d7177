package repro

import "testing"

func TestFireSeedFiresEveryDecision(t *testing.T) {
	seed, run := fireSeed([]string{"switch-reuse:0.3"}, 2)
	if run < 6 {
		t.Fatalf("best run %d decisions at seed %d, want >= 6", run, seed)
	}
	if _, _, prob := probabilistic([]string{"list-scope"}); prob {
		t.Error("list-scope (p=1) counted as probabilistic")
	}
}
