package craft

import (
	"bytes"
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
