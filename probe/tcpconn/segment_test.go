package tcpconn

import (
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
)

// A recorded segment's Raw is an IPv4 or an IPv6 packet: TCP reads the
// same TCP header out of either, and refuses bytes that are neither.
func TestSegmentTCPBothFamilies(t *testing.T) {
	for _, ends := range [][2]string{{"198.18.0.1", "198.18.0.2"}, {"2001:2::1", "2001:2::2"}} {
		s := craft.Segment{Src: netip.MustParseAddr(ends[0]), Dst: netip.MustParseAddr(ends[1]), SrcPort: 40000, DstPort: 7001,
			Seq: 1000, Ack: 2000, Flags: craft.FlagSYN | craft.FlagACK, Window: 1234, Options: []craft.Option{craft.MSS(1440)}}
		b := make([]byte, 128)
		n, err := s.Encode(b)
		if err != nil {
			t.Fatalf("%s: encode: %v", ends[0], err)
		}
		tcp, err := (&Segment{Raw: b[:n]}).TCP()
		if err != nil {
			t.Fatalf("%s: TCP(): %v", ends[0], err)
		}
		if tcp.SequenceNumber() != 1000 || tcp.AckNumber() != 2000 || tcp.Flags() != s.Flags || tcp.WindowSize() != 1234 || tcp.DestinationPort() != 7001 {
			t.Errorf("%s: TCP() reads seq %d ack %d flags %s win %d dport %d", ends[0], tcp.SequenceNumber(), tcp.AckNumber(), tcp.Flags(), tcp.WindowSize(), tcp.DestinationPort())
		}
	}
	for _, raw := range [][]byte{nil, {0x60, 0, 0}, {0x45}, make([]byte, 40)} {
		if _, err := (&Segment{Raw: raw}).TCP(); err == nil {
			t.Errorf("TCP() of % x: no error", raw)
		}
	}
}
