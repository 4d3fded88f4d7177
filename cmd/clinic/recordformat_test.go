package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRecordFormatFlag(t *testing.T) {
	for arg, want := range map[string]string{"": "", "native": "", "webm": "webm"} {
		args := []string{"--data", "/tmp/x"}
		if arg != "" {
			args = append(args, "--record-format", arg)
		}
		o, err := parseFlags(args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%q: %v", arg, err)
		}
		if o.cfg.RecordFormat != want {
			t.Errorf("--record-format %q: config %q, want %q", arg, o.cfg.RecordFormat, want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--record-format", "mp4"}, &out); code != 2 || !strings.Contains(out.String(), `"mp4"`) {
		t.Errorf("--record-format mp4: exit %d, %q; want 2 naming the value", code, out.String())
	}
}
