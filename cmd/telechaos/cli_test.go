package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/scenarios"
)

// allCommands is every listed command of the table, subcommands included.
func allCommands() []*command {
	var out []*command
	var walk func(cs []*command)
	walk = func(cs []*command) {
		for _, c := range cs {
			if !c.hidden {
				out = append(out, c)
			}
			walk(c.subs)
		}
	}
	walk(commands)
	return out
}

// ownFlags are flags each command's usage must list (its own, not another
// command's); notOwn are flags it must not (they belong to another).
var ownFlags = map[string]struct{ own, notOwn []string }{
	"run": {own: []string{"--scenario", "--target", "--bug", "--seed", "--duration", "--users", "--report", "--metrics-addr",
		"--push", "--media", "--set", "-v", "--shard", "--shards", "--run-id", "--deploy", "--deploy-env", "--deploy-fault",
		"--deploy-udp-port", "--cpuprofile", "--ca-file"}, notOwn: []string{"--chaos-seeds", "--times", "--from-prometheus"}},
	"selftest":       {own: []string{"--seeds", "--chaos-seeds", "--quick", "--only", "--report", "-v"}, notOwn: []string{"--scenario"}},
	"repro":          {own: []string{"--target", "--times"}, notOwn: []string{"--scenario", "--seeds"}},
	"report":         {own: []string{"report merge", "report verdict"}, notOwn: []string{"--scenario"}},
	"report merge":   {own: []string{"--report DIR", "--out DIR", "deprecated"}, notOwn: []string{"--from-prometheus"}},
	"report verdict": {own: []string{"--from-prometheus", "--run-id", "--scenario", "--set", "--window", "--shards"}, notOwn: []string{"--times"}},
	"bench":          {own: []string{"--quick", "--out FILE", "--only", "--no-install"}, notOwn: []string{"--scenario"}},
	"validate":       {own: []string{"--set", "FILE"}, notOwn: []string{"--seeds"}},
	"scenarios":      {own: []string{"USERS", "DURATION", "EXECUTOR", "EXPECT"}, notOwn: []string{"--seeds"}},
	"version":        {own: []string{"commit", "Go version"}, notOwn: []string{"--scenario"}},
	"conform":        {own: []string{"--target", "--bug", "--settle", "--timeout", "--ca-file"}, notOwn: []string{"--scenario", "--times"}},
	"help":           {own: []string{"COMMAND"}},
}

// Every command of the table: `help CMD`, `CMD --help` and `CMD -h` print
// the same usage of that command on stdout, nothing on stderr, exit 0.
func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range allCommands() {
		t.Run(strings.ReplaceAll(c.path(), " ", "_"), func(t *testing.T) {
			words := strings.Fields(c.path())
			var first string
			for i, args := range [][]string{
				append([]string{"help"}, words...),
				append(append([]string{}, words...), "--help"),
				append(append([]string{}, words...), "-h"),
			} {
				code, stdout, stderr := runCLI(t, args...)
				if code != 0 || stderr != "" {
					t.Fatalf("%q: exit %d, stderr %q", args, code, stderr)
				}
				if !strings.HasPrefix(stdout, "usage: telechaos "+c.path()) {
					t.Errorf("%q: not this command's usage:\n%s", args, stdout)
				}
				if strings.Contains(stdout, "\ncommands:\n") {
					t.Errorf("%q: prints the global usage:\n%s", args, stdout)
				}
				if i == 0 {
					first = stdout
				} else if stdout != first {
					t.Errorf("%q differs from help %s:\n%s\n---\n%s", args, c.path(), stdout, first)
				}
			}
			want, ok := ownFlags[c.path()]
			if !ok {
				t.Fatalf("no expectation for %q in ownFlags: add the flags its usage must show", c.path())
			}
			for _, f := range want.own {
				if !strings.Contains(first, f) {
					t.Errorf("usage of %s does not mention %q:\n%s", c.path(), f, first)
				}
			}
			for _, f := range want.notOwn {
				if regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(f) + `\b`).MatchString(first) {
					t.Errorf("usage of %s mentions %q (another command's):\n%s", c.path(), f, first)
				}
			}
		})
	}
}

