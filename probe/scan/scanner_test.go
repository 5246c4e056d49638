package scan

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
)

var (
	testLocal   = netip.MustParseAddr("198.18.0.1")
	testTarget  = netip.MustParseAddr("198.18.0.2")
	testLocal6  = netip.MustParseAddr("2001:2::1")
	testTarget6 = netip.MustParseAddr("2001:2::2")
)

func testScanner(t testing.TB, typ Type, ports []PortRange) *scanner {
	return testScannerOf(t, testLocal, testTarget, typ, ports)
}

// testScannerOf is a scanner from local to the one host target, of either family.
func testScannerOf(t testing.TB, local, target netip.Addr, typ Type, ports []PortRange) *scanner {
	t.Helper()
	s, err := newScanner(&Config{
		Type: typ, Hosts: []netip.Prefix{netip.PrefixFrom(target, target.BitLen())}, Ports: ports,
		SourcePort: 61234, key: &sipKey{0x0123456789abcdef, 0xfedcba9876543210},
	}, func(*plan) (netip.Addr, error) { return local, nil })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// target is the one host of a test scanner.
func (s *scanner) testTarget() netip.Addr { return s.plan.prefixes[0].Addr() }

// probePacket is a probe parsed: its IP header (IPv4 or IPv6) and its TCP segment.
type probePacket struct {
	IP  []byte
	TCP craft.TCP
}

// parseAny parses an IPv4 or IPv6 TCP packet and checks both checksums (IPv6 has no header checksum).
func parseAny(t testing.TB, b []byte) (probePacket, netip.Addr, netip.Addr) {
	t.Helper()
	if len(b) > 0 && b[0]>>4 == 6 {
		p, err := craft.ParseIPv6Packet(b)
		if err != nil {
			t.Fatal(err)
		}
		if !p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination()) {
			t.Fatalf("IPv6 packet to %v has a bad TCP checksum", p.IP.Destination())
		}
		return probePacket{IP: p.IP[:craft.IPv6HeaderSize], TCP: p.TCP}, p.IP.Source(), p.IP.Destination()
	}
	p, err := craft.ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if !p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination()) || !p.IP.IsChecksumValid() {
		t.Fatalf("IPv4 packet to %v has a bad checksum", p.IP.Destination())
	}
	return probePacket{IP: p.IP, TCP: p.TCP}, p.IP.Source(), p.IP.Destination()
}

// probeTo finds the probe of the scan to port and parses it.
func probeTo(t testing.TB, s *scanner, port uint16) probePacket {
	t.Helper()
	b := make([]byte, s.tmpl.Len())
	target := s.testTarget()
	for k := range s.size {
		dst, n, err := s.build(b, k)
		if err != nil {
			t.Fatalf("build %d: %v", k, err)
		}
		p, src, hdst := parseAny(t, b[:n])
		if dst != target || hdst != target || src != s.local {
			t.Fatalf("probe %d goes %v -> %v (to %v), want %v -> %v", k, src, hdst, dst, s.local, target)
		}
		if p.TCP.DestinationPort() == port {
			return p
		}
	}
	t.Fatalf("no probe to port %d", port)
	return probePacket{}
}

// reply builds the remote's segment to our source port.
func reply(t testing.TB, s *scanner, from uint16, flags craft.Flags, seq, ack uint32, win uint16) []byte {
	t.Helper()
	seg := craft.Segment{Src: s.testTarget(), Dst: s.local, SrcPort: from, DstPort: 61234, Flags: flags, Seq: seq, Ack: ack, Window: win}
	b := make([]byte, seg.Len())
	if _, err := seg.Encode(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// A reply counts only when it acknowledges the probe's cookie as RFC 9293 says the remote must; anything else
// (stale, spoofed, off by one) is ignored and leaves the target unanswered.
func TestRepliesMatchedByCookie(t *testing.T) {
	type tc struct {
		name  string
		typ   Type
		reply func(p probePacket) (craft.Flags, uint32, uint32, uint16)
		want  State // State(0): ignored
	}
	seqOf := func(p probePacket) uint32 { return p.TCP.SequenceNumber() }
	ackOf := func(p probePacket) uint32 { return p.TCP.AckNumber() }
	rstAck := craft.FlagRST | craft.FlagACK
	cases := []tc{
		{"syn: syn-ack", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p) + 1, 65160
		}, Open},
		{"syn: syn-ack, wrong cookie", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p) + 2, 65160
		}, 0},
		{"syn: syn-ack acking the cookie itself", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p), 65160
		}, 0},
		{"syn: rst", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"syn: rst, wrong cookie", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return rstAck, 0, seqOf(p) ^ 0x8000, 0
		}, 0},
		{"syn: rst without ack", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, seqOf(p) + 1, 0, 0
		}, 0},
		{"syn: bare syn (split handshake)", TypeSYN, func(probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN, 5, 0, 65160
		}, Open},
		{"syn: plain ack", TypeSYN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagACK, 5, seqOf(p) + 1, 65160
		}, 0},
		{"ack: rst seq = our ack", TypeACK, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Unfiltered},
		{"ack: rst, wrong seq", TypeACK, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p) + 1, 0, 0
		}, 0},
		{"ack: syn-ack is no answer", TypeACK, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 1, seqOf(p) + 1, 0
		}, 0},
		{"window: rst with window", TypeWindow, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 512
		}, Open},
		{"window: rst, zero window", TypeWindow, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Closed},
		{"fin: rst ack = seq+1", TypeFIN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"fin: rst ack = seq", TypeFIN, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p), 0 }, 0},
		{"null: rst ack = seq", TypeNULL, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p), 0 }, Closed},
		{"null: rst ack = seq+1", TypeNULL, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, 0},
		{"xmas: rst ack = seq+1", TypeXmas, func(p probePacket) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"maimon: rst seq = our ack", TypeMaimon, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Closed},
		{"maimon: rst ack = seq+1 only", TypeMaimon, func(p probePacket) (craft.Flags, uint32, uint32, uint16) {
			return rstAck, 0, seqOf(p) + 1, 0
		}, 0},
	}
	for _, c := range cases {
		for _, fam := range [][2]netip.Addr{{testLocal, testTarget}, {testLocal6, testTarget6}} {
			t.Run(c.name+"/"+fam[1].String(), func(t *testing.T) { testReplyCase(t, c.typ, c.reply, c.want, fam[0], fam[1]) })
		}
	}
}

