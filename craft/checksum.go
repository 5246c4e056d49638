package craft

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the 16-bit ones'-complement sum (RFC 1071) of b plus
// initial, folded to 16 bits and NOT inverted. initial is an unfolded
// partial sum, usually from [PseudoHeaderSum]; pass 0 for none.
//
// The value stored in a header's checksum field is the complement:
//
//	field = ^Checksum(header, 0)            // with the field zeroed first
//
// and a received header verifies when Checksum over it, checksum field
// included, is 0xffff. Keeping the sum un-inverted lets callers chain
// sums and lets tests corrupt either half on purpose.
//
// The loop adds 64-bit big-endian words with carry (the ones'-complement
// sum is independent of word size, RFC 1071 §2(B)), so a 60-byte SYN takes
// a handful of instructions.
func Checksum(b []byte, initial uint32) uint16 {
	acc := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		// An odd final byte is padded with a zero byte on the right.
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	// End-around carry: adding the last carry can itself carry once more.
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	return fold64(acc)
}

// fold64 folds a 64-bit ones'-complement sum to 16 bits.
func fold64(acc uint64) uint16 {
	s, c := bits.Add32(uint32(acc), uint32(acc>>32), 0)
	s += c // cannot overflow: a carry leaves s <= 0xfffffffe
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// PseudoHeaderSum returns the unfolded ones'-complement sum of the
// pseudo-header of a TCP (or UDP, or ICMPv6) checksum; feed it to
// [Checksum] as initial. For IPv4 addresses it is RFC 9293 §3.1's: source,
// destination, zero, protocol and the upper-layer length in bytes. For
// IPv6 addresses it is RFC 8200 §8.1's: source, destination, a 32-bit
// upper-layer length, three zero bytes and the next header, which sum to
// the same 16-bit words as IPv4's zero, protocol and length whenever the
// length fits 16 bits (always, without jumbograms). An invalid address
// contributes nothing and mixed families give a sum that matches no
// packet; callers check addresses before they get here.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length uint16) uint32 {
	return addrSum(src) + addrSum(dst) + uint32(proto) + uint32(length)
}

// addrSum is the sum of the 16-bit words of an address: two for IPv4,
// eight for IPv6 (at most 8 × 0xffff, so a uint32 never overflows).
func addrSum(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return (uint32(b[0])<<8 | uint32(b[1])) + (uint32(b[2])<<8 | uint32(b[3]))
	}
	if !a.Is6() {
		return 0
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return words64(hi) + words64(lo)
}

// words64 is the sum of the four 16-bit words of v.
func words64(v uint64) uint32 {
	return uint32(v>>48) + uint32(v>>32&0xffff) + uint32(v>>16&0xffff) + uint32(v&0xffff)
}

// checksumField turns a sum into the value stored in a header: its
// complement. TCP and IPv4 keep 0x0000 as is (only UDP maps it, RFC 768).
func checksumField(sum uint16) uint16 { return ^sum }
