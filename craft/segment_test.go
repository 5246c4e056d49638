package craft

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func roundTripCases() []struct {
	name string
	seg  Segment
} {
	syn, synack := testSYN(), testSYNACK()
	base := Segment{Src: testSrc, Dst: testDst, SrcPort: 1, DstPort: 65535, Seq: 1, Ack: 0xffffffff, Flags: FlagACK, Window: 501, TTL: 1}
	with := func(mod func(*Segment)) Segment { s := base; mod(&s); return s }
	return []struct {
		name string
		seg  Segment
	}{
		{"SYN with Linux options", syn},
		{"SYN-ACK with options", synack},
		{"RST", Segment{Src: testDst, Dst: testSrc, SrcPort: 80, DstPort: 40000, Seq: 7, Flags: FlagRST, TTL: 255}},
		{"RST-ACK window 0", with(func(s *Segment) { s.Flags = FlagRST | FlagACK; s.Window = 0 })},
		{"no flags, all zero", Segment{Src: netip.AddrFrom4([4]byte{}), Dst: netip.AddrFrom4([4]byte{}), TTL: 64}},
		{"all flags, urgent", with(func(s *Segment) { s.Flags = 0xff; s.Urgent = 0xbeef })},
		{"MSS only", with(func(s *Segment) { s.Options = []Option{MSS(536)} })},
		{"wscale 14", with(func(s *Segment) { s.Options = []Option{NOP(), WindowScale(14)} })},
		{"wscale 255 (invalid shift, still encodable)", with(func(s *Segment) { s.Options = []Option{WindowScale(255)} })},
		{"sackOK alone (padded)", with(func(s *Segment) { s.Options = []Option{SACKPermitted()} })},
		{"timestamps max", with(func(s *Segment) { s.Options = []Option{NOP(), NOP(), Timestamps(0xffffffff, 0x80000000)} })},
		{"SACK 1 block", with(func(s *Segment) {
			s.Options = []Option{NOP(), NOP(), SACK(SACKBlock{1000, 2000})}
		})},
		{"SACK 2 blocks", with(func(s *Segment) {
			s.Options = []Option{NOP(), NOP(), SACK(SACKBlock{1000, 2000}, SACKBlock{3000, 4000})}
		})},
		{"SACK 3 blocks with timestamps", with(func(s *Segment) {
			s.Options = []Option{NOP(), NOP(), Timestamps(5, 6), NOP(), NOP(),
				SACK(SACKBlock{1, 2}, SACKBlock{3, 4}, SACKBlock{0xfffffff0, 0x10})}
		})},
		{"SACK 4 blocks (36 bytes)", with(func(s *Segment) {
			s.Options = []Option{NOP(), NOP(), SACK(SACKBlock{1, 2}, SACKBlock{3, 4}, SACKBlock{5, 6}, SACKBlock{7, 8})}
		})},
		{"unknown kinds kept raw", with(func(s *Segment) {
			s.Options = []Option{{Kind: 30, Data: []byte{1, 2}}, {Kind: 253}, {Kind: 254, Data: []byte{0xf9, 0x89, 0, 0, 1}}}
		})},
		{"40 option bytes", with(func(s *Segment) {
			s.Options = []Option{{Kind: 99, Data: make([]byte, 38)}}
		})},
		{"NOPs only", with(func(s *Segment) { s.Options = []Option{NOP(), NOP(), NOP(), NOP(), NOP()} })},
		{"EOL ends the list", with(func(s *Segment) { s.Options = []Option{MSS(1400), EOL(), MSS(1)} })},
		{"payload even", with(func(s *Segment) { s.Flags = FlagPSH | FlagACK; s.Payload = []byte("GET / HTTP/1.0\r\n\r\n") })},
		{"payload odd with options", with(func(s *Segment) {
			s.Flags = FlagPSH | FlagACK
			s.Options = []Option{NOP(), NOP(), Timestamps(1, 2)}
			s.Payload = []byte("hello")
		})},
		{"IP fields", with(func(s *Segment) { s.TOS = 0xb8; s.ID = 0xffff; s.DF = true; s.TTL = 0 })},
		{"largest packet", with(func(s *Segment) { s.Payload = bytes.Repeat([]byte{0xa5}, 65535-40) })},
	}
}

