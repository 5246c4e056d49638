package craft

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	testSrc = netip.MustParseAddr("198.18.0.1")
	testDst = netip.MustParseAddr("198.18.0.2")
)

// cmpOpts treats nil and empty Data alike: constructors leave SACKPermitted's
// Data nil, the decoder returns an empty view.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

// testSYN is a Linux-like SYN from 198.18.0.1:40000 to 198.18.0.2:80.
func testSYN() Segment {
	return Segment{
		Src: testSrc, Dst: testDst, SrcPort: 40000, DstPort: 80,
		Seq: 0x11223344, Flags: FlagSYN, Window: 64240,
		Options: DefaultSYNOptions(12345), ID: 0x1234, DF: true,
	}
}

// testSYNACK is the answer to testSYN.
func testSYNACK() Segment {
	return Segment{
		Src: testDst, Dst: testSrc, SrcPort: 80, DstPort: 40000,
		Seq: 0xdeadbeef, Ack: 0x11223345, Flags: FlagSYN | FlagACK, Window: 65160,
		Options: []Option{MSS(1460), SACKPermitted(), Timestamps(999, 12345), NOP(), WindowScale(7)},
		DF:      true, TTL: 64,
	}
}

// mustEncode encodes s into a fresh buffer or fails the test.
func mustEncode(t testing.TB, s Segment) []byte {
	t.Helper()
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", s, err)
	}
	return b[:n]
}

// decoded turns a parsed packet back into the Segment that would encode
// it, options copied, so round trips compare whole values.
func decoded(t testing.TB, p Packet) Segment {
	t.Helper()
	s := Segment{
		Src: p.IP.Source(), Dst: p.IP.Destination(),
		SrcPort: p.TCP.SourcePort(), DstPort: p.TCP.DestinationPort(),
		Seq: p.TCP.SequenceNumber(), Ack: p.TCP.AckNumber(),
		Flags: p.TCP.Flags(), Window: p.TCP.WindowSize(), Urgent: p.TCP.UrgentPointer(),
		Payload: bytes.Clone(p.TCP.Payload()),
		TTL:     p.IP.TTL(), TOS: p.IP.TOS(), ID: p.IP.ID(), DF: p.IP.DontFragment(),
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

// checksumRef is the plain RFC 1071 loop: 16-bit words, 32-bit sum, fold.
func checksumRef(b []byte, initial uint32) uint16 {
	sum := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
