package main

import (
	"bytes"
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
