package lab_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
	"golang.org/x/sys/unix"
)

// synReply sends one SYN from a raw-socket prober in l's prober namespace to
// port and returns the first segment that answers it.
func synReply(t *testing.T, l *lab.Lab, port uint16) craft.Packet {
	t.Helper()
	return synReplyTo(t, l, l.TargetAddr, port).Seg
}

// synReplyTo is synReply to the target address remote (IPv4 or IPv6):
// the answer as a cloned event, with its network header.
func synReplyTo(t *testing.T, l *lab.Lab, remote netip.Addr, port uint16) *probe.Event {
	t.Helper()
	p, err := probe.Open(probe.Config{Remote: remote, NetNS: l.Prober, Warn: func(m string) { t.Logf("prober: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	f, err := p.NewFlow(port, 0)
	if err != nil {
		t.Fatalf("NewFlow(%d): %v", port, err)
	}
	t.Cleanup(f.Close)
	x := probe.RandomUint32()
	if _, err := f.Send(&craft.Segment{Seq: x, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(1)}); err != nil {
		t.Fatalf("send SYN: %v", err)
	}
	e, err := f.Expect(context.Background(), time.Now().Add(3*time.Second),
		func(e *probe.Event) bool { return e.Kind == probe.EventSegment }, nil)
	if err != nil {
		t.Fatalf("SYN to %s: no answer within 3 s: %v", netip.AddrPortFrom(remote, port), err)
	}
	e = e.Clone()
	if got := e.Seg.TCP.AckNumber(); got != x+1 {
		t.Fatalf("answer to SYN seq=%d acks %d, want %d", x, got, x+1)
	}
	// Take the half-open connection down again.
	if e.Seg.TCP.Flags()&craft.FlagRST == 0 {
		f.Send(&craft.Segment{Seq: x + 1, Flags: craft.FlagRST})
	}
	return e
}

// optionKinds lists the TCP option kinds of a segment in wire order.
func optionKinds(p craft.Packet) []byte {
	var kinds []byte
	b := p.TCP.OptionBytes()
	for i := 0; i < len(b); {
		k := b[i]
		kinds = append(kinds, k)
		switch {
		case k == 0:
			return kinds
		case k == 1:
			i++
		case i+1 < len(b) && b[i+1] >= 2:
			i += int(b[i+1])
		default:
			return kinds
		}
	}
	return kinds
}

// TestGVisorIsAnotherStack: the gvisor lab's SYN,ACK comes from netstack,
// not from a kernel: against the same SYN, Linux's and netstack's SYN,ACKs
// differ in their options' layout, and netstack's arrives forwarded once by
// the target namespace's kernel (TTL 63). The kernel holds no socket for it.
func TestGVisorIsAnotherStack(t *testing.T) {
	t.Parallel()
	gl := labtest.NewStack(t, lab.StackGVisor)
	if gl.Stack != lab.StackGVisor || gl.TUNIf == "" {
		t.Fatalf("lab stack %q, TUN %q; want gvisor with a TUN device", gl.Stack, gl.TUNIf)
	}
	ll := labtest.New(t)
	// The same on both families: netstack answers at the IPv6 target
	// address too, through the target kernel's forwarding (hop limit
	// 64, less one: RFC 8200 §3).
	for _, fam := range []struct {
		name   string
		g, l   netip.Addr
		family int
	}{{"IPv4", gl.TargetAddr, ll.TargetAddr, unix.AF_INET}, {"IPv6", gl.TargetAddr6, ll.TargetAddr6, unix.AF_INET6}} {
		ge := synReplyTo(t, gl, fam.g, lab.PortHold)
		ke := synReplyTo(t, ll, fam.l, lab.PortHold)
		g, k := ge.Seg, ke.Seg
		for name, p := range map[string]craft.Packet{"gvisor": g, "linux": k} {
			if f := p.TCP.Flags(); f != craft.FlagSYN|craft.FlagACK {
				t.Fatalf("%s %s: answer to SYN is %s, want S.", fam.name, name, f)
			}
		}
		if ge.IsIPv6() != (fam.family == unix.AF_INET6) || ke.IsIPv6() != ge.IsIPv6() {
			t.Errorf("%s: answers came over IPv6 %v (gvisor), %v (linux)", fam.name, ge.IsIPv6(), ke.IsIPv6())
		}
		gk, kk := optionKinds(g), optionKinds(k)
		t.Logf("%s: gvisor SYN,ACK: hop limit %d window %d options %v; linux: hop limit %d window %d options %v",
			fam.name, ge.HopLimit(), g.TCP.WindowSize(), gk, ke.HopLimit(), k.TCP.WindowSize(), kk)
		if string(gk) == string(kk) && g.TCP.WindowSize() == k.TCP.WindowSize() {
			t.Errorf("%s: gvisor SYN,ACK has Linux's option layout %v and window %d: is the kernel answering?", fam.name, kk, k.TCP.WindowSize())
		}
		if ge.HopLimit() != ke.HopLimit()-1 {
			t.Errorf("%s: gvisor SYN,ACK hop limit %d, want %d (netstack's 64, forwarded once by the target's kernel)", fam.name, ge.HopLimit(), ke.HopLimit()-1)
		}
	}
	// sock_diag dumps both families.
	socks, err := sockdiag.Dump(gl.Target)
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 0 {
		t.Errorf("the gvisor target's kernel has TCP sockets %v, want none (netstack's are in user space)", socks)
	}
}

// TestGVisorClosedPort: netstack answers a SYN to a port nobody listens on
// with RST,ACK (RFC 9293 §3.10.7.1), on both families.
func TestGVisorClosedPort(t *testing.T) {
	t.Parallel()
	l := labtest.NewStack(t, lab.StackGVisor)
	for _, a := range []netip.Addr{l.TargetAddr, l.TargetAddr6} {
		p := synReplyTo(t, l, a, lab.PortClosed).Seg
		if f := p.TCP.Flags(); f != craft.FlagRST|craft.FlagACK {
			t.Errorf("answer to SYN on closed port %s: %s, want R.", netip.AddrPortFrom(a, lab.PortClosed), f)
		}
	}
}

// TestGVisorServers: kernel TCP clients in the prober namespace talk to
// netstack's servers with the same behaviours as on Linux.
func TestGVisorServers(t *testing.T) {
	t.Parallel()
	l := labtest.NewStack(t, lab.StackGVisor)
	t.Run("echo", func(t *testing.T) {
		c := dial(t, l, lab.PortEcho)
		write(t, c, "ping through netstack\n")
		if got := readLine(t, c); got != "ping through netstack\n" {
			t.Errorf("echo = %q", got)
		}
		c.CloseWrite()
		if got := readAll(t, c); got != "" {
			t.Errorf("after FIN read %q, want EOF", got)
		}
	})
	t.Run("control", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "echo hi\n")
		if got := readLine(t, c); got != "hi\n" {
			t.Errorf("echo hi = %q, want %q", got, "hi\n")
		}
		write(t, c, "bogus\n")
		if got := readLine(t, c); got != "?\n" {
			t.Errorf("unknown command = %q, want %q", got, "?\n")
		}
		write(t, c, "close\n")
		if got := readAll(t, c); got != "" {
			t.Errorf("after close read %q, want EOF", got)
		}
	})
	t.Run("control-rst", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "rst\n")
		_, err := io.ReadAll(c)
		if !errors.Is(err, unix.ECONNRESET) {
			t.Errorf("after rst: read error %v, want ECONNRESET", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		c := dial(t, l, lab.PortClose)
		write(t, c, "GET / HTTP/1.0\r\n\r\n")
		if got, want := readAll(t, c), "HTTP/1.0 200 OK\r\n\r\nok\n"; got != want {
			t.Errorf("close server answered %q, want %q then its FIN", got, want)
		}
	})
	t.Run("half-close", func(t *testing.T) {
		c := dial(t, l, lab.PortHalfClose)
		if got := readAll(t, c); got != "hello\n" {
			t.Errorf("half-close server sent %q, want %q then FIN", got, "hello\n")
		}
		write(t, c, "still open for our data\n")
	})
	t.Run("hold", func(t *testing.T) {
		c := dial(t, l, lab.PortHold)
		write(t, c, "data\n")
		c.CloseWrite()
		expectOpen(t, c, 300*time.Millisecond)
	})
	t.Run("dialer", func(t *testing.T) {
		var ln net.Listener
		err := l.Prober.Do(func() error {
			var err error
			ln, err = net.Listen("tcp4", net.JoinHostPort(l.ProberAddr.String(), "0"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		c := dial(t, l, lab.PortDialer)
		write(t, c, "dial "+strconv.Itoa(port)+"\n")
		if got := readLine(t, c); got != "dialing\n" {
			t.Fatalf("dial answered %q", got)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		in, err := ln.Accept()
		if err != nil {
			t.Fatalf("netstack did not connect back: %v", err)
		}
		defer in.Close()
		if got := in.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != l.TargetAddr {
			t.Errorf("connection back from %s, want %s", got, l.TargetAddr)
		}
	})
}

// TestGVisorCloseLeavesNothing: closing a gvisor lab with its netstack
// running removes the TUN device, the veth and both namespaces; Destroy
// then finds nothing, and a lab of the same prefix can be made again.
func TestGVisorCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	prefix := labtest.Prefix(t)
	l, err := lab.Create(&lab.Config{Prefix: prefix, Stack: lab.StackGVisor})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { lab.Destroy(prefix) })
	if _, err := l.StartServers(); err != nil {
		t.Fatal(err)
	}
	o, err := lab.Open(prefix)
	if err != nil {
		t.Fatalf("Open of a running gvisor lab: %v", err)
	}
	if o.Stack != lab.StackGVisor || o.TargetAddr != l.TargetAddr || o.TUNIf != lab.TUNName(prefix) {
		t.Errorf("Open found stack %q target %s TUN %q; want gvisor %s %s", o.Stack, o.TargetAddr, o.TUNIf, l.TargetAddr, lab.TUNName(prefix))
	}
	if o.TargetAddr6 != lab.DefaultTargetAddr6.Addr() || o.ProberAddr6 != lab.DefaultProberAddr6.Addr() {
		t.Errorf("Open found IPv6 addresses %s, %s; want %s, %s (the gvisor lab is dual-stack)", o.ProberAddr6, o.TargetAddr6, lab.DefaultProberAddr6.Addr(), lab.DefaultTargetAddr6.Addr())
	}
	o.Release()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	pns, tns, _, _ := lab.Names(prefix)
	for _, n := range []string{pns, tns} {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close, %s: %v; want it gone", n, err)
		}
	}
	if err := lab.Destroy(prefix); err != nil {
		t.Errorf("Destroy after Close: %v", err)
	}
	l2, err := lab.Create(&lab.Config{Prefix: prefix, Stack: lab.StackGVisor})
	if err != nil {
		t.Fatalf("Create again after Close: %v", err)
	}
	l2.Close()
}
