package reports

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonFields lists the JSON field names of t and of every struct type it
// holds (through pointers, slices and maps), as "Type.field".
func jsonFields(t reflect.Type, seen map[reflect.Type]bool, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeOf(time.Time{}) {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		*out = append(*out, t.Name()+"."+name)
		jsonFields(f.Type, seen, out)
	}
}

// TestSchemaDocCoversEveryField: docs/report-schema.md names every JSON
// field of summary.json, in a table row of its own, so the doc cannot drift
// from the types.
func TestSchemaDocCoversEveryField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "report-schema.md"))
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	jsonFields(reflect.TypeOf(Summary{}), map[reflect.Type]bool{}, &fields)
	if len(fields) < 80 {
		t.Fatalf("walked only %d fields: %v", len(fields), fields)
	}
	for _, f := range fields {
		_, name, _ := strings.Cut(f, ".")
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("docs/report-schema.md has no row for %s (`%s`)", f, name)
		}
	}
	if !strings.Contains(string(doc), "currently **1**") || SchemaVersion != 1 {
		t.Errorf("the doc's current schema version is not SchemaVersion %d", SchemaVersion)
	}
}

func TestWriteStampsSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s := sample()
	s.SchemaVersion = 0
	if err := Write(dir, s, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"schema_version": 1,`) {
		t.Fatalf("summary.json lacks schema_version 1:\n%.300s", b)
	}
	back, err := ReadSummary(filepath.Join(dir, SummaryFile))
	if err != nil || back.SchemaVersion != SchemaVersion {
		t.Fatalf("read back %v, %v", back.SchemaVersion, err)
	}
}

func TestMergeChecksSchemaVersion(t *testing.T) {
	old, cur := sample(), sample()
	old.SchemaVersion = 0 // written before the field: reads as 1
	cur.SchemaVersion = SchemaVersion
	m, err := Merge([]*Summary{old, cur}, []string{"a", "b"})
	if err != nil {
		t.Fatalf("version 0 and 1 must merge: %v", err)
	}
	if m.SchemaVersion != SchemaVersion {
		t.Errorf("merged schema_version %d", m.SchemaVersion)
	}
	next := sample()
	next.SchemaVersion = SchemaVersion + 1
	_, err = Merge([]*Summary{cur, next}, []string{"shard-1", "shard-2"})
	if !errors.Is(err, ErrSchema) || !errors.Is(err, ErrMerge) {
		t.Fatalf("merging schema %d into %d: %v", next.SchemaVersion, SchemaVersion, err)
	}
	if !strings.Contains(err.Error(), "shard-2/summary.json") || strings.Contains(err.Error(), "shard-1/") {
		t.Errorf("error does not name the file of the other schema: %v", err)
	}
}
