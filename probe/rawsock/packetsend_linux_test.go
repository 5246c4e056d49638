package rawsock

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// vethLab is two namespaces joined by a veth: a (198.18.0.1/24 on "pa") and b (198.18.0.2/24 on "pb"). 198.18.0.3
// is a sink: a's neighbour table maps it to sinkMAC, which is not b's, so b drops its frames at the start of IP
// input (PACKET_OTHERHOST) and nothing answers.
type vethLab struct {
	a, b         *netns.NS
	aAddr, bAddr netip.Addr
	aMAC, bMAC   [6]byte
	sink         netip.Addr
}

// sinkMAC is a locally administered unicast address (IEEE 802 bit 1 of the first octet) that no interface has.
var sinkMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}

func newVethLab(t testing.TB) *vethLab {
	t.Helper()
	l := &vethLab{a: newNSTB(t), b: newNSTB(t), aAddr: netip.MustParseAddr("198.18.0.1"),
		bAddr: netip.MustParseAddr("198.18.0.2"), sink: netip.MustParseAddr("198.18.0.3")}
	do := func(ns *netns.NS, what string, fn func() error) {
		t.Helper()
		if err := ns.Do(fn); err != nil {
			if (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EPERM)) && os.Getenv("CI") != "true" {
				t.Skipf("%s needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): %v", what, err)
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
	do(l.a, "add veth", func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pa"}, PeerName: "pb", PeerNamespace: netlink.NsFd(l.b.Fd())})
	})
	up := func(ns *netns.NS, name string, addr netip.Addr, mac *[6]byte) {
		do(ns, "configure "+name, func() error {
			lk, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(lk, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lk); err != nil {
				return err
			}
			*mac = [6]byte(lk.Attrs().HardwareAddr)
			return nil
		})
	}
	up(l.a, "pa", l.aAddr, &l.aMAC)
	up(l.b, "pb", l.bAddr, &l.bMAC)
	do(l.a, "wait for the veth and add the sink's neighbour", func() error {
		lk, err := netlink.LinkByName("pa")
		if err != nil {
			return err
		}
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: l.sink.AsSlice(), HardwareAddr: sinkMAC[:]}); err != nil {
			return fmt.Errorf("sink neighbour: %w", err)
		}
		// Until linkwatch runs, the device sits on noop_qdisc and drops what the IP path sends.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if lk, err := netlink.LinkByName("pa"); err == nil && lk.Attrs().OperState == netlink.OperUp {
				return nil
			}
		}
		return errors.New("veth pa not operationally up after 3s")
	})
	return l
}