// testReplyCase is one case of TestRepliesMatchedByCookie, for the family of local and target.
func testReplyCase(t *testing.T, typ Type, replyFn func(p probePacket) (craft.Flags, uint32, uint32, uint16), want State, local, target netip.Addr) {
	c := struct {
		typ   Type
		reply func(p probePacket) (craft.Flags, uint32, uint32, uint16)
		want  State
	}{typ, replyFn, want}
	s := testScannerOf(t, local, target, c.typ, []PortRange{{20, 30}})
	p := probeTo(t, s, 25)
	if got := p.TCP.Flags(); got != c.typ.Flags() {
		t.Fatalf("probe flags %v, want %v", got, c.typ.Flags())
	}
	f, seq, ack, win := c.reply(p)
	rst := make([]byte, s.rst.Len())
	_, n := s.handleTCP(reply(t, s, 25, f, seq, ack, win), rst)
	slot, ok := s.slotOf(num(target), 25)
	if !ok {
		t.Fatal("port 25 has no slot")
	}
	a := s.table.get(slot)
	if c.want == 0 {
		if a != ansNone || s.ignored.Load() != 1 || s.replies.Load() != 0 {
			t.Errorf("reply not ignored: answer %d, ignored %d, replies %d", a, s.ignored.Load(), s.replies.Load())
		}
		return
	}
	if st, _ := classify(c.typ, a); a == ansNone || st != c.want {
		t.Errorf("state %v (answer %d), want %v", st, a, c.want)
	}
	if s.ignored.Load() != 0 || s.replies.Load() != 1 {
		t.Errorf("ignored %d, replies %d; want 0, 1", s.ignored.Load(), s.replies.Load())
	}
	if f == craft.FlagSYN|craft.FlagACK {
		// We close the half-open connection with RST, SEQ = our ISN + 1.
		if n == 0 {
			t.Fatal("no RST after the SYN-ACK")
		}
		r, src, dst := parseAny(t, rst[:n])
		if r.TCP.Flags() != craft.FlagRST || r.TCP.SequenceNumber() != p.TCP.SequenceNumber()+1 || r.TCP.DestinationPort() != 25 ||
			dst != target || src != local {
			t.Errorf("RST = %v seq %d %v -> %v:%d, want R seq %d %v -> %v:25", r.TCP.Flags(), r.TCP.SequenceNumber(),
				src, dst, r.TCP.DestinationPort(), p.TCP.SequenceNumber()+1, local, target)
		}
	} else if n != 0 {
		t.Errorf("sent a %d-byte packet after a %v", n, f)
	}
}

