package driver

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/telechaos/telechaos/models"
)

// fastCase is one answer type: a fresh value and its fast path.
type fastCase struct {
	name  string
	fresh func() fastDecoder
	seeds []string
}

var fastCases = []fastCase{
	{"register", func() fastDecoder { return &registerOut{} }, []string{
		`{"id":"usr-1","role":"patient","name":"","token":"tok-abc"}`,
		`{"id":"u","role":"clinician","token":"t","extra":{"a":[1,2.5e3,-0.1,true,false,null,"x\u00e9\n"]}}`,
		` { "id" : "u" , "token" : "t" } `,
		`{"ID":"u","token":"t"}`, `{"id":null,"token":"t"}`, `{"id":7}`, `{"id":"\u0075"}`,
	}},
	{"book", func() fastDecoder { return &bookOut{} }, []string{
		`{"id":"apt-1","consultation_id":"con-1","patient_id":"usr-1","clinician_id":"usr-2","mode":"audio"}`,
		`{"id":"a","consultation_id":"c","consultation_id":"d"}`,
	}},
	{"sdp", func() fastDecoder { return &sdpMsg{} }, []string{
		`{"type":"answer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 8443 typ host\r\n","segment":0}`,
		`{"type":"answer","sdp":"v=0 \"q\" \\ \/ \t \b \f"}`,
		`{"type":"answer","sdp":"x","segment":-3}`, `{"segment":1.5}`, `{"segment":1e2}`, `{"segment":01}`,
		`{"segment":12345678901234567890}`, `{"segment":-}`, `{"sdp":"\ud83d\ude00"}`, `{"sdp":"é"}`,
	}},
	{"end", func() fastDecoder { return &endOut{} }, []string{
		`{"consultation_id":"con-1","recording_id":"rec-1","state":"ended","tracks":[]}`,
		`{"consultation_id":"c","recording_id":"r","state":"ended","tracks":[{"id":"trk-1","owner":"usr-1","kind":"audio","codec":"opus","format":"ogg","segment":0,"frames":250,"bytes":18000},{"id":"trk-2","owner":"usr-2","kind":"video","codec":"vp8","format":"ivf","segment":1,"frames":75,"bytes":60032}]}`,
		`{"consultation_id":"c","tracks":null}`, `{"tracks":[{"frames":"1"}]}`, `{"tracks":[{"Frames":1}]}`,
	}},
	{"consultation", func() fastDecoder { return &consultationOut{} }, []string{
		`{"id":"con-1","appointment_id":"apt-1","patient_id":"usr-1","clinician_id":"usr-2","state":"ended","video":false,"recording_id":"rec-1"}`,
		`{"id":"c","video":true}`, `{"video":tru}`, `{"video":"true"}`, `{"video":null}`,
	}},
	{"list", func() fastDecoder { return &listAnswer{} }, []string{
		`{"replays":[],"count":0}`,
		`{"replays":[{"id":"rec-1","consultation_id":"con-1","title":"Consultation 2026-11-25","participants":["usr-1","usr-2"],"started_at":"2026-11-25T03:53:04Z","ended_at":"2026-11-25T03:53:05Z","tracks":2},{"id":"rec-2","consultation_id":"con-2","title":"","participants":[],"tracks":0}],"count":2}`,
		`{"replays":null}`, `{"count":1}`, `{"replays":[{"participants":["a",1]}]}`, `[]`, `{}`, ``, `{"replays":[]}x`,
	}},
	{"replay", func() fastDecoder { return &replayOut{} }, []string{
		`{"id":"rec-1","consultation_id":"con-1","title":"t","participants":["usr-1","usr-2"],"started_at":"x","ended_at":"y","tracks":[{"id":"trk-1","owner":"usr-1","kind":"audio","codec":"opus","format":"ogg","segment":0,"frames":1,"bytes":2}]}`,
		`{"id":"r","Tracks":[]}`, `{"id":"r","participants":null}`, `{"id":"\xff"}`, `{"id":"a\x01"}`,
	}},
	{"error", func() fastDecoder { return &errorOut{} }, []string{
		`{"error":"not_found","message":"no such replay"}`, `<html>oops</html>`, `{"error":"x","message":"a\nb"}`,
	}},
}

// mutate changes a few bytes of s (insert, delete, replace with JSON-ish
// bytes), to reach the edges of the grammar.
func mutate(r *rand.Rand, s string) string {
	b := []byte(s)
	const alphabet = `{}[]:,"\ -+.eE0123456789tfnul/bru` + "\x00\x1f\x7f\xc3\xa9\xff"
	for range 1 + r.IntN(3) {
		c := alphabet[r.IntN(len(alphabet))]
		switch i := r.IntN(len(b) + 1); r.IntN(3) {
		case 0:
			b = append(b[:i], append([]byte{c}, b[i:]...)...)
		case 1:
			if i < len(b) {
				b = append(b[:i], b[i+1:]...)
			}
		default:
			if i < len(b) {
				b[i] = c
			}
		}
	}
	return string(b)
}