// want returns what decoding s should give: TTL 0 becomes 64 and
// options stop at the first EOL.
func want(s Segment) Segment {
	if s.TTL == 0 {
		s.TTL = defaultTTL
	}
	for i, o := range s.Options {
		if o.Kind == OptEOL {
			s.Options = s.Options[:i]
			break
		}
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range roundTripCases() {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.seg.Len()
			// Poison: every byte of the packet must be written, none after it.
			poisoned := bytes.Repeat([]byte{0xff}, n+16)
			got, err := tt.seg.Encode(poisoned)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got != n {
				t.Fatalf("Encode wrote %d bytes, Len says %d", got, n)
			}
			zeroed := make([]byte, n+16)
			if _, err := tt.seg.Encode(zeroed); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(poisoned[:n], zeroed[:n]) {
				t.Fatalf("a byte was left unwritten: 0xff-poisoned and zeroed buffers differ\n%x\n%x", poisoned[:n], zeroed[:n])
			}
			if !bytes.Equal(poisoned[n:], bytes.Repeat([]byte{0xff}, 16)) {
				t.Fatalf("Encode wrote past the packet: %x", poisoned[n:])
			}

			p, err := ParsePacket(poisoned[:n])
			if err != nil {
				t.Fatalf("ParsePacket: %v", err)
			}
			if diff := cmp.Diff(want(tt.seg), decoded(t, p), cmpOpts...); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if !p.IP.IsChecksumValid() || !p.TCP.VerifyChecksum(tt.seg.Src, tt.seg.Dst) {
				t.Errorf("checksums do not verify: IP %v, TCP %v", p.IP.IsChecksumValid(), p.TCP.VerifyChecksum(tt.seg.Src, tt.seg.Dst))
			}
			if got, want := int(p.IP.TotalLength()), n; got != want {
				t.Errorf("IP total length %d, want %d", got, want)
			}
			if p.IP.Version() != 4 || p.IP.HeaderLength() != 20 || p.IP.Protocol() != ProtocolTCP {
				t.Errorf("IP version %d, header length %d, protocol %d", p.IP.Version(), p.IP.HeaderLength(), p.IP.Protocol())
			}
			if got, want := p.TCP.DataOffset(), 20+OptionsLen(tt.seg.Options); got != want {
				t.Errorf("data offset %d, want %d", got, want)
			}
		})
	}
}

// Kernels hand over trimmed and padded buffers: the packet ends at
// min(total length, len(b)).
func TestParsePacketTrimmedAndPadded(t *testing.T) {
	s := testSYNACK()
	s.Payload = []byte("0123456789")
	b := mustEncode(t, s)

	padded := append(bytes.Clone(b), 0xee, 0xee, 0xee, 0xee)
	p, err := ParsePacket(padded)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.TCP.Payload()); got != "0123456789" {
		t.Errorf("payload of a padded buffer = %q, want the 10 payload bytes", got)
	}
	if len(p.IP) != len(b) {
		t.Errorf("IP view is %d bytes, want %d (padding excluded)", len(p.IP), len(b))
	}

	p, err = ParsePacket(b[:len(b)-4])
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.TCP.Payload()); got != "012345" {
		t.Errorf("payload of a trimmed buffer = %q, want %q", got, "012345")
	}
	if got := string(p.IP.Payload()[p.TCP.DataOffset():]); got != "012345" {
		t.Errorf("IP payload of a trimmed buffer ends wrong: %q", got)
	}
}

// Parsed views must not let an append overwrite bytes after them.
func TestParsedViewsAreCapped(t *testing.T) {
	s := testSYN()
	s.Payload = []byte("ab")
	b := append(mustEncode(t, s), 0xee)
	p, err := ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(p.TCP.Payload(), 'x')
	_ = append(p.IP, 'x')
	it := p.TCP.Options()
	for it.Next() {
		o := it.Option()
		_ = append(o.Data, 0xaa)
	}
	if b[len(b)-1] != 0xee {
		t.Errorf("append to a parsed view overwrote the byte after the packet")
	}
	if got := string(p.TCP.Payload()); got != "ab" {
		t.Errorf("append to an option overwrote the payload: %q", got)
	}
}

