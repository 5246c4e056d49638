package report

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// The pcapng format (IETF draft-ietf-opsawg-pcapng, "PCAP Next Generation
// Dump File Format") is written by pcapgo's NgWriter from
// github.com/gopacket/gopacket, the maintained fork of google/gopacket:
// google/gopacket v1.1.19 (the last release, 2020) writes no per-packet
// options, the fork's WritePacketWithOptions writes opt_comment and
// epb_flags, which is what makes the file explain itself in Wireshark.

// maxpcapComment bounds a packet comment, in runes: an option's length is
// 16 bits in pcapng, and a comment is read in one line of Wireshark.
const maxpcapComment = 200

// pcapInterface is the one interface of the file: raw IPv4 packets
// (LINKTYPE_RAW, 101: no link-layer header, the version nibble tells IPv4
// from IPv6), exactly the bytes tcpwalk's raw sockets sent and read.
func pcapInterface() pcapgo.NgInterface {
	intf := pcapgo.DefaultNgInterface // keeps the nanosecond resolution NgWriter assumes
	intf.Name = "tcpwalk"
	intf.Description = "raw IPv4 segments sent and received by tcpwalk"
	intf.LinkType = layers.LinkTypeRaw
	return intf
}

// WritePcap writes every recorded segment of every result, sent and
// received, as one pcapng section readable by tcpdump, tshark and
// Wireshark. Packets are in time order across all results (walks run
// concurrently, so their packets interleave as they did on the wire), one
// per Segment with a non-empty Raw, timestamped Segment.At with nanosecond
// resolution. Each packet carries:
//
//   - a comment (opt_comment) naming the walk or check, the direction, what
//     the segment was and for, and the remote state it implies, e.g.
//     "handshake: in S. → remote SYN_RCVD" or
//     "passive-close: out . (ACK of FIN) → remote CLOSED";
//     tshark shows it as the field frame.comment;
//   - its direction in epb_flags (outbound = sent by tcpwalk, inbound = the
//     remote's), tshark's frame.packet_flags_direction.
//
// Segments without Raw (none in package walk's records) are left out. The
// packets are the bytes as handed to or read from the raw socket. On a
// send the kernel replaces a zero IP ID (see package probe), so our packets
// show ID 0 where the wire had the kernel's. A reply from a local network
// namespace (veth) arrives with an unfinished TCP checksum (checksum
// offload: the field holds only the pseudo-header sum), which a capture
// tool would flag as bad: WritePcap fills the checksum in and says so in
// the comment ("TCP checksum filled in").
func WritePcap(w io.Writer, results []walk.Result) error {
	type packet struct {
		seg      *walk.Segment
		scenario string
	}
	var pkts []packet
	for i := range results {
		r := &results[i]
		for j := range r.Segments {
			if len(r.Segments[j].Raw) > 0 {
				pkts = append(pkts, packet{seg: &r.Segments[j], scenario: r.Scenario})
			}
		}
	}
	// Stable: segments with equal times keep their recorded order.
	slices.SortStableFunc(pkts, func(a, b packet) int { return a.seg.At.Compare(b.seg.At) })

	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware:    runtime.GOARCH,
		OS:          runtime.GOOS,
		Application: "tcpwalk",
		Comment:     fmt.Sprintf("tcpwalk: %d packets of %d walks or checks", len(pkts), len(results)),
	}}
	ng, err := pcapgo.NewNgWriterInterface(w, pcapInterface(), opts)
	if err != nil {
		return fmt.Errorf("report: write the pcapng section header: %w", err)
	}
	in := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	out := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	comment := make([]string, 1)
	for i, p := range pkts {
		s := p.seg
		data := s.Raw
		comment[0] = pcapComment(p.scenario, *s)
		if filled, ok := fillOffloadChecksum(data); ok {
			data = filled
			comment[0] = truncate(comment[0]+" [TCP checksum filled in: sent with checksum offload]", maxpcapComment)
		}
		ci := gopacket.CaptureInfo{Timestamp: s.At, CaptureLength: len(data), Length: len(data)}
		po := pcapgo.NgPacketOptions{Comments: comment, Flags: &in}
		if s.Dir == walk.Out {
			po.Flags = &out
		}
		if err := ng.WritePacketWithOptions(ci, data, po); err != nil {
			return fmt.Errorf("report: write packet %d of %d (%s) to pcapng: %w", i+1, len(pkts), comment[0], err)
		}
	}
	if err := ng.Flush(); err != nil {
		return fmt.Errorf("report: write %d packets to pcapng: %w", len(pkts), err)
	}
	return nil
}

// fillOffloadChecksum returns a copy of an IPv4 or IPv6 TCP packet whose
// checksum field holds only the folded pseudo-header sum (CHECKSUM_PARTIAL:
// the sender left the rest to a NIC that a veth never had) with the
// checksum computed in full, and true; any other packet, a correct or a
// truly bad checksum included, is left as it is (false). The pseudo-header
// is RFC 9293 §3.1's for IPv4 and RFC 8200 §8.1's for IPv6.
func fillOffloadChecksum(raw []byte) ([]byte, bool) {
	var src, dst netip.Addr
	var tcp craft.TCP
	off := 0 // where the TCP header starts
	if len(raw) > 0 && raw[0]>>4 == 6 {
		p, err := craft.ParseIPv6Packet(raw)
		if err != nil {
			return nil, false
		}
		src, dst, tcp = p.IP.Source(), p.IP.Destination(), p.TCP
		// TCP ends the payload, after any extension headers.
		off = craft.IPv6HeaderSize + int(p.IP.PayloadLength()) - len(tcp)
	} else {
		p, err := craft.ParsePacket(raw)
		if err != nil || !p.IP.Source().Is4() {
			return nil, false
		}
		src, dst, tcp = p.IP.Source(), p.IP.Destination(), p.TCP
		off = p.IP.HeaderLength()
	}
	pseudo := craft.PseudoHeaderSum(src, dst, craft.ProtocolTCP, uint16(len(tcp)))
	if craft.Checksum(tcp, pseudo) == 0xffff || tcp.Checksum() != craft.Checksum(nil, pseudo) {
		return nil, false
	}
	out := slices.Clone(raw)
	t := craft.TCP(out[off : off+len(tcp)])
	t.SetChecksum(0)
	t.SetChecksum(^craft.Checksum(t, pseudo))
	return out, true
}

// pcapComment is the comment WritePcap puts on a segment's packet:
// "SCENARIO: DIR WHAT[ (NOTE)][ → remote STATE]", where WHAT is the flags
// in tcpdump's form or "ICMP" and its text, and STATE the remote's state
// right after the segment as the walk established it. It is at most
// maxpcapComment runes.
func pcapComment(scenario string, s walk.Segment) string {
	var b strings.Builder
	b.WriteString(cmp.Or(scenario, "tcpwalk"))
	b.WriteString(": ")
	b.WriteString(cmp.Or(string(s.Dir), "?"))
	b.WriteString(" ")
	switch {
	case s.ICMP != "":
		b.WriteString("ICMP ")
		b.WriteString(s.ICMP)
	case s.Flags != 0:
		b.WriteString(s.Flags.String())
	default:
		b.WriteString("(no flags)")
	}
	if s.Len > 0 {
		fmt.Fprintf(&b, " len %d", s.Len)
	}
	if s.Note != "" {
		b.WriteString(" (")
		b.WriteString(s.Note)
		b.WriteString(")")
	}
	if s.RemoteState != result.NoState {
		b.WriteString(" → remote ")
		b.WriteString(s.RemoteState.String())
	}
	return truncate(b.String(), maxpcapComment)
}
