package craft

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParsePacket(f *testing.F) {
	// A Linux-like SYN: mss, sackOK, TS, nop, wscale.
	f.Add(mustEncode(f, testSYN()))
	// A SYN-ACK with options, answering it.
	f.Add(mustEncode(f, testSYNACK()))
	// A bare RST.
	f.Add(mustEncode(f, Segment{Src: testDst, Dst: testSrc, SrcPort: 80, DstPort: 40000, Seq: 1, Flags: FlagRST}))
	// Data with SACK blocks and an odd payload.
	f.Add(mustEncode(f, Segment{Src: testSrc, Dst: testDst, Flags: FlagPSH | FlagACK,
		Options: []Option{NOP(), NOP(), SACK(SACKBlock{1, 2}, SACKBlock{3, 4})}, Payload: []byte("abc")}))
	// Options padded with EOL bytes (regression: an EOL followed by a zero
	// byte once matched the iterator's fast path as a length-0 option).
	f.Add(mustEncode(f, Segment{Src: testSrc, Dst: testDst, Flags: FlagSYN, Options: []Option{MSS(1400), SACKPermitted()}}))
	// Malformed: the SYN with an MSS option of length 3.
	bad := mustEncode(f, testSYN())
	bad[41] = 3
	f.Add(bad)
	// Malformed: IHL 4, and a header cut short.
	f.Add([]byte{0x44, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2})
	f.Add([]byte{0x45, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		// Every getter and view must be safe on a parsed packet.
		_ = p.IP.IsChecksumValid()
		_ = p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination())
		_ = p.TCP.OptionsText(nil)
		_ = p.TCP.Flags().String()
		_ = p.IP.Payload()
		_ = p.IP.Options()

		// Re-encode what we read; parsing that again must give the same
		// segment (options up to EOL, IP options dropped).
		s := Segment{
			Src: p.IP.Source(), Dst: p.IP.Destination(),
			SrcPort: p.TCP.SourcePort(), DstPort: p.TCP.DestinationPort(),
			Seq: p.TCP.SequenceNumber(), Ack: p.TCP.AckNumber(), Flags: p.TCP.Flags(),
			Window: p.TCP.WindowSize(), Urgent: p.TCP.UrgentPointer(), Payload: p.TCP.Payload(),
			TTL: p.IP.TTL(), TOS: p.IP.TOS(), ID: p.IP.ID(), DF: p.IP.DontFragment(),
		}
		it := p.TCP.Options()
		for it.Next() {
			o := it.Option()
			_ = o.String()
			s.Options = append(s.Options, o)
		}
		if it.Err() != nil {
			t.Fatalf("ParsePacket accepted options the iterator rejects: %v", it.Err())
		}
		if s.TTL == 0 {
			s.TTL = 1 // 0 would encode as 64
		}
		out := make([]byte, s.Len())
		n, err := s.Encode(out)
		if err != nil {
			t.Fatalf("re-encoding a parsed packet: %v", err)
		}
		q, err := ParsePacket(out[:n])
		if err != nil {
			t.Fatalf("parsing our re-encoding: %v", err)
		}
		if !q.IP.IsChecksumValid() || !q.TCP.VerifyChecksum(s.Src, s.Dst) {
			t.Fatalf("re-encoded checksums do not verify")
		}
		if !bytes.Equal(q.TCP.Payload(), p.TCP.Payload()) || q.TCP.SequenceNumber() != s.Seq || q.TCP.Flags() != s.Flags {
			t.Fatalf("re-encoding changed the segment")
		}
		if got, want := trimEOL(string(q.TCP.OptionsText(nil))), trimEOL(string(p.TCP.OptionsText(nil))); got != want {
			t.Fatalf("re-encoded options %q, parsed %q", got, want)
		}
	})
}

// trimEOL drops a trailing ",eol"/"eol" that padding adds.
func trimEOL(s string) string {
	s, _ = strings.CutSuffix(s, "eol")
	s, _ = strings.CutSuffix(s, ",")
	return s
}