func TestParsePacketMalformed(t *testing.T) {
	syn := mustEncode(t, testSYN()) // 60 bytes: 20 IP, 20 TCP, 20 options
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(syn)) }
	// setOpts replaces the option bytes (20 of them) of the SYN.
	setOpts := func(opts ...byte) []byte {
		return mod(func(b []byte) []byte {
			o := b[40:60]
			clear(o)
			copy(o, opts)
			return b
		})
	}
	tests := []struct {
		name string
		b    []byte
		want string // part of the error text
	}{
		{"empty", nil, "0 bytes"},
		{"truncated IP", syn[:19], "19 bytes, shorter than the 20-byte minimum header"},
		{"IHL < 5", mod(func(b []byte) []byte { b[0] = 0x44; return b }), "below the minimum of 20 (IHL 5)"},
		{"IHL 0", mod(func(b []byte) []byte { b[0] = 0x40; return b }), "header length 0 bytes"},
		{"IHL past end", mod(func(b []byte) []byte { b[0] = 0x46; return b[:22] }), "header length 24 bytes, past the end"},
		{"version 6", mod(func(b []byte) []byte { b[0] = 0x65; return b }), "version 6, want 4"},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0x05; return b }), "version 0, want 4"},
		{"total length < header", mod(func(b []byte) []byte { b[2], b[3] = 0, 19; return b }), "total length 19, shorter than the 20-byte header"},
		{"total length 0", mod(func(b []byte) []byte { b[2], b[3] = 0, 0; return b }), "total length 0"},
		{"not TCP", mod(func(b []byte) []byte { b[9] = 17; return b }), "protocol 17, not TCP"},
		{"non-first fragment", mod(func(b []byte) []byte { b[6], b[7] = 0x00, 0x03; return b }), "fragment at offset 24"},
		{"truncated TCP by total length", mod(func(b []byte) []byte { b[2], b[3] = 0, 30; return b }), "10 bytes, shorter than the 20-byte minimum"},
		{"truncated TCP by buffer", syn[:39], "19 bytes, shorter than the 20-byte minimum"},
		{"IP header only", syn[:20], "0 bytes, shorter than the 20-byte minimum"},
		{"data offset < 5", mod(func(b []byte) []byte { b[32] = 0x40; return b }), "data offset 16 bytes, below the minimum"},
		{"data offset 0", mod(func(b []byte) []byte { b[32] = 0x00; return b }), "data offset 0 bytes"},
		{"data offset past end", mod(func(b []byte) []byte { b[32] = 0xf0; return b }), "data offset 60 bytes, past the end of the 40-byte segment"},
		{"data offset past trimmed end", syn[:56], "data offset 40 bytes, past the end of the 36-byte segment"},
		{"option length 0", setOpts(2, 0), "has length 0"},
		{"option length 1", setOpts(30, 1), "has length 1"},
		{"option past end", setOpts(1, 1, 30, 19), "length 19, past the end of the 20 option bytes"},
		{"option without length byte", setOpts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2), "has no length byte"},
		{"MSS with length 3", setOpts(2, 3, 5), "mss at offset 0 has length 3, want 4"},
		{"MSS with length 5", setOpts(2, 5, 5, 0xb4, 0), "mss at offset 0 has length 5, want 4"},
		{"wscale with length 4", setOpts(1, 3, 4, 7, 0), "wscale at offset 1 has length 4, want 3"},
		{"sackOK with length 3", setOpts(4, 3, 0), "sackOK at offset 0 has length 3, want 2"},
		{"TS with length 9", setOpts(8, 9, 0, 0, 0, 0, 0, 0, 0), "TS at offset 0 has length 9, want 10"},
		{"SACK with length 9", setOpts(5, 9, 0, 0, 0, 0, 0, 0, 0), "sack at offset 0 has length 9, want 2+8n"},
		{"SACK with no blocks", setOpts(5, 2), "sack at offset 0 has length 2, want 2+8n"},
		{"bad option after good ones", setOpts(2, 4, 5, 0xb4, 1, 1, 4, 2, 3, 2), "wscale at offset 8 has length 2, want 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket(tt.b)
			if err == nil {
				t.Fatalf("ParsePacket = %v, nil; want an error containing %q", p, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// The SYN with a first fragment's MF bit still parses: its TCP header is there.
func TestParsePacketFirstFragment(t *testing.T) {
	b := mustEncode(t, testSYN())
	IPv4(b).SetFlagsFragment(false, true, 0)
	if _, err := ParsePacket(b); err != nil {
		t.Errorf("ParsePacket(first fragment) = %v, want nil", err)
	}
}

func TestParseTCP(t *testing.T) {
	b := mustEncode(t, testSYN())
	tcp, err := ParseTCP(b[20:])
	if err != nil {
		t.Fatal(err)
	}
	if tcp.SourcePort() != 40000 || tcp.Flags() != FlagSYN || len(tcp.Payload()) != 0 {
		t.Errorf("ParseTCP: port %d, flags %v, payload %d bytes", tcp.SourcePort(), tcp.Flags(), len(tcp.Payload()))
	}
	if _, err := ParseTCP(b[20:39]); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseTCP(19 bytes) = %v, want ErrMalformed", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	mapped := netip.MustParseAddr("::ffff:198.18.0.2")
	tests := []struct {
		name string
		mod  func(*Segment)
		buf  int // buffer size; 0 means Len()
		want string
	}{
		{"IPv6 source", func(s *Segment) { s.Src = v6 }, 0, "both IPv4 or both IPv6"},
		{"mapped destination", func(s *Segment) { s.Dst = mapped }, 0, "Addr.Unmap"},
		{"zero address", func(s *Segment) { s.Dst = netip.Addr{} }, 0, "both IPv4 or both IPv6"},
		{"41 option bytes", func(s *Segment) { s.Options = []Option{NOP(), {Kind: 99, Data: make([]byte, 38)}} }, 100, "41 option bytes exceed the 40"},
		{"option data over 253", func(s *Segment) { s.Options = []Option{{Kind: 99, Data: make([]byte, 254)}} }, 400, "254 data bytes"},
		{"packet over 65535", func(s *Segment) { s.Options = nil; s.Payload = make([]byte, 65535-39) }, 70000, "65536 bytes, over the IPv4 limit"},
		{"buffer too short", func(s *Segment) {}, 59, "buffer holds 59 bytes, packet needs 60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSYN()
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

func TestSetters(t *testing.T) {
	b := make([]byte, 40)
	ip, tcp := IPv4(b), TCP(b[20:])
	ip.SetVersionIHL(20)
	ip.SetTOS(3)
	ip.SetTotalLength(40)
	ip.SetID(77)
	ip.SetFlagsFragment(true, true, 16)
	ip.SetTTL(9)
	ip.SetProtocol(ProtocolTCP)
	ip.SetSource(testSrc)
	ip.SetDestination(testDst)
	ip.UpdateChecksum()
	tcp.SetSourcePort(1)
	tcp.SetDestinationPort(2)
	tcp.SetSequenceNumber(3)
	tcp.SetAckNumber(4)
	tcp.SetDataOffset(20)
	tcp.SetFlags(FlagFIN | FlagACK)
	tcp.SetWindowSize(5)
	tcp.SetUrgentPointer(6)
	tcp.UpdateChecksum(testSrc, testDst)

	type fields struct {
		V, TOS, TTL, Proto  uint8
		HL, Frag            int
		TL, ID              uint16
		DF, MF, IPOK, TCPOK bool
		Src, Dst            netip.Addr
		SP, DP, Win, Urg    uint16
		Seq, Ack            uint32
		Off                 int
		Flags               Flags
	}
	got := fields{ip.Version(), ip.TOS(), ip.TTL(), ip.Protocol(), ip.HeaderLength(), ip.FragmentOffset(),
		ip.TotalLength(), ip.ID(), ip.DontFragment(), ip.MoreFragments(), ip.IsChecksumValid(),
		tcp.VerifyChecksum(testSrc, testDst), ip.Source(), ip.Destination(),
		tcp.SourcePort(), tcp.DestinationPort(), tcp.WindowSize(), tcp.UrgentPointer(),
		tcp.SequenceNumber(), tcp.AckNumber(), tcp.DataOffset(), tcp.Flags()}
	want := fields{4, 3, 9, 6, 20, 16, 40, 77, true, true, true, true, testSrc, testDst, 1, 2, 5, 6, 3, 4, 20, FlagFIN | FlagACK}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("setters and getters disagree (-want +got):\n%s", diff)
	}
	if _, err := ParsePacket(b); err == nil {
		t.Errorf("ParsePacket accepted a non-first fragment built with setters")
	}
}
