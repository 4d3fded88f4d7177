package oracle

import (
	"fmt"
	"testing"
	"time"

	"github.com/telechaos/telechaos/models"
)

// benchOracle: 1,000 consultations between 1,000 patients and 50 clinicians.
func benchOracle(b *testing.B) (*Oracle, []models.Consultation) {
	l := models.NewLedger()
	var cs []models.Consultation
	for i := range 1000 {
		p, c := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i%50)
		l.AddUser(p, models.Patient)
		l.AddUser(c, models.Clinician)
		cons := models.Consultation{ID: fmt.Sprintf("k%d", i), AppointmentID: fmt.Sprintf("a%d", i), Patient: p, Clinician: c}
		if err := l.AddConsultation(cons); err != nil {
			b.Fatal(err)
		}
		if err := l.BindRecording(cons.ID, "r"+cons.ID); err != nil {
			b.Fatal(err)
		}
		cs = append(cs, cons)
	}
	return New(l, Options{}), cs
}

// BenchmarkCheckLiveMany judges one received live frame (per observation on the
// media hot path: 130 per consultation per second).
func BenchmarkCheckLiveMany(b *testing.B) {
	o, cs := benchOracle(b)
	frames := make([][]byte, len(cs))
	for i, c := range cs {
		frames[i] = models.AudioFrame(models.Tag{Consultation: models.TagOf(c.ID), Sender: models.TagOf(c.Clinician), Seq: 1}, 60)
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(cs)
		o.CheckLive(cs[k].Patient, cs[k].ID, frames[k], now)
		i++
	}
	if v := o.Violations(); len(v) > 0 {
		b.Fatalf("false positive: %v", v[0])
	}
}

// BenchmarkCheckLiveParallel: the same from every P (the oracle is sharded by user).
func BenchmarkCheckLiveParallel(b *testing.B) {
	o, cs := benchOracle(b)
	frames := make([][]byte, len(cs))
	for i, c := range cs {
		frames[i] = models.AudioFrame(models.Tag{Consultation: models.TagOf(c.ID), Sender: models.TagOf(c.Clinician), Seq: 1}, 60)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := i % len(cs)
			o.CheckLive(cs[k].Patient, cs[k].ID, frames[k], now)
			i += 7
		}
	})
}

// BenchmarkNoteOp records one operation summary in the user's ring (once per
// request).
func BenchmarkNoteOp(b *testing.B) {
	o, cs := benchOracle(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.NoteOp(cs[i%len(cs)].Patient, "list  -> 200 512B 3ms")
		i++
	}
}

// BenchmarkCheckList judges one replay list of 5 items owned by the viewer.
func BenchmarkCheckList(b *testing.B) {
	o, cs := benchOracle(b)
	// Clinician c0 took part in consultations 0, 50, 100, ...
	var items []ListItem
	for k := 0; k < 5; k++ {
		c := cs[k*50]
		items = append(items, ListItem{RecordingID: "r" + c.ID, ConsultationID: c.ID, Participants: []string{c.Patient, c.Clinician}})
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		o.CheckList("c0", items, now)
	}
	if v := o.Violations(); len(v) > 0 {
		b.Fatalf("false positive: %v", v[0])
	}
}

// BenchmarkCheckFramesTrack judges one replay track of 1,000 audio frames.
func BenchmarkCheckFramesTrack(b *testing.B) {
	o, cs := benchOracle(b)
	c := cs[0]
	frames := make([][]byte, 1000)
	for i := range frames {
		frames[i] = models.AudioFrame(models.Tag{Consultation: models.TagOf(c.ID), Sender: models.TagOf(c.Patient), Seq: uint32(i)}, 60)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		o.CheckFrames(c.Patient, "r"+c.ID, "t1", frames, now)
	}
	b.ReportMetric(1000, "frames/op")
	if v := o.Violations(); len(v) > 0 {
		b.Fatalf("false positive: %v", v[0])
	}
}
