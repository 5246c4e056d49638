package sockdiag_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// AF_INET6 sockets are reported with their IPv6 addresses: a connection
// over ::1 in a fresh namespace, seen from both ends, and two listeners,
// one IPV6_V6ONLY (Go's "tcp6") and one dual-stack on [::] (Go's "tcp").
func TestIPv6Sockets(t *testing.T) {
	name := labtest.Prefix(t) + "-sd6"
	ns, err := netns.Create(name)
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	var ln6, dual net.Listener
	var c, a net.Conn
	if err := ns.Do(func() error {
		var err error
		if ln6, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			return err
		}
		if dual, err = net.Listen("tcp", "[::]:0"); err != nil {
			return err
		}
		c, err = net.Dial("tcp6", ln6.Addr().String())
		return err
	}); err != nil {
		t.Fatalf("listen and dial over ::1 in %s: %v", name, err)
	}
	defer ln6.Close()
	defer dual.Close()
	defer c.Close()
	if a, err = ln6.Accept(); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	client := c.LocalAddr().(*net.TCPAddr).AddrPort()
	server := ln6.Addr().(*net.TCPAddr).AddrPort()
	if !client.Addr().Is6() || !server.Addr().Is6() {
		t.Fatalf("not an IPv6 connection: %v -> %v", client, server)
	}
	for _, tc := range []struct {
		name          string
		local, remote netip.AddrPort
	}{
		{"client", client, server},
		{"server", server, client},
	} {
		s, ok, err := sockdiag.Lookup(ns, tc.local, tc.remote)
		if err != nil || !ok || s.State != sockdiag.Established {
			t.Errorf("%s: Lookup(%s, %s) = %+v, %v, %v; want ESTABLISHED", tc.name, tc.local, tc.remote, s, ok, err)
		}
	}
	socks, err := sockdiag.Dump(ns)
	if err != nil {
		t.Fatal(err)
	}
	unspec := netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	want := map[netip.AddrPort]bool{ // listener -> V6Only
		server: true,
		netip.AddrPortFrom(netip.IPv6Unspecified(), dual.Addr().(*net.TCPAddr).AddrPort().Port()): false,
	}
	for _, s := range socks {
		if s.State != sockdiag.Listen {
			continue
		}
		v6only, ok := want[s.Local]
		if !ok {
			t.Errorf("unexpected listener %+v", s)
			continue
		}
		delete(want, s.Local)
		if s.Remote != unspec || s.V6Only != v6only {
			t.Errorf("listener %s: remote %s V6Only %v; want %s, %v", s.Local, s.Remote, s.V6Only, unspec, v6only)
		}
	}
	if len(want) != 0 {
		t.Errorf("listeners not reported: %v", want)
	}
}
