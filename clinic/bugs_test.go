package clinic

import (
	"bytes"
	"slices"
	"testing"
)

// Each catalogue bug the HTTP layer owns: on, it shows its concrete wrong
// behaviour; off, the same steps are correct.

func TestBugListScope(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(onOff(on), func(t *testing.T) {
			var specs []string
			if on {
				specs = []string{"list-scope"}
			}
			s := startFake(t, "", specs...)
			c := newAPIClient(t, s.URL())
			d := c.register("clinician")
			alice, bob := c.register("patient"), c.register("patient")
			_, ea := fakeCall(c, alice, d)
			_, eb := fakeCall(c, bob, d)
			got := listIDs(c.list(alice))
			slices.Sort(got)
			want := []string{ea.RecordingID}
			if on {
				// Scoped by the clinician alice has seen: bob's consultation too.
				want = []string{ea.RecordingID, eb.RecordingID}
				slices.Sort(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("alice lists %v, want %v", got, want)
			}
			// A patient who never saw this clinician sees nothing either way.
			if l := c.list(c.register("patient")); l.Count != 0 {
				t.Errorf("stranger lists %v", listIDs(l))
			}
		})
	}
}

func TestBugCacheKey(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(onOff(on), func(t *testing.T) {
			var specs []string
			if on {
				specs = []string{"cache-key"}
			}
			s := startFake(t, "", specs...)
			c := newAPIClient(t, s.URL())
			alice, d, mallory := c.register("patient"), c.register("clinician"), c.register("patient")
			_, e := fakeCall(c, alice, d)
			if got := listIDs(c.list(alice)); !slices.Equal(got, []string{e.RecordingID}) {
				t.Fatalf("alice lists %v", got)
			}
			// Within the cache TTL (2 s; nothing here waits) mallory asks.
			got := listIDs(c.list(mallory))
			var want []string
			if on {
				want = []string{e.RecordingID} // alice's cached list
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("mallory lists %v, want %v", got, want)
			}
		})
	}
}

// TestListCacheInvalidatedOnEnd: the correct cache never hides a new replay
// from a participant who listed just before the end.
func TestListCacheInvalidatedOnEnd(t *testing.T) {
	s := startFake(t, "")
	c := newAPIClient(t, s.URL())
	p, d := c.register("patient"), c.register("clinician")
	if l := c.list(p); l.Count != 0 {
		t.Fatalf("fresh user lists %v", listIDs(l))
	}
	c.list(d)
	_, e := fakeCall(c, p, d)
	for _, u := range []testUser{p, d} {
		if got := listIDs(c.list(u)); !slices.Equal(got, []string{e.RecordingID}) {
			t.Errorf("%s lists %v right after end", u.Role, got)
		}
	}
}

func TestBugBOLAMedia(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(onOff(on), func(t *testing.T) {
			var specs []string
			if on {
				specs = []string{"bola-media"}
			}
			s := startFake(t, "", specs...)
			c := newAPIClient(t, s.URL())
			alice, d, mallory := c.register("patient"), c.register("clinician"), c.register("patient")
			_, e := fakeCall(c, alice, d)
			tr := e.Tracks[0]
			meta := c.do("GET", "/v1/replays/"+e.RecordingID, mallory.Token, nil)
			med := c.do("GET", "/v1/replays/"+e.RecordingID+"/media?track="+tr.ID, mallory.Token, nil)
			if on {
				if meta.status != 200 || med.status != 200 || !bytes.Equal(med.body, fakePayload(tr.Owner, tr.Segment)) {
					t.Errorf("bug on: metadata %d, media %d %q; want alice's bytes", meta.status, med.status, med.body)
				}
			} else {
				if meta.status != 404 || med.status != 404 || bytes.Contains(med.body, []byte("OggS")) {
					t.Errorf("bug off: metadata %d, media %d %q; want 404 and no bytes", meta.status, med.status, med.body)
				}
			}
			// The token is still checked either way.
			if r := c.do("GET", "/v1/replays/"+e.RecordingID+"/media?track="+tr.ID, "", nil); r.status != 401 {
				t.Errorf("no token: %d", r.status)
			}
			// Mallory's own list is untouched by this bug.
			if l := c.list(mallory); l.Count != 0 {
				t.Errorf("mallory lists %v", listIDs(l))
			}
		})
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
