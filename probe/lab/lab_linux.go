package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/tcpwalk/tcpwalk/probe/labnet"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultPrefix is the name prefix of the lab's namespaces when Config.Prefix
// is empty.
const DefaultPrefix = "tcpwalk"

// benchNet is 198.18.0.0/15, RFC 2544's range for network benchmarks: the
// only addresses the lab may use.
var benchNet = labnet.IPv4

// benchNet6 is 2001:2::/48, RFC 5180's IPv6 benchmarking range: the only
// IPv6 addresses the lab may use besides the link-local ones the kernel
// gives every interface.
var benchNet6 = labnet.IPv6

// Default addresses of the two ends.
var (
	DefaultProberAddr = netip.MustParsePrefix("198.18.0.1/24")
	DefaultTargetAddr = netip.MustParsePrefix("198.18.0.2/24")

	DefaultProberAddr6 = netip.MustParsePrefix("2001:2::1/64")
	DefaultTargetAddr6 = netip.MustParsePrefix("2001:2::2/64")
)

// Config describes a lab. A nil *Config means all defaults.
type Config struct {
	// Prefix names the lab: its namespaces are Prefix+"-prober" and
	// Prefix+"-target". Letters, digits, '.', '_' and '-', at most 64 bytes.
	// Default DefaultPrefix.
	Prefix string
	// ProberAddr and TargetAddr are the addresses of the two veth ends,
	// both inside 198.18.0.0/15 and in one subnet. Defaults
	// DefaultProberAddr and DefaultTargetAddr.
	ProberAddr, TargetAddr netip.Prefix
	// Stack is the TCP that answers at TargetAddr: StackLinux (default,
	// "" too) or StackGVisor (see the package doc's layout).
	Stack Stack
	// ProberAddr6 and TargetAddr6 are the IPv6 addresses of the same ends,
	// both inside 2001:2::/48 and in one subnet. Defaults
	// DefaultProberAddr6 and DefaultTargetAddr6.
	ProberAddr6, TargetAddr6 netip.Prefix
}

// Lab is a created or reopened lab.
type Lab struct {
	// Prefix is the lab's name prefix.
	Prefix string
	// Prober and Target are handles to the two namespaces.
	Prober, Target *netns.NS
	// ProberAddr and TargetAddr are the addresses of the veth ends.
	ProberAddr, TargetAddr netip.Addr
	// ProberAddr6 and TargetAddr6 are their IPv6 addresses; invalid for a
	// lab without IPv6 (a gvisor target, or one made by an older tcpwalk
	// and reopened with Open).
	ProberAddr6, TargetAddr6 netip.Addr
	// ProberIf and TargetIf are the names of the veth ends.
	ProberIf, TargetIf string
	// Stack is the TCP that answers at TargetAddr.
	Stack Stack
	// TUNIf is the TUN device netstack attaches to (StackGVisor only).
	TUNIf string

	mu      sync.Mutex
	servers []*Servers
	closed  bool
}

// Names returns the namespace and interface names of the lab with prefix.
func Names(prefix string) (proberNS, targetNS, proberIf, targetIf string) {
	sum := sha256.Sum256([]byte(prefix))
	h := "tw-" + hex.EncodeToString(sum[:4])
	return prefix + "-prober", prefix + "-target", h + "-p", h + "-t"
}

// CheckPrefix reports whether p can name a lab (see Config.Prefix): a
// command checks it before anything that needs root.
func CheckPrefix(p string) error { return checkPrefix(p) }

func checkPrefix(p string) error {
	if p == "" || len(p) > 64 {
		return fmt.Errorf("lab: prefix %q: must be 1 to 64 bytes", p)
	}
	for _, c := range []byte(p) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("lab: prefix %q: only letters, digits, '.', '_' and '-' are allowed", p)
		}
	}
	return nil
}

