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

// PseudoHeaderSum returns the unfolded ones'-complement sum of the IPv4
// pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol and
// the TCP (or UDP) length in bytes, header included. Feed it to [Checksum]
// as initial. An address that is not IPv4 contributes nothing; callers
// check addresses before they get here.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length uint16) uint32 {
	return addrSum(src) + addrSum(dst) + uint32(proto) + uint32(length)
}

// addrSum is the sum of the two 16-bit words of an IPv4 address.
func addrSum(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return (uint32(b[0])<<8 | uint32(b[1])) + (uint32(b[2])<<8 | uint32(b[3]))
}

// checksumField turns a sum into the value stored in a header: its
// complement. TCP and IPv4 keep 0x0000 as is (only UDP maps it, RFC 768).
func checksumField(sum uint16) uint16 { return ^sum }
