package craft

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var testRouter = netip.MustParseAddr("198.18.0.9")

// icmpPacket builds an IPv4 packet from router to testSrc carrying an ICMP
// message: type, code, the four type-specific bytes, then quoted.
func icmpPacket(typ, code uint8, rest [4]byte, quoted []byte) []byte {
	b := make([]byte, 20+8+len(quoted))
	ip := IPv4(b)
	ip.SetVersionIHL(20)
	ip.SetTotalLength(uint16(len(b)))
	ip.SetTTL(64)
	ip.SetProtocol(ProtocolICMP)
	ip.SetSource(testRouter)
	ip.SetDestination(testSrc)
	ip.UpdateChecksum()
	m := b[20:]
	m[0], m[1] = typ, code
	copy(m[4:8], rest[:])
	copy(m[8:], quoted)
	binary.BigEndian.PutUint16(m[2:], ^Checksum(m, 0))
	return b
}

func TestParseICMPError(t *testing.T) {
	syn := mustEncode(t, testSYN()) // 198.18.0.1:40000 > 198.18.0.2:80 seq 0x11223344
	ignore := cmpopts.IgnoreFields(ICMPError{}, "Quoted")
	tests := []struct {
		name   string
		b      []byte
		want   ICMPError
		quoted int // bytes of Quoted
		str    string
	}{
		{
			name:   "3/13 quoting the whole SYN",
			b:      icmpPacket(3, 13, [4]byte{}, syn),
			want:   ICMPError{From: testRouter, Type: 3, Code: 13, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 60,
			str:    "ICMP 3/13 (communication administratively prohibited) from 198.18.0.9",
		},
		{
			name:   "11/0 quoting 8 TCP bytes (RFC 792 minimum)",
			b:      icmpPacket(11, 0, [4]byte{}, syn[:28]),
			want:   ICMPError{From: testRouter, Type: 11, Code: 0, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 28,
			str:    "ICMP 11/0 (time to live exceeded in transit) from 198.18.0.9",
		},
		{
			name:   "3/3 quoting only the ports",
			b:      icmpPacket(3, 3, [4]byte{}, syn[:24]),
			want:   ICMPError{From: testRouter, Type: 3, Code: 3, SrcPort: 40000, DstPort: 80},
			quoted: 24,
			str:    "ICMP 3/3 (port unreachable) from 198.18.0.9",
		},
		{
			name:   "3/4 with next-hop MTU",
			b:      icmpPacket(3, 4, [4]byte{0, 0, 0x05, 0x78}, syn[:28]),
			want:   ICMPError{From: testRouter, Type: 3, Code: 4, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true, MTU: 1400},
			quoted: 28,
			str:    "ICMP 3/4 (fragmentation needed and DF set, next-hop MTU 1400) from 198.18.0.9",
		},
		{
			name:   "5/1 redirect with gateway",
			b:      icmpPacket(5, 1, [4]byte{198, 18, 0, 254}, syn[:28]),
			want:   ICMPError{From: testRouter, Type: 5, Code: 1, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true, Gateway: netip.MustParseAddr("198.18.0.254")},
			quoted: 28,
			str:    "ICMP 5/1 (redirect datagrams for the host) from 198.18.0.9",
		},
		{
			name:   "12/0 with pointer",
			b:      icmpPacket(12, 0, [4]byte{9, 0, 0, 0}, syn[:28]),
			want:   ICMPError{From: testRouter, Type: 12, Code: 0, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true, Pointer: 9},
			quoted: 28,
			str:    "ICMP 12/0 (pointer indicates the error) from 198.18.0.9",
		},
		{
			name:   "RFC 4884 length cuts off extensions",
			b:      icmpPacket(11, 0, [4]byte{0, 8, 0, 0}, append(append([]byte{}, syn[:32]...), 0x20, 0, 0, 0, 0, 0, 0, 0)),
			want:   ICMPError{From: testRouter, Type: 11, Code: 0, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 32,
			str:    "ICMP 11/0 (time to live exceeded in transit) from 198.18.0.9",
		},
		{
			name:   "unknown code",
			b:      icmpPacket(3, 99, [4]byte{}, syn[:28]),
			want:   ICMPError{From: testRouter, Type: 3, Code: 99, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 28,
			str:    "ICMP 3/99 (type 3 code 99) from 198.18.0.9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseICMPError(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, append(cmpOpts, ignore)...); diff != "" {
				t.Errorf("ParseICMPError (-want +got):\n%s", diff)
			}
			if len(got.Quoted) != tt.quoted || got.Quoted.Destination() != testDst {
				t.Errorf("Quoted is %d bytes to %v, want %d bytes to %v", len(got.Quoted), got.Quoted.Destination(), tt.quoted, testDst)
			}
			if len(got.QuotedTCP()) != tt.quoted-20 {
				t.Errorf("QuotedTCP is %d bytes, want %d", len(got.QuotedTCP()), tt.quoted-20)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestParseICMPErrorMalformed(t *testing.T) {
	syn := mustEncode(t, testSYN())
	udp := append([]byte{}, syn[:28]...)
	udp[9] = 17
	v6 := append([]byte{}, syn[:28]...)
	v6[0] = 0x65
	bigIHL := append([]byte{}, syn[:28]...)
	bigIHL[0] = 0x4f
	notICMP := icmpPacket(3, 3, [4]byte{}, syn[:28])
	notICMP[9] = ProtocolTCP
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"echo reply", icmpPacket(0, 0, [4]byte{}, syn[:28]), "type 0 code 0 is not an error message"},
		{"not ICMP", notICMP, "protocol 6, not ICMP"},
		{"quotes UDP", icmpPacket(3, 3, [4]byte{}, udp), "quotes protocol 17, not TCP"},
		{"quotes IPv6", icmpPacket(3, 3, [4]byte{}, v6), "quoted header has version 6"},
		{"quoted IHL past end", icmpPacket(3, 3, [4]byte{}, bigIHL), "quoted header length 60 does not fit"},
		{"no quoted header", icmpPacket(3, 3, [4]byte{}, syn[:19]), "too short for a header and a quoted IPv4 header"},
		{"quote too short for ports", icmpPacket(3, 3, [4]byte{}, syn[:23]), "quotes 3 TCP bytes, too few for the ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseICMPError(tt.b)
			if err == nil {
				t.Fatalf("ParseICMPError = %v, nil; want error containing %q", got, tt.want)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrMalformed and %q", err, tt.want)
			}
		})
	}
}
