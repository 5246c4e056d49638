package craft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	testSrc6 = netip.MustParseAddr("2001:2::1")
	testDst6 = netip.MustParseAddr("2001:2::2")
)

// testSYN6 is testSYN over IPv6: Linux-like options, a flow label.
func testSYN6() Segment {
	s := testSYN()
	s.Src, s.Dst, s.ID, s.DF = testSrc6, testDst6, 0, false
	s.FlowLabel = 0xabcde
	return s
}

// to6 turns an IPv4 round-trip case into its IPv6 twin: lab addresses
// map to lab addresses, others to ::, and the IPv4-only fields are
// dropped.
func to6(s Segment) Segment {
	m := func(a netip.Addr) netip.Addr {
		switch a {
		case testSrc:
			return testSrc6
		case testDst:
			return testDst6
		}
		return netip.IPv6Unspecified()
	}
	s.Src, s.Dst, s.ID, s.DF = m(s.Src), m(s.Dst), 0, false
	return s
}

func roundTripCases6() []struct {
	name string
	seg  Segment
} {
	cases := roundTripCases()
	for i := range cases {
		cases[i].seg = to6(cases[i].seg)
	}
	base := to6(testSYNACK())
	with := func(mod func(*Segment)) Segment { s := base; mod(&s); return s }
	return append(cases, []struct {
		name string
		seg  Segment
	}{
		{"flow label all ones", with(func(s *Segment) { s.FlowLabel = 0xfffff })},
		{"traffic class and hop limit 255", with(func(s *Segment) { s.TOS = 0xff; s.TTL = 255 })},
		{"link-local addresses", with(func(s *Segment) {
			s.Src, s.Dst = netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::ffff:ffff:ffff:ffff")
		})},
		{"all-ones addresses", with(func(s *Segment) {
			s.Src = netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
			s.Dst = s.Src
		})},
		{"largest IPv6 payload", with(func(s *Segment) {
			s.Options = nil
			s.Payload = bytes.Repeat([]byte{0x5a}, IPv6MaximumPayload-TCPMinimumSize)
		})},
	}...)
}

// want6 is want for IPv6: the flow label keeps its low 20 bits.
func want6(s Segment) Segment {
	s = want(s)
	s.FlowLabel &= IPv6FlowLabelMask
	return s
}

// decoded6 is decoded for an IPv6 packet.
func decoded6(t testing.TB, p IPv6Packet) Segment {
	t.Helper()
	s := Segment{
		Src: p.IP.Source(), Dst: p.IP.Destination(),
		SrcPort: p.TCP.SourcePort(), DstPort: p.TCP.DestinationPort(),
		Seq: p.TCP.SequenceNumber(), Ack: p.TCP.AckNumber(),
		Flags: p.TCP.Flags(), Window: p.TCP.WindowSize(), Urgent: p.TCP.UrgentPointer(),
		Payload: bytes.Clone(p.TCP.Payload()),
		TTL:     p.IP.HopLimit(), TOS: p.IP.TrafficClass(), FlowLabel: p.IP.FlowLabel(),
	}
	it := p.TCP.Options()
	for it.Next() {
		o := it.Option()
		s.Options = append(s.Options, Option{Kind: o.Kind, Data: bytes.Clone(o.Data)})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("options of a parsed packet: %v", err)
	}
	return s
}

// pseudoHeader6 is RFC 8200 §8.1's pseudo-header as bytes: source,
// destination, 32-bit upper-layer length, three zero bytes, next header.
func pseudoHeader6(src, dst netip.Addr, next uint8, length uint32) []byte {
	s, d := src.As16(), dst.As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, 0, 0, 0, next)
}

func TestIPv6RoundTrip(t *testing.T) {
	for _, tt := range roundTripCases6() {
		t.Run(tt.name, func(t *testing.T) {
			// Poisoned with 0xff and one byte longer: every byte of the
			// packet is written, the one after it is not.
			b := bytes.Repeat([]byte{0xff}, tt.seg.Len()+1)
			n, err := tt.seg.Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.seg.Len() || b[n] != 0xff {
				t.Fatalf("Encode wrote %d bytes (Len %d), byte after: %#x", n, tt.seg.Len(), b[n])
			}
			p, err := ParseIPv6Packet(b[:n])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want6(tt.seg), decoded6(t, p), cmpOpts...); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if p.IP.Version() != 6 || p.IP.NextHeader() != ProtocolTCP || int(p.IP.PayloadLength()) != n-IPv6HeaderSize {
				t.Errorf("header: version %d next %d payload length %d, want 6, 6, %d", p.IP.Version(), p.IP.NextHeader(), p.IP.PayloadLength(), n-IPv6HeaderSize)
			}
			if !p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination()) {
				t.Errorf("TCP checksum does not verify")
			}
		})
	}
}

