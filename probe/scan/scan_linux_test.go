package scan

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// scanLab is a bare lab whose target has listeners on Open, drops SYNs to Dropped and rejects them with ICMP
// 3/13 (administratively prohibited) on Rejected; every other port is closed.
type scanLab struct {
	*lab.Lab
	Open, Dropped, Rejected []uint16
}

func (sl *scanLab) expect(typ Type, port uint16) State {
	switch {
	case slices.Contains(sl.Rejected, port):
		return Filtered
	case slices.Contains(sl.Dropped, port):
		if typ == TypeSYN || typ == TypeACK || typ == TypeWindow {
			return Filtered
		}
		return OpenFiltered
	}
	open := slices.Contains(sl.Open, port)
	switch typ {
	case TypeSYN:
		if open {
			return Open
		}
		return Closed
	case TypeACK:
		return Unfiltered
	case TypeFIN, TypeNULL, TypeXmas:
		// RFC 9293 §3.10.7.2: LISTEN drops a segment without SYN, ACK or RST.
		if open {
			return OpenFiltered
		}
		return Closed
	}
	// Window: Linux's RSTs carry a zero window, open or closed. Maimon: Linux answers FIN+ACK in LISTEN with a
	// RST, as RFC 9293 says for any ACK there.
	return Closed
}

// newScanLab makes the lab with nOpen random open ports (plus the fixed ones given), and the filtered ones.
func newScanLab(t *testing.T, open []uint16, nOpen int, dropped, rejected []uint16) *scanLab {
	t.Helper()
	sl := &scanLab{Lab: labtest.NewBare(t), Dropped: dropped, Rejected: rejected}
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	taken := map[uint16]bool{}
	for _, p := range append(append(slices.Clone(open), dropped...), rejected...) {
		taken[p] = true
	}
	sl.Open = slices.Clone(open)
	for len(sl.Open) < len(open)+nOpen {
		p := uint16(1 + r.IntN(65535))
		if !taken[p] {
			taken[p] = true
			sl.Open = append(sl.Open, p)
		}
	}
	slices.Sort(sl.Open)
	err := sl.Target.Do(func() error {
		// The target answers every rejected probe: no ICMP rate limit (RFC 1812 §4.3.2.8 allows one; Linux's
		// default is a token per second per peer).
		// The same for ICMPv6 (RFC 4443 §2.4 (f) asks for a limit; Linux's is per peer, too).
		for _, f := range []string{"/proc/sys/net/ipv4/icmp_ratelimit", "/proc/sys/net/ipv6/icmp/ratelimit"} {
			if err := os.WriteFile(f, []byte("0"), 0); err != nil {
				return fmt.Errorf("turn off the ICMP rate limit: %w", err)
			}
		}
		// Every open port listens on both families, as a dual-stack server does.
		for _, p := range sl.Open {
			for _, a := range []netip.Addr{sl.TargetAddr, sl.TargetAddr6} {
				ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, p)))
				if err != nil {
					return fmt.Errorf("listen on %v port %d: %w", a, p, err)
				}
				t.Cleanup(func() { ln.Close() })
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lab target: %v", err)
	}
	firewall(t, sl.Target.Fd(), dropped, rejected)
	return sl
}

// firewall installs, in the namespace fd, `tcp dport P drop` for dropped and `tcp dport P reject with icmpx type
// admin-prohibited` for rejected (ICMP 3/13 to IPv4, ICMPv6 1/1 to IPv6), in an inet table (both families) with a
// random name removed at cleanup.
func firewall(t *testing.T, fd int, dropped, rejected []uint16) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	var b [4]byte
	rand.Read(b[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_scan_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyINet})
	pol := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &pol})
	rule := func(port uint16, verdict expr.Any) {
		var p [2]byte
		binary.BigEndian.PutUint16(p[:], port)
		c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p[:]},
			verdict,
		}})
	}
	for _, p := range dropped {
		rule(p, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	for _, p := range rejected {
		rule(p, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	}
	if err := c.Flush(); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
		}
	})
}

