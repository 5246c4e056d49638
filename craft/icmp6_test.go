package craft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var testRouter6 = netip.MustParseAddr("2001:2::9")

// icmp6Packet builds with ICMPv6ErrorFields an error from testRouter6 to
// testSrc6 quoting quoted.
func icmp6Packet(t testing.TB, typ, code uint8, param uint32, quoted []byte) []byte {
	t.Helper()
	f := ICMPv6ErrorFields{From: testRouter6, To: testSrc6, Type: typ, Code: code, Param: param, Quote: quoted}
	b := bytes.Repeat([]byte{0xff}, f.Len()+1)
	n, err := f.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != f.Len() || b[n] != 0xff {
		t.Fatalf("Encode wrote %d bytes, Len %d, byte after %#x", n, f.Len(), b[n])
	}
	return b[:n]
}

func TestParseICMPv6Error(t *testing.T) {
	syn := mustEncode(t, testSYN6()) // [2001:2::1]:40000 > [2001:2::2]:80 seq 0x11223344, 80 bytes
	ignore := cmpopts.IgnoreFields(ICMPv6Error{}, "Quoted")
	// RFC 4884: the quote padded to 88 bytes (11 words of 8), length 11,
	// then an extension structure that must not be read as our segment.
	ext4884 := append(append(bytes.Clone(syn), make([]byte, 8)...), 0x20, 0, 0, 0, 0, 8, 1, 1)
	tests := []struct {
		name   string
		b      []byte
		want   ICMPv6Error
		quoted int // bytes of Quoted
		str    string
	}{
		{
			name:   "1/1 quoting the whole SYN",
			b:      icmp6Packet(t, 1, 1, 0, syn),
			want:   ICMPv6Error{From: testRouter6, Type: 1, Code: 1, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 80,
			str:    "ICMPv6 1/1 (communication with destination administratively prohibited) from 2001:2::9",
		},
		{
			name:   "1/4 port unreachable",
			b:      icmp6Packet(t, 1, 4, 0, syn),
			want:   ICMPv6Error{From: testRouter6, Type: 1, Code: 4, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 80,
			str:    "ICMPv6 1/4 (port unreachable) from 2001:2::9",
		},
		{
			name:   "2/0 packet too big with MTU",
			b:      icmp6Packet(t, 2, 0, 1400, syn),
			want:   ICMPv6Error{From: testRouter6, Type: 2, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true, MTU: 1400},
			quoted: 80,
			str:    "ICMPv6 2/0 (packet too big, MTU 1400) from 2001:2::9",
		},
		{
			name:   "3/0 quoting 8 TCP bytes",
			b:      icmp6Packet(t, 3, 0, 0, syn[:48]),
			want:   ICMPv6Error{From: testRouter6, Type: 3, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 48,
			str:    "ICMPv6 3/0 (hop limit exceeded in transit) from 2001:2::9",
		},
		{
			name:   "3/0 quoting only the ports",
			b:      icmp6Packet(t, 3, 0, 0, syn[:44]),
			want:   ICMPv6Error{From: testRouter6, Type: 3, SrcPort: 40000, DstPort: 80},
			quoted: 44,
			str:    "ICMPv6 3/0 (hop limit exceeded in transit) from 2001:2::9",
		},
		{
			name:   "4/0 with pointer",
			b:      icmp6Packet(t, 4, 0, 7, syn),
			want:   ICMPv6Error{From: testRouter6, Type: 4, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true, Pointer: 7},
			quoted: 80,
			str:    "ICMPv6 4/0 (erroneous header field encountered) from 2001:2::9",
		},
		{
			name:   "RFC 4884 length cuts off extensions",
			b:      icmp6Packet(t, 3, 0, 11<<24, ext4884),
			want:   ICMPv6Error{From: testRouter6, Type: 3, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 88,
			str:    "ICMPv6 3/0 (hop limit exceeded in transit) from 2001:2::9",
		},
		{
			name:   "quote behind a hop-by-hop header",
			b:      icmp6Packet(t, 1, 0, 0, withExt(syn, ipv6HopByHop, ext(ProtocolTCP, 0, 8))),
			want:   ICMPv6Error{From: testRouter6, Type: 1, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 88,
			str:    "ICMPv6 1/0 (no route to destination) from 2001:2::9",
		},
		{
			name:   "unknown code",
			b:      icmp6Packet(t, 1, 99, 0, syn),
			want:   ICMPv6Error{From: testRouter6, Type: 1, Code: 99, SrcPort: 40000, DstPort: 80, Seq: 0x11223344, HasSeq: true},
			quoted: 80,
			str:    "ICMPv6 1/99 (type 1 code 99) from 2001:2::9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseICMPv6Error(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, append(cmpOpts, ignore)...); diff != "" {
				t.Errorf("ParseICMPv6Error (-want +got):\n%s", diff)
			}
			if len(got.Quoted) != tt.quoted || got.Quoted.Destination() != testDst6 {
				t.Errorf("Quoted is %d bytes to %v, want %d bytes to %v", len(got.Quoted), got.Quoted.Destination(), tt.quoted, testDst6)
			}
			if q := got.QuotedTCP(); len(q) < 4 || binary.BigEndian.Uint16(q) != 40000 {
				t.Errorf("QuotedTCP = %x, want our segment from port 40000", q)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

// The ICMPv6 checksum covers the pseudo-header with next header 58
// (RFC 4443 §2.3), checked with the plain reference loop.
func TestEncodeICMPv6ErrorChecksum(t *testing.T) {
	b := icmp6Packet(t, 1, 4, 0, mustEncode(t, testSYN6()))
	m := b[IPv6HeaderSize:]
	ref := append(pseudoHeader6(testRouter6, testSrc6, ProtocolICMPv6, uint32(len(m))), m...)
	if got := checksumRef(ref, 0); got != 0xffff {
		t.Errorf("pseudo-header and ICMPv6 message sum to %#04x, want 0xffff", got)
	}
	ip := IPv6(b)
	if ip.NextHeader() != ProtocolICMPv6 || ip.HopLimit() != 64 || int(ip.PayloadLength()) != len(m) || ip.Source() != testRouter6 {
		t.Errorf("IPv6 header %+v", ip.Fields())
	}
}

// RFC 4443 §2.4(c): the error never exceeds the minimum MTU.
func TestEncodeICMPv6ErrorCutsTo1280(t *testing.T) {
	s := testSYN6()
	s.Payload = bytes.Repeat([]byte{1}, 3000)
	big := mustEncode(t, s)
	b := icmp6Packet(t, 2, 0, 1280, big)
	if len(b) != ICMPv6MinimumMTU {
		t.Fatalf("error is %d bytes, want %d", len(b), ICMPv6MinimumMTU)
	}
	e, err := ParseICMPv6Error(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Quoted) != 1280-48 || !bytes.Equal(e.Quoted, big[:1280-48]) {
		t.Errorf("quote is %d bytes, want the first %d of the packet", len(e.Quoted), 1280-48)
	}
	f := ICMPv6ErrorFields{From: testRouter, To: testSrc6}
	if _, err := f.Encode(make([]byte, 100)); err == nil || !strings.Contains(err.Error(), "both addresses must be IPv6") {
		t.Errorf("Encode from an IPv4 address: %v", err)
	}
	f = ICMPv6ErrorFields{From: testRouter6, To: testSrc6, Quote: big[:60]}
	if _, err := f.Encode(make([]byte, f.Len()-1)); err == nil || !strings.Contains(err.Error(), "buffer holds 107 bytes, packet needs 108") {
		t.Errorf("Encode into a short buffer: %v", err)
	}
}

func TestParseICMPv6ErrorMalformed(t *testing.T) {
	syn := mustEncode(t, testSYN6())
	udp := bytes.Clone(syn)
	udp[IPv6NextHeaderOffset] = 17
	v4 := bytes.Clone(syn)
	v4[0] = 0x45
	notICMP := icmp6Packet(t, 1, 4, 0, syn)
	notICMP[IPv6NextHeaderOffset] = ProtocolTCP
	// A quoted hop-by-hop header whose length (101 × 8 bytes) runs past the quote.
	bigExt := withExt(syn, ipv6HopByHop, ext(ProtocolTCP, 100, 8))
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"IPv4 packet", mustEncode(t, testSYN()), "version 4, want 6"},
		{"echo reply", icmp6Packet(t, 129, 0, 0, syn), "type 129 code 0 is not an error message"},
		{"neighbour advertisement", icmp6Packet(t, 136, 0, 0, syn), "type 136 code 0"},
		{"not ICMPv6", notICMP, "next header 6, not ICMPv6"},
		{"quotes UDP", icmp6Packet(t, 1, 4, 0, udp), "quotes next header 17, not TCP"},
		{"quotes IPv4", icmp6Packet(t, 1, 4, 0, v4), "quoted header has version 4"},
		{"quoted extension header past its end", icmp6Packet(t, 1, 4, 0, bigExt), "past the end"},
		{"no quoted header", icmp6Packet(t, 1, 4, 0, syn[:39]), "too short for a header and a quoted IPv6 header"},
		{"quote too short for ports", icmp6Packet(t, 1, 4, 0, syn[:43]), "quotes 3 TCP bytes, too few for the ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseICMPv6Error(tt.b)
			if err == nil {
				t.Fatalf("ParseICMPv6Error = %v, nil; want error containing %q", got, tt.want)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrMalformed and %q", err, tt.want)
			}
		})
	}
}
