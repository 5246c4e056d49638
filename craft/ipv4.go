package craft

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 is a view of an IPv4 packet (RFC 791 §3.1), header first:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Getters assume at least [IPv4MinimumSize] bytes, which [ParsePacket]
// checks; on a shorter slice they panic like any out-of-range index, so
// parse first. Methods that look past the fixed header (Payload) clamp to
// the slice and never panic.
type IPv4 []byte

// Byte offsets of the IPv4 header fields.
const (
	IPv4VersionIHLOffset   = 0
	IPv4TOSOffset          = 1
	IPv4TotalLengthOffset  = 2
	IPv4IDOffset           = 4
	IPv4FlagsFragOffset    = 6
	IPv4TTLOffset          = 8
	IPv4ProtocolOffset     = 9
	IPv4ChecksumOffset     = 10
	IPv4SourceOffset       = 12
	IPv4DestinationOffset  = 16
	IPv4MinimumSize        = 20
	IPv4MaximumHeaderSize  = 60
	IPv4MaximumTotalLength = 65535
	IPv4Version            = 4
)

// IP protocol numbers this package handles.
const (
	ProtocolICMP = 1
	ProtocolTCP  = 6
)

// Bits of the flags/fragment-offset word (RFC 791 §3.1).
const (
	ipv4FlagDF         = 0x4000
	ipv4FlagMF         = 0x2000
	ipv4FragOffsetMask = 0x1fff
)

// Version returns the IP version field (4 for IPv4).
func (b IPv4) Version() uint8 { return b[IPv4VersionIHLOffset] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[IPv4VersionIHLOffset]&0xf) * 4 }

// TOS returns the type-of-service byte (DSCP and ECN, RFC 2474, RFC 3168).
func (b IPv4) TOS() uint8 { return b[IPv4TOSOffset] }

// TotalLength returns the total length field: header plus payload, bytes.
func (b IPv4) TotalLength() uint16 {
	return binary.BigEndian.Uint16(b[IPv4TotalLengthOffset : IPv4TotalLengthOffset+2])
}

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[IPv4IDOffset : IPv4IDOffset+2]) }

// DontFragment reports whether the DF flag is set.
func (b IPv4) DontFragment() bool { return b.flagsFrag()&ipv4FlagDF != 0 }

// MoreFragments reports whether the MF flag is set.
func (b IPv4) MoreFragments() bool { return b.flagsFrag()&ipv4FlagMF != 0 }

// FragmentOffset returns the fragment offset in bytes (the field × 8).
func (b IPv4) FragmentOffset() int { return int(b.flagsFrag()&ipv4FragOffsetMask) * 8 }

func (b IPv4) flagsFrag() uint16 {
	return binary.BigEndian.Uint16(b[IPv4FlagsFragOffset : IPv4FlagsFragOffset+2])
}

// TTL returns the time-to-live field.
func (b IPv4) TTL() uint8 { return b[IPv4TTLOffset] }

// Protocol returns the protocol of the payload (6 for TCP).
func (b IPv4) Protocol() uint8 { return b[IPv4ProtocolOffset] }

// Checksum returns the header checksum field as stored.
func (b IPv4) Checksum() uint16 {
	return binary.BigEndian.Uint16(b[IPv4ChecksumOffset : IPv4ChecksumOffset+2])
}

// Source returns the source address.
func (b IPv4) Source() netip.Addr {
	return netip.AddrFrom4([4]byte(b[IPv4SourceOffset : IPv4SourceOffset+4]))
}

// Destination returns the destination address.
func (b IPv4) Destination() netip.Addr {
	return netip.AddrFrom4([4]byte(b[IPv4DestinationOffset : IPv4DestinationOffset+4]))
}

// Options returns the IP options bytes (between byte 20 and the header
// length), or nil. They are not decoded: tcpwalk sends none.
func (b IPv4) Options() []byte {
	hl := b.HeaderLength()
	if hl <= IPv4MinimumSize || hl > len(b) {
		return nil
	}
	return b[IPv4MinimumSize:hl]
}

// Payload returns the bytes after the header up to the total length or the
// end of the slice, whichever comes first (a capture may be trimmed, a
// buffer padded). It returns nil when the header length is out of range.
func (b IPv4) Payload() []byte {
	hl := b.HeaderLength()
	end := min(int(b.TotalLength()), len(b))
	if hl < IPv4MinimumSize || hl > end {
		return nil
	}
	return b[hl:end]
}

// IsChecksumValid reports whether the header checksum verifies (RFC 1071:
// the sum over the header, checksum included, is 0xffff).
func (b IPv4) IsChecksumValid() bool {
	hl := b.HeaderLength()
	if hl < IPv4MinimumSize || hl > len(b) {
		return false
	}
	return Checksum(b[:hl], 0) == 0xffff
}

// SetVersionIHL sets version 4 and the header length in bytes (a multiple
// of 4 from 20 to 60).
func (b IPv4) SetVersionIHL(headerLength int) {
	b[IPv4VersionIHLOffset] = IPv4Version<<4 | uint8(headerLength/4)&0xf
}

// SetTOS sets the type-of-service byte.
func (b IPv4) SetTOS(v uint8) { b[IPv4TOSOffset] = v }

// SetTotalLength sets the total length field.
func (b IPv4) SetTotalLength(v uint16) {
	binary.BigEndian.PutUint16(b[IPv4TotalLengthOffset:IPv4TotalLengthOffset+2], v)
}

// SetID sets the identification field.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[IPv4IDOffset:IPv4IDOffset+2], v) }

// SetFlagsFragment sets DF, MF and the fragment offset in bytes (rounded
// down to a multiple of 8).
func (b IPv4) SetFlagsFragment(df, mf bool, offset int) {
	v := uint16(offset/8) & ipv4FragOffsetMask
	if df {
		v |= ipv4FlagDF
	}
	if mf {
		v |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(b[IPv4FlagsFragOffset:IPv4FlagsFragOffset+2], v)
}

// SetTTL sets the time-to-live field.
func (b IPv4) SetTTL(v uint8) { b[IPv4TTLOffset] = v }

// SetProtocol sets the protocol field.
func (b IPv4) SetProtocol(v uint8) { b[IPv4ProtocolOffset] = v }

// SetChecksum sets the header checksum field to v as is.
func (b IPv4) SetChecksum(v uint16) {
	binary.BigEndian.PutUint16(b[IPv4ChecksumOffset:IPv4ChecksumOffset+2], v)
}

// SetSource sets the source address; a non-IPv4 address writes 0.0.0.0.
func (b IPv4) SetSource(a netip.Addr) { put4(b[IPv4SourceOffset:], a) }

// SetDestination sets the destination address; a non-IPv4 address writes
// 0.0.0.0.
func (b IPv4) SetDestination(a netip.Addr) { put4(b[IPv4DestinationOffset:], a) }

// UpdateChecksum recomputes the header checksum after the header changed.
func (b IPv4) UpdateChecksum() {
	hl := b.HeaderLength()
	if hl < IPv4MinimumSize || hl > len(b) {
		return
	}
	b.SetChecksum(0)
	b.SetChecksum(checksumField(Checksum(b[:hl], 0)))
}

func put4(b []byte, a netip.Addr) {
	var v [4]byte
	if a.Is4() {
		v = a.As4()
	}
	copy(b[:4], v[:])
}
