package scan

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// neighboursUp returns the hosts of the plan that the calling thread's namespace knows on a link from ARP (IPv6: neighbour discovery): an
// entry the kernel resolved (reachable, or stale, delay or probe after it was) or one set by hand (permanent).
// A host that answered no probe but answered ARP is up, as nmap's ARP ping says; one whose entry is incomplete
// or failed answered nothing. The probes themselves made the kernel ask, on the raw send path; the packet path
// is chosen only with the next hop resolved. Hosts behind a router have no entry: their silence is all there is.
func neighboursUp(pl *plan) (map[netip.Addr]bool, error) {
	family := netlink.FAMILY_V4
	if pl.v6 {
		family = netlink.FAMILY_V6 // neighbour discovery (RFC 4861), IPv6's ARP
	}
	ns, err := netlink.NeighList(0, family)
	if err != nil {
		return nil, err
	}
	const resolved = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT
	up := map[netip.Addr]bool{}
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&resolved == 0 || len(n.HardwareAddr) == 0 {
			continue
		}
		a = a.Unmap()
		if a.Is6() != pl.v6 {
			continue
		}
		if _, in := pl.lookup(num(a), pl.ports[0]); in {
			up[a] = true
		}
	}
	return up, nil
}
