package scan

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// limitedBroadcast is 255.255.255.255 (RFC 919, RFC 1122 §3.2.1.3).
const limitedBroadcast = 0xffff_ffff

// localBroadcasts lists the broadcast addresses of the calling thread's namespace (call it where the sockets are
// made, inside netns.NS.Do for another namespace):
//
//   - the limited broadcast 255.255.255.255 (already refused by newPlan; listed for completeness);
//   - the directed broadcast of every IPv4 subnet on an interface, as configured (IFA_BROADCAST, `ip addr add …
//     brd X`) and as computed from the prefix (the host part all ones), for prefixes up to /30: a /31 and a /32
//     have no broadcast address (RFC 3021);
//   - every destination of a broadcast route (RTN_BROADCAST), which the kernel adds to its local table for each
//     such address. These are exactly the destinations for which a send without SO_BROADCAST fails with EACCES.
//
// The network address (host part all zeros) of a subnet is not on the list. RFC 1122 §3.3.6 lets a host read
// that obsolete 4.2BSD form as broadcast, and old Linux kernels added a broadcast route for it; this machine's
// kernel (6.18) adds none and sends to it as to any neighbour (checked: a raw send to 198.18.0.0 on a /24
// succeeds, one to 198.18.0.255 gets EACCES), and nmap probes it too. So it is probed, unless the routing table
// holds a broadcast route for it, which the third source catches.
func localBroadcasts() ([]broadcastAddr, error) {
	out := []broadcastAddr{{addr: limitedBroadcast, why: "the limited broadcast address"}}
	seen := map[uint32]bool{limitedBroadcast: true}
	add := func(a netip.Addr, why string) {
		if !a.Is4() {
			return
		}
		u := u32(a)
		if !seen[u] {
			seen[u] = true
			out = append(out, broadcastAddr{addr: u, why: why})
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the interface addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IPNet.IP)
		ones, bits := a.IPNet.Mask.Size()
		if !ok || !ip.Unmap().Is4() || bits != 32 {
			continue
		}
		subnet := netip.PrefixFrom(ip.Unmap(), ones).Masked()
		on := linkName(a.LinkIndex)
		if b, ok := netip.AddrFromSlice(a.Broadcast); ok && !b.Unmap().IsUnspecified() {
			add(b.Unmap(), fmt.Sprintf("the broadcast address of %v%s", subnet, on))
		}
		if ones <= 30 {
			add(addrOf(u32(subnet.Addr())|(1<<(32-ones)-1)), fmt.Sprintf("the broadcast address of %v%s", subnet, on))
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_BROADCAST},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_TYPE)
	if err != nil {
		return nil, fmt.Errorf("list the broadcast routes: %w", err)
	}
	for _, r := range routes {
		if r.Type != unix.RTN_BROADCAST || r.Dst == nil {
			continue
		}
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			add(a.Unmap(), "a broadcast route in the local routing table"+linkName(r.LinkIndex))
		}
	}
	return out, nil
}

// linkName returns " on NAME" for an interface index, or "" if it is gone.
func linkName(index int) string {
	if l, err := net.InterfaceByIndex(index); err == nil {
		return " on " + l.Name
	}
	return ""
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}