// newNSTB is newNS for benchmarks too.
func newNSTB(t testing.TB) *netns.NS {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "twt-pktsend-" + hex.EncodeToString(b[:])
	ns, err := netns.Create(name)
	if err != nil {
		if (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EPERM)) && os.Getenv("CI") != "true" {
			t.Skipf("create network namespace needs root (CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

// link finds and resolves the link from a to dst, triggering ARP with a SYN on the IP path.
func (l *vethLab) link(t *testing.T, dst netip.Addr) Link {
	t.Helper()
	s := newSender(t, l.a)
	var lk Link
	in(t, l.a, "resolve the link", func() (err error) {
		if lk, err = FindLink(dst, dst, 0); err != nil {
			return err
		}
		trigger := func() error {
			return s.Send(seg{src: l.aAddr, dst: l.bAddr, sport: 40000, dport: 9, flags: flagSYN}.packet(), l.bAddr)
		}
		lk, err = ResolveNextHop(lk, trigger, 2*time.Second)
		return err
	})
	return lk
}

func newPacketSenderIn(t *testing.T, ns *netns.NS, lk Link, cooked bool) *PacketSender {
	t.Helper()
	var s *PacketSender
	in(t, ns, "NewPacketSender", func() (err error) { s, err = newPacketSender(lk, 0x7777, cooked); return err })
	t.Cleanup(func() { s.Close() })
	return s
}

// tcpToPort is a PacketReceiver program keeping TCP segments to port (IPv4 header without options).
func tcpToPort(port uint16) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 22, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	}
}

// Frames sent on the packet path arrive at the target byte for byte, and its TCP accepts them (it answers each
// SYN to a closed port with a RST, which it only does for a segment with valid checksums); packet taps on the
// sending host do not see them (qdisc bypass).
func TestPacketSenderDelivers(t *testing.T) {
	for _, cooked := range []bool{false, true} {
		t.Run(fmt.Sprintf("cooked=%v", cooked), func(t *testing.T) {
			l := newVethLab(t)
			lk := l.link(t, l.bAddr)
			if lk.Dst != l.bMAC || lk.Src != l.aMAC || lk.NextHop != l.bAddr || lk.Name != "pa" || lk.MTU != 1500 {
				t.Fatalf("link = %+v; want pa, next hop %v with MAC %v, ours %v", lk, l.bAddr, net.HardwareAddr(l.bMAC[:]), net.HardwareAddr(l.aMAC[:]))
			}
			const dport, sport, n = 7, 41000, 100
			var capTarget, capHere *PacketReceiver
			in(t, l.b, "capture at the target", func() (err error) { capTarget, err = NewPacketReceiver(tcpToPort(dport)); return err })
			t.Cleanup(func() { capTarget.Close() })
			in(t, l.a, "capture here", func() (err error) { capHere, err = NewPacketReceiver(tcpToPort(dport)); return err })
			t.Cleanup(func() { capHere.Close() })
			rsts := newReceiver(t, l.a, Filter{Remote: netip.PrefixFrom(l.bAddr, 32), RemotePort: dport, LocalLo: sport, LocalHi: sport})
			s := newPacketSenderIn(t, l.a, lk, cooked)

			pkts := make([][]byte, n) // two sendmmsg calls
			dsts := make([]netip.Addr, n)
			for i := range pkts {
				pkts[i] = seg{src: l.aAddr, dst: l.bAddr, sport: sport, dport: dport, seq: uint32(1000 + i), flags: flagSYN}.packet()
				dsts[i] = l.bAddr
			}
			if sent, err := s.SendBatch(pkts, dsts); err != nil || sent != n {
				t.Fatalf("SendBatch = %d, %v; want %d, nil", sent, err, n)
			}
			buf := make([]byte, 2048)
			for i := range n {
				capTarget.SetReadDeadline(time.Now().Add(2 * time.Second))
				k, _, err := capTarget.Read(buf)
				if err != nil {
					t.Fatalf("frame %d did not arrive at the target: %v", i, err)
				}
				if !bytes.Equal(buf[:k], pkts[i]) {
					t.Fatalf("frame %d arrived as %x, sent %x", i, buf[:k], pkts[i])
				}
				p, _, err := readTCP(t, rsts, 2*time.Second)
				if err != nil {
					t.Fatalf("no RST from the target for SYN %d: %v", i, err)
				}
				if p.flags&flagRST == 0 || p.ack != uint32(1000+i+1) {
					t.Fatalf("reply %d: flags %#x ack %d, want a RST acking %d", i, p.flags, p.ack, 1000+i+1)
				}
			}
			capHere.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			for {
				k, _, err := capHere.Read(buf)
				if err != nil {
					break
				}
				// The kernel's own RSTs go through the qdisc and are seen; our SYNs must not be.
				if p, ok := parse(buf[:k]); ok && p.flags&flagSYN != 0 {
					t.Fatalf("a tap on the sending host saw our SYN %x: qdisc bypass is off", buf[:k])
				}
			}
		})
	}
}

func TestPacketSenderErrors(t *testing.T) {
	l := newVethLab(t)
	lk := l.link(t, l.bAddr)
	s := newPacketSenderIn(t, l.a, lk, false)
	good := seg{src: l.aAddr, dst: l.sink, sport: 41000, dport: 7, flags: flagSYN}.packet()
	for _, tc := range []struct {
		name string
		pkt  []byte
		dst  netip.Addr
	}{
		{"short", good[:12], l.sink},
		{"other destination", good, l.bAddr},
		{"IPv6 destination", good, netip.MustParseAddr("2001:db8::1")},
		{"not IPv4", append([]byte{0x65}, good[1:]...), l.sink},
		{"larger than the MTU", append(append([]byte(nil), good...), make([]byte, 1500)...), l.sink},
	} {
		if err := s.Send(tc.pkt, tc.dst); err == nil {
			t.Errorf("%s: Send returned no error", tc.name)
		}
	}
	pkts := [][]byte{good, good, good[:8], good}
	dsts := []netip.Addr{l.sink, l.sink, l.sink, l.sink}
	if sent, err := s.SendBatch(pkts, dsts); sent != 2 || err == nil {
		t.Errorf("SendBatch with a bad third packet = %d, %v; want 2 and an error", sent, err)
	}
	if _, err := s.SendBatch(pkts[:2], dsts[:1]); err == nil {
		t.Error("SendBatch with mismatched lengths: no error")
	}
	if _, err := NewPacketSender(Link{Index: lk.Index, Name: "pa"}, 0); err == nil {
		t.Error("NewPacketSender without a next-hop MAC: no error")
	}
	s.Close()
	if err := s.Send(good, l.sink); !errors.Is(err, errClosed) {
		t.Errorf("Send after Close = %v, want errClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPacketSenderAllocs(t *testing.T) {
	l := newVethLab(t)
	lk := l.link(t, l.bAddr)
	for _, cooked := range []bool{false, true} {
		s := newPacketSenderIn(t, l.a, lk, cooked)
		pkts := make([][]byte, maxBatch)
		dsts := make([]netip.Addr, maxBatch)
		for i := range pkts {
			pkts[i] = seg{src: l.aAddr, dst: l.sink, sport: 41000, dport: uint16(i + 1), flags: flagSYN}.packet()
			dsts[i] = l.sink
		}
		if a := testing.AllocsPerRun(100, func() {
			if _, err := s.SendBatch(pkts, dsts); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("cooked=%v: SendBatch of %d: %v allocs/op, want 0", cooked, maxBatch, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			if err := s.Send(pkts[0], dsts[0]); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("cooked=%v: Send: %v allocs/op, want 0", cooked, a)
		}
	}
}

// The cases where a caller must fall back to the IP path, and the ones it need not.
func TestFindLink(t *testing.T) {
	l := newVethLab(t)
	gw := l.bAddr
	in(t, l.a, "add routes", func() error {
		lk, err := netlink.LinkByName("pa")
		if err != nil {
			return err
		}
		for _, r := range []struct {
			dst string
			gw  net.IP
		}{{"198.19.0.0/24", gw.AsSlice()}, {"198.19.1.0/24", gw.AsSlice()}, {"198.19.1.128/25", nil}} {
			_, dst, _ := net.ParseCIDR(r.dst)
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: lk.Attrs().Index, Dst: dst, Gw: r.gw}); err != nil {
				return fmt.Errorf("route %s: %w", r.dst, err)
			}
		}
		return nil
	})
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name        string
		first, last netip.Addr
		nextHop     netip.Addr // zero: ErrNoLinkLayer
	}{
		{"one host on the link", l.bAddr, l.bAddr, l.bAddr},
		{"a range behind a gateway", a("198.19.0.0"), a("198.19.0.255"), gw},
		{"one host behind a gateway", a("198.19.0.7"), a("198.19.0.7"), gw},
		{"loopback", a("127.0.0.1"), a("127.0.0.1"), netip.Addr{}},
		{"our own address", l.aAddr, l.aAddr, netip.Addr{}},
		{"a range on the link", a("198.18.0.2"), a("198.18.0.9"), netip.Addr{}},
		{"a range split by a more specific route", a("198.19.1.0"), a("198.19.1.255"), netip.Addr{}},
		{"a range across two routes", a("198.19.0.200"), a("198.19.1.10"), netip.Addr{}},
		{"no route", a("198.20.0.1"), a("198.20.0.1"), netip.Addr{}},
	} {
		var lk Link
		var err error
		in(t, l.a, "FindLink", func() error { lk, err = FindLink(tc.first, tc.last, 0); return nil })
		switch {
		case !tc.nextHop.IsValid() && !errors.Is(err, ErrNoLinkLayer):
			t.Errorf("%s: FindLink(%v, %v) = %+v, %v; want an error matching ErrNoLinkLayer", tc.name, tc.first, tc.last, lk, err)
		case tc.nextHop.IsValid() && (err != nil || lk.NextHop != tc.nextHop || lk.Name != "pa" || lk.Src != l.aMAC):
			t.Errorf("%s: FindLink(%v, %v) = %+v, %v; want next hop %v on pa", tc.name, tc.first, tc.last, lk, err, tc.nextHop)
		}
	}
	if _, err := FindLink(a("198.19.0.9"), a("198.19.0.1"), 0); err == nil || errors.Is(err, ErrNoLinkLayer) {
		t.Errorf("FindLink with last < first = %v; want a usage error", err)
	}
}

// A next hop that never answers ARP: the trigger runs once, and the wait is bounded.
func TestResolveNextHopGivesUp(t *testing.T) {
	l := newVethLab(t)
	var lk Link
	in(t, l.a, "FindLink", func() (err error) {
		lk, err = FindLink(netip.MustParseAddr("198.18.0.77"), netip.MustParseAddr("198.18.0.77"), 0)
		return err
	})
	s := newSender(t, l.a)
	calls := 0
	trigger := func() error {
		calls++
		return s.Send(seg{src: l.aAddr, dst: lk.NextHop, sport: 40000, dport: 9, flags: flagSYN}.packet(), lk.NextHop)
	}
	const wait = 300 * time.Millisecond
	start := time.Now()
	var err error
	in(t, l.a, "ResolveNextHop", func() error { _, err = ResolveNextHop(lk, trigger, wait); return nil })
	if d := time.Since(start); !errors.Is(err, ErrNoLinkLayer) || calls != 1 || d < wait || d > wait+time.Second {
		t.Errorf("ResolveNextHop = %v after %v with %d trigger calls; want ErrNoLinkLayer after about %v, one call", err, d, calls, wait)
	}
}

// BenchmarkSendPaths sends 44-byte SYNs in batches of 64 to the sink on each send path: run with -cpu 1 under
// taskset -c 0 for the rate of one core. The veth delivers on the sending CPU, so the sink's (cheap) drop is part
// of the cost.
func BenchmarkSendPaths(b *testing.B) {
	l := newVethLab(b)
	pkt := func(i int) []byte {
		p := seg{src: l.aAddr, dst: l.sink, sport: 41000, dport: uint16(i + 1), flags: flagSYN}.packet()
		return append(p, 2, 4, 5, 0xb4) // MSS option: 44 bytes, as a scan's SYN without the rest of its options
	}
	pkts := make([][]byte, maxBatch)
	dsts := make([]netip.Addr, maxBatch)
	for i := range pkts {
		pkts[i], dsts[i] = pkt(i), l.sink
	}
	type batcher interface {
		SendBatch([][]byte, []netip.Addr) (int, error)
		Close() error
	}
	for _, path := range []string{"raw", "packet", "cooked"} {
		b.Run(path, func(b *testing.B) {
			var s batcher
			err := l.a.Do(func() error {
				if path == "raw" {
					r, err := NewSender(0)
					s = r
					return err
				}
				lk, err := FindLink(l.sink, l.sink, 0)
				if err != nil {
					return err
				}
				lk.Dst = sinkMAC // what the raw path takes from the neighbour table
				p, err := newPacketSender(lk, 0, path == "cooked")
				s = p
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			sent := 0
			for sent < b.N {
				k := min(b.N-sent, maxBatch)
				n, err := s.SendBatch(pkts[:k], dsts[:k])
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "pps")
			// On a busy machine the wall rate says more about the neighbours than about us: the rate per CPU
			// second this process used (user + system, the veth's delivery included when it runs in our context).
			if cpu := cpuTime(b) - cpu0; cpu > 0 {
				b.ReportMetric(float64(sent)/cpu.Seconds(), "pps/cpu-s")
			}
		})
	}
}

// cpuTime is the user and system time this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