// check compares every port's verdict with the lab's truth and returns the number of mismatches; the target is
// the lab's IPv4 or IPv6 address, as the scan's family.
func (sl *scanLab) check(t *testing.T, res *Result, ports []uint16) int {
	t.Helper()
	target, icmpType, icmpCode := sl.TargetAddr, uint8(3), uint8(13)
	if res.Local.Addr().Is6() {
		target, icmpType, icmpCode = sl.TargetAddr6, 1, 1 // RFC 4443 §3.1: administratively prohibited
	}
	got := map[uint16]PortResult{}
	for pr := range res.PortResults(target) {
		got[pr.Port] = pr
	}
	bad := 0
	for _, p := range ports {
		want := sl.expect(res.Type, p)
		g, ok := got[p]
		if !ok || g.State != want {
			if bad < 10 {
				t.Errorf("%v scan: port %d is %v (%v, reported %v), want %v", res.Type, p, g.State, g.Reason, ok, want)
			}
			bad++
			continue
		}
		if slices.Contains(sl.Rejected, p) && (g.Reason.Kind != ReasonICMP || g.Reason.ICMPType != icmpType ||
			g.Reason.ICMPCode != icmpCode || g.Reason.From != target || g.Reason.ICMPv6 != target.Is6()) {
			t.Errorf("%v scan: port %d: reason %v, want icmp %d/%d from %v", res.Type, p, g.Reason, icmpType, icmpCode, target)
		}
	}
	if len(got) != len(ports) {
		t.Errorf("%v scan: %d ports reported, want %d", res.Type, len(got), len(ports))
	}
	return bad
}

func portRange(lo, hi uint16) []uint16 {
	var ps []uint16
	for p := uint32(lo); p <= uint32(hi); p++ {
		ps = append(ps, uint16(p))
	}
	return ps
}

func run(t *testing.T, cfg *Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	return res
}

// The full sweep: 50 random open ports among 65535, five dropped, five rejected, the rest closed; every port
// classified correctly, three times over (each run has its own key, source port and order).
func TestFullSweep(t *testing.T) {
	sl := newScanLab(t, nil, 50, []uint16{7, 1000, 30000, 50001, 65535}, []uint16{1, 999, 20000, 40000, 65000})
	all := portRange(1, 65535)
	for i := range 3 {
		start := time.Now()
		res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)}, Ports: AllPorts,
			Rate: 100_000, Retries: 2, Wait: 300 * time.Millisecond, Seed: uint64(i), NetNS: sl.Prober})
		bad := sl.check(t, res, all)
		t.Logf("sweep %d: %d probes (%d retried) in %v, %.0f probes/s while sending; %d replies, %d ignored, guard dropped %d; %d wrong",
			i+1, res.Sent, res.Retried, time.Since(start).Round(time.Millisecond), res.SendRate(), res.Replies, res.Ignored, res.GuardDropped, bad)
		if res.Count(Open) != uint64(len(sl.Open)) {
			t.Errorf("sweep %d: %d open, want %d", i+1, res.Count(Open), len(sl.Open))
		}
		if res.GuardDropped == 0 {
			t.Errorf("sweep %d: the guard dropped no local RST, but %d SYN-ACKs came", i+1, len(sl.Open))
		}
		if res.Probed != 65535 || res.Interrupted {
			t.Errorf("sweep %d: probed %d of 65535, interrupted %v", i+1, res.Probed, res.Interrupted)
		}
	}
	// We closed every half-open connection ourselves: no request socket waits on the target.
	socks, err := sockdiag.Dump(sl.Target)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s.State == sockdiag.NewSynRecv || s.State == sockdiag.SynRecv {
			t.Errorf("half-open connection left on the target: %v -> %v", s.Remote, s.Local)
		}
	}
	if tabs, err := guard.Tables(sl.Prober.Fd()); err != nil || len(tabs) != 0 {
		t.Errorf("guard tables left in the prober: %v (%v)", tabs, err)
	}
}

