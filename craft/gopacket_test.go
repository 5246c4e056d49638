package craft

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// gopacketSegment decodes b with gopacket, an independent implementation,
// into a Segment, and checks both checksums with gopacket's own code.
func gopacketSegment(t *testing.T, b []byte) Segment {
	t.Helper()
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.DecodeOptions{NoCopy: true})
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode our bytes: %v", el.Error())
	}
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("gopacket found layers %v, want IPv4 and TCP", pkt.Layers())
	}
	if ip.Version != 4 || ip.IHL != 5 || ip.Protocol != layers.IPProtocolTCP || int(ip.Length) != len(b) || ip.FragOffset != 0 {
		t.Errorf("gopacket IPv4: version %d IHL %d protocol %v length %d frag %d", ip.Version, ip.IHL, ip.Protocol, ip.Length, ip.FragOffset)
	}
	// IPv4 checksum: let gopacket compute it over the same header.
	stored := ip.Checksum
	if err := ip.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if ip.Checksum != stored {
		t.Errorf("IPv4 checksum %#04x, gopacket computes %#04x", stored, ip.Checksum)
	}
	// TCP checksum: gopacket sums the segment with the stored checksum
	// included, which gives 0 when it is right.
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	if c, err := tcp.ComputeChecksum(); err != nil || c != 0 {
		t.Errorf("gopacket says the TCP checksum %#04x is wrong (residue %#04x, %v)", tcp.Checksum, c, err)
	}

	var f Flags
	for _, x := range []struct {
		set bool
		f   Flags
	}{{tcp.FIN, FlagFIN}, {tcp.SYN, FlagSYN}, {tcp.RST, FlagRST}, {tcp.PSH, FlagPSH}, {tcp.ACK, FlagACK}, {tcp.URG, FlagURG}, {tcp.ECE, FlagECE}, {tcp.CWR, FlagCWR}} {
		if x.set {
			f |= x.f
		}
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	s := Segment{
		Src: src, Dst: dst, SrcPort: uint16(tcp.SrcPort), DstPort: uint16(tcp.DstPort),
		Seq: tcp.Seq, Ack: tcp.Ack, Flags: f, Window: tcp.Window, Urgent: tcp.Urgent,
		Payload: bytes.Clone(tcp.Payload), TTL: ip.TTL, TOS: ip.TOS, ID: ip.Id,
		DF: ip.Flags&layers.IPv4DontFragment != 0,
	}
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindEndList {
			break // gopacket lists the EOL; our iterator stops at it
		}
		s.Options = append(s.Options, Option{Kind: OptionKind(o.OptionType), Data: bytes.Clone(o.OptionData)})
	}
	return s
}

// Our bytes, decoded by gopacket, give the fields we meant.
func TestGopacketDecodesOurBytes(t *testing.T) {
	for _, tt := range roundTripCases() {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, tt.seg)
			if diff := cmp.Diff(want(tt.seg), gopacketSegment(t, b), cmpOpts...); diff != "" {
				t.Errorf("gopacket decodes (-want +got):\n%s", diff)
			}
		})
	}
}

// gopacket's bytes, parsed by us, give the fields gopacket was given.
func TestWeDecodeGopacketBytes(t *testing.T) {
	ip := &layers.IPv4{
		Version: 4, TTL: 42, TOS: 0x10, Id: 999, Flags: layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP, SrcIP: testSrc.AsSlice(), DstIP: testDst.AsSlice(),
	}
	tcp := &layers.TCP{
		SrcPort: 443, DstPort: 50000, Seq: 1, Ack: 2, SYN: true, ACK: true, ECE: true, Window: 1000,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{5, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted},
			{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 0, 0, 9, 0, 0, 0, 8}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{9}},
			{OptionType: layers.TCPOptionKindSACK, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}},
		},
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp, gopacket.Payload("data")); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePacket(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantSeg := Segment{
		Src: testSrc, Dst: testDst, SrcPort: 443, DstPort: 50000, Seq: 1, Ack: 2,
		Flags: FlagSYN | FlagACK | FlagECE, Window: 1000,
		Options: []Option{MSS(1460), SACKPermitted(), Timestamps(9, 8), NOP(), WindowScale(9), SACK(SACKBlock{1, 2})},
		Payload: []byte("data"), TTL: 42, TOS: 0x10, ID: 999, DF: true,
	}
	if diff := cmp.Diff(wantSeg, decoded(t, p), cmpOpts...); diff != "" {
		t.Errorf("we decode gopacket's bytes (-want +got):\n%s", diff)
	}
	if !p.IP.IsChecksumValid() || !p.TCP.VerifyChecksum(testSrc, testDst) {
		t.Errorf("gopacket's checksums do not verify with ours")
	}
	// 30 option bytes padded to 32: tcpdump prints the padding as eol.
	if got, want := string(p.TCP.OptionsText(nil)), "mss 1460,sackOK,TS val 9 ecr 8,nop,wscale 9,sack 1 {1:2},eol"; got != want {
		t.Errorf("OptionsText = %q, want %q", got, want)
	}
}

