package driver

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// handAnswer is a handcrafted answer: candidates at session level and in two
// media sections, allowed and not.
const handAnswer = "v=0\r\n" +
	"o=- 1 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=candidate:20 1 udp 2130706431 127.0.0.2 5000 typ host\r\n" + // session level, foreign
	"a=candidate:21 1 udp 2130706431 10.1.2.20 5001 typ host\r\n" + // session level, allowed
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:0123456789abcdef0123456789\r\n" +
	"a=mid:0\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=candidate:1 1 udp 2130706431 10.1.2.3 4000 typ host\r\n" +
	"a=candidate:2 1 udp 2130706431 127.0.0.2 4000 typ host\r\n" +
	"a=candidate:3 1 udp 2130706431 abc123.local 4000 typ host\r\n" +
	"a=candidate:4 1 udp 2130706431 2001:db8:1:2::5 4001 typ host\r\n" +
	"a=candidate:5 1 udp 2130706431 2001:db8:9:9::5 4002 typ host\r\n" +
	"a=candidate:6 1 udp 1 10.1.2.9 4003 typ relay raddr 0.0.0.0 rport 0\r\n" +
	"a=candidate:7 1 tcp 1 10.9.9.9 9 typ host tcptype active\r\n" +
	"a=candidate:8 1 tcp 1 10.1.2.4 4004 typ host tcptype passive\r\n" +
	"a=candidate:10 1 udp 1 clinic.example.com 4005 typ host\r\n" +
	"a=candidate:11 1 udp 1 10.1.2.255 4006 typ host\r\n" +
	"a=candidate:12 1 udp 1 10.1.2.7 4007 typ prflx raddr 10.1.2.3 rport 4000\r\n" +
	"a=candidate:13 1 udp 1 0.0.0.0 4008 typ host\r\n" +
	"a=candidate:14 1 udp 1 10.1.2.6 0 typ host\r\n" +
	"a=candidate:15 garbage\r\n" +
	"a=end-of-candidates\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=ice-pwd:0123456789abcdef0123456789\r\n" +
	"a=mid:1\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=candidate:30 1 udp 1 10.1.2.8 4009 typ srflx raddr 10.0.0.1 rport 1\r\n" +
	"a=candidate:31 1 udp 1 192.168.1.1 4010 typ host\r\n"

var handAllowed = []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("2001:db8:1:2::/64")}

// candidateAddrs lists "addr:port" of every a=candidate, session level first.
func candidateAddrs(t *testing.T, text string) []string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(text); err != nil {
		t.Fatalf("filtered answer does not parse: %v\n%s", err, text)
	}
	var out []string
	add := func(attrs []sdp.Attribute) {
		for _, a := range attrs {
			if a.IsICECandidate() {
				out = append(out, candidateLabel(a.Value))
			}
		}
	}
	add(d.Attributes)
	for _, m := range d.MediaDescriptions {
		add(m.Attributes)
	}
	return out
}

func TestCandidateFilterHandcrafted(t *testing.T) {
	got, dropped, err := filterAnswer(handAnswer, handAllowed, true)
	if err != nil {
		t.Fatal(err)
	}
	wantKept := []string{"10.1.2.20:5001", "10.1.2.3:4000", "[2001:db8:1:2::5]:4001", "10.1.2.9:4003", "10.1.2.4:4004", "10.1.2.8:4009"}
	if k := candidateAddrs(t, got); !slices.Equal(k, wantKept) {
		t.Errorf("kept %v\nwant %v", k, wantKept)
	}
	wantDropped := []string{"127.0.0.2:5000", "127.0.0.2:4000", "abc123.local:4000", "[2001:db8:9:9::5]:4002",
		"10.9.9.9:9", "clinic.example.com:4005", "10.1.2.255:4006", "10.1.2.7:4007", "0.0.0.0:4008", "10.1.2.6:0",
		`"15 garbage"`, "192.168.1.1:4010"}
	if !slices.Equal(dropped, wantDropped) {
		t.Errorf("dropped %v\nwant %v", dropped, wantDropped)
	}
	for _, keep := range []string{"a=end-of-candidates", "a=ice-ufrag:abcd", "a=mid:1", "a=rtpmap:96 VP8/90000", "a=group:BUNDLE 0 1"} {
		if !strings.Contains(got, keep) {
			t.Errorf("filtered answer lost %q", keep)
		}
	}
	for _, gone := range []string{"127.0.0.2", ".local", "example.com", "192.168.1.1"} {
		if strings.Contains(got, gone) {
			t.Errorf("filtered answer still mentions %q:\n%s", gone, got)
		}
	}
	// What pion will parse is this text: filtering it again changes nothing.
	again, d2, err := filterAnswer(got, handAllowed, true)
	if err != nil || len(d2) != 0 || again != got {
		t.Errorf("second pass: dropped %v, err %v, changed %v", d2, err, again != got)
	}
}

