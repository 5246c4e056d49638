package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"

	vnetns "github.com/vishvananda/netns"

	"github.com/tcpwalk/tcpwalk/probe/labnet"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addresses of a routed lab (see [CreateRouted]). The prober keeps
// DefaultProberAddr; the target moves to its own subnet, so that every packet
// between them is forwarded by the router(s).
var (
	RoutedTargetAddr = netip.MustParsePrefix("198.18.2.2/24")
	// RouterProberSide is the first router's address toward the prober:
	// the prober's gateway, and the source of the first router's ICMP.
	RouterProberSide = netip.MustParsePrefix("198.18.0.254/24")
	// RouterTargetSide is the last router's address toward the target.
	RouterTargetSide = netip.MustParsePrefix("198.18.2.254/24")
	// Transit addresses of the link between two routers.
	Router1Transit = netip.MustParsePrefix("198.18.1.1/24")
	Router2Transit = netip.MustParsePrefix("198.18.1.2/24")

	// The IPv6 twins, from 2001:2::/48 (RFC 5180), one /64 per link: the
	// prober keeps DefaultProberAddr6 (2001:2::1) on 2001:2::/64, the
	// transit link is 2001:2:0:1::/64, the target's 2001:2:0:2::/64.
	RoutedTargetAddr6 = netip.MustParsePrefix("2001:2:0:2::2/64")
	RouterProberSide6 = netip.MustParsePrefix("2001:2::fe/64")
	RouterTargetSide6 = netip.MustParsePrefix("2001:2:0:2::fe/64")
	Router1Transit6   = netip.MustParsePrefix("2001:2:0:1::1/64")
	Router2Transit6   = netip.MustParsePrefix("2001:2:0:1::2/64")
)

// labRoute is the one route each host gets: the lab's whole range through
// the next router. No host has a default route.
var labRoute = labnet.IPv4

// labRoute6 is labRoute's IPv6 twin: 2001:2::/48, the lab's whole IPv6 range.
var labRoute6 = benchNet6

// MaxRouters is how many routers a routed lab may have.
const MaxRouters = 2

// RoutedConfig describes a lab with routers between prober and target. A
// nil *RoutedConfig means all defaults: one router, no firewall rules.
type RoutedConfig struct {
	// Prefix names the lab as in Config; the routers' namespaces are
	// RouterNames(Prefix).
	Prefix string
	// Routers is 1 (the default when zero) or 2.
	Routers int
	// Firewall is the ruleset of the first router, Firewall2 of the
	// second; "" means FirewallNone.
	Firewall, Firewall2 Firewall
}

// Router is one router of a routed lab.
type Router struct {
	// NS is the router's namespace.
	NS *netns.NS
	// ProberSide and TargetSide are its addresses toward the prober and
	// toward the target; ProberSide6 and TargetSide6 their IPv6 twins
	// (invalid for a router of a lab made by an older tcpwalk).
	ProberSide, TargetSide   netip.Addr
	ProberSide6, TargetSide6 netip.Addr
	// Firewall is the ruleset installed in its forward hook.
	Firewall Firewall
}

// Routed is a lab whose prober and target talk through routers:
//
//	PREFIX-prober 198.18.0.1/24, 2001:2::1/64
//	  └─ PREFIX-fw 198.18.0.254/24, 2001:2::fe/64 | 198.18.2.254/24, 2001:2:0:2::fe/64   (one router)
//	       └─ PREFIX-target 198.18.2.2/24, 2001:2:0:2::2/64
//
// With two routers, PREFIX-fw has 198.18.0.254 and 198.18.1.1 (2001:2::fe,
// 2001:2:0:1::1), PREFIX-fw2 has 198.18.1.2 and 198.18.2.254 (2001:2:0:1::2,
// 2001:2:0:2::fe). Every host routes 198.18.0.0/15 and 2001:2::/48 to its next
// router and has no default route for either family. The routers forward
// IPv6 too; nothing sends router advertisements (no daemon runs, and every
// namespace ignores them), neighbour discovery works as usual. The embedded Lab works as for a
// two-namespace lab (servers, Open, Destroy).
type Routed struct {
	*Lab
	Routers []*Router
}

