package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/telechaos/telechaos/harness"
)

// command is one `telechaos` command. The table (commands) is the one place
// a command is added: one row there, its function in its own file. A
// command's run parses its flags with parseArgs and ends with flagsDone on
// an error, so `CMD --help`, `CMD -h` and `telechaos help CMD` all print
// its usage (usage, doc, then its flags) on stdout and exit 0.
type command struct {
	name    string // as typed after telechaos: "run", or "merge" under report
	args    string // the synopsis after the name: "[flags] DIR..."
	summary string // one line for the command list
	doc     string // the paragraphs `help NAME` prints before the flags
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	subs    []*command // report merge, report verdict: dispatched on the first argument
	hidden  bool       // not listed (bench serve-clinic, the suite's own process)
	parent  *command   // set by init
}

// commands is the command table, in the order the global usage lists them
// (filled in init: the commands' functions refer to the table).
var commands []*command

func init() {
	commands = []*command{
		runCommand,
		scenariosCommand,
		validateCommand,
		selftestCommand,
		reproCommand,
		reportCommand,
		benchCommand,
		conformCommand,
		versionCommand,
		helpCommand,
	}
	var link func(p *command, cs []*command)
	link = func(p *command, cs []*command) {
		for _, c := range cs {
			c.parent = p
			link(c, c.subs)
		}
	}
	link(nil, commands)
}

// path is the command as typed: "report merge".
func (c *command) path() string {
	if c.parent == nil {
		return c.name
	}
	return c.parent.path() + " " + c.name
}

// lookup finds the command named by the leading words of args (a
// subcommand where its parent has one) and returns it with the rest.
func lookup(cs []*command, args []string) (*command, []string) {
	if len(args) == 0 {
		return nil, args
	}
	for _, c := range cs {
		if c.name == args[0] {
			if sub, rest := lookup(c.subs, args[1:]); sub != nil {
				return sub, rest
			}
			return c, args[1:]
		}
	}
	return nil, args
}

// lookupPath finds a command by its path ("report merge").
func lookupPath(path string) *command {
	words := strings.Fields(path)
	c, rest := lookup(commands, words)
	if len(rest) > 0 {
		return nil
	}
	return c
}

const globalIntro = `telechaos: property/chaos harness and load simulator for telehealth video

usage: telechaos COMMAND [flags] [arguments]
`

const exitCodes = `exit codes: 0 pass, 1 invariant violated, 2 usage or configuration error,
3 target/infrastructure failure or too little judged, 4 thresholds or chaos
coverage failed, 130 interrupted (report written)
`

// printGlobalUsage prints the command list (telechaos help).
func printGlobalUsage(w io.Writer) {
	fmt.Fprint(w, globalIntro)
	fmt.Fprintln(w, "\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var list func(cs []*command)
	list = func(cs []*command) {
		for _, c := range cs {
			if c.hidden {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\n", c.path(), c.summary)
			list(c.subs)
		}
	}
	list(commands)
	tw.Flush()
	fmt.Fprint(w, "\nRun 'telechaos help COMMAND' (or 'telechaos COMMAND --help') for its flags.\n")
	fmt.Fprint(w, "'telechaos --version' prints the version.\n\n")
	fmt.Fprint(w, exitCodes)
}

// printCommandUsage prints c's usage: synopsis, doc, flags (fs may be nil:
// no flags), subcommands.
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: telechaos %s", c.path())
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintln(w)
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", upperFirst(c.summary))
	}
	if c.doc != "" {
		fmt.Fprintf(w, "\n%s", strings.TrimLeft(c.doc, "\n"))
		if !strings.HasSuffix(c.doc, "\n") {
			fmt.Fprintln(w)
		}
	}
	if fs != nil {
		printFlags(w, fs)
	}
	if subs := visible(c.subs); len(subs) > 0 {
		fmt.Fprintln(w, "\nsubcommands:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range subs {
			fmt.Fprintf(tw, "  %s\t%s\n", s.path(), s.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "Run 'telechaos help %s SUBCOMMAND' for its flags.\n", c.path())
	}
}

func visible(cs []*command) []*command {
	var out []*command
	for _, c := range cs {
		if !c.hidden {
			out = append(out, c)
		}
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// deprecatedPrefix starts the usage of a flag kept only so that old scripts
// work; printFlags lists such flags apart, parseArgs warns when one is used.
const deprecatedPrefix = "deprecated: "

// aliasFlag defines old as a deprecated alias of the already defined flag
// canonical (same value: setting either sets both).
func aliasFlag(fs *flag.FlagSet, old, canonical string) {
	c := fs.Lookup(canonical)
	if c == nil {
		panic("aliasFlag: no flag " + canonical) // a programming error, caught by every test of the command
	}
	arg, _ := flag.UnquoteUsage(c)
	fs.Var(c.Value, old, deprecatedPrefix+"use "+dashes(canonical)+" `"+arg+"`")
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// printFlags prints fs's flags, one per line (continuation lines of a
// multi-line usage indented), in name order, deprecated aliases last.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var current, deprecated []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, deprecatedPrefix) {
			deprecated = append(deprecated, f)
		} else {
			current = append(current, f)
		}
	})
	if len(current)+len(deprecated) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		head := dashes(f.Name)
		if name != "" {
			head += " " + name
		}
		if d := f.DefValue; !isZeroDefault(f, d) {
			if name == "string" || strings.ContainsAny(d, " \t") {
				d = fmt.Sprintf("%q", d)
			}
			usage += fmt.Sprintf(" (default %s)", d)
		}
		lines := strings.Split(usage, "\n")
		fmt.Fprintf(tw, "  %s\t%s\n", head, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "  \t%s\n", strings.TrimSpace(l))
		}
	}
	for _, f := range current {
		row(f)
	}
	for _, f := range deprecated {
		row(f)
	}
	tw.Flush()
}

