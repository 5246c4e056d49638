package lab_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dial6 is dial over IPv6, to the target's 2001:2:: address.
func dial6(t *testing.T, l *lab.Lab, port uint16) *net.TCPConn {
	t.Helper()
	var c net.Conn
	err := l.Prober.Do(func() error {
		var err error
		// A new lab's first IPv6 packet waits for neighbour discovery,
		// whose solicitations go again only after 1 s (RFC 4861 §10,
		// RETRANS_TIMER): a loaded machine can lose the first.
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		c, err = d.Dial("tcp6", netip.AddrPortFrom(l.TargetAddr6, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("dial [%s]:%d from the prober namespace: %v", l.TargetAddr6, port, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn)
}

// eachStack runs fn as a parallel subtest on a lab of every stack, with
// its servers: the IPv6 tests hold for the Linux and the gvisor lab alike.
func eachStack(t *testing.T, fn func(t *testing.T, l *lab.Lab)) {
	t.Parallel()
	for _, st := range lab.Stacks {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			fn(t, labtest.NewStack(t, st))
		})
	}
}

// The lab is dual-stack: the servers answer on the target's IPv6 address
// too, over neighbour discovery on the veth (the target kernel's own, or
// its proxy NDP in front of netstack), from the first packet (the
// addresses skip duplicate address detection).
func TestIPv6Echo(t *testing.T) {
	eachStack(t, func(t *testing.T, l *lab.Lab) {
		if l.ProberAddr6 != lab.DefaultProberAddr6.Addr() || l.TargetAddr6 != lab.DefaultTargetAddr6.Addr() {
			t.Fatalf("lab IPv6 addresses %v, %v; want the defaults", l.ProberAddr6, l.TargetAddr6)
		}
		c := dial6(t, l, lab.PortEcho)
		write(t, c, "ping over IPv6\n")
		if got := readLine(t, c); got != "ping over IPv6\n" {
			t.Errorf("echo = %q", got)
		}
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != l.ProberAddr6 {
			t.Errorf("client address = %s, want %s", got, l.ProberAddr6)
		}
		c.CloseWrite()
		if got := readAll(t, c); got != "" {
			t.Errorf("after FIN read %q, want EOF", got)
		}
		// Neighbour discovery resolved the target's address on the veth.
		h, err := netlink.NewHandleAt(vnetns.NsHandle(l.Prober.Fd()), unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		link, err := h.LinkByName(l.ProberIf)
		if err != nil {
			t.Fatal(err)
		}
		neighs, err := h.NeighList(link.Attrs().Index, unix.AF_INET6)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, n := range neighs {
			if a, _ := netip.AddrFromSlice(n.IP); a == l.TargetAddr6 && len(n.HardwareAddr) == 6 {
				found = true
			}
		}
		if !found {
			t.Errorf("no neighbour entry with a MAC address for %s on %s: %v", l.TargetAddr6, l.ProberIf, neighs)
		}
	})
}

func TestIPv6ClosedPort(t *testing.T) {
	eachStack(t, func(t *testing.T, l *lab.Lab) {
		err := l.Prober.Do(func() error {
			// As dial6: the first packet may wait for a lost
			// neighbour solicitation's retransmission.
			c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(l.TargetAddr6, lab.PortClosed).String(), 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial the closed port over IPv6: err = %v, want ECONNREFUSED", err)
		}
	})
}

// A dial command that came in over IPv6 dials the prober over IPv6.
func TestIPv6Dialer(t *testing.T) {
	eachStack(t, func(t *testing.T, l *lab.Lab) {
		var ln *net.TCPListener
		if err := l.Prober.Do(func() error {
			a, err := net.ListenTCP("tcp6", net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.ProberAddr6, 0)))
			ln = a
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c := dial6(t, l, lab.PortDialer)
		write(t, c, "dial "+strconv.Itoa(int(ln.Addr().(*net.TCPAddr).AddrPort().Port()))+"\n")
		if got := readLine(t, c); got != "dialing\n" {
			t.Fatalf("answer = %q, want %q", got, "dialing\n")
		}
		ln.SetDeadline(time.Now().Add(5 * time.Second))
		in, err := ln.AcceptTCP()
		if err != nil {
			t.Fatalf("accept the target's IPv6 connection: %v", err)
		}
		defer in.Close()
		if got := in.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != l.TargetAddr6 {
			t.Errorf("dialer came from %s, want %s", got, l.TargetAddr6)
		}
	})
}

// No default route for IPv6 either, no router advertisements taken, no
// tentative addresses.
func TestIPv6NoDefaultRouteNoRA(t *testing.T) {
	l := labtest.NewBare(t)
	for _, x := range []struct {
		ns     *netns.NS
		ifname string
		addr   netip.Addr
	}{{l.Prober, l.ProberIf, l.ProberAddr6}, {l.Target, l.TargetIf, l.TargetAddr6}} {
		h, err := netlink.NewHandleAt(vnetns.NsHandle(x.ns.Fd()), unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		routes, err := h.RouteListFiltered(unix.AF_INET6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		var dsts []string
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				t.Errorf("%s: IPv6 default route %v", x.ns.Name, r)
				continue
			}
			dsts = append(dsts, r.Dst.String())
		}
		if !strings.Contains(strings.Join(dsts, " "), "2001:2::/64") {
			t.Errorf("%s: main-table IPv6 routes %v, want the connected 2001:2::/64", x.ns.Name, dsts)
		}
		for _, d := range dsts {
			if d != "2001:2::/64" && d != "fe80::/64" {
				t.Errorf("%s: unexpected IPv6 route %s", x.ns.Name, d)
			}
		}
		link, err := h.LinkByName(x.ifname)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := h.AddrList(link, unix.AF_INET6)
		if err != nil {
			t.Fatal(err)
		}
		// The lab's address is usable the moment Create returns: added
		// with IFA_F_NODAD, it is never tentative. (The kernel's own
		// link-local address may be for a moment, until its skipped DAD
		// work has run.)
		has := false
		for _, a := range addrs {
			ip, _ := netip.AddrFromSlice(a.IP)
			if ip != x.addr {
				continue
			}
			has = true
			if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 || a.Flags&unix.IFA_F_NODAD == 0 {
				t.Errorf("%s: address %s has flags %#x; want nodad and neither tentative nor dadfailed", x.ns.Name, ip, a.Flags)
			}
		}
		if !has {
			t.Errorf("%s: %s lacks %s: %v", x.ns.Name, x.ifname, x.addr, addrs)
		}
		err = x.ns.Do(func() error {
			for _, k := range []string{"accept_ra", "autoconf", "forwarding", "router_solicitations"} {
				b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + x.ifname + "/" + k)
				if err != nil {
					return err
				}
				if v := strings.TrimSpace(string(b)); v != "0" {
					t.Errorf("%s: %s %s = %s, want 0", x.ns.Name, x.ifname, k, v)
				}
			}
			c, err := net.DialTimeout("tcp6", "[2001:db8::1]:80", time.Second)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, syscall.ENETUNREACH) {
				t.Errorf("%s: dial outside the lab over IPv6: err = %v, want ENETUNREACH", x.ns.Name, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestIPv6ConfigErrors(t *testing.T) {
	for _, cfg := range []lab.Config{
		{Prefix: "twt-cfg6", ProberAddr6: netip.MustParsePrefix("2001:db8::1/64")},
		{Prefix: "twt-cfg6", TargetAddr6: netip.MustParsePrefix("2001:2::2/47")},
		{Prefix: "twt-cfg6", TargetAddr6: netip.MustParsePrefix("2001:2:0:1::2/64")},
		{Prefix: "twt-cfg6", TargetAddr6: netip.MustParsePrefix("2001:2::1/64")},
		{Prefix: "twt-cfg6", ProberAddr6: netip.MustParsePrefix("198.18.0.1/24")},
		{Prefix: "twt-cfg6", ProberAddr6: netip.MustParsePrefix("::ffff:198.18.0.1/120")},
	} {
		if l, err := lab.Create(&cfg); err == nil {
			l.Close()
			t.Errorf("Create(%+v) succeeded", cfg)
		}
	}
}