// Replies from outside the targets, to another port of ours or from an unscanned port are ignored.
func TestRepliesOutsideTheScanIgnored(t *testing.T) {
	s := testScanner(t, TypeSYN, []PortRange{{20, 30}})
	p := probeTo(t, s, 25)
	ok := reply(t, s, 25, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0)
	rst := make([]byte, s.rst.Len())
	for name, mod := range map[string]func([]byte){
		"other source":   func(b []byte) { b[15] = 3; craft.IPv4(b).UpdateChecksum() },
		"other dst port": func(b []byte) { binary.BigEndian.PutUint16(b[22:], 61235) },
		"unscanned port": func(b []byte) { binary.BigEndian.PutUint16(b[20:], 31) },
		"not to us":      func(b []byte) { b[19] = 9 },
		"short":          func(b []byte) {},
	} {
		b := append([]byte(nil), ok...)
		mod(b)
		if name == "short" {
			b = b[:30]
		}
		before := s.ignored.Load()
		s.handleTCP(b, rst)
		if s.ignored.Load() != before+1 || s.answered.Load() != 0 {
			t.Errorf("%s: not ignored (ignored %d -> %d, answered %d)", name, before, s.ignored.Load(), s.answered.Load())
		}
	}
	s.handleTCP(ok, rst)
	if s.answered.Load() != 1 {
		t.Error("the genuine RST was not recorded")
	}
}

func TestICMPMatchedByCookie(t *testing.T) {
	s := testScanner(t, TypeSYN, []PortRange{{20, 30}})
	p := probeTo(t, s, 25)
	slot, _ := s.slotOf(num(testTarget), 25)
	router := netip.MustParseAddr("198.18.0.254")
	e := craft.ICMPError{From: router, Type: 3, Code: 13, Quoted: craft.IPv4(p.IP[:craft.IPv4MinimumSize]),
		SrcPort: 61234, DstPort: 25, Seq: p.TCP.SequenceNumber() + 1, HasSeq: true}
	s.handleICMP(&e)
	if s.table.get(slot) != ansNone || s.ignored.Load() != 1 {
		t.Fatal("ICMP error quoting a wrong sequence number was not ignored")
	}
	e.Seq--
	s.handleICMP(&e)
	if a := s.table.get(slot); a != ansUnreach+13 {
		t.Fatalf("answer %d, want ICMP 3/13", a)
	}
	if len(s.icmpFrom) != 1 || s.icmpFrom[0].from != router || s.icmpFrom[0].slot != slot {
		t.Errorf("icmpFrom = %v", s.icmpFrom)
	}
	// The host's own RST later outranks the router.
	s.handleTCP(reply(t, s, 25, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0), make([]byte, s.rst.Len()))
	if a := s.table.get(slot); a != ansRST {
		t.Errorf("answer %d after the RST, want RST", a)
	}
}

// The per-packet paths allocate nothing.
func TestPerPacketPathsDoNotAllocate(t *testing.T) {
	s := testScanner(t, TypeSYN, AllPorts)
	b := make([]byte, s.tmpl.Len())
	k := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { _, _, _ = s.build(b, k%s.size); k++ }); n != 0 {
		t.Errorf("build: %v allocations per probe", n)
	}
	p := probeTo(t, s, 80)
	synack := reply(t, s, 80, craft.FlagSYN|craft.FlagACK, 1, p.TCP.SequenceNumber()+1, 100)
	bad := reply(t, s, 81, craft.FlagRST|craft.FlagACK, 0, 12345, 0)
	rst := make([]byte, s.rst.Len())
	if n := testing.AllocsPerRun(1000, func() { s.handleTCP(synack, rst); s.handleTCP(bad, rst) }); n != 0 {
		t.Errorf("handleTCP: %v allocations per reply", n)
	}
}

// BenchmarkBuildProbe is the CPU cost of one probe before the system call: permutation, target, cookie,
// template.
func BenchmarkBuildProbe(b *testing.B) {
	s := testScanner(b, TypeSYN, AllPorts)
	buf := make([]byte, s.tmpl.Len())
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, _, _ = s.build(buf, uint64(i)%s.size)
	}
}

func BenchmarkHandleReply(b *testing.B) {
	s := testScanner(b, TypeSYN, AllPorts)
	p := probeTo(b, s, 80)
	pkt := reply(b, s, 80, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0)
	rst := make([]byte, s.rst.Len())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.handleTCP(pkt, rst)
	}
}

