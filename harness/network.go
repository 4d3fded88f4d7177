package harness

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/telechaos/telechaos/harness/driver"
	"github.com/telechaos/telechaos/scenarios"
)

// mediaNetwork fills mo's ICE settings from the scenario's network section:
// the addresses to gather on (the user's, else the one routing to the
// target when it is not loopback, else loopback), the STUN/TURN servers
// and relay-only.
func mediaNetwork(ctx context.Context, n scenarios.Network, mediaHost string, mo *driver.MediaOptions) error {
	for _, g := range n.Gather {
		g = strings.TrimSpace(g)
		if a, err := netip.ParseAddr(g); err == nil {
			mo.GatherIPs = append(mo.GatherIPs, a.Unmap())
			continue
		}
		addrs, err := driver.InterfaceAddrs(g)
		if err != nil {
			return fmt.Errorf("network.gather: %w", err)
		}
		mo.GatherIPs = append(mo.GatherIPs, addrs...)
	}
	if len(mo.GatherIPs) == 0 && mediaHost != "" {
		a, err := driver.RouteLocalIP(ctx, mediaHost)
		if err != nil {
			return fmt.Errorf("media: where to gather ICE candidates for %s: %w", mediaHost, err)
		}
		if !a.IsLoopback() {
			mo.GatherIPs = []netip.Addr{a}
		}
	}
	for _, s := range n.ICEServers {
		mo.ICEServers = append(mo.ICEServers, driver.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	mo.RelayOnly = n.RelayOnly
	return nil
}