// gopacketSegment6 is gopacketSegment for IPv6: gopacket decodes b from
// the IPv6 header and checks the TCP checksum over its own pseudo-header.
func gopacketSegment6(t *testing.T, b []byte) Segment {
	t.Helper()
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.DecodeOptions{NoCopy: true})
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode our bytes: %v", el.Error())
	}
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("gopacket found layers %v, want IPv6 and TCP", pkt.Layers())
	}
	if ip.Version != 6 || ip.NextHeader != layers.IPProtocolTCP || int(ip.Length) != len(b)-IPv6HeaderSize {
		t.Errorf("gopacket IPv6: version %d next header %v length %d", ip.Version, ip.NextHeader, ip.Length)
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	if c, err := tcp.ComputeChecksum(); err != nil || c != 0 {
		t.Errorf("gopacket says the TCP checksum %#04x is wrong (residue %#04x, %v)", tcp.Checksum, c, err)
	}
	var f Flags
	for _, x := range []struct {
		set bool
		f   Flags
	}{{tcp.FIN, FlagFIN}, {tcp.SYN, FlagSYN}, {tcp.RST, FlagRST}, {tcp.PSH, FlagPSH}, {tcp.ACK, FlagACK}, {tcp.URG, FlagURG}, {tcp.ECE, FlagECE}, {tcp.CWR, FlagCWR}} {
		if x.set {
			f |= x.f
		}
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	s := Segment{
		Src: src, Dst: dst, SrcPort: uint16(tcp.SrcPort), DstPort: uint16(tcp.DstPort),
		Seq: tcp.Seq, Ack: tcp.Ack, Flags: f, Window: tcp.Window, Urgent: tcp.Urgent,
		Payload: bytes.Clone(tcp.Payload), TTL: ip.HopLimit, TOS: ip.TrafficClass, FlowLabel: ip.FlowLabel,
	}
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindEndList {
			break
		}
		s.Options = append(s.Options, Option{Kind: OptionKind(o.OptionType), Data: bytes.Clone(o.OptionData)})
	}
	return s
}

// Our IPv6 bytes, decoded by gopacket, give the fields we meant.
func TestGopacketDecodesOurIPv6Bytes(t *testing.T) {
	for _, tt := range roundTripCases6() {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, tt.seg)
			if diff := cmp.Diff(want6(tt.seg), gopacketSegment6(t, b), cmpOpts...); diff != "" {
				t.Errorf("gopacket decodes (-want +got):\n%s", diff)
			}
		})
	}
}

// gopacket's IPv6 bytes, parsed by us, give the fields gopacket was given.
func TestWeDecodeGopacketIPv6Bytes(t *testing.T) {
	ip := &layers.IPv6{
		Version: 6, TrafficClass: 0x28, FlowLabel: 0x54321, HopLimit: 42,
		NextHeader: layers.IPProtocolTCP, SrcIP: testSrc6.AsSlice(), DstIP: testDst6.AsSlice(),
	}
	tcp := &layers.TCP{
		SrcPort: 443, DstPort: 50000, Seq: 1, Ack: 2, SYN: true, ACK: true, Window: 1000,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{5, 0x8c}},
			{OptionType: layers.TCPOptionKindSACKPermitted},
			{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 0, 0, 9, 0, 0, 0, 8}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{9}},
		},
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp, gopacket.Payload("data")); err != nil {
		t.Fatal(err)
	}
	p, err := ParseIPv6Packet(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantSeg := Segment{
		Src: testSrc6, Dst: testDst6, SrcPort: 443, DstPort: 50000, Seq: 1, Ack: 2,
		Flags: FlagSYN | FlagACK, Window: 1000,
		Options: []Option{MSS(1420), SACKPermitted(), Timestamps(9, 8), NOP(), WindowScale(9)},
		Payload: []byte("data"), TTL: 42, TOS: 0x28, FlowLabel: 0x54321,
	}
	if diff := cmp.Diff(wantSeg, decoded6(t, p), cmpOpts...); diff != "" {
		t.Errorf("we decode gopacket's bytes (-want +got):\n%s", diff)
	}
	if !p.TCP.VerifyChecksum(testSrc6, testDst6) {
		t.Errorf("gopacket's TCP checksum does not verify with ours")
	}
}

// Our ICMPv6 errors, decoded by gopacket, carry the type, code, a checksum
// gopacket accepts, and our SYN in the quote.
func TestGopacketDecodesOurICMPv6Error(t *testing.T) {
	syn := mustEncode(t, testSYN6())
	f := ICMPv6ErrorFields{From: testRouter6, To: testSrc6, Type: ICMPv6PacketTooBig, Param: 1280, Quote: syn}
	b := make([]byte, f.Len())
	n, err := f.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(b[:n], layers.LayerTypeIPv6, gopacket.DecodeOptions{NoCopy: true})
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	m, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip == nil || m == nil {
		t.Fatalf("gopacket found layers %v, want IPv6 and ICMPv6", pkt.Layers())
	}
	if m.TypeCode.Type() != layers.ICMPv6TypePacketTooBig || m.TypeCode.Code() != 0 {
		t.Errorf("gopacket reads type/code %v", m.TypeCode)
	}
	stored := m.Checksum
	if err := m.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	if err := gopacket.SerializeLayers(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}, m, gopacket.Payload(m.Payload)); err != nil {
		t.Fatal(err)
	}
	if m.Checksum != stored {
		t.Errorf("ICMPv6 checksum %#04x, gopacket computes %#04x", stored, m.Checksum)
	}
	// gopacket keeps the MTU word as the first 4 payload bytes of type 2.
	if q := m.Payload; len(q) != 4+len(syn) || binary.BigEndian.Uint32(q) != 1280 || !bytes.Equal(q[4:], syn) {
		t.Errorf("gopacket's ICMPv6 payload %x, want the MTU 1280 then our SYN", q)
	}
}