func TestIPv6Setters(t *testing.T) {
	f := IPv6Fields{TrafficClass: 0xb8, FlowLabel: 0x12345, PayloadLength: 20, NextHeader: ProtocolTCP, HopLimit: 7, Src: testSrc6, Dst: testDst6}
	b := bytes.Repeat([]byte{0xff}, IPv6HeaderSize)
	IPv6(b).Encode(&f)
	if diff := cmp.Diff(f, IPv6(b).Fields(), cmpOpts...); diff != "" {
		t.Errorf("Encode then Fields (-want +got):\n%s", diff)
	}
	// The first word by hand: 6, b8, 12345.
	if got := binary.BigEndian.Uint32(b); got != 0x6b812345 {
		t.Errorf("first word %#08x, want 0x6b812345", got)
	}
	// A flow label wider than 20 bits does not spill into the traffic class.
	IPv6(b).SetVersionTrafficClassFlowLabel(0, 0xfff00001)
	if IPv6(b).TrafficClass() != 0 || IPv6(b).FlowLabel() != 1 || IPv6(b).Version() != 6 {
		t.Errorf("wide flow label: tc %#x flow %#x version %d", IPv6(b).TrafficClass(), IPv6(b).FlowLabel(), IPv6(b).Version())
	}
	// An IPv4 address writes ::.
	IPv6(b).SetSource(testSrc)
	if IPv6(b).Source() != netip.IPv6Unspecified() {
		t.Errorf("SetSource(IPv4) wrote %v, want ::", IPv6(b).Source())
	}
	if got := IPv6(b[:39]).Payload(); got != nil {
		t.Errorf("Payload of a 39-byte slice = %x, want nil", got)
	}
}

// ext builds an extension header of type-specific length byte l carrying
// next, padded to its length.
func ext(next, l uint8, n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = next, l
	return b
}

// withExt returns the IPv6 packet pkt with the extension headers hdrs
// inserted after its fixed header; first is the first one's type.
func withExt(pkt []byte, first uint8, hdrs ...[]byte) []byte {
	out := append([]byte{}, pkt[:IPv6HeaderSize]...)
	for _, h := range hdrs {
		out = append(out, h...)
	}
	out = append(out, pkt[IPv6HeaderSize:]...)
	IPv6(out).SetNextHeader(first)
	IPv6(out).SetPayloadLength(uint16(len(out) - IPv6HeaderSize))
	return out
}