// An IPv6 reply validates only for its own 4-tuple: a SYN-ACK from a second host of the scan, or from another
// port, that acknowledges the cookie of 2001:2::2 port 25 is ignored, and the true one counts.
func TestIPv6ReplyForAnotherTupleIgnored(t *testing.T) {
	s, err := newScanner(&Config{
		Type: TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("2001:2::2/127")}, Ports: []PortRange{{25, 26}},
		SourcePort: 61234, key: &sipKey{0x0123456789abcdef, 0xfedcba9876543210},
	}, func(*plan) (netip.Addr, error) { return testLocal6, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !s.plan.v6 || s.size != 4 || s.plan.cover != netip.MustParsePrefix("2001:2::2/127") {
		t.Fatalf("plan: v6 %v, %d targets, cover %v; want IPv6, 4, 2001:2::2/127", s.plan.v6, s.size, s.plan.cover)
	}
	seq, _ := s.cookie(num(testTarget6), 25)
	synack := func(from netip.Addr, port uint16) []byte {
		seg := craft.Segment{Src: from, Dst: testLocal6, SrcPort: port, DstPort: 61234, Flags: craft.FlagSYN | craft.FlagACK,
			Seq: 7, Ack: seq + 1, Window: 65535}
		b := make([]byte, seg.Len())
		if _, err := seg.Encode(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	rst := make([]byte, s.rst.Len())
	for _, w := range []struct {
		from netip.Addr
		port uint16
	}{{netip.MustParseAddr("2001:2::3"), 25}, {testTarget6, 26}} {
		s.handleTCP(synack(w.from, w.port), rst)
	}
	if s.ignored.Load() != 2 || s.answered.Load() != 0 {
		t.Fatalf("replies for other 4-tuples: ignored %d, answered %d; want 2, 0", s.ignored.Load(), s.answered.Load())
	}
	if _, n := s.handleTCP(synack(testTarget6, 25), rst); n == 0 || s.answered.Load() != 1 || s.found.Load() != 1 {
		t.Errorf("the true SYN-ACK: answered %d, found %d, RST %d bytes; want 1, 1 and a RST", s.answered.Load(), s.found.Load(), n)
	}
}

// An ICMPv6 error quoting our probe decides the target, with ICMPv6's type in the reason; one quoting a wrong
// sequence number, or a packet too big (no sign of a filter), does not.
func TestICMPv6MatchedByCookie(t *testing.T) {
	s := testScannerOf(t, testLocal6, testTarget6, TypeSYN, []PortRange{{20, 30}})
	p := probeTo(t, s, 25)
	slot, _ := s.slotOf(num(testTarget6), 25)
	router := netip.MustParseAddr("2001:2::fe")
	e := craft.ICMPv6Error{From: router, Type: craft.ICMPv6DestinationUnreachable, Code: 1, Quoted: craft.IPv6(p.IP),
		SrcPort: 61234, DstPort: 25, Seq: p.TCP.SequenceNumber() + 1, HasSeq: true}
	s.handleICMPv6(&e)
	if s.table.get(slot) != ansNone || s.ignored.Load() != 1 {
		t.Fatal("ICMPv6 error quoting a wrong sequence number was not ignored")
	}
	e.Seq--
	tooBig := e
	tooBig.Type, tooBig.Code = craft.ICMPv6PacketTooBig, 0
	s.handleICMPv6(&tooBig)
	if s.table.get(slot) != ansNone || s.icmpOther.Load() != 1 {
		t.Fatal("a packet too big decided the port")
	}
	s.handleICMPv6(&e)
	if a := s.table.get(slot); a != ansUnreach+1 {
		t.Fatalf("answer %d, want ICMPv6 1/1", a)
	}
	st, why := classify6(TypeSYN, s.table.get(slot))
	if st != Filtered || why.String() != "icmpv6 1/1" || !why.ICMPv6 {
		t.Errorf("classify6 = %v, %q; want filtered, icmpv6 1/1", st, why)
	}
	if len(s.icmpFrom) != 1 || s.icmpFrom[0].from != router {
		t.Errorf("icmpFrom = %v, want %v", s.icmpFrom, router)
	}
}

// The IPv6 per-packet paths allocate nothing either.
func TestPerPacketPathsDoNotAllocate6(t *testing.T) {
	s := testScannerOf(t, testLocal6, testTarget6, TypeSYN, AllPorts)
	b := make([]byte, s.tmpl.Len())
	k := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { s.build(b, k%s.size); k++ }); n != 0 {
		t.Errorf("build: %v allocations per probe", n)
	}
	p := probeTo(t, s, 80)
	synack := reply(t, s, 80, craft.FlagSYN|craft.FlagACK, 1, p.TCP.SequenceNumber()+1, 100)
	bad := reply(t, s, 81, craft.FlagRST|craft.FlagACK, 0, 12345, 0)
	rst := make([]byte, s.rst.Len())
	if n := testing.AllocsPerRun(1000, func() { s.handleTCP(synack, rst); s.handleTCP(bad, rst) }); n != 0 {
		t.Errorf("handleTCP: %v allocations per reply", n)
	}
	e := craft.ICMPv6Error{From: testTarget6, Type: 1, Code: 4, Quoted: craft.IPv6(p.IP), SrcPort: 61234, DstPort: 80,
		Seq: p.TCP.SequenceNumber(), HasSeq: true}
	if n := testing.AllocsPerRun(1000, func() { s.handleICMPv6(&e) }); n != 0 {
		t.Errorf("handleICMPv6: %v allocations per error", n)
	}
}

func BenchmarkBuildProbe6(b *testing.B) {
	s := testScannerOf(b, testLocal6, testTarget6, TypeSYN, AllPorts)
	buf := make([]byte, s.tmpl.Len())
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.build(buf, uint64(i)%s.size)
	}
}
