package craft

import (
	"encoding/binary"
	"net/netip"
)

// TCP is a view of a TCP segment (RFC 9293 §3.1), header first:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               :
//	:                             Data                              :
//	:                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Getters assume at least [TCPMinimumSize] bytes, which [ParseTCP] and
// [ParsePacket] check. Methods that look past the fixed header (Options,
// Payload) clamp to the slice and never panic.
type TCP []byte

// Byte offsets of the TCP header fields.
const (
	TCPSrcPortOffset     = 0
	TCPDstPortOffset     = 2
	TCPSeqNumOffset      = 4
	TCPAckNumOffset      = 8
	TCPDataOffset        = 12
	TCPFlagsOffset       = 13
	TCPWinSizeOffset     = 14
	TCPChecksumOffset    = 16
	TCPUrgentPtrOffset   = 18
	TCPMinimumSize       = 20
	TCPMaximumHeaderSize = 60
	// TCPOptionsMaximumSize is the most option bytes a header can hold.
	TCPOptionsMaximumSize = TCPMaximumHeaderSize - TCPMinimumSize
)

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 {
	return binary.BigEndian.Uint16(b[TCPSrcPortOffset : TCPSrcPortOffset+2])
}

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 {
	return binary.BigEndian.Uint16(b[TCPDstPortOffset : TCPDstPortOffset+2])
}

// SequenceNumber returns the sequence number.
func (b TCP) SequenceNumber() uint32 {
	return binary.BigEndian.Uint32(b[TCPSeqNumOffset : TCPSeqNumOffset+4])
}

// AckNumber returns the acknowledgment number (meaningful with ACK set).
func (b TCP) AckNumber() uint32 {
	return binary.BigEndian.Uint32(b[TCPAckNumOffset : TCPAckNumOffset+4])
}

// DataOffset returns the header length in bytes (the field × 4).
func (b TCP) DataOffset() int { return int(b[TCPDataOffset]>>4) * 4 }

// Reserved returns the four reserved bits after the data offset (the
// lowest is AE/NS, RFC 9768); a prober may want to see them echoed.
func (b TCP) Reserved() uint8 { return b[TCPDataOffset] & 0xf }

// Flags returns the eight control bits.
func (b TCP) Flags() Flags { return Flags(b[TCPFlagsOffset]) }

// WindowSize returns the window field, unscaled.
func (b TCP) WindowSize() uint16 {
	return binary.BigEndian.Uint16(b[TCPWinSizeOffset : TCPWinSizeOffset+2])
}

// Checksum returns the checksum field as stored.
func (b TCP) Checksum() uint16 {
	return binary.BigEndian.Uint16(b[TCPChecksumOffset : TCPChecksumOffset+2])
}

// UrgentPointer returns the urgent pointer (meaningful with URG set).
func (b TCP) UrgentPointer() uint16 {
	return binary.BigEndian.Uint16(b[TCPUrgentPtrOffset : TCPUrgentPtrOffset+2])
}

// OptionBytes returns the raw options area (padding included), or nil when
// the data offset is out of range.
func (b TCP) OptionBytes() []byte {
	off := b.DataOffset()
	if off <= TCPMinimumSize || off > len(b) {
		return nil
	}
	return b[TCPMinimumSize:off:off]
}

// Options returns an iterator over the options; see [OptionIter].
func (b TCP) Options() OptionIter { return NewOptionIter(b.OptionBytes()) }

// Payload returns the data after the header, or nil when the data offset
// is out of range.
func (b TCP) Payload() []byte {
	off := b.DataOffset()
	if off < TCPMinimumSize || off > len(b) {
		return nil
	}
	return b[off:]
}

// SetSourcePort sets the source port.
func (b TCP) SetSourcePort(v uint16) {
	binary.BigEndian.PutUint16(b[TCPSrcPortOffset:TCPSrcPortOffset+2], v)
}

// SetDestinationPort sets the destination port.
func (b TCP) SetDestinationPort(v uint16) {
	binary.BigEndian.PutUint16(b[TCPDstPortOffset:TCPDstPortOffset+2], v)
}

// SetSequenceNumber sets the sequence number.
func (b TCP) SetSequenceNumber(v uint32) {
	binary.BigEndian.PutUint32(b[TCPSeqNumOffset:TCPSeqNumOffset+4], v)
}

// SetAckNumber sets the acknowledgment number.
func (b TCP) SetAckNumber(v uint32) {
	binary.BigEndian.PutUint32(b[TCPAckNumOffset:TCPAckNumOffset+4], v)
}

// SetDataOffset sets the header length in bytes (a multiple of 4 from 20
// to 60) and clears the reserved bits.
func (b TCP) SetDataOffset(headerLength int) { b[TCPDataOffset] = uint8(headerLength/4) << 4 }

// SetFlags sets the eight control bits.
func (b TCP) SetFlags(f Flags) { b[TCPFlagsOffset] = uint8(f) }

// SetWindowSize sets the window field.
func (b TCP) SetWindowSize(v uint16) {
	binary.BigEndian.PutUint16(b[TCPWinSizeOffset:TCPWinSizeOffset+2], v)
}

// SetChecksum sets the checksum field to v as is.
func (b TCP) SetChecksum(v uint16) {
	binary.BigEndian.PutUint16(b[TCPChecksumOffset:TCPChecksumOffset+2], v)
}

// SetUrgentPointer sets the urgent pointer.
func (b TCP) SetUrgentPointer(v uint16) {
	binary.BigEndian.PutUint16(b[TCPUrgentPtrOffset:TCPUrgentPtrOffset+2], v)
}

// VerifyChecksum reports whether the checksum verifies for a segment sent
// from src to dst: the sum over the pseudo-header and the whole segment,
// checksum included, is 0xffff (RFC 9293 §3.1 for IPv4 addresses,
// RFC 8200 §8.1 for IPv6 ones). It returns false for mixed or invalid
// families and for segments longer than an IPv4 packet (or an IPv6
// payload) can carry.
func (b TCP) VerifyChecksum(src, dst netip.Addr) bool {
	if len(b) < TCPMinimumSize {
		return false
	}
	switch {
	case src.Is4() && dst.Is4():
		if len(b) > IPv4MaximumTotalLength-IPv4MinimumSize {
			return false
		}
	case isPlain6(src) && isPlain6(dst):
		if len(b) > IPv6MaximumPayload {
			return false
		}
	default:
		return false
	}
	return Checksum(b, PseudoHeaderSum(src, dst, ProtocolTCP, uint16(len(b)))) == 0xffff
}

// UpdateChecksum recomputes the checksum after the segment changed, for a
// segment sent from src to dst. Tests break it afterwards on purpose with
// SetChecksum.
func (b TCP) UpdateChecksum(src, dst netip.Addr) {
	if len(b) < TCPMinimumSize || len(b) > IPv4MaximumTotalLength {
		return
	}
	b.SetChecksum(0)
	b.SetChecksum(checksumField(Checksum(b, PseudoHeaderSum(src, dst, ProtocolTCP, uint16(len(b))))))
}
