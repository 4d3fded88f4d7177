package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

var versionCommand = &command{
	name: "version", args: "",
	summary: "print the version, VCS commit and Go version (also: telechaos --version)",
	doc: `The version is the module's (a tag, or the pseudo-version go build stamps
from the checkout), "(devel)" when unknown; commit and modified come from
the VCS stamp go build records (absent for go run or -buildvcs=false).
`,
	run: cmdVersion,
}

// buildVersion is what `telechaos version` prints.
type buildVersion struct {
	Module, Version     string
	Commit, CommitTime  string
	Modified, HasCommit bool
	GoVersion, Platform string
}

// versionOf reads a build info (nil: none, as in a binary built without
// module support).
func versionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	v.Module = bi.Main.Path
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit, v.HasCommit = s.Value, true
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "telechaos %s\n", v.Version)
	if v.Module != "" {
		fmt.Fprintf(w, "module    %s\n", v.Module)
	}
	if v.HasCommit {
		fmt.Fprintf(w, "commit    %s\n", v.Commit)
		if v.CommitTime != "" {
			fmt.Fprintf(w, "time      %s\n", v.CommitTime)
		}
		fmt.Fprintf(w, "modified  %v\n", v.Modified)
	} else {
		fmt.Fprintf(w, "commit    unknown (no VCS stamp: go run, or built with -buildvcs=false)\n")
	}
	fmt.Fprintf(w, "go        %s %s\n", v.GoVersion, v.Platform)
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", stderr)
	pos, err := parseArgs(fs, args, stderr)
	if err != nil {
		return flagsDone(fs, err, stdout, stderr)
	}
	if len(pos) > 0 {
		return usageError(stderr, "version", "unexpected arguments %q", pos)
	}
	bi, _ := debug.ReadBuildInfo()
	versionOf(bi).write(stdout)
	return 0
}
