package craft

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Encode's Linux-SYN fast path writes the same bytes, and the same sum,
// as the general option encoder, for any values.
func TestLinuxSYNFastPathMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		var mss [2]byte
		binary.BigEndian.PutUint16(mss[:], uint16(r.Uint32()))
		opts := []Option{
			{Kind: OptMSS, Data: mss[:]}, SACKPermitted(), Timestamps(r.Uint32(), r.Uint32()), NOP(), WindowScale(uint8(r.Uint32())),
		}
		if !isLinuxSYNLayout(opts) {
			t.Fatalf("isLinuxSYNLayout(%v) = false", opts)
		}
		want := make([]byte, 20)
		wantSum := encodeOptions(want, opts, 20)
		w0, w1, w2 := linuxSYNWords(opts)
		got := binary.BigEndian.AppendUint64(nil, w0)
		got = binary.BigEndian.AppendUint64(got, w1)
		got = binary.BigEndian.AppendUint32(got, w2)
		if !bytes.Equal(got, want) {
			t.Fatalf("fast words %x, general encoder %x", got, want)
		}
		// Encode adds the words with end-around carry, as here.
		acc, c := bits.Add64(w0, w1, 0)
		acc, c = bits.Add64(acc, uint64(w2), c)
		if got, want := fold64(acc+c), fold32(wantSum); got != want {
			t.Fatalf("fast sum %#04x, general sum %#04x", got, want)
		}
	}
	// Near misses take the general path.
	for _, opts := range [][]Option{
		{MSS(1460), SACKPermitted(), Timestamps(1, 0), NOP()},
		{MSS(1460), SACKPermitted(), Timestamps(1, 0), NOP(), WindowScale(7), NOP()},
		{{Kind: OptMSS, Data: []byte{5, 0xb4, 0}}, SACKPermitted(), Timestamps(1, 0), NOP(), WindowScale(7)},
		{MSS(1460), {Kind: OptSACKPermitted, Data: []byte{0}}, Timestamps(1, 0), NOP(), WindowScale(7)},
		{MSS(1460), SACKPermitted(), {Kind: OptTimestamps, Data: make([]byte, 7)}, NOP(), WindowScale(7)},
		{MSS(1460), SACKPermitted(), Timestamps(1, 0), EOL(), WindowScale(7)},
		{MSS(1460), SACKPermitted(), Timestamps(1, 0), NOP(), {Kind: OptWindowScale}},
		{SACKPermitted(), MSS(1460), Timestamps(1, 0), NOP(), WindowScale(7)},
	} {
		if isLinuxSYNLayout(opts) {
			t.Errorf("isLinuxSYNLayout(%v) = true", opts)
		}
	}
}

// randomSegment draws a segment with random fields, options and payload
// (options within the 40 bytes a header holds).
func randomSegment(r *rand.Rand) Segment {
	addr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	s := Segment{
		Src: addr(), Dst: addr(), SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()),
		Seq: r.Uint32(), Ack: r.Uint32(), Flags: Flags(r.Uint32()), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
		TTL: uint8(r.Uint32()), TOS: uint8(r.Uint32()), ID: uint16(r.Uint32()), DF: r.IntN(2) == 0,
	}
	if r.IntN(3) == 0 {
		// The fast path, with extreme values now and then.
		s.Options = DefaultSYNOptions(r.Uint32())
		s.Options[0] = MSS(uint16(r.Uint32()))
		s.Options[4] = WindowScale(uint8(r.Uint32()))
		if r.IntN(4) == 0 {
			s.Options[0], s.Options[2] = MSS(0xffff), Timestamps(0xffffffff, 0xffffffff)
		}
	} else {
		pool := []func() Option{
			func() Option { return MSS(uint16(r.Uint32())) }, SACKPermitted, NOP, EOL,
			func() Option { return Timestamps(r.Uint32(), r.Uint32()) },
			func() Option { return WindowScale(uint8(r.Uint32())) },
			func() Option { return SACK(SACKBlock{r.Uint32(), r.Uint32()}) },
			func() Option { return Option{Kind: OptionKind(9 + r.IntN(247)), Data: make([]byte, r.IntN(5))} }, // unknown kinds
		}
		for n := r.IntN(6); n > 0; n-- {
			o := pool[r.IntN(len(pool))]()
			if OptionsLen(append(s.Options, o)) > TCPOptionsMaximumSize {
				break
			}
			s.Options = append(s.Options, o)
		}
	}
	s.Payload = make([]byte, r.IntN(64))
	for i := range s.Payload {
		s.Payload[i] = byte(r.Uint32())
	}
	return s
}

// Encode sums both checksums from register values; the plain RFC 1071
// reference loop over the written bytes must agree, for random segments.
func TestEncodeChecksumsDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 0xe7c0de))
		for range 1000 {
			s := randomSegment(r)
			b := bytes.Repeat([]byte{0xff}, s.Len())
			n, err := s.Encode(b)
			if err != nil {
				t.Fatalf("seed %d: Encode(%+v): %v", seed, s, err)
			}
			if got := checksumRef(b[:IPv4MinimumSize], 0); got != 0xffff {
				t.Fatalf("seed %d: IP header sums to %#04x, want 0xffff: %x", seed, got, b[:n])
			}
			seg := b[IPv4MinimumSize:n]
			ph := PseudoHeaderSum(s.Src, s.Dst, ProtocolTCP, uint16(len(seg)))
			if got := checksumRef(seg, ph); got != 0xffff {
				t.Fatalf("seed %d: TCP segment sums to %#04x, want 0xffff: %x", seed, got, b[:n])
			}
			p, err := ParsePacket(b[:n])
			if err != nil {
				t.Fatalf("seed %d: ParsePacket: %v", seed, err)
			}
			if p.TCP.SequenceNumber() != s.Seq || p.IP.ID() != s.ID || !bytes.Equal(p.TCP.Payload(), s.Payload) {
				t.Fatalf("seed %d: fields did not round-trip", seed)
			}
		}
	}
}
