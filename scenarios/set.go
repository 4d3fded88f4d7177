package scenarios

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Set applies one --set key=value override. Keys are the dotted snake_case
// paths of the YAML (population.patients, executor.rate, behaviour.replay,
// duration, ...); values read like YAML scalars. Lists take commas:
// bugs=switch-reuse:1,list-scope (bugs=none or bugs= clears them),
// invariants=a,b, executor.stages=30s:10,1m:50 (duration:target pairs).
// thresholds cannot be set this way.
//
// Set checks only the value's form: call Validate after the last Set (derived
// defaults such as clinicians = patients/10 are recomputed there).
func (s *Scenario) Set(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key=value", kv)
	}
	if s.src == nil {
		s.src = newSource("scenario")
		s.src.built = true
	}
	v := reflect.ValueOf(s).Elem()
	parts := strings.Split(key, ".")
	for i, part := range parts {
		fields := structFields(v.Type())
		idx, ok := fields[part]
		if !ok {
			return fmt.Errorf("%w: --set %s: %q is not a field of %s (known: %s)", ErrUnknownKey, key, part, orTop(strings.Join(parts[:i], ".")), strings.Join(fieldNames(v.Type()), ", "))
		}
		v = v.Field(idx)
		if v.Type() != durationType && v.Kind() == reflect.Struct && i < len(parts)-1 {
			continue
		}
		if i < len(parts)-1 {
			return fmt.Errorf("%w: --set %s: %s has no fields", ErrUnknownKey, key, strings.Join(parts[:i+1], "."))
		}
	}
	if v.Type() != durationType && v.Kind() == reflect.Struct {
		return fmt.Errorf("%w: --set %s: a section; set one of its fields: %s", ErrUnknownKey, key, prefixed(key, fieldNames(v.Type())))
	}
	if err := setValue(key, v, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("--set %s=%s: %w", key, value, err)
	}
	s.src.set[key] = true
	if v.Kind() == reflect.Slice {
		for i := range v.Len() {
			s.src.set[fmt.Sprintf("%s[%d]", key, i)] = true
		}
	}
	return nil
}

// SetFlag applies a command-line flag that sets a scenario field (--seed 2 is
// SetFlag("--seed", "seed", "2")) exactly as --set path=value does: the field
// counts as given, so ApplyDefaults and Validate keep it. Errors and
// validation problems name the flag. Call Validate after the last one.
func (s *Scenario) SetFlag(flag, path, value string) error {
	if err := s.Set(path + "=" + value); err != nil {
		return fmt.Errorf("%s %s: %w", flag, value, err)
	}
	if s.src.flags == nil {
		s.src.flags = map[string]string{}
	}
	for k := range s.src.set {
		if k == path || strings.HasPrefix(k, path+"[") {
			s.src.flags[k] = flag
		}
	}
	return nil
}

// ApplySets applies every --set and validates the result.
func (s *Scenario) ApplySets(kvs []string) error {
	var errs []error
	for _, kv := range kvs {
		if err := s.Set(kv); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return s.Validate()
}

func orTop(p string) string {
	if p == "" {
		return "the scenario"
	}
	return p
}

func prefixed(key string, names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = key + "." + n
	}
	return strings.Join(out, ", ")
}

// setValue parses one command-line value into v.
func setValue(key string, v reflect.Value, value string) error {
	scalar := func(text string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: text} }
	if v.Type() == durationType {
		var d Duration
		if err := d.UnmarshalYAML(scalar(value)); err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Slice:
		var items []string
		for it := range strings.SplitSeq(value, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if key == "bugs" && len(items) == 1 && items[0] == "none" {
			items = nil
		}
		switch v.Type().Elem() {
		case reflect.TypeOf(""):
			v.Set(reflect.ValueOf(items))
			return nil
		case reflect.TypeOf(Stage{}):
			stages := make([]Stage, 0, len(items))
			for _, it := range items {
				d, t, ok := strings.Cut(it, ":")
				var st Stage
				if !ok {
					return fmt.Errorf("stage %q: want duration:target, e.g. 30s:10", it)
				}
				if err := st.Duration.UnmarshalYAML(scalar(strings.TrimSpace(d))); err != nil {
					return fmt.Errorf("stage %q: %w", it, err)
				}
				if err := setScalar(reflect.ValueOf(&st.Target).Elem(), scalar(strings.TrimSpace(t))); err != nil {
					return fmt.Errorf("stage %q: %w", it, err)
				}
				stages = append(stages, st)
			}
			v.Set(reflect.ValueOf(stages))
			return nil
		}
		return fmt.Errorf("%w: --set %s: cannot be set on the command line (edit a scenario file)", ErrUnknownKey, key)
	case reflect.Pointer:
		return fmt.Errorf("%w: --set %s: cannot be set on the command line", ErrUnknownKey, key)
	}
	n := scalar(value)
	if v.Kind() == reflect.String {
		v.SetString(value)
		return nil
	}
	return setScalar(v, n)
}

// Keys lists every key --set accepts, sorted.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for name, i := range structFields(t) {
			f := t.Field(i)
			k := join(prefix, name)
			switch {
			case f.Type == durationType:
				out = append(out, k)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, k)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != reflect.TypeOf(Stage{}):
			default:
				out = append(out, k)
			}
		}
	}
	walk(reflect.TypeOf(Scenario{}), "")
	sort.Strings(out)
	return out
}
