package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--udp-port", "x"},
		{"--udp-port", "70000"},
		{"--bug", "nope"},
		{"--bug", "list-scope:2"},
		{"--advertised-ip", "example.com"},
		{"--addr", "nocolon"},
		{"--log-level", "loud"},
		{"--data", ""},
		{"stray"},
	} {
		var out bytes.Buffer
		if code := run(args, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, out.String())
		}
		if out.Len() == 0 {
			t.Errorf("%v: no message", args)
		}
	}
}

func TestHelpListsFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	for _, f := range []string{"-addr", "-data", "-udp-port", "-listen-ip", "-advertised-ip", "-bug", "-seed", "-log-level"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help lacks %s", f)
		}
	}
}

func TestGoodFlags(t *testing.T) {
	o, err := parseFlags([]string{"--data", "/tmp/x", "--bug", "list-scope", "--bug", "cache-key:0.5", "--seed", "7", "--udp-port", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.DataDir != "/tmp/x" || len(o.cfg.Bugs) != 2 || o.cfg.Seed != 7 || o.cfg.UDPPort != 0 || o.cfg.Addr != "127.0.0.1:8088" {
		t.Errorf("parsed %+v", o.cfg)
	}
}

func TestEnvFallbacks(t *testing.T) {
	env := map[string]string{"CLINIC_BUGS": "switch-reuse:1, list-scope", "CLINIC_SEED": "9"}
	getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { getenv = os.Getenv })

	o, err := parseFlags([]string{"--data", "/tmp/x"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.cfg.Bugs, " "); got != "switch-reuse:1 list-scope" || o.cfg.Seed != 9 {
		t.Errorf("from env: bugs %q seed %d", got, o.cfg.Seed)
	}
	// Flags win over the environment.
	o, err = parseFlags([]string{"--bug", "cache-key", "--seed", "3"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.cfg.Bugs, " "); got != "cache-key" || o.cfg.Seed != 3 {
		t.Errorf("flags over env: bugs %q seed %d", got, o.cfg.Seed)
	}
	for _, bad := range []map[string]string{{"CLINIC_BUGS": "nope"}, {"CLINIC_SEED": "-1"}} {
		env = bad
		var out bytes.Buffer
		if code := run(nil, &out); code != 2 || !strings.Contains(out.String(), "CLINIC_") {
			t.Errorf("%v: exit %d, message %q", bad, code, out.String())
		}
	}
}