// normalize fills defaults and checks the addresses.
func normalize(cfg *Config) (Config, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !c.ProberAddr.IsValid() {
		c.ProberAddr = DefaultProberAddr
	}
	if !c.TargetAddr.IsValid() {
		c.TargetAddr = DefaultTargetAddr
	}
	if !c.ProberAddr6.IsValid() {
		c.ProberAddr6 = DefaultProberAddr6
	}
	if !c.TargetAddr6.IsValid() {
		c.TargetAddr6 = DefaultTargetAddr6
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return c, err
	}
	for _, p := range []netip.Prefix{c.ProberAddr, c.TargetAddr} {
		if !p.Addr().Is4() || !benchNet.Contains(p.Addr()) || p.Bits() < benchNet.Bits() || p.Bits() > 30 {
			return c, fmt.Errorf("lab: address %s: must be IPv4 inside %s with a prefix length from /15 to /30", p, benchNet)
		}
	}
	if c.ProberAddr.Bits() != c.TargetAddr.Bits() || c.ProberAddr.Masked() != c.TargetAddr.Masked() {
		return c, fmt.Errorf("lab: addresses %s and %s must be in the same subnet", c.ProberAddr, c.TargetAddr)
	}
	if c.ProberAddr.Addr() == c.TargetAddr.Addr() {
		return c, fmt.Errorf("lab: prober and target both have address %s", c.ProberAddr.Addr())
	}
	st, err := ParseStack(string(c.Stack))
	if err != nil {
		return c, fmt.Errorf("lab: %w", err)
	}
	c.Stack = st
	for _, p := range []netip.Prefix{c.ProberAddr6, c.TargetAddr6} {
		if !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" || !benchNet6.Contains(p.Addr()) || p.Bits() < benchNet6.Bits() || p.Bits() > 126 {
			return c, fmt.Errorf("lab: address %s: must be IPv6 inside %s with a prefix length from /48 to /126", p, benchNet6)
		}
	}
	if c.ProberAddr6.Bits() != c.TargetAddr6.Bits() || c.ProberAddr6.Masked() != c.TargetAddr6.Masked() {
		return c, fmt.Errorf("lab: addresses %s and %s must be in the same subnet", c.ProberAddr6, c.TargetAddr6)
	}
	if c.ProberAddr6.Addr() == c.TargetAddr6.Addr() {
		return c, fmt.Errorf("lab: prober and target both have address %s", c.ProberAddr6.Addr())
	}
	return c, nil
}

