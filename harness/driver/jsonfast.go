package driver

// A fast path for decoding the contract's answers. encoding/json decodes by
// reflection and validates the body in a separate pass; the answers here are
// small flat objects, read millions of times in a run. jdec reads them in one
// pass, and only in the plain form the reference clinic writes: any string
// with an escape, a null, a number with a fraction or exponent, a key that
// differs from a known one only by case, or anything else unusual makes the
// fast path give up, and the body is decoded again by encoding/json
// (decodeFast), so values and errors on unusual bodies stay exactly its.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"unicode/utf8"
)

// fastMisses counts the bodies the fast path gave up on (tests check that
// the clinic's answers never do).
var fastMisses atomic.Int64

// jdec reads one JSON value from b.
type jdec struct {
	b     []byte
	i     int
	depth int
	// maxList, if > 0, bounds every array: one entry more and the read
	// gives up with tooLong set, having built no more than that.
	maxList int
	tooLong bool
	// maxDepth bounds the nesting of skipped values (deeper: give up);
	// 0: maxSkipDepth.
	maxDepth int
}

// maxSkipDepth bounds the nesting of skipped values on the fast path;
// countDepth is encoding/json's own bound, for the pass that counts lists.
const (
	maxSkipDepth = 64
	countDepth   = 10000
)

func (d *jdec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (d *jdec) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *jdec) consume(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *jdec) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// rawString reads a string without escapes or control characters, in valid
// UTF-8, and returns its bytes (aliasing b).
func (d *jdec) rawString() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return nil, false
}

func (d *jdec) str(dst *string) bool {
	start := d.i
	s, ok := d.rawString()
	if ok {
		*dst = string(s)
		return true
	}
	d.i = start
	return d.escaped(dst)
}

// escaped reads a string with the short escapes (\" \\ \/ \b \f \n \r \t:
// SDP bodies are full of \r\n); \u escapes and invalid UTF-8 give up.
func (d *jdec) escaped(dst *string) bool {
	if d.peek() != '"' {
		return false
	}
	var out []byte
	ascii := true
	for j := d.i + 1; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(out) {
				return false
			}
			*dst = string(out)
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(d.b) {
				return false
			}
			j++
			switch d.b[j] {
			case '"', '\\', '/':
				out = append(out, d.b[j])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			default:
				return false
			}
		default:
			if c >= 0x80 {
				ascii = false
			}
			out = append(out, c)
		}
	}
	return false
}

