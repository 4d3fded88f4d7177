package oracle

import (
	"strings"
	"testing"
)

// Durability against frames sent: a target that recounts after a crash
// acknowledges only what survived, so only what was sent reveals the loss.
func TestDurabilityAgainstSent(t *testing.T) {
	cases := []struct {
		name    string
		tracks  []TrackExpect
		got     map[[2]string]int
		wantBad bool
		detail  string
	}{
		{"ack shrank with the loss: caught by sent",
			[]TrackExpect{{Owner: "pA", Kind: "audio", Acked: 60, Sent: 200, Allowed: 30, Why: "baseline 5 + faults 25 (clinic-crash)"}},
			map[[2]string]int{{"pA", "audio"}: 60}, true, "pA audio 60/200 frames of those sent (140 lost, 70.0%; allowed 30: baseline 5 + faults 25 (clinic-crash); acknowledged 60)"},
		{"loss within the allowance",
			[]TrackExpect{{Owner: "pA", Kind: "audio", Acked: 180, Sent: 200, Allowed: 30}},
			map[[2]string]int{{"pA", "audio"}: 180}, false, ""},
		{"segments add up, unknown ack judged on sent",
			[]TrackExpect{{Owner: "pA", Kind: "audio", Acked: -1, Sent: 100, Allowed: 5}, {Owner: "pA", Kind: "audio", Acked: -1, Sent: 100, Allowed: 5}},
			map[[2]string]int{{"pA", "audio"}: 189}, true, "189/200 frames of those sent (11 lost, 5.5%; allowed 10; acknowledged unknown)"},
		{"ack still binds when sent is unknown",
			[]TrackExpect{{Owner: "c1", Kind: "video", Acked: 50, Sent: -1}},
			map[[2]string]int{{"c1", "video"}: 49}, true, "c1 video 49/50 frames (2.0% lost) of those acknowledged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := New(world(t), Options{})
			o.ExpectTracks("cA", "rA", tc.tracks, t0)
			o.Delivered("pA", "cA", true, tc.got, t0)
			o.Finish(t0)
			vs := o.Violations()
			if (len(vs) > 0) != tc.wantBad {
				t.Fatalf("violations %+v, want bad=%v", vs, tc.wantBad)
			}
			if tc.wantBad && !strings.Contains(vs[0].Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", vs[0].Detail, tc.detail)
			}
			if ls := o.Losses(); len(ls) == 0 || ls[0].Consultation != "cA" {
				t.Errorf("losses %+v", ls)
			}
		})
	}
}