// Every scan type gives nmap's reading of the same lab, over IPv4 and over IPv6 (the lab is dual-stack: its
// listeners and firewall rules cover both families).
func TestScanTypes(t *testing.T) {
	sl := newScanLab(t, []uint16{22, 80, 443}, 5, []uint16{25, 8080}, []uint16{23, 9000})
	ports := append(portRange(1, 100), sl.Open...)
	ports = append(ports, 8080, 9000)
	var pr []PortRange
	for _, p := range ports {
		pr = append(pr, PortRange{p, p})
	}
	pr = mergePorts(pr)
	ports = nil
	for _, r := range pr {
		ports = append(ports, portRange(r.Lo, r.Hi)...)
	}
	for _, target := range []netip.Addr{sl.TargetAddr, sl.TargetAddr6} {
		for _, typ := range []Type{TypeSYN, TypeACK, TypeFIN, TypeNULL, TypeXmas, TypeWindow, TypeMaimon} {
			t.Run(typ.String()+"/"+target.String(), func(t *testing.T) {
				res := run(t, &Config{Type: typ, Hosts: []netip.Prefix{netip.PrefixFrom(target, target.BitLen())}, Ports: pr,
					Rate: 20_000, Retries: 1, Wait: 200 * time.Millisecond, NetNS: sl.Prober})
				sl.check(t, res, ports)
			})
		}
	}
}

// TestScanIPv6: a SYN scan of the lab's IPv6 address finds every open port the lab has, the same list as the scan
// of its IPv4 address, and reads every other port right (closed, dropped filtered, rejected filtered with ICMPv6
// 1/1 from the target). The RST guard covers the IPv6 flows, the scan resets every half-open connection itself,
// and nothing is left behind.
func TestScanIPv6(t *testing.T) {
	sl := newScanLab(t, []uint16{22, 80, 443}, 30, []uint16{25, 3000}, []uint16{23, 4000})
	ports := append(portRange(1, 5000), sl.Open...)
	var pr []PortRange
	for _, p := range ports {
		pr = append(pr, PortRange{p, p})
	}
	pr = mergePorts(pr)
	ports = nil
	for _, r := range pr {
		ports = append(ports, portRange(r.Lo, r.Hi)...)
	}
	open := map[netip.Addr][]uint16{}
	for _, target := range []netip.Addr{sl.TargetAddr6, sl.TargetAddr} {
		res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(target, target.BitLen())}, Ports: pr,
			Rate: 50_000, Retries: 2, Wait: 300 * time.Millisecond, NetNS: sl.Prober})
		if res.Local.Addr() != sl.ProberAddr6 && target.Is6() {
			t.Errorf("scan of %v ran from %v, want %v", target, res.Local.Addr(), sl.ProberAddr6)
		}
		bad := sl.check(t, res, ports)
		for p := range res.PortResults(target) {
			if p.State == Open {
				open[target] = append(open[target], p.Port)
			}
		}
		t.Logf("%v: %d probes, %d replies, %d ignored, guard dropped %d, path %v (%s); %d wrong",
			target, res.Sent, res.Replies, res.Ignored, res.GuardDropped, res.SendPath, res.SendPathNote, bad)
		if res.GuardDropped == 0 {
			t.Errorf("%v: the guard dropped no local RST, but %d SYN-ACKs came", target, len(sl.Open))
		}
		if hs := res.HostResults(); len(hs) != 1 || hs[0].Addr != target || hs[0].Status != HostUp {
			t.Errorf("%v: hosts %+v, want the target up", target, hs)
		}
	}
	if !slices.Equal(open[sl.TargetAddr6], sl.Open) || !slices.Equal(open[sl.TargetAddr6], open[sl.TargetAddr]) {
		t.Errorf("open over IPv6 %v, over IPv4 %v; the lab has %v", open[sl.TargetAddr6], open[sl.TargetAddr], sl.Open)
	}
	socks, err := sockdiag.Dump(sl.Target)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s.State == sockdiag.NewSynRecv || s.State == sockdiag.SynRecv {
			t.Errorf("half-open connection left on the target: %v -> %v", s.Remote, s.Local)
		}
	}
	if tabs, err := guard.Tables(sl.Prober.Fd()); err != nil || len(tabs) != 0 {
		t.Errorf("guard tables left in the prober: %v (%v)", tabs, err)
	}
}

