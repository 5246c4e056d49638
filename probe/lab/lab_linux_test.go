package lab_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
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

// dial connects from a socket created in the prober namespace.
func dial(t *testing.T, l *lab.Lab, port uint16) *net.TCPConn {
	t.Helper()
	var c net.Conn
	err := l.Prober.Do(func() error {
		var err error
		d := net.Dialer{Timeout: 2 * time.Second, KeepAlive: -1}
		c, err = d.Dial("tcp4", netip.AddrPortFrom(l.TargetAddr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("dial %s:%d from the prober namespace: %v", l.TargetAddr, port, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// readLine reads up to and including "\n".
func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	var b []byte
	var one [1]byte
	for {
		if _, err := c.Read(one[:]); err != nil {
			t.Fatalf("read a line (got %q so far): %v", b, err)
		}
		b = append(b, one[0])
		if one[0] == '\n' {
			return string(b)
		}
	}
}

// readAll reads until EOF and fails on any other error.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until EOF (got %q): %v", b, err)
	}
	return string(b)
}

// expectOpen checks that no EOF (FIN) arrives within d.
func expectOpen(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var b [64]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read = %q, %v; want a timeout (connection held open)", b[:n], err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
}

func TestEcho(t *testing.T) {
	l := labtest.New(t)
	c := dial(t, l, lab.PortEcho)
	write(t, c, "ping through the veth\n")
	if got := readLine(t, c); got != "ping through the veth\n" {
		t.Errorf("echo = %q", got)
	}
	if got, want := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(), l.ProberAddr; got != want {
		t.Errorf("client address = %s, want %s", got, want)
	}
	// Our FIN makes the server close: we read EOF.
	c.CloseWrite()
	if got := readAll(t, c); got != "" {
		t.Errorf("after FIN read %q, want EOF", got)
	}
}

func TestNoDefaultRoute(t *testing.T) {
	l := labtest.NewBare(t)
	for _, ns := range []*netns.NS{l.Prober, l.Target} {
		h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		if len(routes) == 0 {
			t.Errorf("%s: no routes at all, want the connected 198.18.0.0/24", ns.Name)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				t.Errorf("%s: default route %v", ns.Name, r)
				continue
			}
			if r.Table != unix.RT_TABLE_MAIN {
				continue // local and broadcast routes of the own addresses
			}
			if ones, _ := r.Dst.Mask.Size(); r.Dst.IP.String() != "198.18.0.0" || ones != 24 {
				t.Errorf("%s: unexpected main-table route %v", ns.Name, r)
			}
		}
		// No default route means nothing outside the lab is reachable.
		err = ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", "192.0.2.1:80", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("%s: dial outside the lab: err = %v, want ENETUNREACH", ns.Name, err)
		}
	}
}

func TestHold(t *testing.T) {
	l := labtest.New(t)
	c := dial(t, l, lab.PortHold)
	write(t, c, "anything\n")
	c.CloseWrite()
	expectOpen(t, c, 300*time.Millisecond)
}

func TestClose(t *testing.T) {
	l := labtest.New(t)
	for _, tc := range []struct{ name, req string }{
		{"http", "GET / HTTP/1.0\r\nHost: x\r\n\r\n"},
		{"line", "hello\n"},
		{"silence", "no newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, l, lab.PortClose)
			start := time.Now()
			write(t, c, tc.req)
			if got, want := readAll(t, c), "HTTP/1.0 200 OK\r\n\r\nok\n"; got != want {
				t.Errorf("response = %q, want %q", got, want)
			}
			el := time.Since(start)
			if wantSlow := tc.name == "silence"; wantSlow != (el >= lab.RequestSilence) {
				t.Errorf("answer after %v; waiting for silence: %v", el, wantSlow)
			}
		})
	}
	t.Run("partial http waits", func(t *testing.T) {
		c := dial(t, l, lab.PortClose)
		write(t, c, "GET / HTTP/1.0\r\n")
		expectOpen(t, c, 300*time.Millisecond)
		write(t, c, "\r\n")
		if got := readAll(t, c); !strings.HasPrefix(got, "HTTP/1.0 200") {
			t.Errorf("response = %q", got)
		}
	})
}

