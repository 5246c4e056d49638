package craft

import (
	"encoding/binary"
	"net/netip"
)

// Template is a prebuilt packet for scans: everything but the destination
// address, the ports and the sequence and acknowledgment numbers is fixed
// when it is made, and [Template.Build] fills those in with an incremental
// checksum update instead of summing the packet again.
//
// The update is RFC 1624's equation 3, HC' = ~(~HC + ~m + m'), with every
// variable field m prebuilt as zero: the template keeps ~HC, the sum of
// the fixed bytes, and Build adds the new words m' and folds. A Template
// is read-only after NewTemplate, so one may serve many goroutines.
type Template struct {
	pkt    []byte
	ipSum  uint32 // sum of the IPv4 header with destination and checksum zero
	tcpSum uint32 // sum of the TCP segment and pseudo-header without the variable fields
}

// NewTemplate encodes s once as the template. s.Dst, s.SrcPort, s.DstPort,
// s.Seq and s.Ack are ignored (Build supplies them); s.Src must be IPv4.
func NewTemplate(s *Segment) (*Template, error) {
	c := *s
	c.Dst = netip.AddrFrom4([4]byte{})
	c.SrcPort, c.DstPort, c.Seq, c.Ack = 0, 0, 0, 0
	pkt := make([]byte, c.Len())
	n, err := c.Encode(pkt)
	if err != nil {
		return nil, err
	}
	pkt = pkt[:n]
	ip, t := IPv4(pkt), TCP(pkt[IPv4MinimumSize:])
	ip.SetChecksum(0)
	t.SetChecksum(0)
	return &Template{
		pkt:    pkt,
		ipSum:  uint32(Checksum(pkt[:IPv4MinimumSize], 0)),
		tcpSum: uint32(Checksum(t, PseudoHeaderSum(c.Src, c.Dst, ProtocolTCP, uint16(len(t))))),
	}, nil
}

// Len returns the length of the packets Build writes.
func (t *Template) Len() int { return len(t.pkt) }

// Build writes the template into b with the given destination, ports and
// numbers, fixes both checksums, and returns the packet length. It
// allocates nothing. It returns 0, writing nothing, if b is shorter than
// [Template.Len] or dst is not IPv4.
func (t *Template) Build(b []byte, dst netip.Addr, dstPort, srcPort uint16, seq, ack uint32) int {
	n := len(t.pkt)
	if len(b) < n || !dst.Is4() || n < IPv4MinimumSize+TCPMinimumSize {
		return 0
	}
	b = b[:n]
	copy(b, t.pkt)
	d := dst.As4()
	copy(b[IPv4DestinationOffset:IPv4DestinationOffset+4], d[:])
	dsum := uint32(d[0])<<8 | uint32(d[1])
	dsum += uint32(d[2])<<8 | uint32(d[3])
	binary.BigEndian.PutUint16(b[IPv4ChecksumOffset:], checksumField(fold32(t.ipSum+dsum)))

	s := b[IPv4MinimumSize:]
	binary.BigEndian.PutUint16(s[TCPSrcPortOffset:], srcPort)
	binary.BigEndian.PutUint16(s[TCPDstPortOffset:], dstPort)
	binary.BigEndian.PutUint32(s[TCPSeqNumOffset:], seq)
	binary.BigEndian.PutUint32(s[TCPAckNumOffset:], ack)
	sum := t.tcpSum + dsum + uint32(srcPort) + uint32(dstPort) +
		seq>>16 + seq&0xffff + ack>>16 + ack&0xffff
	binary.BigEndian.PutUint16(s[TCPChecksumOffset:], checksumField(fold32(sum)))
	return n
}

// fold32 folds a 32-bit ones'-complement sum to 16 bits.
func fold32(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}
