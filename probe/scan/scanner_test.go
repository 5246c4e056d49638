package scan

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
)

var (
	testLocal  = netip.MustParseAddr("198.18.0.1")
	testTarget = netip.MustParseAddr("198.18.0.2")
)

func testScanner(t testing.TB, typ Type, ports []PortRange) *scanner {
	t.Helper()
	s, err := newScanner(&Config{
		Type: typ, Hosts: []netip.Prefix{netip.PrefixFrom(testTarget, 32)}, Ports: ports,
		SourcePort: 61234, key: &sipKey{0x0123456789abcdef, 0xfedcba9876543210},
	}, func(*plan) (netip.Addr, error) { return testLocal, nil })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// probeTo finds the probe of the scan to port and parses it.
func probeTo(t testing.TB, s *scanner, port uint16) craft.Packet {
	t.Helper()
	b := make([]byte, s.tmpl.Len())
	for k := range s.size {
		dst, n, err := s.build(b, k)
		if err != nil {
			t.Fatalf("build %d: %v", k, err)
		}
		p, err := craft.ParsePacket(b[:n])
		if err != nil {
			t.Fatalf("build %d: %v", k, err)
		}
		if dst != testTarget || p.IP.Destination() != testTarget {
			t.Fatalf("probe %d goes to %v (header %v), want %v", k, dst, p.IP.Destination(), testTarget)
		}
		if p.TCP.DestinationPort() == port {
			if !p.TCP.VerifyChecksum(testLocal, testTarget) || !p.IP.IsChecksumValid() {
				t.Fatalf("probe to %d has a bad checksum", port)
			}
			return p
		}
	}
	t.Fatalf("no probe to port %d", port)
	return craft.Packet{}
}

// reply builds the remote's segment to our source port.
func reply(t testing.TB, from uint16, flags craft.Flags, seq, ack uint32, win uint16) []byte {
	t.Helper()
	seg := craft.Segment{Src: testTarget, Dst: testLocal, SrcPort: from, DstPort: 61234, Flags: flags, Seq: seq, Ack: ack, Window: win}
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
		reply func(p craft.Packet) (craft.Flags, uint32, uint32, uint16)
		want  State // State(0): ignored
	}
	seqOf := func(p craft.Packet) uint32 { return p.TCP.SequenceNumber() }
	ackOf := func(p craft.Packet) uint32 { return p.TCP.AckNumber() }
	rstAck := craft.FlagRST | craft.FlagACK
	cases := []tc{
		{"syn: syn-ack", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p) + 1, 65160
		}, Open},
		{"syn: syn-ack, wrong cookie", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p) + 2, 65160
		}, 0},
		{"syn: syn-ack acking the cookie itself", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 999, seqOf(p), 65160
		}, 0},
		{"syn: rst", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"syn: rst, wrong cookie", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return rstAck, 0, seqOf(p) ^ 0x8000, 0
		}, 0},
		{"syn: rst without ack", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, seqOf(p) + 1, 0, 0
		}, 0},
		{"syn: bare syn (split handshake)", TypeSYN, func(craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN, 5, 0, 65160
		}, Open},
		{"syn: plain ack", TypeSYN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagACK, 5, seqOf(p) + 1, 65160
		}, 0},
		{"ack: rst seq = our ack", TypeACK, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Unfiltered},
		{"ack: rst, wrong seq", TypeACK, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p) + 1, 0, 0
		}, 0},
		{"ack: syn-ack is no answer", TypeACK, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagSYN | craft.FlagACK, 1, seqOf(p) + 1, 0
		}, 0},
		{"window: rst with window", TypeWindow, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 512
		}, Open},
		{"window: rst, zero window", TypeWindow, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Closed},
		{"fin: rst ack = seq+1", TypeFIN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"fin: rst ack = seq", TypeFIN, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p), 0 }, 0},
		{"null: rst ack = seq", TypeNULL, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p), 0 }, Closed},
		{"null: rst ack = seq+1", TypeNULL, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, 0},
		{"xmas: rst ack = seq+1", TypeXmas, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) { return rstAck, 0, seqOf(p) + 1, 0 }, Closed},
		{"maimon: rst seq = our ack", TypeMaimon, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return craft.FlagRST, ackOf(p), 0, 0
		}, Closed},
		{"maimon: rst ack = seq+1 only", TypeMaimon, func(p craft.Packet) (craft.Flags, uint32, uint32, uint16) {
			return rstAck, 0, seqOf(p) + 1, 0
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testScanner(t, c.typ, []PortRange{{20, 30}})
			p := probeTo(t, s, 25)
			if got := p.TCP.Flags(); got != c.typ.Flags() {
				t.Fatalf("probe flags %v, want %v", got, c.typ.Flags())
			}
			f, seq, ack, win := c.reply(p)
			rst := make([]byte, s.rst.Len())
			_, n := s.handleTCP(reply(t, 25, f, seq, ack, win), rst)
			slot, ok := s.slotOf(binary.BigEndian.Uint32(testTarget.AsSlice()), 25)
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
				r, err := craft.ParsePacket(rst[:n])
				if err != nil {
					t.Fatalf("no RST after the SYN-ACK: %v", err)
				}
				if r.TCP.Flags() != craft.FlagRST || r.TCP.SequenceNumber() != seqOf(p)+1 || r.TCP.DestinationPort() != 25 ||
					r.IP.Destination() != testTarget || !r.TCP.VerifyChecksum(testLocal, testTarget) {
					t.Errorf("RST = %v seq %d to %v:%d, want R seq %d to %v:25", r.TCP.Flags(), r.TCP.SequenceNumber(),
						r.IP.Destination(), r.TCP.DestinationPort(), seqOf(p)+1, testTarget)
				}
			} else if n != 0 {
				t.Errorf("sent a %d-byte packet after a %v", n, f)
			}
		})
	}
}

// Replies from outside the targets, to another port of ours or from an unscanned port are ignored.
func TestRepliesOutsideTheScanIgnored(t *testing.T) {
	s := testScanner(t, TypeSYN, []PortRange{{20, 30}})
	p := probeTo(t, s, 25)
	ok := reply(t, 25, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0)
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
	slot, _ := s.slotOf(binary.BigEndian.Uint32(testTarget.AsSlice()), 25)
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
	if len(s.icmpFrom) != 1 || s.icmpFrom[0].from != router.As4() || s.icmpFrom[0].slot != slot {
		t.Errorf("icmpFrom = %v", s.icmpFrom)
	}
	// The host's own RST later outranks the router.
	s.handleTCP(reply(t, 25, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0), make([]byte, s.rst.Len()))
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
	synack := reply(t, 80, craft.FlagSYN|craft.FlagACK, 1, p.TCP.SequenceNumber()+1, 100)
	bad := reply(t, 81, craft.FlagRST|craft.FlagACK, 0, 12345, 0)
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
	pkt := reply(b, 80, craft.FlagRST|craft.FlagACK, 0, p.TCP.SequenceNumber()+1, 0)
	rst := make([]byte, s.rst.Len())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.handleTCP(pkt, rst)
	}
}