func TestControl(t *testing.T) {
	l := labtest.New(t)
	t.Run("echo and unknown", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "echo hi there\r\nbogus\n"+strings.Repeat("x", 3000)+"\necho again\n")
		for _, want := range []string{"hi there\n", "?\n", "?\n", "again\n"} {
			if got := readLine(t, c); got != want {
				t.Errorf("line = %q, want %q", got, want)
			}
		}
	})
	t.Run("close", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "close\n")
		if got := readAll(t, c); got != "" {
			t.Errorf("read %q before EOF", got)
		}
		// The server sent FIN, not RST: our side can still write.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Errorf("write after the server's FIN: %v", err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "shutdown\n")
		if got := readAll(t, c); got != "" {
			t.Errorf("read %q before EOF", got)
		}
		// Still reading commands: echo has nowhere to go, rst still works.
		write(t, c, "echo lost\nrst\n")
		// Reads return EOF from now on; the RST shows as a write error.
		var err error
		for end := time.Now().Add(2 * time.Second); err == nil && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
			_, err = c.Write([]byte("x"))
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("after rst: err = %v, want ECONNRESET or EPIPE", err)
		}
	})
	t.Run("rst", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "rst\n")
		_, err := io.ReadAll(c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read after rst: err = %v, want ECONNRESET", err)
		}
	})
	t.Run("no close after our FIN", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		c.CloseWrite()
		expectOpen(t, c, 300*time.Millisecond)
	})
	t.Run("close-after-fin delayed", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "close-after-fin 20000\nclose-after-fin x\nclose-after-fin 300\n")
		for _, want := range []string{"?\n", "?\n", "armed\n"} {
			if got := readLine(t, c); got != want {
				t.Errorf("answer = %q, want %q", got, want)
			}
		}
		start := time.Now()
		c.CloseWrite()
		expectOpen(t, c, 100*time.Millisecond)
		if got := readAll(t, c); got != "" {
			t.Errorf("read %q before EOF", got)
		}
		if el := time.Since(start); el < 300*time.Millisecond {
			t.Errorf("server closed %v after our FIN, want at least 300ms", el)
		}
	})
	t.Run("close-after-fin", func(t *testing.T) {
		c := dial(t, l, lab.PortControl)
		write(t, c, "close-after-fin\n")
		expectOpen(t, c, 200*time.Millisecond)
		c.CloseWrite()
		if got := readAll(t, c); got != "" {
			t.Errorf("read %q before EOF", got)
		}
	})
}

func TestHalfClose(t *testing.T) {
	l := labtest.New(t)
	c := dial(t, l, lab.PortHalfClose)
	if got := readAll(t, c); got != "hello\n" {
		t.Errorf("read %q, want %q then EOF", got, "hello\n")
	}
	// The server still reads: our data is accepted, not reset.
	write(t, c, "more data\n")
	time.Sleep(50 * time.Millisecond)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Errorf("write to the half-closed server: %v", err)
	}
}

func TestClosedPort(t *testing.T) {
	l := labtest.New(t)
	err := l.Prober.Do(func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.TargetAddr, lab.PortClosed).String(), 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial the closed port: err = %v, want ECONNREFUSED", err)
	}
}

func TestDialer(t *testing.T) {
	l := labtest.New(t)
	var ln *net.TCPListener
	if err := l.Prober.Do(func() error {
		a, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.ProberAddr, 0)))
		ln = a
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()

	c := dial(t, l, lab.PortDialer)
	write(t, c, "dial nonsense\n")
	if got := readLine(t, c); got != "?\n" {
		t.Errorf("bad dial answer = %q, want %q", got, "?\n")
	}
	write(t, c, "dial "+strconv.Itoa(int(port))+"\n")
	if got := readLine(t, c); got != "dialing\n" {
		t.Fatalf("answer = %q, want %q", got, "dialing\n")
	}
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	in, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept the target's connection: %v", err)
	}
	defer in.Close()
	if got := in.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != l.TargetAddr {
		t.Errorf("dialer came from %s, want %s", got, l.TargetAddr)
	}
	// The dialer closes at our FIN.
	in.CloseWrite()
	in.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(in); err != nil || len(b) != 0 {
		t.Errorf("dialer socket: read %q, %v; want EOF", b, err)
	}
}

