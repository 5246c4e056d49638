package craft_test

import (
	"fmt"
	"net/netip"

	"github.com/tcpwalk/tcpwalk/craft"
)

// A SYN over IPv6: the family is the addresses'. TTL is the hop limit,
// TOS the traffic class; FlowLabel is IPv6's own.
func ExampleSegment_Encode_ipv6() {
	s := craft.Segment{
		Src: netip.MustParseAddr("2001:2::1"), Dst: netip.MustParseAddr("2001:2::2"),
		SrcPort: 40000, DstPort: 80, Seq: 1, Flags: craft.FlagSYN, Window: 64240,
		Options: craft.DefaultSYNOptions(0), FlowLabel: 0x12345,
	}
	buf := make([]byte, s.Len())
	n, err := s.Encode(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := craft.ParseIPv6Packet(buf[:n])
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes, hop limit %d, flow label %#x, %v -> %v %s\n", n, p.IP.HopLimit(), p.IP.FlowLabel(),
		p.IP.Source(), p.IP.Destination(), p.TCP.Flags())
	fmt.Println("checksum ok:", p.TCP.VerifyChecksum(p.IP.Source(), p.IP.Destination()))
	// Output:
	// 80 bytes, hop limit 64, flow label 0x12345, 2001:2::1 -> 2001:2::2 S
	// checksum ok: true
}

// An ICMPv6 packet-too-big from a router, quoting a segment, and what the
// prober reads from it.
func ExampleParseICMPv6Error() {
	s := craft.Segment{Src: netip.MustParseAddr("2001:2::1"), Dst: netip.MustParseAddr("2001:2::2"),
		SrcPort: 40000, DstPort: 80, Seq: 7, Flags: craft.FlagACK, Payload: make([]byte, 1400)}
	seg := make([]byte, s.Len())
	n, _ := s.Encode(seg)
	f := craft.ICMPv6ErrorFields{From: netip.MustParseAddr("2001:2::9"), To: s.Src,
		Type: craft.ICMPv6PacketTooBig, Param: 1280, Quote: seg[:n]}
	b := make([]byte, f.Len())
	m, _ := f.Encode(b)
	e, err := craft.ParseICMPv6Error(b[:m])
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m, "bytes:", e)
	fmt.Println("about", e.SrcPort, "->", e.DstPort, "seq", e.Seq)
	// Output:
	// 1280 bytes: ICMPv6 2/0 (packet too big, MTU 1280) from 2001:2::9
	// about 40000 -> 80 seq 7
}
