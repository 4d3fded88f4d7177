package trace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A 200,000-op trace is refused on load with the limit named, before it is
// held in memory or replayed.
func TestTraceOverMaxOpsRefused(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"telechaos_trace":1,"target":"embedded","seed":1,"bug_seed":1}` + "\n")
	b.WriteString(`{"user":"p1","role":"patient"}` + "\n")
	for range 200_000 {
		b.WriteString(`{"op":"list","user":"p1"}` + "\n")
	}
	p := filepath.Join(t.TempDir(), "big.trace")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(p)
	var pe *ParseError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || !strings.Contains(err.Error(), "more than 50000 ops (MaxOps)") ||
		pe.Line != MaxOps+3 {
		t.Errorf("err = %v", err)
	}
	// Built in code: Validate refuses it too.
	tr := &Trace{Header: Header{Version: Version, Target: TargetEmbedded}, Users: []User{{"p1", "patient"}}}
	tr.Ops = make([]Op, MaxOps+1)
	for i := range tr.Ops {
		tr.Ops[i] = Op{Op: OpList, User: "p1"}
	}
	if err := tr.Validate(); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxOps") {
		t.Errorf("Validate: %v", err)
	}
}

func TestTraceOverMaxUsersRefused(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"telechaos_trace":1,"target":"embedded","seed":1,"bug_seed":1}` + "\n")
	for i := range MaxUsers + 1 {
		fmt.Fprintf(&b, `{"user":"p%d","role":"patient"}`+"\n", i)
	}
	if _, err := Parse(&b); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 10000 users (MaxUsers)") {
		t.Errorf("err = %v", err)
	}
}

// A trace file over MaxFileSize is refused (blank lines would otherwise be
// read for ever: /dev/zero-like input), and a read ctx cancels.
func TestTraceFileLimitAndCancel(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "blank.trace")
	data := append([]byte(`{"telechaos_trace":1,"target":"embedded","seed":1,"bug_seed":1}`+"\n"), bytes.Repeat([]byte("\n"), MaxFileSize)...)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(p); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxFileSize") {
		t.Errorf("err = %v", err)
	}
	if _, err := ParseFile("/dev/zero"); err == nil {
		t.Error("/dev/zero parsed")
	}

	fifo := filepath.Join(dir, "fifo.trace")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0) // a writer that never writes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := ParseFileContext(ctx, fifo); done <- err }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the read")
	}
}
