package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Stack names the TCP implementation that answers at the lab's target
// address.
type Stack string

const (
	// StackLinux: the target namespace's own kernel (the default).
	StackLinux Stack = "linux"
	// StackGVisor: gVisor's netstack, a user-space TCP/IP stack in Go that
	// shares no code with Linux, behind a TUN device in the target
	// namespace. sock_diag does not see its sockets: such a lab has no
	// kernel-state oracle.
	StackGVisor Stack = "gvisor"
)

// Stacks lists the stacks a lab can run, the default first.
var Stacks = []Stack{StackLinux, StackGVisor}

// ParseStack reads a stack name ("" is StackLinux).
func ParseStack(s string) (Stack, error) {
	switch Stack(strings.ToLower(strings.TrimSpace(s))) {
	case "", StackLinux:
		return StackLinux, nil
	case StackGVisor:
		return StackGVisor, nil
	}
	return "", fmt.Errorf("unknown stack %q: want linux or gvisor", s)
}

// HasOracle reports whether the stack's connection states can be read with
// sock_diag in the target namespace: only the kernel's can.
func (s Stack) HasOracle() bool { return s == StackLinux }

// Description says in a few words what serves a lab's target.
func (s Stack) Description() string {
	if s == StackGVisor {
		return "gVisor netstack (user space, no sock_diag oracle)"
	}
	return "Linux kernel"
}

// TUNName is the name of the TUN device of a gvisor lab with prefix, in its
// target namespace (tw-HASH-n, as Names makes the veth names).
func TUNName(prefix string) string {
	_, _, _, tif := Names(prefix)
	return strings.TrimSuffix(tif, "-t") + "-n"
}