func FuzzParseICMPError(f *testing.F) {
	syn := mustEncode(f, testSYN())
	// 3/13 quoting our whole SYN.
	f.Add(icmpPacket(3, 13, [4]byte{}, syn))
	// 11/0 quoting the RFC 792 minimum: IP header plus 8 bytes.
	f.Add(icmpPacket(11, 0, [4]byte{}, syn[:28]))
	// 3/4 with a next-hop MTU and an RFC 4884 length.
	f.Add(icmpPacket(3, 4, [4]byte{0, 7, 0x05, 0x78}, syn[:28]))
	// Malformed: an echo reply, and a quote too short for the ports.
	f.Add(icmpPacket(0, 0, [4]byte{}, syn[:28]))
	f.Add(icmpPacket(3, 3, [4]byte{}, syn[:22]))

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseICMPError(b)
		if err != nil {
			return
		}
		_ = e.String()
		q := e.QuotedTCP()
		if len(q) < 4 {
			t.Fatalf("accepted a quote of %d TCP bytes", len(q))
		}
		if e.HasSeq != (len(q) >= 8) {
			t.Fatalf("HasSeq %v with %d quoted TCP bytes", e.HasSeq, len(q))
		}
		if e.Quoted.Protocol() != ProtocolTCP || e.Quoted.Version() != 4 {
			t.Fatalf("accepted a quote of protocol %d version %d", e.Quoted.Protocol(), e.Quoted.Version())
		}
	})
}

func FuzzParseFlags(f *testing.F) {
	// Letters, names, numbers, and garbage.
	for _, s := range []string{"S", "SA", "S.", "FPU", "syn,ack", "fin|ack", "0x12", "18", "", "SX", "none", "0x", "syn,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFlags(s)
		if err != nil {
			return
		}
		// Whatever parses prints in a form that parses back to it.
		back, err := ParseFlags(fl.String())
		if err != nil || back != fl {
			t.Fatalf("ParseFlags(%q) = %v, but ParseFlags(%q) = %v, %v", s, fl, fl.String(), back, err)
		}
	})
}