// Create builds the lab described by cfg (nil: defaults). It fails if a
// namespace of that name exists already (remove a stale lab with Destroy). On
// any error it removes whatever it had made and leaves existing namespaces
// alone. Creating a lab needs CAP_SYS_ADMIN and CAP_NET_ADMIN; without them the
// error matches fs.ErrPermission.
func Create(cfg *Config) (*Lab, error) {
	c, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	pns, tns, pif, tif := Names(c.Prefix)
	l := &Lab{
		Prefix:      c.Prefix,
		ProberAddr:  c.ProberAddr.Addr(),
		TargetAddr:  c.TargetAddr.Addr(),
		ProberAddr6: c.ProberAddr6.Addr(),
		TargetAddr6: c.TargetAddr6.Addr(),
		ProberIf:    pif,
		TargetIf:    tif,
		Stack:       c.Stack,
	}
	if c.Stack == StackGVisor {
		// netstack owns both target addresses, behind the TUN device.
		l.TUNIf = TUNName(c.Prefix)
	}
	fail := func(err error) (*Lab, error) {
		// Remove only what this call made: a namespace that existed before
		// (Create returned an error for it) is never in l.
		var errs []error
		for _, ns := range []*netns.NS{l.Prober, l.Target} {
			if ns == nil {
				continue
			}
			ns.Close()
			if e := netns.Delete(ns.Name); e != nil && !errors.Is(e, fs.ErrNotExist) {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("lab: create %q: %w (and undoing it failed: %w; run lab.Destroy(%q))", c.Prefix, err, errors.Join(errs...), c.Prefix)
		}
		return nil, fmt.Errorf("lab: create %q: %w", c.Prefix, err)
	}
	if l.Prober, err = netns.Create(pns); err != nil {
		return fail(err)
	}
	if l.Target, err = netns.Create(tns); err != nil {
		return fail(err)
	}
	for _, ns := range []*netns.NS{l.Prober, l.Target} {
		if err := ns.Do(quietIPv6); err != nil {
			return fail(fmt.Errorf("namespace %s: %w", ns.Name, err))
		}
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(l.Prober.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fail(fmt.Errorf("open rtnetlink in %s: %w", pns, err))
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: pif},
		PeerName:      tif,
		PeerNamespace: netlink.NsFd(l.Target.Fd()),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fail(fmt.Errorf("add veth %s (peer %s in %s): %w", pif, tif, tns, err))
	}
	if err := configure(h, pif, c.ProberAddr, c.ProberAddr6); err != nil {
		return fail(err)
	}
	th, err := netlink.NewHandleAt(vnetns.NsHandle(l.Target.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fail(fmt.Errorf("open rtnetlink in %s: %w", tns, err))
	}
	defer th.Close()
	if c.Stack == StackGVisor {
		plink, err := h.LinkByName(pif)
		if err != nil {
			return fail(fmt.Errorf("find %s: %w", pif, err))
		}
		if err := configureGVisorTarget(l.Target, th, tif, l.TUNIf, c.TargetAddr, c.ProberAddr, c.TargetAddr6, c.ProberAddr6, plink.Attrs().HardwareAddr); err != nil {
			return fail(fmt.Errorf("namespace %s: %w", tns, err))
		}
	} else if err := configure(th, tif, c.TargetAddr, c.TargetAddr6); err != nil {
		return fail(err)
	}
	if err := waitOperUp(h, pif); err != nil {
		return fail(err)
	}
	if err := waitOperUp(th, tif); err != nil {
		return fail(err)
	}
	return l, nil
}

// linkUpWait bounds waitOperUp.
const linkUpWait = 3 * time.Second

// waitOperUp waits until the link's operational state is up. Setting a link
// up only schedules the kernel's linkwatch work, which attaches the real
// qdisc and may run up to a second later; until then the device sits on
// noop_qdisc and drops every packet, so a test's first SYN would vanish
// and cost a 1 s retransmission.
func waitOperUp(h *netlink.Handle, name string) error {
	deadline := time.Now().Add(linkUpWait)
	for {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		st := link.Attrs().OperState
		if st == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up within %v (operstate %s)", name, linkUpWait, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ipv6Sysctls make a namespace's IPv6 quiet and static: no router
// advertisements taken (accept_ra 0) and no addresses made from them
// (autoconf 0), no router solicitations sent, and no duplicate address
// detection (accept_dad 0, dad_transmits 0), so an address is usable the
// moment it is added instead of tentative for a second. Forwarding stays
// off, so nothing here sends router advertisements either. Neighbour
// discovery works as usual. "default" applies to interfaces made later
// (the veth), "all" to those that exist (lo).
var ipv6Sysctls = []struct{ key, value string }{
	{"accept_ra", "0"},
	{"autoconf", "0"},
	{"router_solicitations", "0"},
	{"accept_dad", "0"},
	{"dad_transmits", "0"},
}

// quietIPv6 applies ipv6Sysctls in the calling thread's namespace.
func quietIPv6() error {
	for _, s := range ipv6Sysctls {
		for _, scope := range []string{"all", "default"} {
			p := "/proc/sys/net/ipv6/conf/" + scope + "/" + s.key
			if err := os.WriteFile(p, []byte(s.value+"\n"), 0); err != nil {
				return fmt.Errorf("set up IPv6: write %s: %w", p, err)
			}
		}
	}
	return nil
}

// configure addresses the link (IPv4, and IPv6 when addr6 is valid, added
// with IFA_F_NODAD so it is usable at once) and brings it up.
func configure(h *netlink.Handle, name string, addr netip.Prefix, addr6 netip.Prefix) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   addr.Addr().AsSlice(),
		Mask: net.CIDRMask(addr.Bits(), 32),
	}}
	if err := h.AddrAdd(link, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr, name, err)
	}
	if addr6.IsValid() {
		a6 := &netlink.Addr{IPNet: &net.IPNet{
			IP:   addr6.Addr().AsSlice(),
			Mask: net.CIDRMask(addr6.Bits(), 128),
		}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(link, a6); err != nil {
			return fmt.Errorf("add %s to %s: %w", addr6, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}

// Open reattaches to the existing lab with prefix (for `lab status` and
// `lab down`). It fails unless both namespaces and both veth ends exist and
// each end has an IPv4 address, or, for a gvisor lab (whose target veth
// end has none), the target namespace has the lab's TUN device and its
// route to the target address. It sets Stack from what it finds.
func Open(prefix string) (*Lab, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	pns, tns, pif, tif := Names(prefix)
	l := &Lab{Prefix: prefix, ProberIf: pif, TargetIf: tif, Stack: StackLinux}
	fail := func(err error) (*Lab, error) {
		for _, ns := range []*netns.NS{l.Prober, l.Target} {
			if ns != nil {
				ns.Close()
			}
		}
		return nil, fmt.Errorf("lab: open %q: %w", prefix, err)
	}
	var err error
	if l.Prober, err = netns.Open(pns); err != nil {
		return fail(err)
	}
	if l.Target, err = netns.Open(tns); err != nil {
		return fail(err)
	}
	if l.ProberAddr, err = ifAddr(l.Prober, pif); err != nil {
		return fail(err)
	}
	if l.TargetAddr, err = ifAddr(l.Target, tif); err != nil {
		tunIf := TUNName(prefix)
		a, terr := gvisorTargetAddr(l.Target, tunIf)
		if terr != nil {
			if errors.Is(terr, fs.ErrNotExist) {
				return fail(err)
			}
			return fail(terr)
		}
		l.TargetAddr, l.Stack, l.TUNIf = a, StackGVisor, tunIf
	}
	// A lab without IPv6 (a gvisor target, or made by an older tcpwalk) has none.
	l.ProberAddr6, _ = ifAddr6(l.Prober, pif)
	if l.Stack == StackGVisor {
		l.TargetAddr6, _ = gvisorTargetAddr6(l.Target, l.TUNIf)
	} else {
		l.TargetAddr6, _ = ifAddr6(l.Target, tif)
	}
	if !l.ProberAddr6.IsValid() || !l.TargetAddr6.IsValid() {
		l.ProberAddr6, l.TargetAddr6 = netip.Addr{}, netip.Addr{}
	}
	return l, nil
}

// ifAddr6 returns the first IPv6 address of the interface name in ns that
// lies in 2001:2::/48 (not its link-local one).
func ifAddr6(ns *netns.NS, name string) (netip.Addr, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find %s in %s: %w", name, ns.Name, err)
	}
	addrs, err := h.AddrList(link, unix.AF_INET6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("IPv6 addresses of %s in %s: %w", name, ns.Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && benchNet6.Contains(ip) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s in %s has no address in %s", name, ns.Name, benchNet6)
}

// ifAddr returns the first IPv4 address of the interface name in ns.
func ifAddr(ns *netns.NS, name string) (netip.Addr, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find %s in %s: %w", name, ns.Name, err)
	}
	addrs, err := h.AddrList(link, unix.AF_INET)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s in %s: %w", name, ns.Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s in %s has no IPv4 address", name, ns.Name)
}

// IsTarget reports whether a is the target's address, IPv4 or IPv6.
func (l *Lab) IsTarget(a netip.Addr) bool {
	return a.IsValid() && (a == l.TargetAddr || a == l.TargetAddr6)
}

// Owns reports whether a is an address of the lab's prober or target, of
// either family.
func (l *Lab) Owns(a netip.Addr) bool {
	return l.IsTarget(a) || (a.IsValid() && (a == l.ProberAddr || a == l.ProberAddr6))
}

// StartServers starts the lab servers (see the package doc) on TargetAddr,
// and on TargetAddr6 when the lab has IPv6, in the target namespace, on the
// lab's Stack; Close stops them.
func (l *Lab) StartServers() (*Servers, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("lab: start servers in %q: lab is closed", l.Prefix)
	}
	var s *Servers
	var err error
	if l.Stack == StackGVisor {
		s, err = StartDualNetstackServers(l.Target, l.TUNIf, l.TargetAddr, l.ProberAddr, l.TargetAddr6, l.ProberAddr6)
	} else {
		s, err = StartDualServers(l.Target, l.TargetAddr, l.ProberAddr, l.TargetAddr6, l.ProberAddr6)
	}
	if err != nil {
		return nil, err
	}
	l.servers = append(l.servers, s)
	return s, nil
}

// Servers returns the servers started last with l.StartServers, or nil.
func (l *Lab) Servers() *Servers {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.servers) == 0 {
		return nil
	}
	return l.servers[len(l.servers)-1]
}

// Release closes the namespace handles and leaves the lab and any servers
// running (for `lab status`, which inspects a lab without removing it). The
// Lab is unusable afterwards; Close after Release removes nothing more than
// Destroy(l.Prefix) would.
func (l *Lab) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, ns := range []*netns.NS{l.Prober, l.Target} {
		if ns != nil {
			if err := ns.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the servers started with l.StartServers, closes the namespace
// handles and removes the lab (see Destroy). It is idempotent and works on a
// partly made or partly removed lab.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, s := range l.servers {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.servers = nil
	if err := Destroy(l.Prefix); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range []*netns.NS{l.Prober, l.Target} {
		if ns != nil {
			ns.Close()
		}
	}
	return errors.Join(errs...)
}

// Destroy removes everything of the lab with prefix that exists: the veth
// pair, a gvisor lab's TUN device, and both named namespaces, and for a routed lab (CreateRouted) the
// routers' firewall tables, veths and namespaces. Missing parts are not an
// error, so it cleans up after a crash or a half-made lab. Servers running in another
// process keep their sockets (and so the namespace) alive but are cut off,
// because the veth is deleted explicitly rather than left to the namespace's
// end.
func Destroy(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	pns, tns, pif, tif := Names(prefix)
	var errs []error
	// Deleting one end of a veth pair deletes both.
	for _, x := range []struct{ ns, ifname string }{{pns, pif}, {tns, tif}} {
		ns, err := netns.Open(x.ns)
		if err != nil {
			// Missing, or a file without a namespace mounted on it (a
			// crash between creating the file and mounting): no veth
			// to delete. netns.Delete below reports real failures.
			continue
		}
		if err := deleteLink(ns, x.ifname); err != nil {
			errs = append(errs, fmt.Errorf("lab: destroy %q: %w", prefix, err))
		}
		if x.ns == tns {
			if err := deleteLink(ns, TUNName(prefix)); err != nil {
				errs = append(errs, fmt.Errorf("lab: destroy %q: %w", prefix, err))
			}
		}
		ns.Close()
	}
	// The routers of a routed lab (CreateRouted); a two-namespace lab has
	// none, and this finds nothing to do.
	if err := destroyRouters(prefix); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{pns, tns} {
		if err := netns.Delete(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: destroy %q: %w", prefix, err))
		}
	}
	return errors.Join(errs...)
}

func deleteLink(ns *netns.NS, name string) error {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find %s in %s: %w", name, ns.Name, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s in %s: %w", name, ns.Name, err)
	}
	return nil
}