// Replies that do not carry the cookie are ignored: a forger in the target namespace answers every probe to a
// dropped port with SYN-ACKs and RSTs that acknowledge the wrong numbers; the port stays filtered.
func TestWrongCookieIgnored(t *testing.T) {
	const forged, sport = 4444, 62000
	sl := newScanLab(t, []uint16{80}, 0, []uint16{forged}, nil)
	var snd *rawsock.Sender
	if err := sl.Target.Do(func() (err error) { snd, err = rawsock.NewSender(0); return err }); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	defer snd.Close()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		sent := 0
		defer func() { done <- sent }()
		pkts := make([][]byte, 0, 3)
		for i, f := range []craft.Flags{craft.FlagSYN | craft.FlagACK, craft.FlagRST | craft.FlagACK, craft.FlagRST} {
			seg := craft.Segment{Src: sl.TargetAddr, Dst: sl.ProberAddr, SrcPort: forged, DstPort: sport, Flags: f,
				Seq: uint32(1000 + i), Ack: uint32(7 + i), Window: 512}
			b := make([]byte, seg.Len())
			if _, err := seg.Encode(b); err != nil {
				return
			}
			pkts = append(pkts, b)
		}
		for range 400 { // bounded: 400 rounds of 3, 2 s at most
			for _, p := range pkts {
				if snd.Send(p, sl.ProberAddr) == nil {
					sent++
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)},
		Ports: []PortRange{{80, 80}, {forged, forged}}, SourcePort: sport, Rate: 100, Retries: 1,
		Wait: 300 * time.Millisecond, NetNS: sl.Prober})
	close(stop)
	sent := <-done
	sl.check(t, res, []uint16{80, forged})
	if sent == 0 || res.Ignored == 0 {
		t.Errorf("forged %d replies, scan ignored %d: the test did not test", sent, res.Ignored)
	}
	if res.Replies != 1 {
		t.Errorf("%d replies matched, want 1 (port 80's SYN-ACK)", res.Replies)
	}
}

// Two shards of a scan, run one after the other in the same lab, report every port exactly once between them.
func TestShardsInLab(t *testing.T) {
	sl := newScanLab(t, nil, 10, []uint16{5}, nil)
	ports := portRange(1, 2000)
	seen := map[uint16]int{}
	for i := uint64(1); i <= 3; i++ {
		res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)},
			Ports: []PortRange{{1, 2000}}, Shard: Shard{i, 3}, Seed: 99, Rate: 50_000, Retries: 1,
			Wait: 200 * time.Millisecond, NetNS: sl.Prober})
		for pr := range res.PortResults(sl.TargetAddr) {
			seen[pr.Port]++
			if want := sl.expect(TypeSYN, pr.Port); pr.State != want {
				t.Errorf("shard %d/3: port %d %v, want %v", i, pr.Port, pr.State, want)
			}
		}
		if res.Targets != (Shard{i, 3}).size(2000) || res.Sent < res.Targets {
			t.Errorf("shard %d/3: %d targets, %d sent", i, res.Targets, res.Sent)
		}
	}
	for _, p := range ports {
		if seen[p] != 1 {
			t.Errorf("port %d reported by %d shards, want 1", p, seen[p])
		}
	}
}

