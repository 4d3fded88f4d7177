package tmpdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSweepRemovesDirsOfDeadOwnersOnly(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	prefix := "telechaos-tmpdir-test-"
	// A dead owner: a process that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no `true` to get a dead pid:", err)
	}
	dead := filepath.Join(os.TempDir(), prefix+"dead")
	live := filepath.Join(os.TempDir(), prefix+"live")
	foreign := filepath.Join(os.TempDir(), prefix+"foreign")
	for dir, owner := range map[string]string{dead: strconv.Itoa(cmd.Process.Pid), live: strconv.Itoa(os.Getppid()), foreign: ""} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir, cleanup, err := New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead owner's directory survived: %v", err)
	}
	for _, d := range []string{live, foreign, dir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s", dir)
	}
}
