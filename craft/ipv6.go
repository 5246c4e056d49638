package craft

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 is a view of an IPv6 packet (RFC 8200 §3), header first:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                         Source Address                        +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                      Destination Address                      +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The header has no checksum and no length of its own: it is always 40
// bytes, and extension headers (RFC 8200 §4) sit between it and the TCP
// header, chained by Next Header. Getters assume at least
// [IPv6HeaderSize] bytes, which [ParseIPv6Packet] checks; on a shorter
// slice they panic like any out-of-range index, so parse first. Payload
// clamps to the slice and never panics.
type IPv6 []byte

// Byte offsets and sizes of the IPv6 header fields.
const (
	IPv6VersionTCFlowOffset = 0 // version (4 bits), traffic class (8), flow label (20)
	IPv6PayloadLengthOffset = 4
	IPv6NextHeaderOffset    = 6
	IPv6HopLimitOffset      = 7
	IPv6SourceOffset        = 8
	IPv6DestinationOffset   = 24
	IPv6HeaderSize          = 40
	IPv6MaximumPayload      = 65535 // without a jumbo payload option (RFC 2675), which tcpwalk neither sends nor reads
	IPv6Version             = 6
	IPv6FlowLabelMask       = 0xfffff
)

// IPv6 next-header values this package handles (IANA "Assigned Internet
// Protocol Numbers"; extension headers from RFC 8200 §4).
const (
	ProtocolICMPv6       = 58
	ipv6HopByHop         = 0
	ipv6Routing          = 43
	ipv6Fragment         = 44
	ipv6ESP              = 50
	ipv6AH               = 51
	ipv6NoNextHeader     = 59
	ipv6DestinationOpts  = 60
	ipv6FragOffsetMask   = 0xfff8 // fragment offset in 8-byte units, the top 13 bits of bytes 2-3 (RFC 8200 §4.5)
	ipv6MaxExtensionHops = 8      // more extension headers than any sender needs (RFC 8200 §4.1 orders six)
)

// Version returns the IP version field (6 for IPv6).
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// TrafficClass returns the traffic class byte (DSCP and ECN, RFC 2474,
// RFC 3168): IPv4's TOS.
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[IPv6VersionTCFlowOffset:]) >> 4)
}

// FlowLabel returns the 20-bit flow label (RFC 6437).
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[IPv6VersionTCFlowOffset:]) & IPv6FlowLabelMask
}

// PayloadLength returns the payload length field: the bytes after the
// 40-byte header, extension headers included.
func (b IPv6) PayloadLength() uint16 {
	return binary.BigEndian.Uint16(b[IPv6PayloadLengthOffset:])
}

// NextHeader returns the type of the header after this one: TCP (6), an
// extension header, or ICMPv6 (58).
func (b IPv6) NextHeader() uint8 { return b[IPv6NextHeaderOffset] }

// HopLimit returns the hop limit field: IPv4's TTL.
func (b IPv6) HopLimit() uint8 { return b[IPv6HopLimitOffset] }

// Source returns the source address.
func (b IPv6) Source() netip.Addr {
	return netip.AddrFrom16([16]byte(b[IPv6SourceOffset : IPv6SourceOffset+16]))
}

// Destination returns the destination address.
func (b IPv6) Destination() netip.Addr {
	return netip.AddrFrom16([16]byte(b[IPv6DestinationOffset : IPv6DestinationOffset+16]))
}

// Payload returns the bytes after the 40-byte header (extension headers
// included) up to the payload length or the end of the slice, whichever
// comes first (a capture may be trimmed, a buffer padded).
func (b IPv6) Payload() []byte {
	if len(b) < IPv6HeaderSize {
		return nil
	}
	end := min(IPv6HeaderSize+int(b.PayloadLength()), len(b))
	return b[IPv6HeaderSize:end]
}

// SetVersionTrafficClassFlowLabel sets version 6, the traffic class and
// the flow label (its low 20 bits) in the first word.
func (b IPv6) SetVersionTrafficClassFlowLabel(tc uint8, flow uint32) {
	binary.BigEndian.PutUint32(b[IPv6VersionTCFlowOffset:], ipv6FirstWord(tc, flow))
}

// ipv6FirstWord is the header's first 32-bit word.
func ipv6FirstWord(tc uint8, flow uint32) uint32 {
	return IPv6Version<<28 | uint32(tc)<<20 | flow&IPv6FlowLabelMask
}

// SetPayloadLength sets the payload length field.
func (b IPv6) SetPayloadLength(v uint16) {
	binary.BigEndian.PutUint16(b[IPv6PayloadLengthOffset:], v)
}

// SetNextHeader sets the next header field.
func (b IPv6) SetNextHeader(v uint8) { b[IPv6NextHeaderOffset] = v }

// SetHopLimit sets the hop limit field.
func (b IPv6) SetHopLimit(v uint8) { b[IPv6HopLimitOffset] = v }

// SetSource sets the source address; an IPv4 address writes :: (use
// AddrFrom16 for a mapped one on purpose).
func (b IPv6) SetSource(a netip.Addr) { put16(b[IPv6SourceOffset:], a) }

// SetDestination sets the destination address; an IPv4 address writes ::.
func (b IPv6) SetDestination(a netip.Addr) { put16(b[IPv6DestinationOffset:], a) }

func put16(b []byte, a netip.Addr) {
	var v [16]byte
	if a.Is6() {
		v = a.As16()
	}
	copy(b[:16], v[:])
}

// IPv6Fields is an IPv6 header as a value, for [IPv6.Encode]. The zero
// HopLimit is sent as is (unlike [Segment]'s, which means 64).
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32 // low 20 bits used
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
}

// Encode writes f as the 40-byte header at the start of b, which must
// hold [IPv6HeaderSize] bytes (it panics otherwise, like the setters).
func (b IPv6) Encode(f *IPv6Fields) {
	b.SetVersionTrafficClassFlowLabel(f.TrafficClass, f.FlowLabel)
	b.SetPayloadLength(f.PayloadLength)
	b.SetNextHeader(f.NextHeader)
	b.SetHopLimit(f.HopLimit)
	b.SetSource(f.Src)
	b.SetDestination(f.Dst)
}

// Fields returns the header as a value.
func (b IPv6) Fields() IPv6Fields {
	return IPv6Fields{
		TrafficClass: b.TrafficClass(), FlowLabel: b.FlowLabel(), PayloadLength: b.PayloadLength(),
		NextHeader: b.NextHeader(), HopLimit: b.HopLimit(), Src: b.Source(), Dst: b.Destination(),
	}
}