// Cancelling stops the scan early; the result says so and holds only what was probed.
func TestCancel(t *testing.T) {
	sl := newScanLab(t, nil, 0, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	start := time.Now()
	res, err := Run(ctx, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)},
		Ports: AllPorts, Rate: 1000, NetNS: sl.Prober})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after the cancel", d)
	}
	if !res.Interrupted || res.Probed == 0 || res.Probed >= 2000 {
		t.Errorf("interrupted %v, probed %d: want an interrupted scan of a few hundred probes", res.Interrupted, res.Probed)
	}
	n := 0
	for range res.PortResults(sl.TargetAddr) {
		n++
	}
	if uint64(n) != res.Probed {
		t.Errorf("%d ports reported, %d probed", n, res.Probed)
	}
}

// TestScanOwnSourcePort: a scan of its own address that covers its own
// source port (scan --sport 62000 -p 61995-62005 <prober>) sees its probe to
// that port come back as itself, a bare SYN from that port: it must not be
// reported open (a split handshake) but skipped, and every other port of the
// prober's own kernel reads closed.
func TestScanOwnSourcePort(t *testing.T) {
	l := labtest.NewBare(t)
	const sport = 62000
	for _, hosts := range []netip.Prefix{netip.PrefixFrom(l.ProberAddr, 32), netip.MustParsePrefix("198.18.0.0/28")} {
		t.Run(hosts.String(), func(t *testing.T) {
			res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{hosts}, Ports: []PortRange{{61995, 62005}},
				SourcePort: sport, NetNS: l.Prober, Rate: 2000, Wait: 300 * time.Millisecond})
			seen := map[uint16]bool{}
			for pr := range res.PortResults(l.ProberAddr) {
				seen[pr.Port] = true
				if pr.Port == sport {
					t.Errorf("the scan's own source port %d reported %v (%v), want it skipped", sport, pr.State, pr.Reason)
				} else if pr.State != Closed {
					t.Errorf("port %d of the prober's own kernel: %v (%v), want closed", pr.Port, pr.State, pr.Reason)
				}
			}
			if len(seen) != 10 {
				t.Errorf("%d ports of the prober reported, want 10 (11 less the own one)", len(seen))
			}
			if res.Count(Open) != 0 {
				t.Errorf("%d open ports, want 0", res.Count(Open))
			}
			own := slices.IndexFunc(res.Skipped, func(sk SkippedHost) bool { return sk.Addr == l.ProberAddr })
			if own < 0 || res.Skipped[own].Port != sport || res.Skipped[own].Targets != 1 {
				t.Errorf("Skipped = %+v, want %v port %d among them", res.Skipped, l.ProberAddr, sport)
			}
		})
	}
}

// warnLog collects a scan's warnings.
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnLog) add(m string) { w.mu.Lock(); w.msgs = append(w.msgs, m); w.mu.Unlock() }

func (w *warnLog) all() []string { w.mu.Lock(); defer w.mu.Unlock(); return slices.Clone(w.msgs) }

// outputDrop installs `tcp dport P drop` at the output hook of the namespace fd: the kernel then refuses
// (EPERM) every raw send to port P.
func outputDrop(t *testing.T, fd int, port uint16) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	var b [4]byte
	rand.Read(b[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_out_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyIPv4})
	pol := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &pol})
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p[:]},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
		}
	})
}

