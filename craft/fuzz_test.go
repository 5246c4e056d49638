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