// isZeroDefault: a default not worth printing (as flag.PrintDefaults).
func isZeroDefault(f *flag.Flag, d string) bool {
	if strings.HasPrefix(f.Usage, deprecatedPrefix) {
		return true // the canonical flag shows it
	}
	switch d {
	case "", "0", "0s", "false", "[]":
		return true
	}
	return false
}

// newFlagSet returns a flag set for the command at path ("report verdict").
// Parsed with parseArgs and finished with flagsDone, it prints the
// command's usage on stdout for -h/--help and a short hint on stderr for a
// bad flag. Parsed directly with fs.Parse, it still prints the command's
// usage (to stderr) rather than the global one.
func newFlagSet(path string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if c := lookupPath(path); c != nil {
			printCommandUsage(fs.Output(), c, fs)
		} else {
			printGlobalUsage(fs.Output())
		}
	}
	return fs
}

// parseArgs parses args into fs, flags and positional arguments in any
// order (as k6 and most CLIs do; "--" ends the flags), and returns the
// positional ones. Errors, flag.ErrHelp included, are returned, not printed;
// hand them to flagsDone. A deprecated alias that was used is warned about
// on stderr.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			pos = append(pos, left...)
			break
		}
		pos, rest = append(pos, left[0]), left[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, deprecatedPrefix) {
			_, use := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "telechaos %s: %s is deprecated, %s\n", fs.Name(), dashes(f.Name), strings.TrimPrefix(use, deprecatedPrefix))
		}
	})
	return pos, nil
}

// flagsDone ends a command whose arguments could not be used: for
// flag.ErrHelp it prints the command's usage on stdout and returns 0; for
// any other error it prints the error and a hint on stderr and returns the
// usage exit code.
func flagsDone(fs *flag.FlagSet, err error, stdout, stderr io.Writer) int {
	c := lookupPath(fs.Name())
	if errors.Is(err, flag.ErrHelp) {
		if c == nil {
			printGlobalUsage(stdout)
		} else {
			printCommandUsage(stdout, c, fs)
		}
		return 0
	}
	fmt.Fprintf(stderr, "telechaos %s: %v\n", fs.Name(), err)
	usageHint(stderr, c)
	return harness.ExitUsage
}

// usageHint is the short usage line after an error, as the go tool prints.
func usageHint(w io.Writer, c *command) {
	if c == nil {
		fmt.Fprint(w, "Run 'telechaos help' for usage.\n")
		return
	}
	fmt.Fprintf(w, "usage: %s\nRun 'telechaos help %s' for details.\n", strings.TrimSpace("telechaos "+c.path()+" "+c.args), c.path())
}

// usageError prints a usage mistake the flag package did not catch (a
// missing argument, a bad value) the way flagsDone does.
func usageError(stderr io.Writer, path string, format string, a ...any) int {
	fmt.Fprintf(stderr, "telechaos %s: %s\n", path, fmt.Sprintf(format, a...))
	usageHint(stderr, lookupPath(path))
	return harness.ExitUsage
}

var helpCommand = &command{
	name: "help", args: "[COMMAND [SUBCOMMAND]]",
	summary: "print the command list, or a command's usage and flags",
	run:     cmdHelp,
}

// cmdHelp is `telechaos help [COMMAND...]`: the global usage, or the
// command's usage (what `COMMAND --help` prints), on stdout, exit 0; an
// unknown command is exit 2.
func cmdHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printGlobalUsage(stdout)
		return 0
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		args = []string{"help"}
	}
	c, rest := lookup(commands, args)
	if c == nil || len(rest) > 0 {
		fmt.Fprintf(stderr, "telechaos help: unknown command %q\n", strings.Join(args, " "))
		usageHint(stderr, nil)
		return harness.ExitUsage
	}
	if c.run == nil || c.name == "help" && c.parent == nil {
		printCommandUsage(stdout, c, nil)
		return 0
	}
	// The command prints its own usage (it owns its flag set): --help with
	// both streams on stdout.
	return dispatch(ctx, c, []string{"--help"}, stdout, stdout)
}

// dispatch runs c, or the subcommand args[0] names.
func dispatch(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		for _, s := range c.subs {
			if s.name == args[0] {
				return dispatch(ctx, s, args[1:], stdout, stderr)
			}
		}
	}
	return c.run(ctx, args, stdout, stderr)
}