// The fast validity check and the iterator must agree on every input:
// ParsePacket trusts the first and reports errors from the second.
func FuzzOptionsValid(f *testing.F) {
	f.Add([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	f.Add([]byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{2, 3, 5, 0})
	f.Add([]byte{0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := NewOptionIter(b)
		for it.Next() {
			o := it.Option()
			if o.Len() > len(b) {
				t.Fatalf("option %v longer than the input", o)
			}
		}
		if valid := optionsValid(b); valid != (it.Err() == nil) {
			t.Fatalf("optionsValid = %v but iterator error = %v", valid, it.Err())
		}
	})
}

func FuzzParseIPv6Packet(f *testing.F) {
	syn := mustEncode(f, testSYN6())
	// A Linux-like SYN with a flow label, and its SYN-ACK.
	f.Add(syn)
	f.Add(mustEncode(f, to6(testSYNACK())))
	// Data with SACK blocks and an odd payload.
	f.Add(mustEncode(f, Segment{Src: testSrc6, Dst: testDst6, Flags: FlagPSH | FlagACK,
		Options: []Option{NOP(), NOP(), SACK(SACKBlock{1, 2})}, Payload: []byte("abc")}))
	// The SYN behind hop-by-hop and destination options headers, and
	// behind a first fragment header.
	f.Add(withExt(syn, ipv6HopByHop, ext(ipv6DestinationOpts, 0, 8), ext(ProtocolTCP, 0, 8)))
	f.Add(withExt(syn, ipv6Fragment, ext(ProtocolTCP, 0, 8)))
	// Malformed: a bad MSS length, a header cut short, version 4.
	bad := bytes.Clone(syn)
	bad[IPv6HeaderSize+21] = 3
	f.Add(bad)
	f.Add(syn[:39])
	f.Add(mustEncode(f, testSYN()))

	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseIPv6Packet(b)
		if err != nil {
			return
		}
		_ = p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination())
		_ = p.TCP.OptionsText(nil)
		_ = p.IP.Payload()
		_ = p.IP.Fields()

		// Re-encode what we read (extension headers dropped); parsing
		// that again must give the same segment.
		s := Segment{
			Src: p.IP.Source(), Dst: p.IP.Destination(),
			SrcPort: p.TCP.SourcePort(), DstPort: p.TCP.DestinationPort(),
			Seq: p.TCP.SequenceNumber(), Ack: p.TCP.AckNumber(), Flags: p.TCP.Flags(),
			Window: p.TCP.WindowSize(), Urgent: p.TCP.UrgentPointer(), Payload: p.TCP.Payload(),
			TTL: p.IP.HopLimit(), TOS: p.IP.TrafficClass(), FlowLabel: p.IP.FlowLabel(),
		}
		if s.Src.Is4In6() || s.Dst.Is4In6() {
			return // a mapped address on the wire: Encode refuses it on purpose
		}
		it := p.TCP.Options()
		for it.Next() {
			s.Options = append(s.Options, it.Option())
		}
		if it.Err() != nil {
			t.Fatalf("ParseIPv6Packet accepted options the iterator rejects: %v", it.Err())
		}
		if s.TTL == 0 {
			s.TTL = 1
		}
		out := make([]byte, s.Len())
		n, err := s.Encode(out)
		if err != nil {
			t.Fatalf("re-encoding a parsed packet: %v", err)
		}
		q, err := ParseIPv6Packet(out[:n])
		if err != nil {
			t.Fatalf("parsing our re-encoding: %v", err)
		}
		if !q.TCP.VerifyChecksum(s.Src, s.Dst) {
			t.Fatalf("re-encoded checksum does not verify")
		}
		if !bytes.Equal(q.TCP.Payload(), p.TCP.Payload()) || q.TCP.SequenceNumber() != s.Seq || q.TCP.Flags() != s.Flags ||
			q.IP.FlowLabel() != s.FlowLabel || q.IP.TrafficClass() != s.TOS {
			t.Fatalf("re-encoding changed the segment")
		}
		if got, want := trimEOL(string(q.TCP.OptionsText(nil))), trimEOL(string(p.TCP.OptionsText(nil))); got != want {
			t.Fatalf("re-encoded options %q, parsed %q", got, want)
		}
	})
}

func FuzzParseICMPv6Error(f *testing.F) {
	syn := mustEncode(f, testSYN6())
	// 1/1 quoting our whole SYN, 2/0 with an MTU, 3/0 quoting 8 TCP bytes.
	f.Add(icmp6Packet(f, 1, 1, 0, syn))
	f.Add(icmp6Packet(f, 2, 0, 1280, syn))
	f.Add(icmp6Packet(f, 3, 0, 0, syn[:48]))
	// An RFC 4884 length, and a quote behind a hop-by-hop header.
	f.Add(icmp6Packet(f, 1, 4, 6<<24, syn))
	f.Add(icmp6Packet(f, 1, 0, 0, withExt(syn, ipv6HopByHop, ext(ProtocolTCP, 0, 8))))
	// Malformed: an echo reply, and a quote too short for the ports.
	f.Add(icmp6Packet(f, 129, 0, 0, syn))
	f.Add(icmp6Packet(f, 1, 4, 0, syn[:42]))

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseICMPv6Error(b)
		if err != nil {
			return
		}
		_ = e.String()
		q := e.QuotedTCP()
		if len(q) < 4 {
			t.Fatalf("accepted a quote of %d TCP bytes", len(q))
		}
		if e.HasSeq != (len(q) >= 8) {
			t.Fatalf("HasSeq %v with %d quoted TCP bytes", e.HasSeq, len(q))
		}
		if e.Quoted.Version() != 6 || e.Type < 1 || e.Type > 4 {
			t.Fatalf("accepted type %d quoting version %d", e.Type, e.Quoted.Version())
		}
	})
}
