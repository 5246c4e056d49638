package sockdiag_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

func TestStateString(t *testing.T) {
	for _, tc := range []struct {
		s    sockdiag.State
		want string
	}{
		{sockdiag.Established, "ESTABLISHED"},
		{sockdiag.SynSent, "SYN_SENT"},
		{sockdiag.SynRecv, "SYN_RCVD"},
		{sockdiag.FinWait1, "FIN_WAIT_1"},
		{sockdiag.FinWait2, "FIN_WAIT_2"},
		{sockdiag.TimeWait, "TIME_WAIT"},
		{sockdiag.Close, "CLOSED"},
		{sockdiag.CloseWait, "CLOSE_WAIT"},
		{sockdiag.LastAck, "LAST_ACK"},
		{sockdiag.Listen, "LISTEN"},
		{sockdiag.Closing, "CLOSING"},
		{sockdiag.NewSynRecv, "SYN_RCVD"},
		{0, "State(0)"},
		{13, "State(13)"},
		{255, "State(255)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tc.s), got, tc.want)
		}
	}
}

// dial connects from the prober namespace and returns the connection and
// its local address.
func dial(t *testing.T, l *lab.Lab, port uint16) (*net.TCPConn, netip.AddrPort) {
	t.Helper()
	var c net.Conn
	err := l.Prober.Do(func() error {
		var err error
		d := net.Dialer{Timeout: 2 * time.Second, KeepAlive: -1}
		c, err = d.Dial("tcp4", netip.AddrPortFrom(l.TargetAddr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("dial from the prober namespace: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// waitState polls until the socket of the tuple in ns is in want (bounded).
func waitState(t *testing.T, ns *netns.NS, local, remote netip.AddrPort, want ...sockdiag.State) sockdiag.Socket {
	t.Helper()
	var last string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		s, ok, err := sockdiag.Lookup(ns, local, remote)
		if err != nil {
			t.Fatal(err)
		}
		last = "absent"
		if ok {
			last = s.State.String()
			for _, w := range want {
				if s.State == w {
					return s
				}
			}
		}
	}
	t.Fatalf("%s: socket %s -> %s is %s, want one of %v", ns.Name, local, remote, last, want)
	return sockdiag.Socket{}
}

func TestEstablishedAndListen(t *testing.T) {
	l := labtest.New(t)
	server := netip.AddrPortFrom(l.TargetAddr, lab.PortEcho)
	c, client := dial(t, l, lab.PortEcho)
	c.Write([]byte("x"))

	got := waitState(t, l.Prober, client, server, sockdiag.Established)
	if got.Inode == 0 {
		t.Errorf("client socket has inode 0")
	}
	srv := waitState(t, l.Target, server, client, sockdiag.Established)
	if diff := cmp.Diff([2]netip.AddrPort{server, client}, [2]netip.AddrPort{srv.Local, srv.Remote}, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("server socket tuple (-want +got):\n%s", diff)
	}

	socks, err := sockdiag.Dump(l.Target)
	if err != nil {
		t.Fatal(err)
	}
	// The lab is dual-stack: each server port listens on both families.
	listening := map[netip.AddrPort]bool{}
	for _, s := range socks {
		if s.State == sockdiag.Listen {
			remote := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
			if s.Local.Addr().Is6() {
				remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
			}
			if (s.Local.Addr() != l.TargetAddr && s.Local.Addr() != l.TargetAddr6) || s.Remote != remote {
				t.Errorf("listener %s -> %s, want %s or %s -> %s", s.Local, s.Remote, l.TargetAddr, l.TargetAddr6, remote)
			}
			listening[s.Local] = true
		}
	}
	for _, a := range []netip.Addr{l.TargetAddr, l.TargetAddr6} {
		for _, p := range []uint16{lab.PortHold, lab.PortClose, lab.PortControl, lab.PortEcho, lab.PortHalfClose, lab.PortDialer} {
			if !listening[netip.AddrPortFrom(a, p)] {
				t.Errorf("no LISTEN socket on %s in %s", netip.AddrPortFrom(a, p), l.Target.Name)
			}
		}
		if listening[netip.AddrPortFrom(a, lab.PortClosed)] {
			t.Errorf("LISTEN socket on the closed port %d", lab.PortClosed)
		}
	}
	// The prober namespace does not see the target's sockets.
	if _, ok, err := sockdiag.Lookup(l.Prober, server, client); err != nil || ok {
		t.Errorf("Lookup of the target's socket in the prober namespace = %v, %v; want absent", ok, err)
	}
}

func TestClientCloses(t *testing.T) {
	l := labtest.New(t)
	t.Run("server holds", func(t *testing.T) {
		server := netip.AddrPortFrom(l.TargetAddr, lab.PortHold)
		c, client := dial(t, l, lab.PortHold)
		waitState(t, l.Target, server, client, sockdiag.Established)
		c.Close()
		waitState(t, l.Prober, client, server, sockdiag.FinWait2)
		waitState(t, l.Target, server, client, sockdiag.CloseWait)
	})
	t.Run("server closes too", func(t *testing.T) {
		server := netip.AddrPortFrom(l.TargetAddr, lab.PortEcho)
		c, client := dial(t, l, lab.PortEcho)
		waitState(t, l.Target, server, client, sockdiag.Established)
		c.Close()
		tw := waitState(t, l.Prober, client, server, sockdiag.TimeWait)
		if tw.Timer != sockdiag.TimerTimeWait || tw.Expires <= 0 || tw.Expires > 60*time.Second {
			t.Errorf("TIME_WAIT socket: timer %d expires %v; want timer %d within 60 s", tw.Timer, tw.Expires, sockdiag.TimerTimeWait)
		}
		// The server's socket is gone once our last ACK arrived.
		for end := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, ok, err := sockdiag.Lookup(l.Target, server, client)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("server socket still exists after the close handshake")
			}
		}
	})
	t.Run("server closes first", func(t *testing.T) {
		server := netip.AddrPortFrom(l.TargetAddr, lab.PortControl)
		c, client := dial(t, l, lab.PortControl)
		io.WriteString(c, "close\n")
		waitState(t, l.Target, server, client, sockdiag.FinWait2)
		waitState(t, l.Prober, client, server, sockdiag.CloseWait)
	})
}

func TestLookupUnknown(t *testing.T) {
	l := labtest.New(t)
	_, ok, err := sockdiag.Lookup(l.Target, netip.AddrPortFrom(l.TargetAddr, lab.PortEcho), netip.MustParseAddrPort("198.18.0.1:1"))
	if err != nil || ok {
		t.Errorf("Lookup of an unknown tuple = %v, %v; want false, nil", ok, err)
	}
}

// TestCurrentNamespaceAndMapped uses loopback in the test's own namespace
// (nil ns) with a dual-stack listener, whose sockets are AF_INET6 with
// IPv4-mapped addresses.
func TestCurrentNamespaceAndMapped(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack listener: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("dual-stack listener not reachable over IPv4: %v", err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	client := c.LocalAddr().(*net.TCPAddr).AddrPort()
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	for _, tc := range []struct {
		name          string
		local, remote netip.AddrPort
	}{
		{"AF_INET client", client, server},
		{"AF_INET6 mapped server", server, client},
	} {
		s, ok, err := sockdiag.Lookup(nil, tc.local, tc.remote)
		if err != nil || !ok || s.State != sockdiag.Established {
			t.Errorf("%s: Lookup(nil, %s, %s) = %v, %v, %v; want ESTABLISHED", tc.name, tc.local, tc.remote, s.State, ok, err)
		}
	}
}