func TestCandidateFilterAllDropped(t *testing.T) {
	only := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef0123456789\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.2 4000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 x.local 4001 typ host\r\n" +
		"a=candidate:3 1 udp 2130706431 2001:db8:9::1 4002 typ host\r\n" +
		"a=candidate:4 1 udp 2130706431 192.168.0.10 4003 typ host\r\n" +
		"a=candidate:5 1 tcp 2130706431 127.0.0.3 4004 typ host tcptype passive\r\n" +
		"a=candidate:6 1 udp 2130706431 127.0.0.4 4005 typ host\r\n" +
		"a=end-of-candidates\r\n"
	_, dropped, err := filterAnswer(only, defaultAllowedRemote, false)
	if !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("err = %v, want ErrBadAnswer", err)
	}
	want := "answer offered no allowed ICE candidate (dropped 6: 127.0.0.2:4000, x.local:4001, [2001:db8:9::1]:4002, 192.168.0.10:4003, 127.0.0.3:4004, ...)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q\nwant it to contain %q", err, want)
	}
	if len(dropped) != 6 {
		t.Errorf("dropped %v", dropped)
	}
	// A first answer without any candidate is refused the same way; a
	// renegotiation's may keep the candidates already in use.
	none := strings.Split(only, "a=candidate:1")[0]
	if _, _, err := filterAnswer(none, defaultAllowedRemote, true); !errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), "(dropped 0: )") {
		t.Errorf("first answer without candidates: %v", err)
	}
	if _, _, err := filterAnswer(none, defaultAllowedRemote, false); err != nil {
		t.Errorf("renegotiation answer without candidates refused: %v", err)
	}
	if _, _, err := filterAnswer("not sdp", defaultAllowedRemote, true); !errors.Is(err, ErrBadAnswer) {
		t.Errorf("garbage: %v", err)
	}
}

func TestCandidateDefaultAllowIsLoopbackExact(t *testing.T) {
	f, err := NewMediaFactory(MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"127.0.0.1": true, "::1": true, "127.0.0.2": false, "10.0.0.1": false, "::2": false, "::ffff:127.0.0.1": false} {
		if got := remoteAllowed(netip.MustParseAddr(addr), f.allowed); got != want {
			t.Errorf("zero MediaOptions allows %s = %v, want %v", addr, got, want)
		}
	}
	if _, err := NewMediaFactory(MediaOptions{AllowedRemote: []netip.Prefix{{}}}); err == nil {
		t.Error("invalid prefix accepted")
	}
	f, err = NewMediaFactory(MediaOptions{AllowedRemote: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/24")}})
	if err != nil {
		t.Fatal(err)
	}
	if !remoteAllowed(netip.MustParseAddr("10.1.2.77"), f.allowed) || remoteAllowed(netip.MustParseAddr("127.0.0.1"), f.allowed) {
		t.Errorf("explicit AllowedRemote not used: %v", f.allowed)
	}
}

func TestICEDefaultAllowedRemote(t *testing.T) {
	ctx := context.Background()
	for host, want := range map[string][]string{
		"127.0.0.1":            {"127.0.0.1/32"},
		"127.0.0.5":            {"127.0.0.5/32"},
		"::1":                  {"::1/128"},
		"[::1]":                {"::1/128"},
		"localhost":            {"127.0.0.1/32", "::1/128"},
		"LOCALHOST.":           {"127.0.0.1/32", "::1/128"},
		"localhost:8443":       {"127.0.0.1/32", "::1/128"},
		"10.1.2.3":             {"10.1.2.0/24"},
		"10.1.2.3:8080":        {"10.1.2.0/24"},
		"::ffff:10.1.2.3":      {"10.1.2.0/24"},
		"2001:db8:1:2:3:4:5:6": {"2001:db8:1:2::/64"},
		"[2001:db8::1]:443":    {"2001:db8::/64"},
		"fe80::1%eth0":         {"fe80::/64"},
	} {
		got, err := DefaultAllowedRemote(ctx, host)
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if !slices.Equal(s, want) {
			t.Errorf("DefaultAllowedRemote(%q) = %v, want %v", host, s, want)
		}
	}
	for _, bad := range []string{"", "0.0.0.0", "224.0.0.1", "::"} {
		if got, err := DefaultAllowedRemote(ctx, bad); err == nil {
			t.Errorf("DefaultAllowedRemote(%q) = %v, want an error", bad, got)
		}
	}
	// A host name is resolved with ctx: a cancelled one fails.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := DefaultAllowedRemote(cctx, "clinic.invalid"); err == nil {
		t.Errorf("resolve with a cancelled ctx = %v, want an error", got)
	}
}