// int64v reads an integer without fraction or exponent, of at most 18
// digits (so it cannot overflow).
func (d *jdec) int64v() (int64, bool) {
	d.ws()
	neg := false
	if d.i < len(d.b) && d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	if d.i >= len(d.b) {
		return 0, false
	}
	var v int64
	switch c := d.b[d.i]; {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		start := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			v = v*10 + int64(d.b[d.i]-'0')
			d.i++
		}
		if d.i-start > 18 {
			return 0, false
		}
	default:
		return 0, false
	}
	if d.i < len(d.b) {
		if c := d.b[d.i]; c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9') {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

func (d *jdec) int(dst *int) bool {
	v, ok := d.int64v()
	if ok {
		*dst = int(v)
	}
	return ok
}

func (d *jdec) bool(dst *bool) bool {
	d.ws()
	switch {
	case hasAt(d.b, d.i, "true"):
		*dst = true
		d.i += 4
	case hasAt(d.b, d.i, "false"):
		*dst = false
		d.i += 5
	default:
		return false
	}
	return true
}

func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// object reads an object, calling field for each key with d positioned at
// its value; field must read the value or return false.
func (d *jdec) object(field func(key []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.consume(':') || !field(key) {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem with d positioned at each element.
func (d *jdec) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for n := 1; ; n++ {
		if d.maxList > 0 && n > d.maxList {
			d.tooLong = true
			return false
		}
		if !elem() {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return true
		default:
			return false
		}
	}
}

func (d *jdec) strs(dst *[]string) bool {
	out := make([]string, 0) // [] decodes to an empty, non-nil slice
	ok := d.array(func() bool {
		s, ok := d.rawString()
		if ok {
			out = append(out, string(s))
		}
		return ok
	})
	if ok {
		*dst = out
	}
	return ok
}

// other skips the value of a key no field has, unless encoding/json would
// match it to one of known (its keys match case-insensitively) or the key is
// not plain ASCII (Unicode case folding): then the fast path gives up.
func (d *jdec) other(key []byte, known ...string) bool {
	for _, c := range key {
		if c >= 0x80 {
			return false
		}
	}
	for _, k := range known {
		if asciiEqualFold(key, k) {
			return false
		}
	}
	return d.skip()
}

// skip reads and validates any JSON value.
func (d *jdec) skip() bool {
	switch c := d.peek(); {
	case c == '"':
		return d.skipString()
	case c == '{', c == '[':
		if d.depth >= max(d.maxDepth, maxSkipDepth) {
			return false
		}
		d.depth++
		var ok bool
		if c == '{' {
			ok = d.object(func([]byte) bool { return d.skip() })
		} else {
			ok = d.array(d.skip)
		}
		d.depth--
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		return d.skipNumber()
	case c == 't':
		return d.lit("true")
	case c == 'f':
		return d.lit("false")
	case c == 'n':
		return d.lit("null")
	}
	return false
}

func (d *jdec) lit(s string) bool {
	if !hasAt(d.b, d.i, s) {
		return false
	}
	d.i += len(s)
	return true
}

func (d *jdec) skipString() bool {
	d.i++ // the opening quote
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return false
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if len(d.b)-d.i < 6 {
					return false
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return false
					}
				}
				d.i += 6
			default:
				return false
			}
		default:
			d.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber reads a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jdec) skipNumber() bool {
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i >= len(d.b) {
		return false
	}
	if d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// fastDecoder is an answer type with a fast path.
type fastDecoder interface {
	fastDecode(d *jdec) bool
}

// decodeFast decodes a 2xx body into out: the fast path when it takes the
// whole body, else encoding/json from a zero value (decode's errors). Any
// array of more than maxList entries (if > 0) fails either way, before more
// than maxList entries are built.
func decodeFast(op Op, b []byte, maxList int, fast func(d *jdec) bool, slow func() error) error {
	d := jdec{b: b, maxList: maxList}
	if fast(&d) && d.end() {
		return nil
	}
	fastMisses.Add(1)
	if err := checkLists(op, b, maxList); err != nil {
		return err
	}
	return slow()
}

// checkLists fails if b holds an array of more than maxList entries (if >
// 0): encoding/json, which would build them all, then never sees it. It
// builds nothing; a body it cannot read is left to encoding/json's errors.
func checkLists(op Op, b []byte, maxList int) error {
	if maxList <= 0 {
		return nil
	}
	d := jdec{b: b, maxList: maxList, maxDepth: countDepth}
	if !d.skip() && d.tooLong {
		return fmt.Errorf("%s: %w: a list exceeds the limit of %d entries", op, ErrGarbage, maxList)
	}
	return nil
}

// slowDecode decodes b with encoding/json into a fresh value and stores it
// in out (so out, not handed to encoding/json, can stay on the stack).
func slowDecode[T any](op Op, b []byte, out *T) error {
	tmp := new(T)
	err := decode(op, b, tmp)
	*out = *tmp
	return err
}

// The answers' shapes (docs/api.md); the tags serve the encoding/json path.

type registerOut struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

func (o *registerOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "role":
			return d.str(&o.Role)
		case "token":
			return d.str(&o.Token)
		}
		return d.other(k, "id", "role", "token")
	})
}

type bookOut struct {
	ID             string `json:"id"`
	ConsultationID string `json:"consultation_id"`
	PatientID      string `json:"patient_id"`
	ClinicianID    string `json:"clinician_id"`
}

func (o *bookOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "consultation_id":
			return d.str(&o.ConsultationID)
		case "patient_id":
			return d.str(&o.PatientID)
		case "clinician_id":
			return d.str(&o.ClinicianID)
		}
		return d.other(k, "id", "consultation_id", "patient_id", "clinician_id")
	})
}

func (o *sdpMsg) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "type":
			return d.str(&o.Type)
		case "sdp":
			return d.str(&o.SDP)
		case "segment":
			if o.Segment == nil {
				o.Segment = new(int)
			}
			return d.int(o.Segment)
		}
		return d.other(k, "type", "sdp", "segment")
	})
}

func (o *trackJSON) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "owner":
			return d.str(&o.Owner)
		case "kind":
			return d.str(&o.Kind)
		case "codec":
			return d.str(&o.Codec)
		case "format":
			return d.str(&o.Format)
		case "segment":
			return d.int(&o.Segment)
		case "frames":
			return d.int(&o.Frames)
		case "bytes":
			v, ok := d.int64v()
			o.Bytes = v
			return ok
		}
		return d.other(k, "id", "owner", "kind", "codec", "format", "segment", "frames", "bytes")
	})
}

// tracksField reads a "tracks" array into *dst (allocated on first use, as
// encoding/json does for a pointer).
func (d *jdec) tracksField(dst **[]trackJSON) bool {
	if *dst == nil {
		*dst = new([]trackJSON)
	}
	out := make([]trackJSON, 0)
	ok := d.array(func() bool {
		var t trackJSON
		if !t.fastDecode(d) {
			return false
		}
		out = append(out, t)
		return true
	})
	**dst = out
	return ok
}

type endOut struct {
	ConsultationID string       `json:"consultation_id"`
	RecordingID    string       `json:"recording_id"`
	Tracks         *[]trackJSON `json:"tracks"`
}

func (o *endOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "consultation_id":
			return d.str(&o.ConsultationID)
		case "recording_id":
			return d.str(&o.RecordingID)
		case "tracks":
			return d.tracksField(&o.Tracks)
		}
		return d.other(k, "consultation_id", "recording_id", "tracks")
	})
}