func linkExists(t *testing.T, ns *netns.NS, name string) bool {
	t.Helper()
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func TestCloseRemovesEverything(t *testing.T) {
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	l, err := lab.Create(&lab.Config{Prefix: prefix})
	labtest.SkipUnlessPermitted(t, err)
	if _, err := l.StartServers(); err != nil {
		t.Fatal(err)
	}
	dial(t, l, lab.PortHold) // a held connection must not stop Close

	// Handles opened before Close keep the namespaces alive, so we can look
	// inside afterwards.
	p, err := netns.Open(l.Prober.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tg, err := netns.Open(l.Target.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !linkExists(t, p, l.ProberIf) || !linkExists(t, tg, l.TargetIf) {
		t.Fatalf("veth %s/%s missing before Close", l.ProberIf, l.TargetIf)
	}
	root, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if linkExists(t, root, l.ProberIf) || linkExists(t, root, l.TargetIf) {
		t.Errorf("veth visible in the caller's namespace")
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if names, err := netns.List(prefix); err != nil || len(names) != 0 {
		t.Errorf("after Close, netns.List(%q) = %v, %v; want none", prefix, names, err)
	}
	if linkExists(t, p, l.ProberIf) || linkExists(t, tg, l.TargetIf) {
		t.Errorf("veth still exists after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := lab.Open(prefix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Close: err = %v, want fs.ErrNotExist", err)
	}
}

func TestDestroyHalfMade(t *testing.T) {
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	pns, tns, _, _ := lab.Names(prefix)
	ns, err := netns.Create(pns)
	labtest.SkipUnlessPermitted(t, err)
	ns.Close()
	// Also an empty file where the target's bind mount would be.
	if err := os.WriteFile(netns.RunDir+"/"+tns, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Open(prefix); err == nil {
		t.Errorf("Open of a half-made lab succeeded")
	}
	if err := lab.Destroy(prefix); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if names, _ := netns.List(prefix); len(names) != 0 {
		t.Errorf("after Destroy: %v left", names)
	}
	if err := lab.Destroy(prefix); err != nil {
		t.Errorf("Destroy of nothing: %v", err)
	}
}

func TestCreateKeepsExisting(t *testing.T) {
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	_, tns, _, _ := lab.Names(prefix)
	ns, err := netns.Create(tns)
	labtest.SkipUnlessPermitted(t, err)
	ns.Close()
	if _, err := lab.Create(&lab.Config{Prefix: prefix}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing namespace: err = %v, want fs.ErrExist", err)
	}
	if names, _ := netns.List(prefix); len(names) != 1 || names[0] != tns {
		t.Errorf("after the failed Create: namespaces %v, want only the pre-existing %s", names, tns)
	}
}

func TestOpen(t *testing.T) {
	l := labtest.NewBare(t)
	o, err := lab.Open(l.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := o.Release(); err != nil {
			t.Error(err)
		}
		// Release left the lab in place.
		if names, _ := netns.List(l.Prefix); len(names) != 2 {
			t.Errorf("after Release: namespaces %v, want both", names)
		}
	}()
	if o.ProberAddr != l.ProberAddr || o.TargetAddr != l.TargetAddr {
		t.Errorf("Open: addresses %s, %s; want %s, %s", o.ProberAddr, o.TargetAddr, l.ProberAddr, l.TargetAddr)
	}
	if o.ProberAddr6 != l.ProberAddr6 || o.TargetAddr6 != l.TargetAddr6 || !o.TargetAddr6.IsValid() {
		t.Errorf("Open: IPv6 addresses %s, %s; want %s, %s", o.ProberAddr6, o.TargetAddr6, l.ProberAddr6, l.TargetAddr6)
	}
	if o.ProberIf != l.ProberIf || o.TargetIf != l.TargetIf {
		t.Errorf("Open: interfaces %s, %s; want %s, %s", o.ProberIf, o.TargetIf, l.ProberIf, l.TargetIf)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []lab.Config{
		{Prefix: "bad/name"},
		{Prefix: strings.Repeat("x", 65)},
		{Prefix: "twt-cfg", ProberAddr: netip.MustParsePrefix("10.0.0.1/24")},
		{Prefix: "twt-cfg", ProberAddr: netip.MustParsePrefix("198.18.0.1/24"), TargetAddr: netip.MustParsePrefix("198.18.1.2/24")},
		{Prefix: "twt-cfg", ProberAddr: netip.MustParsePrefix("198.18.0.1/24"), TargetAddr: netip.MustParsePrefix("198.18.0.1/24")},
		{Prefix: "twt-cfg", TargetAddr: netip.MustParsePrefix("2001:db8::1/64")},
	} {
		if l, err := lab.Create(&cfg); err == nil {
			l.Close()
			t.Errorf("Create(%+v) succeeded", cfg)
		}
	}
}

func TestNames(t *testing.T) {
	p, tg, pif, tif := lab.Names(strings.Repeat("long-prefix", 5))
	if !strings.HasSuffix(p, "-prober") || !strings.HasSuffix(tg, "-target") {
		t.Errorf("namespace names %q, %q", p, tg)
	}
	for _, n := range []string{pif, tif} {
		if len(n) > 15 {
			t.Errorf("interface name %q longer than 15 bytes", n)
		}
	}
	if pif == tif || !bytes.Equal([]byte(pif[:len(pif)-2]), []byte(tif[:len(tif)-2])) {
		t.Errorf("veth names %q, %q should share a stem", pif, tif)
	}
}
