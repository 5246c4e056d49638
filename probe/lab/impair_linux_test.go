package lab_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// tcpCounters reads the Tcp InSegs and OutSegs counters (RFC 4022
// tcpInSegs, tcpOutSegs) of the namespace ns.
func tcpCounters(t *testing.T, ns *netns.NS) (in, out uint64) {
	t.Helper()
	err := ns.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 || fields[0] != "Tcp:" {
				continue
			}
			if names == nil {
				names = fields
				continue
			}
			for i, v := range fields {
				if i >= len(names) {
					break
				}
				n, _ := strconv.ParseUint(v, 10, 64)
				switch names[i] {
				case "InSegs":
					in = n
				case "OutSegs":
					out = n
				}
			}
			return nil
		}
		return fmt.Errorf("no Tcp counters in /proc/thread-self/net/snmp")
	})
	if err != nil {
		t.Fatalf("read TCP counters in %s: %v", ns.Name, err)
	}
	return in, out
}

// connectFrom tries one kernel TCP connection from ns to to, within d.
func connectFrom(ns *netns.NS, to netip.AddrPort, d time.Duration) error {
	return ns.Do(func() error {
		c, err := (&net.Dialer{Timeout: d}).Dial("tcp4", to.String())
		if err == nil {
			c.Close()
		}
		return err
	})
}

// impairTables lists the impairment tables in ns.
func impairTables(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatalf("nftables in %s: %v", ns.Name, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		t.Fatalf("list netdev tables in %s: %v", ns.Name, err)
	}
	var out []string
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, lab.ImpairTablePrefix) {
			out = append(out, tb.Name)
		}
	}
	return out
}

func TestImpairAllLossBothWays(t *testing.T) {
	l := labtest.New(t)
	if err := l.Impair(100, 0); err != nil {
		t.Fatalf("Impair(100, 0): %v", err)
	}
	if loss, dup, err := l.Impairment(); err != nil || loss != 100 || dup != 0 {
		t.Errorf("Impairment() = %d, %d, %v; want 100, 0, nil", loss, dup, err)
	}
	if got := impairTables(t, l.Target); len(got) != 1 || got[0] != lab.ImpairTable(l.Prefix) {
		t.Errorf("tables in the target = %q, want [%s]", got, lab.ImpairTable(l.Prefix))
	}
	if got := impairTables(t, l.Prober); len(got) != 1 || got[0] != lab.ImpairTable(l.Prefix) {
		t.Errorf("tables in the prober = %q, want [%s]", got, lab.ImpairTable(l.Prefix))
	}

	// Prober → target: the SYN is dropped at the target's ingress.
	tin0, _ := tcpCounters(t, l.Target)
	if err := connectFrom(l.Prober, netip.AddrPortFrom(l.TargetAddr, lab.PortEcho), 300*time.Millisecond); err == nil {
		t.Errorf("a connection from the prober succeeded through 100%% loss")
	}
	if tin1, _ := tcpCounters(t, l.Target); tin1 != tin0 {
		t.Errorf("target received %d TCP segments through 100%% loss, want 0", tin1-tin0)
	}

	// Target → prober: the SYN leaves the target (its kernel counts it) and
	// is dropped at the prober's ingress.
	var ln net.Listener
	if err := l.Prober.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.ProberAddr, 0).String())
		return err
	}); err != nil {
		t.Fatalf("listen in the prober: %v", err)
	}
	defer ln.Close()
	pin0, _ := tcpCounters(t, l.Prober)
	_, tout0 := tcpCounters(t, l.Target)
	to, _ := netip.ParseAddrPort(ln.Addr().String())
	if err := connectFrom(l.Target, to, 300*time.Millisecond); err == nil {
		t.Errorf("a connection from the target succeeded through 100%% loss")
	}
	if pin1, _ := tcpCounters(t, l.Prober); pin1 != pin0 {
		t.Errorf("prober received %d TCP segments through 100%% loss, want 0", pin1-pin0)
	}
	if _, tout1 := tcpCounters(t, l.Target); tout1 == tout0 {
		t.Errorf("the target sent nothing: a loss must happen on the way, not in the sender")
	}

	// Cleared: the path works again and no table is left.
	if err := l.ClearImpairment(); err != nil {
		t.Fatalf("ClearImpairment: %v", err)
	}
	if err := connectFrom(l.Prober, netip.AddrPortFrom(l.TargetAddr, lab.PortEcho), 2*time.Second); err != nil {
		t.Errorf("connect after ClearImpairment: %v", err)
	}
	for _, ns := range []*netns.NS{l.Target, l.Prober} {
		if got := impairTables(t, ns); len(got) != 0 {
			t.Errorf("tables in %s after ClearImpairment = %q", ns.Name, got)
		}
	}
	if loss, dup, err := l.Impairment(); err != nil || loss != 0 || dup != 0 {
		t.Errorf("Impairment() after clearing = %d, %d, %v; want 0, 0, nil", loss, dup, err)
	}
	if err := l.ClearImpairment(); err != nil {
		t.Errorf("ClearImpairment twice: %v", err)
	}
}