// TestScanCarriesOnPastOutputDrop: a local OUTPUT rule that drops one port makes the kernel refuse those probes
// (EPERM). The scan goes on, reports that port filtered with the reason (not-sent), the others as they are, and
// warns once; on every send path.
func TestScanCarriesOnPastOutputDrop(t *testing.T) {
	sl := newScanLab(t, []uint16{7001}, 0, nil, nil)
	const dropped = 7005
	outputDrop(t, sl.Prober.Fd(), dropped)
	for _, path := range []SendPath{SendRaw, SendAuto} {
		t.Run(path.String(), func(t *testing.T) {
			var w warnLog
			ports := portRange(7000, 7010)
			res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)},
				Ports: []PortRange{{7000, 7010}}, NetNS: sl.Prober, SendPath: path, Rate: 1000, Wait: 300 * time.Millisecond, Warn: w.add})
			for pr := range res.PortResults(sl.TargetAddr) {
				want := sl.expect(TypeSYN, pr.Port)
				if pr.Port == dropped && res.SendPath == SendRaw {
					want = Filtered
					if pr.Reason.Kind != ReasonNotSent || !strings.Contains(pr.Reason.String(), "not permitted") {
						t.Errorf("port %d: reason %v, want not-sent (operation not permitted ...)", pr.Port, pr.Reason)
					}
				}
				if pr.State != want {
					t.Errorf("port %d: %v (%v), want %v", pr.Port, pr.State, pr.Reason, want)
				}
			}
			if n := len(slices.Collect(res.PortResults(sl.TargetAddr))); n != len(ports) {
				t.Errorf("%d ports reported, want %d", n, len(ports))
			}
			if res.SendPath == SendRaw {
				if len(res.NotSent) != 1 || res.NotSent[0].Targets != 1 || res.NotSent[0].First != netip.AddrPortFrom(sl.TargetAddr, dropped) {
					t.Errorf("NotSent = %+v, want one reason for %v:%d", res.NotSent, sl.TargetAddr, dropped)
				}
				if ws := w.all(); len(ws) != 1 || !strings.Contains(ws[0], "not permitted") {
					t.Errorf("warnings %q, want one about the refused probe", ws)
				}
			}
		})
	}
}

// TestScanCarriesOnPastNoRoute: a /22 of which only the first /24 has a route here. The scan does not stop at
// "no route to 198.18.3.255": it probes the routed hosts and marks the 768 others not-sent, warning once.
func TestScanCarriesOnPastNoRoute(t *testing.T) {
	sl := newScanLab(t, []uint16{7001}, 0, nil, nil)
	var w warnLog
	res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/22")}, Ports: []PortRange{{7001, 7001}},
		NetNS: sl.Prober, Rate: 20000, Wait: 300 * time.Millisecond, Warn: w.add})
	if res.Count(Open) != 1 {
		t.Errorf("%d open, want 1 (%v:7001)", res.Count(Open), sl.TargetAddr)
	}
	if len(res.NotSent) != 1 || res.NotSent[0].Targets != 768 || !strings.Contains(res.NotSent[0].Reason, "no route") {
		t.Errorf("NotSent = %+v, want 768 targets with no route", res.NotSent)
	}
	for pr := range res.PortResults(netip.MustParseAddr("198.18.3.255")) {
		if pr.State != Filtered || pr.Reason.Kind != ReasonNotSent {
			t.Errorf("198.18.3.255:7001: %v (%v), want filtered (not-sent)", pr.State, pr.Reason)
		}
	}
	if ws := w.all(); len(slices.DeleteFunc(ws, func(s string) bool { return !strings.Contains(s, "no route") })) != 1 {
		t.Errorf("warnings %q, want one about no route", w.all())
	}
}

// TestRetryPassProgress: during a retry pass every target has long been probed once, so the first pass's
// count says 100%; the pass must have its own: the silent targets it probes again, and an ETA from them.
func TestRetryPassProgress(t *testing.T) {
	s := testScanner(t, TypeSYN, []PortRange{{1, 1000}})
	s.cfg.Rate, s.cfg.Retries, s.cfg.Wait = 100, 2, time.Second
	s.probed.Store(1000)
	s.pass.Store(1)
	s.passTargets.Store(400)
	s.passBase.Store(0)
	s.retried.Store(100)
	p := s.progress(time.Now(), time.Now())
	if p.PassTargets != 400 || p.PassSent != 100 {
		t.Errorf("retry pass progress %d/%d, want 100/400", p.PassSent, p.PassTargets)
	}
	// 300 probes left at 100/s, and the waits of passes 1 and 2.
	if want := 3*time.Second + 2*time.Second; p.ETA != want {
		t.Errorf("ETA %v during the retry pass, want %v", p.ETA, want)
	}
}
