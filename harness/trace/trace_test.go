package trace

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const goodTrace = `{"telechaos_trace":1,"scenario":"incident-2020-06-09","seed":1,"target":"embedded","bugs":["switch-reuse:1"],"bug_seed":1,"expect":"replay-list-ownership","created":"2025-01-02T03:04:05Z"}
{"user":"p1","role":"patient"}
{"user":"c1","role":"clinician"}

{"op":"register","user":"p1"}
{"op":"register","user":"c1"}
{"op":"book","user":"p1","with":"c1","consult":"k1","after":[0,1]}
{"op":"join","user":"p1","consult":"k1","after":[2],"concurrent_group":1}
{"op":"join","user":"c1","consult":"k1","after":[2],"concurrent_group":1}
{"op":"send_audio","user":"p1","consult":"k1","n":3,"after":[3,4]}
{"op":"end","user":"c1","consult":"k1","after":[5]}
{"op":"list","user":"p1","after":[6]}`

func TestParseRoundTrip(t *testing.T) {
	tr, err := Parse(strings.NewReader(goodTrace))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Scenario != "incident-2020-06-09" || tr.Expect != "replay-list-ownership" || len(tr.Users) != 2 || len(tr.Ops) != 8 {
		t.Fatalf("parsed %+v", tr)
	}
	if tr.Ops[3].Group == nil || *tr.Ops[3].Group != 1 || tr.Ops[5].N != 3 {
		t.Errorf("op fields: %+v %+v", tr.Ops[3], tr.Ops[5])
	}
	var b bytes.Buffer
	if err := tr.Encode(&b); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(&b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(tr, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", tr, again)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	lines := strings.Split(goodTrace, "\n")
	with := func(i int, repl string) string {
		l := append([]string(nil), lines...)
		l[i] = repl
		return strings.Join(l, "\n")
	}
	cases := []struct {
		name, in string
		line     int
		want     error
		msg      string
	}{
		{"truncated last line", goodTrace[:len(goodTrace)-9], 12, ErrTruncated, "truncated"},
		{"truncated middle line", with(6, `{"op":"book","user":"p1","with":"c1"`), 7, ErrTruncated, "truncated"},
		{"wrong version", with(0, `{"telechaos_trace":2,"target":"embedded"}`), 1, ErrVersion, "version 2"},
		{"no header", with(0, `{"user":"p0","role":"patient"}`), 1, ErrMissingField, "header"},
		{"unknown op", with(8, `{"op":"teleport","user":"p1","consult":"k1"}`), 9, ErrUnknownOp, `"teleport"`},
		{"unknown user", with(9, `{"op":"send_audio","user":"p9","consult":"k1","n":3}`), 10, ErrUnknownSymbol, "p9"},
		{"unknown consult", with(10, `{"op":"end","user":"c1","consult":"k7"}`), 11, ErrUnknownSymbol, "k7"},
		{"missing n", with(9, `{"op":"send_audio","user":"p1","consult":"k1"}`), 10, ErrBadField, "n = 0"},
		{"missing consult", with(10, `{"op":"end","user":"c1"}`), 11, ErrMissingField, "consult"},
		{"missing user", with(11, `{"op":"list"}`), 12, ErrMissingField, "user"},
		{"unknown field", with(11, `{"op":"list","user":"p1","colour":"red"}`), 12, ErrBadField, "colour"},
		{"bad role", with(1, `{"user":"p1","role":"surgeon"}`), 2, ErrBadField, "surgeon"},
		{"book by clinician", with(6, `{"op":"book","user":"c1","with":"c1","consult":"k1"}`), 7, ErrBadField, "patient"},
		{"after forward", with(11, `{"op":"list","user":"p1","after":[11]}`), 12, ErrBadField, "after 11"},
		{"not an object", with(2, `[1,2]`), 3, ErrSyntax, "array"},
		{"garbage", with(2, `hello`), 3, ErrSyntax, ""},
		{"bad bug", with(0, `{"telechaos_trace":1,"target":"embedded","bugs":["nope"]}`), 1, ErrBadField, "nope"},
		{"group after member", with(8, `{"op":"join","user":"c1","consult":"k1","after":[3],"concurrent_group":1}`), 9, ErrBadField, "own concurrent_group"},
		{"wrong type", with(9, `{"op":"send_audio","user":"p1","consult":"k1","n":"three"}`), 10, ErrBadField, "n"},
		{"empty", "", 1, ErrEmpty, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v is not a *ParseError", err)
			}
			if pe.Line != c.line || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %q (line %d), want line %d, %v, mentioning %q", err, pe.Line, c.line, c.want, c.msg)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("message does not name the line: %q", err)
			}
		})
	}
}