type consultationOut struct {
	ID            string `json:"id"`
	AppointmentID string `json:"appointment_id"`
	PatientID     string `json:"patient_id"`
	ClinicianID   string `json:"clinician_id"`
	State         string `json:"state"`
	Video         bool   `json:"video"`
	RecordingID   string `json:"recording_id"`
}

func (o *consultationOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "appointment_id":
			return d.str(&o.AppointmentID)
		case "patient_id":
			return d.str(&o.PatientID)
		case "clinician_id":
			return d.str(&o.ClinicianID)
		case "state":
			return d.str(&o.State)
		case "video":
			return d.bool(&o.Video)
		case "recording_id":
			return d.str(&o.RecordingID)
		}
		return d.other(k, "id", "appointment_id", "patient_id", "clinician_id", "state", "video", "recording_id")
	})
}

type summaryOut struct {
	ID             string   `json:"id"`
	ConsultationID string   `json:"consultation_id"`
	Title          string   `json:"title"`
	Participants   []string `json:"participants"`
	Tracks         int      `json:"tracks"`
}

func (o *summaryOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "consultation_id":
			return d.str(&o.ConsultationID)
		case "title":
			return d.str(&o.Title)
		case "participants":
			return d.strs(&o.Participants)
		case "tracks":
			return d.int(&o.Tracks)
		}
		return d.other(k, "id", "consultation_id", "title", "participants", "tracks")
	})
}

// listOut is the list's shape for encoding/json.
type listOut struct {
	Replays *[]summaryOut `json:"replays"`
	Count   *int          `json:"count"`
}

// listAnswer is a decoded replay list: replays nil when the body has none,
// count nil when it has no count.
type listAnswer struct {
	replays *[]ReplaySummary
	count   *int
}

// decode reads a list body, its items straight into ReplaySummary on the
// fast path; lists are bounded as by decodeFast.
func (o *listAnswer) decode(b []byte, maxList int) error {
	d := jdec{b: b, maxList: maxList}
	if o.fastDecode(&d) && d.end() {
		return nil
	}
	fastMisses.Add(1)
	if err := checkLists(OpList, b, maxList); err != nil {
		return err
	}
	*o = listAnswer{}
	out := new(listOut)
	if err := decode(OpList, b, out); err != nil {
		return err
	}
	o.count = out.Count
	if out.Replays != nil {
		rs := make([]ReplaySummary, len(*out.Replays))
		for i, r := range *out.Replays {
			rs[i] = ReplaySummary(r)
		}
		o.replays = &rs
	}
	return nil
}

func (o *listAnswer) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "replays":
			if o.replays == nil {
				o.replays = new([]ReplaySummary)
			}
			// Room for the items the body seems to hold (one
			// consultation_id each), so the slice is allocated once.
			n := bytes.Count(d.b[d.i:], []byte(`"consultation_id"`))
			if d.maxList > 0 {
				n = min(n, d.maxList)
			}
			out := make([]ReplaySummary, 0, n)
			ok := d.array(func() bool {
				var s summaryOut
				if !s.fastDecode(d) {
					return false
				}
				out = append(out, ReplaySummary(s))
				return true
			})
			*o.replays = out
			return ok
		case "count":
			if o.count == nil {
				o.count = new(int)
			}
			return d.int(o.count)
		}
		return d.other(k, "replays", "count")
	})
}

type replayOut struct {
	ID             string       `json:"id"`
	ConsultationID string       `json:"consultation_id"`
	Title          string       `json:"title"`
	Participants   []string     `json:"participants"`
	Tracks         *[]trackJSON `json:"tracks"`
}

func (o *replayOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return d.str(&o.ID)
		case "consultation_id":
			return d.str(&o.ConsultationID)
		case "title":
			return d.str(&o.Title)
		case "participants":
			return d.strs(&o.Participants)
		case "tracks":
			return d.tracksField(&o.Tracks)
		}
		return d.other(k, "id", "consultation_id", "title", "participants", "tracks")
	})
}

// errorOut is the contract's error body.
type errorOut struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (o *errorOut) fastDecode(d *jdec) bool {
	return d.object(func(k []byte) bool {
		switch string(k) {
		case "error":
			return d.str(&o.Error)
		case "message":
			return d.str(&o.Message)
		}
		return d.other(k, "error", "message")
	})
}

// jsonObject encodes an object of string fields, given as key, value pairs
// in the order encoding/json writes them (a map's keys sorted, a struct's
// fields in order), byte for byte as encoding/json would.
func jsonObject(kv ...string) []byte {
	n := 2
	for _, s := range kv {
		n += len(s) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv[i])
		b = append(b, ':')
		b = appendJSONString(b, kv[i+1])
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json encodes a string: plain ASCII
// as is, anything else (quotes, backslashes, control characters, HTML's
// <, > and &, non-ASCII) by encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendEscaped(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendEscaped handles the strings with escapes: \r and \n (SDP) by hand
// while the rest is plain, everything else by encoding/json.
func appendEscaped(b []byte, s string) []byte {
	start := len(b)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&':
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b[:start], enc...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
