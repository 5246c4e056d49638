package probe

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/labnet"
)

// LabRange is RFC 2544's benchmarking range, where tcpwalk's labs live;
// LabRange6 is RFC 5180's IPv6 one, the labs' IPv6 addresses (both defined
// in package labnet).
var (
	LabRange  = labnet.IPv4
	LabRange6 = labnet.IPv6
)

// CheckLabRoute refuses a destination in LabRange that the calling thread's
// namespace would send through its default route. Such an address belongs
// to a lab that is not reachable from here (not up, or another namespace):
// the probe would leave the machine for whatever network the default route
// leads to. A lab's own routes (a connected subnet, or the routed lab's
// 198.18.0.0/15 via its router) are specific and pass. Call it where the
// sockets are made (inside netns.NS.Do for another namespace).
func CheckLabRoute(dst netip.Addr) error {
	family, lab := netlink.FAMILY_V4, LabRange
	if dst.Is6() {
		family, lab = netlink.FAMILY_V6, LabRange6
	}
	if !lab.Contains(dst) {
		return nil
	}
	routes, err := netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return envf(fmt.Errorf("probe: read the routing table to check %s: %w", dst, err))
	}
	best := -1
	var via *netlink.Route
	for i := range routes {
		r := &routes[i]
		bits := 0
		if r.Dst != nil {
			p, ok := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			if !ok || !netip.PrefixFrom(p.Unmap(), ones).Contains(dst) {
				continue
			}
			bits = ones
		}
		if bits > best {
			best, via = bits, r
		}
	}
	if via == nil || best > 0 {
		return nil // no route at all (the send fails on its own), or a specific one
	}
	gw := "the default gateway"
	if via.Gw != nil {
		gw = via.Gw.String()
	}
	if l, err := net.InterfaceByIndex(via.LinkIndex); err == nil {
		gw += " on " + l.Name
	}
	return envf(fmt.Errorf("refusing to probe %s: it is in the lab range %s, but from here it would leave through the default route (via %s), "+
		"so no lab reaches it: make the lab with `tcpwalk lab up`, or run in the lab's namespace with --netns", dst, lab, gw))
}