// configureGVisorTarget lays out the target namespace for netstack (see the
// package doc): the veth end tif up without an address, a persistent TUN
// device tunIf with a /32 route to target, forwarding between them, proxy
// ARP on the veth for target, and the prober's address as a permanent
// neighbour. With valid target6 and prober6 the same for IPv6: a /128
// route to target6 on the TUN device, IPv6 forwarding, proxy NDP on the
// veth for target6 and prober6 a permanent neighbour.
func configureGVisorTarget(ns *netns.NS, h *netlink.Handle, tif, tunIf string, target, prober, target6, prober6 netip.Prefix, proberMAC net.HardwareAddr) error {
	v6 := target6.IsValid() && prober6.IsValid()
	err := ns.Do(func() error {
		if err := makePersistentTUN(tunIf); err != nil {
			return err
		}
		kvs := [][2]string{
			{"/proc/sys/net/ipv4/ip_forward", "1"},
			{"/proc/sys/net/ipv4/conf/" + tif + "/proxy_arp", "1"},
			// Answer ARP for the target at once, not after up to 0.8 s.
			{"/proc/sys/net/ipv4/neigh/" + tif + "/proxy_delay", "0"},
			// The kernel sends no redirects between its two links.
			{"/proc/sys/net/ipv4/conf/all/send_redirects", "0"},
			{"/proc/sys/net/ipv4/conf/" + tif + "/send_redirects", "0"},
		}
		if v6 {
			kvs = append(kvs,
				// Linux answers neighbour solicitations for a proxy
				// entry only on a forwarding interface. Forwarding
				// sends no router advertisements (no radvd), and
				// accept_ra stays 0.
				[2]string{"/proc/sys/net/ipv6/conf/all/forwarding", "1"},
				[2]string{"/proc/sys/net/ipv6/conf/" + tif + "/proxy_ndp", "1"},
				// Answer at once, not after up to 0.8 s.
				[2]string{"/proc/sys/net/ipv6/neigh/" + tif + "/proxy_delay", "0"},
			)
		}
		for _, kv := range kvs {
			if err := os.WriteFile(kv[0], []byte(kv[1]+"\n"), 0); err != nil {
				return fmt.Errorf("set %s: %w", strings.TrimPrefix(kv[0], "/proc/sys/"), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	veth, err := h.LinkByName(tif)
	if err != nil {
		return fmt.Errorf("find %s: %w", tif, err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("bring %s up: %w", tif, err)
	}
	tunLink, err := h.LinkByName(tunIf)
	if err != nil {
		return fmt.Errorf("find %s: %w", tunIf, err)
	}
	if err := h.LinkSetMTU(tunLink, tunMTU); err != nil {
		return fmt.Errorf("set MTU of %s: %w", tunIf, err)
	}
	if err := h.LinkSetUp(tunLink); err != nil {
		return fmt.Errorf("bring %s up: %w", tunIf, err)
	}
	routes := []*netlink.Route{
		{LinkIndex: tunLink.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: prefixNet(netip.PrefixFrom(target.Addr(), 32))},
		{LinkIndex: veth.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: prefixNet(prober.Masked())},
	}
	neighs := []*netlink.Neigh{{LinkIndex: veth.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: prober.Addr().AsSlice(), HardwareAddr: proberMAC}}
	if v6 {
		routes = append(routes,
			&netlink.Route{LinkIndex: tunLink.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(target6.Addr(), 128))},
			&netlink.Route{LinkIndex: veth.Attrs().Index, Dst: prefixNet(prober6.Masked())})
		neighs = append(neighs,
			&netlink.Neigh{LinkIndex: veth.Attrs().Index, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT,
				IP: prober6.Addr().AsSlice(), HardwareAddr: proberMAC},
			// `ip -6 neigh add proxy TARGET6 dev tif`
			&netlink.Neigh{LinkIndex: veth.Attrs().Index, Family: unix.AF_INET6, Flags: netlink.NTF_PROXY,
				IP: target6.Addr().AsSlice()})
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("add route %s: %w", r.Dst, err)
		}
	}
	for _, n := range neighs {
		if err := h.NeighAdd(n); err != nil {
			what := "neighbour"
			if n.Flags&netlink.NTF_PROXY != 0 {
				what = "proxy neighbour"
			}
			return fmt.Errorf("add %s %s on %s: %w", what, n.IP, tif, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// makePersistentTUN creates the TUN device name in the calling thread's
// namespace and makes it persistent, so it outlives this file descriptor
// (and a killed server process) until Destroy removes it.
func makePersistentTUN(name string) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/net/tun: %w (is the tun module loaded?)", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("TUN device %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("create TUN device %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("make TUN device %s persistent: %w", name, err)
	}
	return nil
}

// gvisorTargetAddr finds a gvisor lab's target address: the /32 route to
// the TUN device tunIf in ns. fs.ErrNotExist means there is no such device.
func gvisorTargetAddr(ns *netns.NS, tunIf string) (netip.Addr, error) {
	return tunRouteAddr(ns, tunIf, unix.AF_INET)
}

// gvisorTargetAddr6 finds a gvisor lab's IPv6 target address: the /128
// route to tunIf, which a lab made before the gvisor stack spoke IPv6
// lacks.
func gvisorTargetAddr6(ns *netns.NS, tunIf string) (netip.Addr, error) {
	return tunRouteAddr(ns, tunIf, unix.AF_INET6)
}

// tunRouteAddr finds the host route of family to tunIf in ns whose address
// lies in the lab's range.
func tunRouteAddr(ns *netns.NS, tunIf string, family int) (netip.Addr, error) {
	bits, within := 32, benchNet
	if family == unix.AF_INET6 {
		bits, within = 128, benchNet6
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(tunIf)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return netip.Addr{}, fmt.Errorf("no TUN device %s in %s: %w", tunIf, ns.Name, fs.ErrNotExist)
		}
		return netip.Addr{}, fmt.Errorf("find %s in %s: %w", tunIf, ns.Name, err)
	}
	routes, err := h.RouteList(link, family)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("routes of %s in %s: %w", tunIf, ns.Name, err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones != bits {
			continue
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if family == unix.AF_INET {
			a = a.Unmap()
		}
		if ok && within.Contains(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s in %s has no /%d route to a target address", tunIf, ns.Name, bits)
}

// waitTUNUp waits until the TUN device has carrier (a netstack attached)
// and the kernel has activated it: its operational state leaves "down".
// Carrier and qdisc change in the same linkwatch step, under the lock that
// netlink's answer takes too.
func waitTUNUp(ns *netns.NS, name string) error {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	deadline := time.Now().Add(linkUpWait)
	for {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		st := link.Attrs().OperState
		if st == netlink.OperUp || st == netlink.OperUnknown {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up within %v (operstate %s)", name, linkUpWait, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