// RouterNames returns the namespace names of the routers of the lab with
// prefix, first router first.
func RouterNames(prefix string) []string {
	return []string{prefix + "-fw", prefix + "-fw2"}
}

// routerIfs returns the names of router i's interfaces toward the prober and
// toward the target.
func routerIfs(prefix string, i int) (proberSide, targetSide string) {
	_, _, pif, _ := Names(prefix)
	h := pif[:len(pif)-2] // "tw-HASH"
	if i == 0 {
		return h + "-r0", h + "-r1"
	}
	return h + "-s0", h + "-s1"
}

// CreateRouted builds a routed lab (see Routed). It fails if any of its
// namespaces exists (remove a stale lab with Destroy). On error it removes
// what it made. It needs CAP_SYS_ADMIN and CAP_NET_ADMIN.
func CreateRouted(cfg *RoutedConfig) (*Routed, error) {
	var c RoutedConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Routers == 0 {
		c.Routers = 1
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return nil, err
	}
	if c.Routers < 1 || c.Routers > MaxRouters {
		return nil, fmt.Errorf("lab: create %q: %d routers: want 1 or %d", c.Prefix, c.Routers, MaxRouters)
	}
	fws := []Firewall{c.Firewall, c.Firewall2}
	for i := range fws {
		if fws[i] == "" {
			fws[i] = FirewallNone
		}
		if _, err := ParseFirewall(string(fws[i])); err != nil {
			return nil, fmt.Errorf("lab: create %q: %w", c.Prefix, err)
		}
	}
	pns, tns, pif, tif := Names(c.Prefix)
	r := &Routed{Lab: &Lab{
		Prefix:      c.Prefix,
		ProberAddr:  DefaultProberAddr.Addr(),
		TargetAddr:  RoutedTargetAddr.Addr(),
		ProberAddr6: DefaultProberAddr6.Addr(),
		TargetAddr6: RoutedTargetAddr6.Addr(),
		ProberIf:    pif,
		TargetIf:    tif,
	}}
	// Make every namespace first. Until all are ours, a failure removes
	// only the ones this call made; afterwards Destroy may remove them all.
	var made []*netns.NS
	mk := func(name string) (*netns.NS, error) {
		ns, err := netns.Create(name)
		if err != nil {
			for _, m := range made {
				m.Close()
				_ = netns.Delete(m.Name)
			}
			return nil, fmt.Errorf("lab: create %q: %w", c.Prefix, err)
		}
		made = append(made, ns)
		return ns, nil
	}
	var err error
	if r.Prober, err = mk(pns); err != nil {
		return nil, err
	}
	for i, name := range RouterNames(c.Prefix)[:c.Routers] {
		ns, err := mk(name)
		if err != nil {
			return nil, err
		}
		rt := &Router{NS: ns, Firewall: fws[i]}
		rt.ProberSide, rt.TargetSide = RouterProberSide.Addr(), RouterTargetSide.Addr()
		rt.ProberSide6, rt.TargetSide6 = RouterProberSide6.Addr(), RouterTargetSide6.Addr()
		if c.Routers == 2 {
			if i == 0 {
				rt.TargetSide, rt.TargetSide6 = Router1Transit.Addr(), Router1Transit6.Addr()
			} else {
				rt.ProberSide, rt.ProberSide6 = Router2Transit.Addr(), Router2Transit6.Addr()
			}
		}
		r.Routers = append(r.Routers, rt)
	}
	if r.Target, err = mk(tns); err != nil {
		return nil, err
	}
	if err := r.build(c.Routers); err != nil {
		r.closeHandles()
		if derr := Destroy(c.Prefix); derr != nil {
			return nil, fmt.Errorf("lab: create %q: %w (and undoing it failed: %w; run lab.Destroy(%q))", c.Prefix, err, derr, c.Prefix)
		}
		return nil, fmt.Errorf("lab: create %q: %w", c.Prefix, err)
	}
	return r, nil
}

