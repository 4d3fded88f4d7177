// Package tmpdir makes temporary directories that outlive a killed process
// only until the next run: each holds an owner file with its process id, and
// making a new one removes those whose owner is gone. A run killed with
// SIGKILL cannot clean up after itself; the next one does.
package tmpdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile holds the owning process id in every directory New makes.
const ownerFile = ".telechaos-owner"

// New makes a directory under the system temporary directory whose name
// starts with prefix, after removing the stale ones of that prefix. The
// returned cleanup removes it.
func New(prefix string) (string, func(), error) {
	Sweep(prefix)
	dir, err := os.MkdirTemp("", prefix+"*")
	if err != nil {
		return "", func() {}, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", func() {}, fmt.Errorf("owner file: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// Sweep removes the directories of prefix whose owner process no longer
// runs, and returns how many it removed. Directories without an owner file
// (made by something else) are left alone.
func Sweep(prefix string) int {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	n := 0
	for _, dir := range matches {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			n++
		}
	}
	return n
}

// alive reports whether process pid exists (signal 0 probes without
// signalling; EPERM means it exists but is not ours).
func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
