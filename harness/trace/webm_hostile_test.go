package trace

import (
	"testing"

	"github.com/telechaos/telechaos/harness/oracle"
	"github.com/telechaos/telechaos/internal/hostile"
)

// A WebM recording broken by a hostile front (junk after it, random bytes,
// a cut body, an empty or a 2 GiB answer) is never judged clean and never
// reported as a violation: the content check counts it as not judged.
func TestWebMRecordingBehindHostileFront(t *testing.T) {
	for _, mode := range []hostile.Mode{hostile.MediaJunkSuffix, hostile.MediaRandom, hostile.MediaReset, hostile.MediaTruncated, hostile.MediaEmpty, hostile.MediaHuge} {
		t.Run(string(mode), func(t *testing.T) {
			var front *hostile.Server
			out, _ := runWebMVia(t, mediaTrace(), func(url string) string {
				var err error
				if front, err = hostile.Start(url, mode); err != nil {
					t.Fatal(err)
				}
				return front.URL
			})
			defer front.Close()
			if front.Hits.Load() == 0 {
				t.Fatalf("the mode never applied: the test proves nothing")
			}
			for _, v := range out.Violations {
				t.Errorf("broken bytes reported as a violation: %s: %s", v.Invariant, v.Detail)
			}
			if j := out.Stats.Judgement[oracle.ReplayContentOwnership]; j.NotJudged == 0 {
				t.Errorf("content judgement %+v: the broken tracks were not counted as not judged", j)
			}
		})
	}
}

// Foreign frames in a WebM recording (preroll-leak) are found even when a
// front appends junk to every track: the frames before the junk are judged.
func TestWebMRecordingJunkCannotHideAFrameLeak(t *testing.T) {
	tr, err := ParseFile("testdata/bugs/preroll-leak.trace")
	if err != nil {
		t.Fatal(err)
	}
	var out Outcome
	for range recordedTries {
		out, _ = runWebMVia(t, tr, func(url string) string {
			front, err := hostile.Start(url, hostile.MediaJunkSuffix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(front.Close)
			return front.URL
		})
		if out.Reproduced {
			break
		}
	}
	if !out.Reproduced {
		t.Fatalf("preroll-leak hidden by a junk suffix on WebM tracks (violations: %v)", invariantsOf(out.Violations))
	}
}