// build wires the namespaces: veths, addresses, routes, forwarding and the
// firewall rules.
func (r *Routed) build(n int) error {
	for _, ns := range r.namespaces() {
		if err := ns.Do(quietIPv6); err != nil {
			return fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
	}
	r0p, r0t := routerIfs(r.Prefix, 0)
	r1p, r1t := routerIfs(r.Prefix, 1)
	rt0 := r.Routers[0]
	// Each link: a (prober side) <-> b (target side).
	type link struct {
		a, b           *netns.NS
		aIf, bIf       string
		aAddr, bAddr   netip.Prefix
		aAddr6, bAddr6 netip.Prefix
	}
	links := []link{{r.Prober, rt0.NS, r.ProberIf, r0p, DefaultProberAddr, RouterProberSide, DefaultProberAddr6, RouterProberSide6}}
	if n == 1 {
		links = append(links, link{rt0.NS, r.Target, r0t, r.TargetIf, RouterTargetSide, RoutedTargetAddr, RouterTargetSide6, RoutedTargetAddr6})
	} else {
		rt1 := r.Routers[1]
		links = append(links,
			link{rt0.NS, rt1.NS, r0t, r1p, Router1Transit, Router2Transit, Router1Transit6, Router2Transit6},
			link{rt1.NS, r.Target, r1t, r.TargetIf, RouterTargetSide, RoutedTargetAddr, RouterTargetSide6, RoutedTargetAddr6})
	}
	for _, l := range links {
		if err := addVeth(l.a, l.aIf, l.b, l.bIf); err != nil {
			return err
		}
		if err := configureIn(l.a, l.aIf, l.aAddr, l.aAddr6); err != nil {
			return err
		}
		if err := configureIn(l.b, l.bIf, l.bAddr, l.bAddr6); err != nil {
			return err
		}
	}
	// Routes: the prober and routers send the lab's range toward the
	// target; the target (and the second router, for the prober's subnet)
	// toward the prober. Connected /24s are more specific than the /15.
	// The same for IPv6: 2001:2::/48 via the next router's address; the
	// connected /64s are more specific.
	type route struct {
		ns      *netns.NS
		gw, gw6 netip.Addr
	}
	routes := []route{{r.Prober, RouterProberSide.Addr(), RouterProberSide6.Addr()},
		{r.Target, RouterTargetSide.Addr(), RouterTargetSide6.Addr()}}
	if n == 2 {
		routes = append(routes,
			route{rt0.NS, Router2Transit.Addr(), Router2Transit6.Addr()},
			route{r.Routers[1].NS, Router1Transit.Addr(), Router1Transit6.Addr()})
	}
	for _, rt := range routes {
		if err := addRoute(rt.ns, labRoute, rt.gw); err != nil {
			return err
		}
		if err := addRoute(rt.ns, labRoute6, rt.gw6); err != nil {
			return err
		}
	}
	for _, rt := range r.Routers {
		if err := rt.NS.Do(routerSysctls); err != nil {
			return fmt.Errorf("namespace %s: %w", rt.NS.Name, err)
		}
		if err := InstallFirewall(rt.NS, rt.Firewall); err != nil {
			return err
		}
	}
	for _, l := range links {
		if err := waitUpIn(l.a, l.aIf); err != nil {
			return err
		}
		if err := waitUpIn(l.b, l.bIf); err != nil {
			return err
		}
	}
	return nil
}

func (r *Routed) namespaces() []*netns.NS {
	out := []*netns.NS{r.Prober}
	for _, rt := range r.Routers {
		out = append(out, rt.NS)
	}
	return append(out, r.Target)
}

// routerSysctls turns on forwarding (IPv4 and IPv6) and turns off the ICMP
// and ICMPv6 rate limits in the calling thread's namespace: a router's
// time-exceeded and a firewall's admin-prohibited answers must not depend on
// how fast a test probes (the rate limits are per namespace). IPv6
// forwarding makes the router a router (RFC 4861 §6.2.1), but without a
// daemon (radvd) Linux sends no router advertisements, and every namespace
// of the lab ignores them anyway (quietIPv6).
func routerSysctls() error {
	for _, s := range []struct{ path, val string }{
		{"/proc/sys/net/ipv4/ip_forward", "1\n"},
		{"/proc/sys/net/ipv4/icmp_ratelimit", "0\n"},
		{"/proc/sys/net/ipv6/conf/all/forwarding", "1\n"},
		{"/proc/sys/net/ipv6/icmp/ratelimit", "0\n"},
	} {
		if err := os.WriteFile(s.path, []byte(s.val), 0); err != nil {
			return fmt.Errorf("set %s: %w", s.path, err)
		}
	}
	return nil
}

func handleIn(ns *netns.NS) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	return h, nil
}

