package scenarios

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

//go:embed builtin/*.yaml
var builtin embed.FS

// Default is the scenario `telechaos run` uses without --scenario.
const Default = "smoke"

// Summary names a built-in scenario.
type Summary struct {
	Name        string `json:"name"`
	Description string `json:"description"` // its first line
}

// Parse reads a scenario from YAML. file names the source in errors. Unknown
// fields are errors; defaults are applied (see ApplyDefaults) and the result is
// validated: every problem is reported at once in a *ValidationError.
func Parse(file string, data []byte) (*Scenario, error) {
	s := &Scenario{}
	probs := decodeFile(file, data, s)
	if len(probs) == 1 && probs[0].Field == "" {
		return nil, &ValidationError{Problems: probs} // not a scenario at all (syntax, empty)
	}
	if s.Name == "" && !s.src.has("name") {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	s.ApplyDefaults()
	// Validate even after decoding problems, so that every problem is reported
	// at once; but not again for a field that could not be read.
	var verr *ValidationError
	if err := s.Validate(); errors.As(err, &verr) {
		for _, p := range verr.Problems {
			if !coveredBy(p.Field, probs) {
				probs = append(probs, p)
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return nil, &ValidationError{Problems: probs}
	}
	return s, nil
}

// MaxFileSize bounds a scenario file (8 MiB): a larger one is refused with
// ErrTooLarge after reading at most MaxFileSize+1 bytes (--scenario /dev/zero
// fails fast and does not grow memory).
const MaxFileSize = 8 << 20

// ErrTooLarge: a scenario file over MaxFileSize.
var ErrTooLarge = errors.New("scenario file exceeds 8 MiB")

// Load returns a built-in scenario by name ("" is Default), or reads a file.
// A name containing a path separator or ending in .yaml/.yml is always a file.
func Load(nameOrPath string) (*Scenario, error) {
	return LoadContext(context.Background(), nameOrPath)
}

// LoadContext is Load whose file read ctx cancels (SIGINT), also while it
// waits on a pipe or a terminal.
func LoadContext(ctx context.Context, nameOrPath string) (*Scenario, error) {
	if nameOrPath == "" {
		nameOrPath = Default
	}
	isPath := strings.ContainsAny(nameOrPath, `/\`) || strings.HasSuffix(nameOrPath, ".yaml") || strings.HasSuffix(nameOrPath, ".yml")
	if !isPath {
		data, err := builtin.ReadFile(path.Join("builtin", nameOrPath+".yaml"))
		if err == nil {
			return Parse(nameOrPath+".yaml", data)
		}
	}
	data, err := ReadFileLimit(ctx, nameOrPath, MaxFileSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %q: no such built-in (%s) or file", ErrUnknownScenario, nameOrPath, strings.Join(Names(), ", "))
		}
		if errors.Is(err, ErrFileTooLarge) {
			return nil, fmt.Errorf("%s: %w (MaxFileSize)", nameOrPath, ErrTooLarge)
		}
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(nameOrPath, data)
}

// ErrFileTooLarge: ReadFileLimit found more than its limit.
var ErrFileTooLarge = errors.New("file too large")

// ReadFileLimit reads at most limit bytes of the file at name; a longer one is
// an error wrapping ErrFileTooLarge after reading limit+1 bytes. The file is
// opened non-blocking, so a FIFO without a writer reads as empty instead of
// hanging in open(2), and a read waiting on a pipe or a terminal returns when
// ctx is done.
func ReadFileLimit(ctx context.Context, name string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: over %d bytes", name, ErrFileTooLarge, limit)
	}
	return data, nil
}

// Names lists the built-in scenarios, sorted.
func Names() []string {
	entries, _ := builtin.ReadDir("builtin")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// List describes the built-in scenarios, sorted by name.
func List() []Summary {
	var out []Summary
	for _, n := range Names() {
		sum := Summary{Name: n}
		if s, err := Load(n); err != nil {
			sum.Description = "invalid: " + strings.SplitN(err.Error(), "\n", 2)[0]
		} else {
			sum.Description = strings.TrimSpace(strings.SplitN(strings.TrimSpace(s.Description), "\n", 2)[0])
		}
		out = append(out, sum)
	}
	return out
}

// coveredBy reports whether a decoding problem already concerns field (the
// field itself, one of its parents or one of its parts).
func coveredBy(field string, probs []Problem) bool {
	for _, p := range probs {
		if p.Field == "" {
			continue
		}
		if field == p.Field || strings.HasPrefix(field, p.Field+".") || strings.HasPrefix(field, p.Field+"[") ||
			strings.HasPrefix(p.Field, field+".") || strings.HasPrefix(p.Field, field+"[") {
			return true
		}
	}
	return false
}