// Every flag of run is in its usage with its description (checked against
// the flag set itself, so a new flag cannot be left out).
func TestRunUsageListsEveryFlag(t *testing.T) {
	_, stdout, _ := runCLI(t, "run", "--help")
	fs := runFlagSet(&runFlags{}, nil)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(dashes(f.Name)) + `( \S+)?  +\S`)
		if !line.MatchString(stdout) {
			t.Errorf("run --help has no described row for %s", dashes(f.Name))
		}
	})
	if n < 15 {
		t.Errorf("only %d run flags", n)
	}
}

func TestHelpGlobalAndUnknown(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
		for _, c := range allCommands() {
			if !strings.Contains(stdout, "  "+c.path()+" ") {
				t.Errorf("%q: %s not listed:\n%s", args, c.path(), stdout)
			}
		}
	}
	if code, stdout, stderr := runCLI(t); code != 2 || stdout != "" || !strings.Contains(stderr, "commands:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, args := range [][]string{{"frobnicate"}, {"help", "frobnicate"}, {"help", "report", "frobnicate"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "frobnicate") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q (want 2 naming it)", args, code, stdout, stderr)
		}
	}
	// A bad flag is exit 2 with the error and the command's own hint.
	code, _, stderr := runCLI(t, "report", "merge", "a", "--nope", "--report", "x")
	if code != 2 || !strings.Contains(stderr, "-nope") || !strings.Contains(stderr, "telechaos help report merge") {
		t.Errorf("report merge --nope: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "run", "--users")
	if code != 2 || !strings.Contains(stderr, "telechaos run: flag needs an argument") || !strings.Contains(stderr, "telechaos help run") {
		t.Errorf("run --users: exit %d, stderr %q", code, stderr)
	}
}

// report merge --out still works (deploy/k8s, old scripts) but says it is
// deprecated; --report is the name.
func TestReportMergeOutIsDeprecatedAlias(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "shard-0"), filepath.Join(root, "shard-1")
	writeShard(t, a, 0.1, 96, false)
	writeShard(t, b, 0.1, 4, false)
	for _, flagArgs := range [][]string{{"--report", filepath.Join(root, "m1")}, {"--out", filepath.Join(root, "m2")},
		{"--out=" + filepath.Join(root, "m3")}} {
		code, stdout, stderr := runCLI(t, append([]string{"report", "merge", a, b}, flagArgs...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s\n%s", flagArgs, code, stdout, stderr)
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(flagArgs[len(flagArgs)-1], "--out="), "")
		if _, err := os.Stat(filepath.Join(dir, "summary.json")); err != nil {
			t.Errorf("%q: no merged summary: %v", flagArgs, err)
		}
		deprecated := strings.Contains(stderr, "--out is deprecated, use --report")
		if deprecated != strings.HasPrefix(flagArgs[0], "--out") {
			t.Errorf("%q: deprecation warning %v: %q", flagArgs, deprecated, stderr)
		}
	}
}

func TestVersionFields(t *testing.T) {
	bi, err := debug.ParseBuildInfo("go\tgo1.26.8\n" +
		"path\tgithub.com/telechaos/telechaos/cmd/telechaos\n" +
		"mod\tgithub.com/telechaos/telechaos\tv1.2.3\t\n" +
		"build\tvcs=git\n" +
		"build\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n" +
		"build\tvcs.time=2026-12-07T23:00:00Z\n" +
		"build\tvcs.modified=true\n")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	versionOf(bi).write(&b)
	out := b.String()
	for _, want := range []string{"telechaos v1.2.3\n", "commit    0123456789abcdef0123456789abcdef01234567\n",
		"modified  true\n", "go        go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n", "time      2026-12-07T23:00:00Z\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	bi.Main.Version = ""
	bi.Settings = nil
	b.Reset()
	versionOf(bi).write(&b)
	if out := b.String(); !strings.HasPrefix(out, "telechaos (devel)\n") || !strings.Contains(out, "commit    unknown") || strings.Contains(out, "modified") {
		t.Errorf("no build stamp:\n%s", out)
	}
	// The command itself, on this test binary's build info.
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "telechaos ") || !strings.Contains(stdout, "go        "+runtime.Version()+" ") {
			t.Errorf("%q: exit %d, stderr %q:\n%s", args, code, stderr, stdout)
		}
	}
	if code, _, _ := runCLI(t, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "name: good\npopulation: {patients: 12}\nexecutor: {type: closed, vus: 3}\nduration: 7s\nmedia: false\n")
	bad := writeFile(t, dir, "bad.yaml", "name: bad\npopulation:\n  patients: -3\nexecutor:\n  type: closed\n  vus: 2\nduration: 5s\nbehaviour:\n  replay: 2\n")
	syntax := writeFile(t, dir, "syntax.yaml", "name: x\npopulation: [1, 2\n")
	unknown := writeFile(t, dir, "unknown.yaml", "name: u\nduration: 5s\npopulation: {patients: 2}\nexecutor: {type: closed}\npopulatoin: 3\n")

	code, stdout, stderr := runCLI(t, "validate", good, "smoke")
	if code != 0 || stderr != "" {
		t.Fatalf("valid files: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{good + ": ok  closed 3 vus, 12 patients, 1 clinicians, 7s", "no media", "expect pass",
		"smoke: ok  constant-arrival-rate 10/s, 550 patients"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}

	// Every file is checked; each problem names its file and line.
	code, stdout, stderr = runCLI(t, "validate", bad, good, syntax, unknown, filepath.Join(dir, "missing.yaml"))
	if code != 2 {
		t.Errorf("bad files: exit %d, want 2", code)
	}
	if !strings.Contains(stdout, good+": ok") {
		t.Errorf("the good file after a bad one was not checked:\n%s", stdout)
	}
	for _, want := range []string{bad + ":3: population.patients:", bad + ":9: behaviour.replay:",
		unknown + ":5: populatoin", filepath.Join(dir, "missing.yaml") + ": "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in:\n%s", want, stderr)
		}
	}
	if !regexp.MustCompile(regexp.QuoteMeta(syntax) + `:\d+: yaml: `).MatchString(stderr) {
		t.Errorf("syntax error without file:line:\n%s", stderr)
	}
	for _, f := range []string{bad, syntax, unknown} {
		if strings.Contains(stdout, f+": ok") {
			t.Errorf("%s reported ok", f)
		}
	}
	// --set is applied as run applies it.
	if code, _, stderr := runCLI(t, "validate", "--set", "population.patients=0", good); code != 2 || !strings.Contains(stderr, "population.patients") {
		t.Errorf("--set patients=0: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := runCLI(t, "validate", good, "--set", "population.patients=40"); code != 0 || !strings.Contains(stdout, "40 patients, 4 clinicians") {
		t.Errorf("--set patients=40 after the file: exit %d, %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, "validate"); code != 2 || !strings.Contains(stderr, "no scenario file") {
		t.Errorf("no file: exit %d, %q", code, stderr)
	}
}

// Every built-in has a row with its size, duration, executor and
// expectation, in aligned columns.
func TestScenariosListing(t *testing.T) {
	code, stdout, stderr := runCLI(t, "scenarios")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	header := lines[0]
	cols := []string{"NAME", "USERS", "CLIN.", "DURATION", "EXECUTOR", "EXPECT", "BUGS", "DESCRIPTION"}
	var at []int
	for _, c := range cols {
		i := strings.Index(header, c)
		if i < 0 {
			t.Fatalf("no column %s in %q", c, header)
		}
		at = append(at, i)
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		for k, i := range at[1:] {
			if len(l) <= i || l[i-1] != ' ' || l[i] == ' ' {
				t.Errorf("column %s not aligned in %q", cols[k+1], l)
			}
		}
		rows[strings.Fields(l)[0]] = l
	}
	names := scenarios.Names()
	if len(rows) != len(names) {
		t.Errorf("%d rows for %d built-ins", len(rows), len(names))
	}
	for _, n := range names {
		sc, err := scenarios.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := rows[n]
		if !ok {
			t.Errorf("no row for %s", n)
			continue
		}
		cell := func(k int) string {
			end := len(l)
			if k+1 < len(at) {
				end = at[k+1]
			}
			return strings.TrimSpace(l[at[k]:end])
		}
		if got, want := cell(1), strconv.Itoa(sc.Population.Patients); got != want {
			t.Errorf("%s users %q, want %q", n, got, want)
		}
		if got, want := cell(3), sc.Duration.Duration.String(); got != want || sc.Duration.Duration <= 0 {
			t.Errorf("%s duration %q, want %q", n, got, want)
		}
		if got := cell(4); !strings.HasPrefix(got, sc.Executor.Type+" ") {
			t.Errorf("%s executor %q, want %s ...", n, got, sc.Executor.Type)
		}
		if got := cell(5); got != sc.Expect || got == "" {
			t.Errorf("%s expect %q, want %q", n, got, sc.Expect)
		}
		if strings.HasPrefix(n, "bug-") && (sc.Expect == scenarios.ExpectPass || cell(6) == "-") {
			t.Errorf("%s: a bug scenario expecting %q with bugs %q", n, sc.Expect, cell(6))
		}
	}
}

// A binary built from a git checkout says its commit and whether the tree
// was modified. Git worktrees carry no VCS stamp (go looks for a .git
// directory), so the test builds from a fresh clone of this checkout's HEAD,
// then again with an edited file.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git: cannot make a checkout to build from")
	}
	run := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	root := strings.TrimSpace(run(".", git, "rev-parse", "--show-toplevel"))
	head := strings.TrimSpace(run(".", git, "rev-parse", "HEAD"))
	clone := filepath.Join(t.TempDir(), "src")
	run(".", git, "clone", "--quiet", "--no-checkout", root, clone)
	run(clone, git, "-c", "advice.detachedHead=false", "checkout", "--quiet", head)
	bin := filepath.Join(t.TempDir(), "telechaos")
	run(clone, "go", "build", "-trimpath", "-o", bin, "./cmd/telechaos")
	out := run(clone, bin, "version")
	t.Logf("clean:\n%s", out)
	if !strings.Contains(out, "commit    "+head+"\n") || !strings.Contains(out, "modified  false\n") ||
		!strings.Contains(out, "go        "+runtime.Version()) {
		t.Errorf("clean build of %s:\n%s", head, out)
	}
	if err := os.WriteFile(filepath.Join(clone, "README.md"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(clone, "go", "build", "-trimpath", "-o", bin, "./cmd/telechaos")
	out = run(clone, bin, "--version")
	t.Logf("edited:\n%s", out)
	if !strings.Contains(out, "commit    "+head+"\n") || !strings.Contains(out, "modified  true\n") ||
		!strings.Contains(out, "+dirty") && !strings.Contains(out, "(devel)") {
		t.Errorf("build of an edited tree:\n%s", out)
	}
}

// Flags and positional arguments in any order; "--" ends the flags.
func TestParseArgsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		pos       []string
		times     int
		deprecate bool
	}{
		{[]string{"a", "--times", "3", "b"}, []string{"a", "b"}, 3, false},
		{[]string{"--times=2", "a"}, []string{"a"}, 2, false},
		{[]string{"a", "--", "--times", "-x"}, []string{"a", "--times", "-x"}, 1, false},
		{[]string{"--count", "4", "a"}, []string{"a"}, 4, true},
	} {
		fs := newFlagSet("repro", nil)
		times := fs.Int("times", 1, "")
		aliasFlag(fs, "count", "times")
		var errb strings.Builder
		pos, err := parseArgs(fs, tc.args, &errb)
		if err != nil || strings.Join(pos, " ") != strings.Join(tc.pos, " ") || *times != tc.times {
			t.Errorf("%q: pos %q times %d err %v, want %q %d", tc.args, pos, *times, err, tc.pos, tc.times)
		}
		if got := strings.Contains(errb.String(), "--count is deprecated, use --times"); got != tc.deprecate {
			t.Errorf("%q: deprecation warning %v: %q", tc.args, got, errb.String())
		}
	}
}