// addVeth makes the pair aIf (in a) — bIf (in b).
func addVeth(a *netns.NS, aIf string, b *netns.NS, bIf string) error {
	h, err := handleIn(a)
	if err != nil {
		return err
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aIf}, PeerName: bIf, PeerNamespace: netlink.NsFd(b.Fd())}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s in %s (peer %s in %s): %w", aIf, a.Name, bIf, b.Name, err)
	}
	return nil
}

func configureIn(ns *netns.NS, name string, addr, addr6 netip.Prefix) error {
	h, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return configure(h, name, addr, addr6)
}

func waitUpIn(ns *netns.NS, name string) error {
	h, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return waitOperUp(h, name)
}

func addRoute(ns *netns.NS, dst netip.Prefix, gw netip.Addr) error {
	h, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	bits := 32
	if dst.Addr().Is6() {
		bits = 128
	}
	rt := &netlink.Route{
		Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), bits)},
		Gw:  gw.AsSlice(),
	}
	if err := h.RouteAdd(rt); err != nil {
		return fmt.Errorf("add route %s via %s in %s: %w", dst, gw, ns.Name, err)
	}
	return nil
}

// OpenRouters reattaches to the routers of the lab with prefix, first router
// first, with the firewall profile each has (for `lab status`). A lab without
// routers gives none and no error. Close the handles when done.
func OpenRouters(prefix string) ([]*Router, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var out []*Router
	for i, name := range RouterNames(prefix) {
		ns, err := netns.Open(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			closeRouters(out)
			return nil, fmt.Errorf("lab: open router of %q: %w", prefix, err)
		}
		rt := &Router{NS: ns}
		pIf, tIf := routerIfs(prefix, i)
		rt.ProberSide, _ = ifAddr(ns, pIf)
		rt.TargetSide, _ = ifAddr(ns, tIf)
		rt.ProberSide6, _ = ifAddr6(ns, pIf)
		rt.TargetSide6, _ = ifAddr6(ns, tIf)
		fw, _, err := ReadFirewall(ns)
		if err != nil {
			closeRouters(append(out, rt))
			return nil, fmt.Errorf("lab: open router of %q: %w", prefix, err)
		}
		rt.Firewall = fw
		out = append(out, rt)
	}
	return out, nil
}

func closeRouters(rs []*Router) {
	for _, r := range rs {
		r.NS.Close()
	}
}

func (r *Routed) closeHandles() {
	for _, ns := range r.namespaces() {
		if ns != nil {
			ns.Close()
		}
	}
}

// Close stops the servers, removes the whole lab (routers included) and
// closes every handle. It is idempotent.
func (r *Routed) Close() error {
	err := r.Lab.Close()
	closeRouters(r.Routers)
	return err
}

// destroyRouters removes the routers of the lab with prefix: their firewall
// table, their veths and their namespaces. Missing parts are not an error.
// Rules go explicitly, not only with the namespace, because a process that
// still holds a router's namespace (a crashed tool's open handle) would keep
// them alive.
func destroyRouters(prefix string) error {
	var errs []error
	for i, name := range RouterNames(prefix) {
		ns, err := netns.Open(name)
		if err == nil {
			if err := RemoveFirewall(ns); err != nil {
				errs = append(errs, err)
			}
			pIf, tIf := routerIfs(prefix, i)
			for _, ifname := range []string{pIf, tIf} {
				if err := deleteLink(ns, ifname); err != nil {
					errs = append(errs, err)
				}
			}
			ns.Close()
		}
		if err := netns.Delete(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: destroy routers of %q: %w", prefix, err)
	}
	return nil
}
