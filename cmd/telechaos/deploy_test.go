package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/telechaos/telechaos/harness"
	"github.com/telechaos/telechaos/harness/deploy"
)

func TestParseDeployFault(t *testing.T) {
	f, err := parseDeployFault("kill@10s+2s")
	if err != nil || f.Kind != deploy.FaultKill || f.Trigger.At.Duration != 10*time.Second || f.Trigger.For.Duration != 2*time.Second {
		t.Errorf("kill@10s+2s: %+v, %v", f, err)
	}
	f, err = parseDeployFault("container-pause@1s")
	if err != nil || f.Kind != deploy.FaultPause || f.Trigger.For.Duration != 0 {
		t.Errorf("container-pause@1s: %+v, %v", f, err)
	}
	for _, bad := range []string{"kill", "explode@1s", "kill@soon", "kill@1s+x", "kill@-1s"} {
		if _, err := parseDeployFault(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v should name it", bad, err)
		}
	}
}

// Usage mistakes with --deploy exit 2 before anything touches Docker.
func TestDeployUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--deploy", "clinic", "--target", "http://127.0.0.1:1"},
		{"run", "--deploy", "img", "--deploy-env", "NOEQUALS"},
		{"run", "--deploy", "img", "--deploy-udp-port", "70000"},
		{"run", "--deploy", "img", "--deploy-fault", "melt@1s"},
	} {
		var out, errOut bytes.Buffer
		if code := runMain(t.Context(), args, &out, &errOut); code != harness.ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, harness.ExitUsage, errOut.String())
		}
		if !strings.Contains(errOut.String(), "--") {
			t.Errorf("%v: message does not name the flag: %q", args, errOut.String())
		}
	}
}
