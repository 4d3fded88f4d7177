package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/telechaos/telechaos/internal/hostile"
)

// rssBudget is the documented ceiling of a run's peak resident memory
// against a target whose every answer is as large as it can make it
// (README, "Memory"): the driver's shared body budget (256 MiB) plus the
// run itself, with room for the garbage collector's headroom.
const rssBudget = 1 << 30

// rssChildEnv names the hostile mode a re-executed test binary runs.
const rssChildEnv = "TELECHAOS_RSS_CHILD"

// TestHostileMemoryIsBounded runs 80 users against a front that answers
// every track with 2 GiB (declared, or chunked with no length) or every list
// with ten million entries, each in a child process, and holds the child's
// peak RSS to rssBudget. Before the shared budget, 80 users reached 5.3 GB.
func TestHostileMemoryIsBounded(t *testing.T) {
	if mode := os.Getenv(rssChildEnv); mode != "" {
		rssChild(t, hostile.Mode(mode))
		return
	}
	if testing.Short() {
		t.Skip("80-user runs against a hostile front: not in -short")
	}
	for _, mode := range []hostile.Mode{hostile.MediaHugeChunked, hostile.MediaHuge, hostile.ListHuge} {
		t.Run(string(mode), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostileMemoryIsBounded$", "-test.v")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+string(mode))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				t.Skip("no rusage on this platform")
			}
			peak := ru.Maxrss << 10 // KiB on Linux
			t.Logf("%s: peak RSS %d MiB (budget %d MiB)", mode, peak>>20, rssBudget>>20)
			if peak > rssBudget {
				t.Errorf("peak RSS %d MiB exceeds the documented %d MiB\n%s", peak>>20, rssBudget>>20, out)
			}
		})
	}
}

// rssChild is the measured run: it must not pass, and must not be killed.
func rssChild(t *testing.T, mode hostile.Mode) {
	front := startFront(t, startClinic(t).URL(), mode)
	sc := hostileScenario(t, front.URL)
	sc.Population.Patients, sc.Population.Clinicians = 80, 8
	sc.Executor.VUs = 80
	res := runAgainst(t, sc)
	if front.Hits.Load() == 0 {
		t.Fatal("the mode never applied")
	}
	if res.ExitCode == ExitPass {
		t.Fatalf("exit 0 against %s", mode)
	}
	fmt.Fprintf(os.Stderr, "child %s: exit %d, %s; report %s\n", mode, res.ExitCode, res.Summary.Reason,
		filepath.Base(res.ReportDir))
}
