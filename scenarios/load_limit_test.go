package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --scenario /dev/zero: refused after MaxFileSize+1 bytes, quickly, without
// reading on (memory stays bounded by the limit).
func TestLoadDevZeroRefusedWithLimit(t *testing.T) {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Load("/dev/zero")
	if err == nil || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "scenario file exceeds 8 MiB") {
		t.Fatalf("err = %v, want scenario file exceeds 8 MiB", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("allocated %d MiB reading /dev/zero", grew>>20)
	}
}

// A scenario file larger than the limit is refused; one at the limit is read.
func TestLoadFileOverLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, []byte("name: big\n"+strings.Repeat("#", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v", err)
	}
}

// A read waiting on a pipe whose writer never writes returns when ctx is
// cancelled (SIGINT), and a FIFO without a writer does not hang in open.
func TestLoadContextCancelsBlockedRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(p); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO without a writer loaded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open of a FIFO without a writer hangs")
	}

	w, err := os.OpenFile(p, os.O_RDWR, 0) // a writer that never writes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, err := LoadContext(ctx, p); done <- err }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the read")
	}
}
