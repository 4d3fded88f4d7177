package scenarios

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sentinel errors callers branch on (the CLI maps them to exit code 2).
var (
	// ErrInvalid is matched (errors.Is) by every *ValidationError.
	ErrInvalid = errors.New("invalid scenario")
	// ErrUnknownScenario: neither a built-in name nor a readable file.
	ErrUnknownScenario = errors.New("unknown scenario")
	// ErrUnknownKey: a --set key that names no scenario field.
	ErrUnknownKey = errors.New("unknown scenario key")
)

// Problem is one thing wrong with a scenario, located by file, line and field
// (a dotted snake_case path such as executor.stages[1].target).
type Problem struct {
	File  string // file name, or "--set" (or the flag, "--users") for a value given on the command line
	Line  int    // 0 when unknown
	Field string
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError holds every problem of a scenario, reported at once.
type ValidationError struct{ Problems []Problem }

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// source remembers where each field of a scenario came from: its line in the
// file, or --set. Fields it does not know were omitted, so defaults apply.
type source struct {
	file  string
	root  int               // line of the top-level mapping
	lines map[string]int    // path -> line of its key (or sequence element)
	set   map[string]bool   // paths given with --set (or a flag, see flags)
	flags map[string]string // path -> the command-line flag that set it (--seed), for problems
	built bool              // the scenario was built in Go, not read: non-zero means given
}

func newSource(file string) *source {
	return &source{file: file, root: 1, lines: map[string]int{}, set: map[string]bool{}, flags: map[string]string{}}
}

// has reports whether path was given in the file or with --set.
func (s *source) has(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.lines[path]
	return ok || s.set[path]
}

// problem locates a problem with path: the field's own line if it was given,
// else the nearest given ancestor's (an omitted field is reported where its
// section is), else the top of the file.
func (s *source) problem(path, format string, args ...any) Problem {
	p := Problem{Field: path, Msg: fmt.Sprintf(format, args...)}
	if s == nil {
		p.File = "scenario"
		return p
	}
	p.File = s.file
	for q := path; ; {
		if s.set[q] {
			p.File, p.Line = "--set", 0
			if f := s.flags[q]; f != "" {
				p.File = f
			}
			return p
		}
		if l, ok := s.lines[q]; ok {
			p.Line = l
			return p
		}
		i := strings.LastIndexAny(q, ".[")
		if i <= 0 {
			break
		}
		q = q[:i]
	}
	p.Line = s.root
	return p
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeFile reads one YAML document into s strictly, recording each field's
// line. Problems are returned all together; s is filled as far as possible.
func decodeFile(file string, data []byte, s *Scenario) []Problem {
	src := newSource(file)
	s.src = src
	if len(bytes.TrimSpace(data)) == 0 {
		return []Problem{{File: file, Line: 1, Msg: "empty scenario"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return []Problem{yamlProblem(file, err)}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return []Problem{{File: file, Line: more.Line, Msg: "more than one YAML document"}}
	} else if !errors.Is(err, io.EOF) {
		return []Problem{yamlProblem(file, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return []Problem{{File: file, Line: 1, Msg: "empty scenario"}}
		}
		root = root.Content[0]
	}
	src.root = max(root.Line, 1)
	d := &decoder{src: src}
	d.value(root, reflect.ValueOf(s).Elem(), "", 0)
	return d.probs
}

func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Msg: "yaml: " + m[2]}
	}
	return Problem{File: file, Line: 1, Msg: msg}
}

type decoder struct {
	src   *source
	probs []Problem
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.src.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType        = reflect.TypeOf(Duration{})
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

const maxDepth = 16 // far deeper than the scenario type; guards hostile aliases

// value decodes n into v (at path), strictly.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, depth int) {
	if depth > maxDepth {
		d.fail(n, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "dangling alias")
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value: the field keeps its default
	}
	if v.Type() == durationType {
		var dur Duration
		if err := dur.UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	// Scalars of other packages (faultspec.Duration) read themselves.
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value, got %s", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.src.lines[p] = e.Line
			d.value(e, out.Index(i), p, depth+1)
		}
		v.Set(out)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.value(n, e.Elem(), path, depth+1)
		v.Set(e)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want %s, got %s", kindName(v.Kind()), describe(n))
			return
		}
		if err := setScalar(v, n); err != nil {
			d.fail(n, path, "%v", err)
		}
	}
}

// mapping decodes a YAML mapping into a struct by the fields' yaml tags.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of fields"
		if path == "" {
			what = "a scenario (a mapping of fields)"
		}
		d.fail(n, path, "want %s, got %s", what, describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "field names must be plain words, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, p, "duplicate field (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, p, "unknown field (known: %s)", strings.Join(fieldNames(v.Type()), ", "))
			continue
		}
		if !(val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null") {
			d.src.lines[p] = k.Line
		}
		d.value(val, v.Field(idx), p, depth+1)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// structFields maps yaml names to field indexes (exported, tagged fields only).
func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for name := range structFields(t) {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// setScalar converts a YAML scalar into a basic kind, with messages that say
// what was wanted.
func setScalar(v reflect.Value, n *yaml.Node) error {
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		if tag != "!!bool" {
			return fmt.Errorf("want true or false, got %q", n.Value)
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("want true or false, got %q", n.Value)
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		var x int64
		if tag != "!!int" || n.Decode(&x) != nil || v.OverflowInt(x) {
			return fmt.Errorf("want a whole number, got %q", n.Value)
		}
		v.SetInt(x)
		return nil
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		var x uint64
		if tag != "!!int" || n.Decode(&x) != nil || v.OverflowUint(x) {
			return fmt.Errorf("want a whole number >= 0, got %q", n.Value)
		}
		v.SetUint(x)
		return nil
	case reflect.Float64:
		var x float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&x) != nil {
			return fmt.Errorf("want a number, got %q", n.Value)
		}
		v.SetFloat(x)
		return nil
	}
	return fmt.Errorf("unsupported field type %s", v.Type())
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "a whole number"
	}
	return "a value"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unexpected node"
}