// TestFastDecodeMatchesEncodingJSON: whenever the fast path takes a body,
// encoding/json decodes it without error to the very same value.
func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	taken, given := 0, 0
	for _, c := range fastCases {
		bodies := append([]string{}, c.seeds...)
		for range 20000 {
			bodies = append(bodies, mutate(r, c.seeds[r.IntN(len(c.seeds))]))
		}
		for _, body := range bodies {
			fast := c.fresh()
			d := jdec{b: []byte(body)}
			if !(fast.fastDecode(&d) && d.end()) {
				given++
				continue
			}
			taken++
			var slow any = c.fresh()
			if _, ok := slow.(*listAnswer); ok {
				slow = &listOut{}
			}
			if err := json.Unmarshal([]byte(body), slow); err != nil {
				t.Errorf("%s: fast path took %q, which encoding/json rejects: %v", c.name, body, err)
				continue
			}
			if l, ok := slow.(*listOut); ok {
				slow = listOutAsAnswer(l)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Errorf("%s: %q: fast %+v, encoding/json %+v", c.name, body, fast, slow)
			}
		}
	}
	if taken < 1000 || given < 1000 {
		t.Errorf("fast path took %d and gave up %d bodies: the mutations do not reach both sides", taken, given)
	}
}

// The seeds in the clinic's own form all take the fast path.
func TestFastDecodeTakesPlainAnswers(t *testing.T) {
	for _, c := range fastCases {
		body := c.seeds[0]
		if c.name == "error" && strings.HasPrefix(body, "<") {
			continue
		}
		d := jdec{b: []byte(body)}
		if v := c.fresh(); !(v.fastDecode(&d) && d.end()) {
			t.Errorf("%s: fast path gave up on %q", c.name, body)
		}
	}
}

// Every answer the reference clinic gives a media-free lifecycle (and its
// denials) takes the fast path.
func TestFastDecodeCoversClinicAnswers(t *testing.T) {
	ctx := context.Background()
	_, h := startClinic(t, ctx)
	before := fastMisses.Load()
	pat, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := h.Register(ctx, models.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.Register(ctx, models.Patient)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := h.Book(ctx, pat, cli.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Consultation(ctx, pat, bk.ConsultationID); err != nil {
		t.Fatal(err)
	}
	end, err := h.End(ctx, pat, bk.ConsultationID)
	if err != nil {
		t.Fatal(err)
	}
	var listed []ReplaySummary
	for range 100 {
		if listed, err = h.ListReplays(ctx, cli); err != nil || len(listed) > 0 {
			break
		}
	}
	if err != nil || len(listed) != 1 {
		t.Fatalf("list = %+v, %v", listed, err)
	}
	if _, err := h.GetReplay(ctx, pat, end.RecordingID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetReplay(ctx, other, end.RecordingID); !IsDenied(err) {
		t.Errorf("stranger's replay: %v, want denied", err)
	}
	var se *StatusError
	if _, err := h.End(ctx, pat, bk.ConsultationID); StatusCode(err) != 409 || !errors.As(err, &se) || se.ErrCode == "" {
		t.Errorf("second end: %v, want 409 with an error code", err)
	}
	if n := fastMisses.Load() - before; n != 0 {
		t.Errorf("%d clinic answers fell back to encoding/json", n)
	}
}

// jsonObject writes the request bodies byte for byte as encoding/json wrote
// them from a map or a struct.
func TestJSONObjectMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "0", " ", "\r\n", "\t", "\"", "\\", "<", ">", "&", "é", "\u2028", "\xff", "\x00", "\x7f", "v=0", "/"}
	strs := []string{"", "patient", "clinician", "usr-0123456789abcdef", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
	for range 5000 {
		var sb strings.Builder
		for range r.IntN(8) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		strs = append(strs, sb.String())
	}
	for _, s := range strs {
		want, _ := json.Marshal(map[string]string{"role": s})
		if got := jsonObject("role", s); string(got) != string(want) {
			t.Errorf("role %q: %s, encoding/json %s", s, got, want)
		}
		want, _ = json.Marshal(map[string]string{"clinician_id": s, "mode": "audio"})
		if got := jsonObject("clinician_id", s, "mode", "audio"); string(got) != string(want) {
			t.Errorf("clinician %q: %s, encoding/json %s", s, got, want)
		}
		want, _ = json.Marshal(sdpMsg{Type: "offer", SDP: s})
		if got := jsonObject("type", "offer", "sdp", s); string(got) != string(want) {
			t.Errorf("sdp %q: %s, encoding/json %s", s, got, want)
		}
	}
}

// listOutAsAnswer is what listAnswer must hold for what encoding/json read.
func listOutAsAnswer(l *listOut) *listAnswer {
	a := &listAnswer{count: l.Count}
	if l.Replays != nil {
		rs := []ReplaySummary{}
		for _, r := range *l.Replays {
			rs = append(rs, ReplaySummary{ID: r.ID, ConsultationID: r.ConsultationID, Title: r.Title, Participants: r.Participants, Tracks: r.Tracks})
		}
		a.replays = &rs
	}
	return a
}
