package driver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/pion/stun"
	"github.com/pion/webrtc/v3"
)

// ICEServer is a STUN or TURN server a call may use, as in WebRTC's
// RTCIceServer: URLs such as "stun:host:3478", "turn:host:3478" (UDP),
// "turn:host:3478?transport=tcp" or "turns:host:5349" (TLS); TURN needs
// Username and Credential.
type ICEServer struct {
	URLs                 []string
	Username, Credential string
}

// pionServers converts servers for webrtc.Configuration, checking each URL.
func pionServers(servers []ICEServer) ([]webrtc.ICEServer, error) {
	var out []webrtc.ICEServer
	for i, s := range servers {
		if len(s.URLs) == 0 {
			return nil, fmt.Errorf("media: ice server %d: no url", i)
		}
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil {
				return nil, fmt.Errorf("media: ice server %d: url %q: %w", i, raw, err)
			}
			if (u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS) && (s.Username == "" || s.Credential == "") {
				return nil, fmt.Errorf("media: ice server %d: %s needs a username and a credential", i, raw)
			}
		}
		out = append(out, webrtc.ICEServer{URLs: append([]string(nil), s.URLs...), Username: s.Username, Credential: s.Credential, CredentialType: webrtc.ICECredentialTypePassword})
	}
	return out, nil
}

// serverPrefixes are the addresses of the ICE servers (resolved once, with
// ctx): the socket guard must let the harness talk to its own STUN and TURN
// servers, which the user named, beside the target.
func serverPrefixes(ctx context.Context, servers []ICEServer) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range servers {
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil {
				return nil, err
			}
			addrs, err := resolveHost(ctx, u.Host)
			if err != nil {
				return nil, fmt.Errorf("media: ice server %s: %w", raw, err)
			}
			for _, a := range addrs {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	return out, nil
}

func resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%q resolves to no address", host)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap().WithZone("")
	}
	return addrs, nil
}

// RouteLocalIP is the local address the kernel would send from to reach
// targetHost (a host name or IP, optionally with a port): the address to
// gather ICE host candidates on when the target is not on loopback. It
// connects a UDP socket, which sends nothing, and reads its local address.
// A loopback target answers a loopback address.
func RouteLocalIP(ctx context.Context, targetHost string) (netip.Addr, error) {
	host := targetHost
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	addrs, err := resolveHost(ctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %q: %w", targetHost, err)
	}
	var firstErr error
	for _, a := range addrs {
		if !a.Is4() {
			continue // the media side gathers UDP4 only
		}
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		return local, nil
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no IPv4 address")
	}
	return netip.Addr{}, fmt.Errorf("route to %q: %w", targetHost, firstErr)
}

// gatherFilter is the interface and IP filters for gathering host
// candidates on exactly the addresses given.
func gatherFilter(ips []netip.Addr) (ifaceOK func(string) bool, ipOK func(net.IP) bool, err error) {
	want := map[netip.Addr]bool{}
	for _, a := range ips {
		if !a.IsValid() || !a.Is4() && !a.Is4In6() {
			return nil, nil, fmt.Errorf("media: gather address %v: want an IPv4 address", a)
		}
		want[a.Unmap()] = true
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("list interfaces: %w", err)
	}
	names := map[string]bool{}
	found := map[netip.Addr]bool{}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			n, ok := ad.(*net.IPNet)
			if !ok {
				continue
			}
			a, ok := netip.AddrFromSlice(n.IP)
			if ok && want[a.Unmap()] {
				names[i.Name] = true
				found[a.Unmap()] = true
			}
		}
	}
	for a := range want {
		if !found[a] {
			return nil, nil, fmt.Errorf("media: gather address %s is on no local interface", a)
		}
	}
	return func(name string) bool { return names[name] }, func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && want[a.Unmap()]
	}, nil
}

// InterfaceAddrs resolves names of local interfaces to their IPv4
// addresses (for a --ice-gather that names an interface, not an address).
func InterfaceAddrs(name string) ([]netip.Addr, error) {
	i, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	addrs, err := i.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	var out []netip.Addr
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() {
				out = append(out, a.Unmap())
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("interface %q has no IPv4 address", name)
	}
	return out, nil
}
