package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
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

// Load returns a built-in scenario by name ("" is Default), or reads a file.
// A name containing a path separator or ending in .yaml/.yml is always a file.
func Load(nameOrPath string) (*Scenario, error) {
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
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %q: no such built-in (%s) or file", ErrUnknownScenario, nameOrPath, strings.Join(Names(), ", "))
		}
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(nameOrPath, data)
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