func TestParseIPv6PacketExtensionHeaders(t *testing.T) {
	syn := mustEncode(t, testSYN6())
	frag := ext(ProtocolTCP, 0, 8) // first fragment: offset 0, M set
	frag[3] = 1
	tests := []struct {
		name string
		b    []byte
	}{
		{"hop-by-hop", withExt(syn, ipv6HopByHop, ext(ProtocolTCP, 0, 8))},
		{"hop-by-hop, routing, destination options", withExt(syn, ipv6HopByHop,
			ext(ipv6Routing, 0, 8), ext(ipv6DestinationOpts, 2, 24), ext(ProtocolTCP, 0, 8))},
		{"first fragment", withExt(syn, ipv6Fragment, frag)},
		{"authentication header", withExt(syn, ipv6AH, ext(ProtocolTCP, 4, 24))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseIPv6Packet(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want6(testSYN6()), decoded6(t, p), cmpOpts...); diff != "" {
				t.Errorf("segment behind extension headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIPv6PacketMalformed(t *testing.T) {
	syn := mustEncode(t, testSYN6())
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(syn)) }
	nonFirst := ext(ProtocolTCP, 0, 8)
	nonFirst[2], nonFirst[3] = 0x05, 0x38 // offset 167 × 8
	var chain [][]byte
	for range 9 {
		chain = append(chain, ext(ipv6DestinationOpts, 0, 8))
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes, shorter than the 40-byte header"},
		{"39 bytes", syn[:39], "39 bytes"},
		{"version 4", mod(func(b []byte) []byte { b[0] = 0x45; return b }), "version 4, want 6"},
		{"UDP", mod(func(b []byte) []byte { b[IPv6NextHeaderOffset] = 17; return b }), "next header 17 after 0 extension header bytes, not TCP"},
		{"no next header", mod(func(b []byte) []byte { b[IPv6NextHeaderOffset] = ipv6NoNextHeader; return b }), "next header 59"},
		{"ESP", withExt(syn, ipv6ESP, ext(0, 0, 8)), "next header 50"},
		{"payload length 0 cuts the segment", mod(func(b []byte) []byte { IPv6(b).SetPayloadLength(0); return b }), "0 bytes, shorter than the 20-byte minimum"},
		{"payload length cuts the options", mod(func(b []byte) []byte { IPv6(b).SetPayloadLength(30); return b }), "data offset 40 bytes, past the end of the 30-byte segment"},
		{"TCP data offset 4", mod(func(b []byte) []byte { b[IPv6HeaderSize+TCPDataOffset] = 0x40; return b }), "data offset 16 bytes, below the minimum"},
		{"bad MSS length", mod(func(b []byte) []byte { b[IPv6HeaderSize+21] = 3; return b }), "mss"},
		{"extension header cut short", withExt(syn[:IPv6HeaderSize], ipv6HopByHop, []byte{6}), "cut short"},
		{"extension header past the end", withExt(syn, ipv6HopByHop, ext(ProtocolTCP, 200, 8)), "past the end"},
		{"non-first fragment", withExt(syn, ipv6Fragment, nonFirst), "fragment at offset 1336"},
		{"nine extension headers", withExt(syn, ipv6DestinationOpts, chain...), "more than 8 extension headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIPv6Packet(tt.b)
			if err == nil {
				t.Fatalf("ParseIPv6Packet = %+v, nil; want error containing %q", got, tt.want)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrMalformed and %q", err, tt.want)
			}
		})
	}
}

// A trimmed or padded buffer: the packet ends at the payload length.
func TestParseIPv6PacketPadded(t *testing.T) {
	syn := mustEncode(t, testSYN6())
	p, err := ParseIPv6Packet(append(bytes.Clone(syn), 0, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IP) != len(syn) || len(p.TCP) != len(syn)-IPv6HeaderSize {
		t.Errorf("padded: IP %d bytes, TCP %d bytes; want %d, %d", len(p.IP), len(p.TCP), len(syn), len(syn)-IPv6HeaderSize)
	}
}

func TestPseudoHeaderSumIPv6(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x6))
		var s, d [16]byte
		for i := range s {
			s[i], d[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		if seed == 1 {
			s, d = [16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}, s
		}
		src, dst := netip.AddrFrom16(s), netip.AddrFrom16(d)
		length, next := uint16(r.Uint32()), uint8(r.Uint32())
		got := Checksum(nil, PseudoHeaderSum(src, dst, next, length))
		if want := checksumRef(pseudoHeader6(src, dst, next, uint32(length)), 0); got != want {
			t.Fatalf("seed %d: folded PseudoHeaderSum(%v, %v, %d, %d) = %#04x, reference %#04x", seed, src, dst, next, length, got, want)
		}
	}
}

// Encode's IPv6 TCP checksum, summed from register values, agrees with the
// plain RFC 1071 loop over RFC 8200 §8.1's pseudo-header bytes and the
// segment as written, for random segments (the fast SYN path included).
func TestEncodeIPv6ChecksumDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x6c0de))
		for range 1000 {
			s := randomSegment(r)
			var a, c [16]byte
			for i := range a {
				a[i], c[i] = byte(r.Uint32()), byte(r.Uint32())
			}
			a[0], c[0] = 0x20, 0x20 // never IPv4-mapped
			s.Src, s.Dst, s.FlowLabel = netip.AddrFrom16(a), netip.AddrFrom16(c), r.Uint32()
			b := bytes.Repeat([]byte{0xff}, s.Len())
			n, err := s.Encode(b)
			if err != nil {
				t.Fatalf("seed %d: Encode(%+v): %v", seed, s, err)
			}
			seg := b[IPv6HeaderSize:n]
			ref := append(pseudoHeader6(s.Src, s.Dst, ProtocolTCP, uint32(len(seg))), seg...)
			if got := checksumRef(ref, 0); got != 0xffff {
				t.Fatalf("seed %d: pseudo-header and segment sum to %#04x, want 0xffff: %x", seed, got, b[:n])
			}
			p, err := ParseIPv6Packet(b[:n])
			if err != nil {
				t.Fatalf("seed %d: ParseIPv6Packet: %v", seed, err)
			}
			if p.TCP.SequenceNumber() != s.Seq || p.IP.FlowLabel() != s.FlowLabel&IPv6FlowLabelMask || !bytes.Equal(p.TCP.Payload(), s.Payload) {
				t.Fatalf("seed %d: fields did not round-trip", seed)
			}
		}
	}
}

