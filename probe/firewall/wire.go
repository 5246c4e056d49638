package firewall

import (
	"net/netip"

	"github.com/tcpwalk/tcpwalk/craft"
)

// wire is a view of one IPv4 or IPv6 packet carrying TCP (what we sent,
// what a capture saw, what an ICMP error quoted), with what the matrix
// compares on either family. The quote of an ICMP error may be cut short:
// tcp then holds what there is, and tcpLen (from the IP header's length
// field) still says how long the segment was.
type wire struct {
	v6       bool
	src, dst netip.Addr
	// id finds a probe in a capture: the IPv4 ID, or the IPv6 flow label
	// (RFC 6437), which no router or firewall of the lab rewrites.
	id  uint32
	tos uint8 // IPv4 TOS or IPv6 traffic class (both DSCP and ECN)
	tcp craft.TCP
	// tcpLen is the TCP segment's length (header and payload) as the IP
	// header declares it.
	tcpLen int
}

// parseWire reads b as an IPv4 or IPv6 packet (by its version nibble).
// ok is false when the IP header is not whole; tcp may be short.
func parseWire(b []byte) (w wire, ok bool) {
	if len(b) == 0 {
		return w, false
	}
	if b[0]>>4 == craft.IPv6Version {
		if len(b) < craft.IPv6HeaderSize {
			return w, false
		}
		ip := craft.IPv6(b)
		w = wire{v6: true, src: ip.Source(), dst: ip.Destination(), id: ip.FlowLabel(), tos: ip.TrafficClass()}
		off := craft.IPv6HeaderSize
		if p, err := craft.ParseIPv6Packet(b); err == nil {
			off = len(b) - len(p.TCP)
		} else if ip.NextHeader() != craft.ProtocolTCP {
			return w, true // extension headers in a cut quote: no TCP to read
		}
		w.tcp = craft.TCP(b[off:])
		w.tcpLen = int(ip.PayloadLength()) - (off - craft.IPv6HeaderSize)
		return w, true
	}
	if len(b) < craft.IPv4MinimumSize {
		return w, false
	}
	ip := craft.IPv4(b)
	hl := ip.HeaderLength()
	if hl < craft.IPv4MinimumSize || hl > len(b) {
		return w, false
	}
	w = wire{src: ip.Source(), dst: ip.Destination(), id: uint32(ip.ID()), tos: ip.TOS(), tcp: craft.TCP(b[hl:]),
		tcpLen: int(ip.TotalLength()) - hl}
	return w, true
}

// parseWireTCP is parseWire for a whole packet whose TCP header must be
// whole too (a capture's packets).
func parseWireTCP(b []byte) (wire, bool) {
	w, ok := parseWire(b)
	if !ok || w.tcp == nil {
		return w, false
	}
	if _, err := craft.ParseTCP(w.tcp); err != nil {
		return w, false
	}
	return w, true
}