func TestSubsetKeepsClosure(t *testing.T) {
	tr := listScopeTrace()
	// Dropping p1 drops its register, its book and the ops on k1, and list p1.
	sub := tr.Subset(func(u string) bool { return u != "p1" }, nil)
	if err := sub.Validate(); err != nil {
		t.Fatalf("subset invalid: %v", err)
	}
	var got []string
	for _, op := range sub.Ops {
		got = append(got, op.String())
	}
	want := []string{"register c1", "register p2", "book p2 with c1 k2", "end c1 k2", "list p2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ops %q, want %q", got, want)
	}
	// Ordering survives: every op still waits for its predecessor.
	for i := 1; i < len(sub.Ops); i++ {
		if !reflect.DeepEqual(sub.Ops[i].After, []int{i - 1}) {
			t.Errorf("op %d after %v, want [%d]", i, sub.Ops[i].After, i-1)
		}
	}
	// Dropping the book of k1 drops the end of k1.
	sub = tr.Subset(nil, func(i int) bool { return i != 3 })
	for _, op := range sub.Ops {
		if op.Consult == "k1" {
			t.Errorf("op on k1 survived dropping its book: %v", op)
		}
	}
	if err := sub.Validate(); err != nil {
		t.Errorf("subset invalid: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodTrace))
	f.Add([]byte(goodTrace[:100]))
	f.Add([]byte(`{"telechaos_trace":1,"target":"embedded"}` + "\n" + `{"user":"p1","role":"patient"}` + "\n" + `{"op":"list","user":"p1"}`))
	f.Add([]byte(crashTraceText))
	f.Add([]byte(`{"telechaos_trace":1,"target":"embedded"}` + "\n" + `{"op":"crash_target","user":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Parse(bytes.NewReader(b))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("parsed trace does not validate: %v", err)
		}
		var out bytes.Buffer
		if err := tr.Encode(&out); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(&out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out.String())
		}
		if len(again.Ops) != len(tr.Ops) || len(again.Users) != len(tr.Users) {
			t.Fatalf("round trip changed the trace")
		}
	})
}

const crashTraceText = `{"telechaos_trace":1,"target":"embedded","bugs":["lost-on-crash:1"],"bug_seed":1,"expect":"recording-durability","created":"2025-01-02T03:04:05Z"}
{"user":"p1","role":"patient"}
{"user":"c1","role":"clinician"}
{"op":"book","user":"p1","with":"c1","consult":"k1"}
{"op":"join","user":"p1","consult":"k1","after":[0]}
{"op":"send_audio","user":"p1","consult":"k1","n":5,"after":[1]}
{"op":"crash_target","after":[2]}
{"op":"restart_target","after":[3]}
{"op":"join","user":"p1","consult":"k1","after":[4]}
{"op":"end","user":"p1","consult":"k1","after":[5]}`

func TestParseTargetOps(t *testing.T) {
	tr, err := Parse(strings.NewReader(crashTraceText))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Ops[3].Op != OpCrashTarget || tr.Ops[3].User != "" || tr.Ops[4].Op != OpRestartTarget || !reflect.DeepEqual(tr.Ops[3].After, []int{2}) {
		t.Fatalf("target ops parsed as %+v %+v", tr.Ops[3], tr.Ops[4])
	}
	if s := tr.Ops[3].String(); s != "crash_target" {
		t.Errorf("String() = %q", s)
	}
	var b bytes.Buffer
	if err := tr.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `{"op":"crash_target","after":[2]}`+"\n") {
		t.Errorf("encoded crash op carries more than op and after:\n%s", b.String())
	}
	again, err := Parse(&b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(tr, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", tr, again)
	}
	if c := tr.Clone(); !reflect.DeepEqual(c, tr) {
		t.Errorf("clone differs: %+v", c)
	}
	// Dropping every user keeps the target ops (only keepOp drops them).
	sub := tr.Subset(func(string) bool { return false }, nil)
	if len(sub.Ops) != 2 || sub.Ops[0].Op != OpCrashTarget || sub.Ops[1].Op != OpRestartTarget || !reflect.DeepEqual(sub.Ops[1].After, []int{0}) {
		t.Errorf("subset without users: %+v", sub.Ops)
	}
	if err := sub.Validate(); err != nil {
		t.Errorf("subset invalid: %v", err)
	}
	// Validate (traces built in code) checks the user rule both ways.
	bad := tr.Clone()
	bad.Ops[3].User = "p1"
	if err := bad.Validate(); !errors.Is(err, ErrBadField) || !strings.Contains(err.Error(), "op 3") || !strings.Contains(err.Error(), "takes no user") {
		t.Errorf("crash_target with a user: %v", err)
	}
	bad = tr.Clone()
	bad.Ops[1].User = ""
	if err := bad.Validate(); !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), "op 1") {
		t.Errorf("join without a user: %v", err)
	}
}

func TestParseTargetOpErrors(t *testing.T) {
	lines := strings.Split(crashTraceText, "\n")
	with := func(i int, repl string) string {
		l := append([]string(nil), lines...)
		l[i] = repl
		return strings.Join(l, "\n")
	}
	cases := []struct {
		name, in string
		line     int
		want     error
		msg      string
	}{
		{"crash with user", with(6, `{"op":"crash_target","user":"p1","after":[2]}`), 7, ErrBadField, "crash_target acts on the target and takes no user"},
		{"crash with empty user", with(6, `{"op":"crash_target","user":""}`), 7, ErrBadField, "takes no user"},
		{"crash with consult", with(6, `{"op":"crash_target","consult":"k1"}`), 7, ErrBadField, "takes no consult"},
		{"restart with n", with(7, `{"op":"restart_target","n":3}`), 8, ErrBadField, "takes no n"},
		{"restart with with", with(7, `{"op":"restart_target","with":"c1"}`), 8, ErrBadField, "takes no with"},
		{"crash after forward", with(6, `{"op":"crash_target","after":[3]}`), 7, ErrBadField, "after 3"},
		{"join without user", with(8, `{"op":"join","consult":"k1"}`), 9, ErrMissingField, "user of op join"},
		{"misspelt", with(6, `{"op":"crash","after":[2]}`), 7, ErrUnknownOp, "crash_target"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v is not a *ParseError", err)
			}
			if pe.Line != c.line || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %q (line %d), want line %d, %v, mentioning %q", err, pe.Line, c.line, c.want, c.msg)
			}
		})
	}
}