func TestEncodeIPv6Errors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Segment)
		buf  int // buffer size; 0 means Len()
		want string
	}{
		{"IPv4 destination", func(s *Segment) { s.Dst = testDst }, 0, "both IPv4 or both IPv6"},
		{"mapped source", func(s *Segment) { s.Src = netip.MustParseAddr("::ffff:198.18.0.1") }, 0, "Addr.Unmap"},
		{"zero destination", func(s *Segment) { s.Dst = netip.Addr{} }, 0, "both IPv4 or both IPv6"},
		{"41 option bytes", func(s *Segment) { s.Options = []Option{NOP(), {Kind: 99, Data: make([]byte, 38)}} }, 200, "41 option bytes exceed the 40"},
		{"option data over 253", func(s *Segment) { s.Options = []Option{{Kind: 99, Data: make([]byte, 254)}} }, 400, "254 data bytes"},
		{"payload over 65535", func(s *Segment) { s.Options = nil; s.Payload = make([]byte, 65535-19) }, 70000, "65536 bytes, over the IPv6 payload limit"},
		{"buffer too short", func(s *Segment) {}, 79, "buffer holds 79 bytes, packet needs 80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSYN6()
			tt.mod(&s)
			n := tt.buf
			if n == 0 {
				n = s.Len()
			}
			b := bytes.Repeat([]byte{0xff}, n)
			got, err := s.Encode(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode = %d, %v; want error containing %q", got, err, tt.want)
			}
			if got != 0 || !bytes.Equal(b, bytes.Repeat([]byte{0xff}, n)) {
				t.Errorf("failed Encode returned %d and wrote into the buffer", got)
			}
		})
	}
}

// An IPv6 template builds exactly what Encode writes.
func TestTemplateIPv6MatchesEncode(t *testing.T) {
	for _, base := range []Segment{testSYN6(), to6(testSYNACK()), {Src: testSrc6, Dst: testDst6, Flags: FlagRST, Payload: []byte("odd"), FlowLabel: 1}} {
		tmpl, err := NewTemplate(&base)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 4))
		for range 2000 {
			s := base
			var d [16]byte
			for i := range d {
				d[i] = byte(r.Uint32())
			}
			d[0] = 0x20
			if r.IntN(10) == 0 {
				d = [16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
			}
			s.Dst = netip.AddrFrom16(d)
			s.SrcPort, s.DstPort = uint16(r.Uint32()), uint16(r.Uint32())
			s.Seq, s.Ack = r.Uint32(), r.Uint32()
			want := mustEncode(t, s)
			got := bytes.Repeat([]byte{0xff}, tmpl.Len()+1)
			n, err := tmpl.Build(got, s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack)
			if err != nil {
				t.Fatalf("Build(%v, %d, %d, %#x, %#x): %v", s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack, err)
			}
			if n != len(want) || !bytes.Equal(got[:n], want) {
				t.Fatalf("Build(%v, %d, %d, %#x, %#x):\n got %x\nwant %x", s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack, got[:n], want)
			}
			if got[n] != 0xff {
				t.Fatalf("Build wrote past the packet")
			}
		}
	}
	s := testSYN6()
	tmpl, err := NewTemplate(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{testDst, netip.MustParseAddr("::ffff:198.18.0.2"), {}} {
		if n, err := tmpl.Build(make([]byte, 200), dst, 1, 2, 3, 4); n != 0 || err == nil || !strings.Contains(err.Error(), "is not IPv6") {
			t.Errorf("IPv6 template Build to %v = %d, %v; want 0 and an error that it is not IPv6", dst, n, err)
		}
	}
	if n, err := tmpl.Build(make([]byte, tmpl.Len()-1), testDst6, 1, 2, 3, 4); n != 0 || err == nil || !strings.Contains(err.Error(), "buffer holds") {
		t.Errorf("Build into a short buffer = %d, %v; want 0 and an error about the buffer", n, err)
	}
}

// The IPv6 SYN takes the same allocation-free path as the IPv4 one.
func TestEncodeIPv6AllocatesNothing(t *testing.T) {
	s := testSYN6()
	buf := make([]byte, 1500)
	tmpl, err := NewTemplate(&s)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		s.Seq++
		if _, err := s.Encode(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := tmpl.Build(buf, testDst6, 80, 1234, s.Seq, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIPv6Packet(buf[:s.Len()]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("IPv6 Encode, Build and Parse allocate %v times per packet, want 0", n)
	}
}
