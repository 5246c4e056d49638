package craft

import (
	"encoding/binary"
	"fmt"
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
	ip6    bool   // the packet is IPv6: no header checksum, a 16-byte destination
}

// NewTemplate encodes s once as the template. s.Dst, s.SrcPort, s.DstPort,
// s.Seq and s.Ack are ignored (Build supplies them); s.Src is IPv4 or
// IPv6, and Build's destinations must be of the same family.
func NewTemplate(s *Segment) (*Template, error) {
	c := *s
	c.Dst = netip.AddrFrom4([4]byte{})
	ipLen := IPv4MinimumSize
	if c.Src.Is6() {
		c.Dst, ipLen = netip.IPv6Unspecified(), IPv6HeaderSize
	}
	c.SrcPort, c.DstPort, c.Seq, c.Ack = 0, 0, 0, 0
	pkt := make([]byte, c.Len())
	n, err := c.Encode(pkt)
	if err != nil {
		return nil, err
	}
	pkt = pkt[:n]
	t := TCP(pkt[ipLen:])
	t.SetChecksum(0)
	tmpl := &Template{
		pkt:    pkt,
		tcpSum: uint32(Checksum(t, PseudoHeaderSum(c.Src, c.Dst, ProtocolTCP, uint16(len(t))))),
		ip6:    ipLen == IPv6HeaderSize,
	}
	if !tmpl.ip6 {
		IPv4(pkt).SetChecksum(0)
		tmpl.ipSum = uint32(Checksum(pkt[:IPv4MinimumSize], 0))
	}
	return tmpl, nil
}

// Len returns the length of the packets Build writes.
func (t *Template) Len() int { return len(t.pkt) }

// Build writes the template into b with the given destination, ports and
// numbers, fixes both checksums, and returns the packet length. It
// allocates nothing when it succeeds. It fails, writing nothing, if b is
// shorter than [Template.Len] or dst is not of the template's family
// (IPv4, or IPv6 that is not IPv4-mapped).
func (t *Template) Build(b []byte, dst netip.Addr, dstPort, srcPort uint16, seq, ack uint32) (int, error) {
	if t.ip6 {
		return t.build6(b, dst, dstPort, srcPort, seq, ack)
	}
	n := len(t.pkt)
	if len(b) < n || !dst.Is4() || n < IPv4MinimumSize+TCPMinimumSize {
		return 0, t.buildError(len(b), dst, "IPv4", IPv4MinimumSize)
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
	return n, nil
}

// buildError says why Build refused its arguments: a template too short to
// hold the headers, a destination of the other family, or a short buffer
// (of blen bytes).
func (t *Template) buildError(blen int, dst netip.Addr, family string, ipLen int) error {
	switch {
	case len(t.pkt) < ipLen+TCPMinimumSize:
		return fmt.Errorf("craft: build from template: the template holds %d bytes, fewer than an %s header and a TCP header; make it with NewTemplate", len(t.pkt), family)
	case blen < len(t.pkt):
		return fmt.Errorf("craft: build from template: buffer holds %d bytes, the packet needs %d (Template.Len)", blen, len(t.pkt))
	}
	return fmt.Errorf("craft: build from template: destination %v is not %s, the template's family; use a template made for it", dst, family)
}

// build6 is Build for an IPv6 template: the header has no checksum, so
// only the TCP checksum is updated, with the destination's eight words.
func (t *Template) build6(b []byte, dst netip.Addr, dstPort, srcPort uint16, seq, ack uint32) (int, error) {
	n := len(t.pkt)
	if len(b) < n || !isPlain6(dst) || n < IPv6HeaderSize+TCPMinimumSize {
		return 0, t.buildError(len(b), dst, "IPv6", IPv6HeaderSize)
	}
	b = b[:n]
	copy(b, t.pkt)
	// Written in place as two 8-byte words and read back from the store
	// buffer, which As16's array result would stall (see encode6).
	d, _ := dst.WithZone("").AppendBinary(b[IPv6DestinationOffset : IPv6DestinationOffset : IPv6DestinationOffset+16])
	d = d[:16]
	dsum := words64(binary.BigEndian.Uint64(d)) + words64(binary.BigEndian.Uint64(d[8:]))

	s := b[IPv6HeaderSize:]
	binary.BigEndian.PutUint16(s[TCPSrcPortOffset:], srcPort)
	binary.BigEndian.PutUint16(s[TCPDstPortOffset:], dstPort)
	binary.BigEndian.PutUint32(s[TCPSeqNumOffset:], seq)
	binary.BigEndian.PutUint32(s[TCPAckNumOffset:], ack)
	sum := t.tcpSum + dsum + uint32(srcPort) + uint32(dstPort) +
		seq>>16 + seq&0xffff + ack>>16 + ack&0xffff
	binary.BigEndian.PutUint16(s[TCPChecksumOffset:], checksumField(fold32(sum)))
	return n, nil
}

// fold32 folds a 32-bit ones'-complement sum to 16 bits.
func fold32(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}
