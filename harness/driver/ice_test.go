package driver

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestRouteLocalIP(t *testing.T) {
	a, err := RouteLocalIP(context.Background(), "127.0.0.1:8088")
	if err != nil || a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("loopback target: %v, %v; want 127.0.0.1", a, err)
	}
	if _, err := RouteLocalIP(context.Background(), "::1"); err == nil {
		t.Error("an IPv6-only target: want an error (media gathers UDP4)")
	}
}

func TestMediaOptionsRefused(t *testing.T) {
	cases := []struct {
		name string
		opts MediaOptions
		want string
	}{
		{"relay only without turn", MediaOptions{RelayOnly: true, ICEServers: []ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}}}, "relay-only needs a TURN server"},
		{"turn without credentials", MediaOptions{ICEServers: []ICEServer{{URLs: []string{"turn:127.0.0.1:3478"}}}}, "needs a username and a credential"},
		{"bad url", MediaOptions{ICEServers: []ICEServer{{URLs: []string{"http://x"}}}}, `url "http://x"`},
		{"gather on no interface", MediaOptions{GatherIPs: []netip.Addr{netip.MustParseAddr("192.0.2.77")}}, "192.0.2.77 is on no local interface"},
	}
	for _, c := range cases {
		_, err := NewMediaFactory(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// Gathering on loopback's own address works as an explicit choice.
	if _, err := NewMediaFactory(MediaOptions{GatherIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}); err != nil {
		t.Errorf("gather on 127.0.0.1: %v", err)
	}
}