// TestImpairDupEveryone duplicates every TCP segment both ways: each end
// receives exactly twice what the other sent.
func TestImpairDupEveryone(t *testing.T) {
	l := labtest.New(t)
	if err := l.Impair(0, 100); err != nil {
		t.Fatalf("Impair(0, 100): %v", err)
	}
	if loss, dup, err := l.Impairment(); err != nil || loss != 0 || dup != 100 {
		t.Errorf("Impairment() = %d, %d, %v; want 0, 100, nil", loss, dup, err)
	}
	pin0, pout0 := tcpCounters(t, l.Prober)
	tin0, tout0 := tcpCounters(t, l.Target)
	c := dial(t, l, lab.PortEcho)
	for i := range 5 {
		msg := fmt.Sprintf("line %d\n", i)
		write(t, c, msg)
		if got := readLine(t, c); got != msg {
			t.Fatalf("echo = %q, want %q", got, msg)
		}
	}
	c.CloseWrite()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read to EOF: %v", err)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond) // the last ACKs land
	pin1, pout1 := tcpCounters(t, l.Prober)
	tin1, tout1 := tcpCounters(t, l.Target)
	pin, pout, tin, tout := pin1-pin0, pout1-pout0, tin1-tin0, tout1-tout0
	t.Logf("prober sent %d received %d; target sent %d received %d", pout, pin, tout, tin)
	if pout == 0 || tout == 0 {
		t.Fatalf("no TCP traffic counted")
	}
	if tin != 2*pout {
		t.Errorf("target received %d segments for %d sent by the prober, want exactly twice", tin, pout)
	}
	if pin != 2*tout {
		t.Errorf("prober received %d segments for %d sent by the target, want exactly twice", pin, tout)
	}
	if err := l.ClearImpairment(); err != nil {
		t.Fatalf("ClearImpairment: %v", err)
	}
	if got := impairTables(t, l.Prober); len(got) != 0 {
		t.Errorf("tables in the prober after ClearImpairment = %q", got)
	}
}

// TestImpairPartialLoss checks the percentage (and so the byte order of the
// comparison): with 50% loss about half of the SYNs sent reach the target.
func TestImpairPartialLoss(t *testing.T) {
	l := labtest.New(t)
	if err := l.Impair(50, 0); err != nil {
		t.Fatalf("Impair(50, 0): %v", err)
	}
	tin0, _ := tcpCounters(t, l.Target)
	_, pout0 := tcpCounters(t, l.Prober)
	// Bounded: 300 connection attempts to the closed port, each given up
	// after 5 ms, long before the SYN's retransmission.
	to := netip.AddrPortFrom(l.TargetAddr, lab.PortClosed)
	for range 300 {
		_ = connectFrom(l.Prober, to, 5*time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	tin1, _ := tcpCounters(t, l.Target)
	_, pout1 := tcpCounters(t, l.Prober)
	sent, got := pout1-pout0, tin1-tin0
	t.Logf("prober sent %d segments, target received %d", sent, got)
	// On a loaded machine an attempt given up after 5 ms may end before its
	// SYN leaves: the ratio is of the SYNs that did, and 250 of them still
	// keep 0.35-0.65 beyond 4.7σ.
	if sent < 250 {
		t.Fatalf("only %d segments sent for 300 attempts", sent)
	}
	// Binomial(300, 0.5): σ ≈ 8.7, so 0.35-0.65 is more than 5σ either way.
	ratio := float64(got) / float64(sent)
	if ratio < 0.35 || ratio > 0.65 {
		t.Errorf("%.2f of the segments arrived through 50%% loss, want about 0.5", ratio)
	}
}

func TestImpairRejectsBadRates(t *testing.T) {
	l := labtest.NewBare(t)
	for _, r := range [][2]int{{-1, 0}, {0, -1}, {101, 0}, {0, 101}} {
		if err := l.Impair(r[0], r[1]); err == nil {
			t.Errorf("Impair(%d, %d) succeeded", r[0], r[1])
		}
	}
	if got := impairTables(t, l.Target); len(got) != 0 {
		t.Errorf("tables after refused rates = %q", got)
	}
}
