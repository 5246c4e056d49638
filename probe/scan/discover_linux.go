package scan

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// neighboursUp returns the hosts of the plan that the calling thread's namespace knows on a link from ARP: an
// entry the kernel resolved (reachable, or stale, delay or probe after it was) or one set by hand (permanent).
// A host that answered no probe but answered ARP is up, as nmap's ARP ping says; one whose entry is incomplete
// or failed answered nothing. The probes themselves made the kernel ask, on the raw send path; the packet path
// is chosen only with the next hop resolved. Hosts behind a router have no entry: their silence is all there is.
func neighboursUp(pl *plan) (map[[4]byte]bool, error) {
	ns, err := netlink.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	const resolved = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT
	up := map[[4]byte]bool{}
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&resolved == 0 || len(n.HardwareAddr) == 0 {
			continue
		}
		a = a.Unmap()
		if !a.Is4() {
			continue
		}
		b := a.As4()
		if _, in := pl.lookup(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), pl.ports[0]); in {
			up[b] = true
		}
	}
	return up, nil
}
