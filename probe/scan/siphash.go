package scan

import (
	"encoding/binary"
	"math/bits"

	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): a keyed hash made for short
// inputs, whose output an attacker cannot predict without the key. That is what a scan cookie needs: a reply can
// only carry the right number if it answers our probe.

// sipKey is a 128-bit SipHash key as two little-endian words.
type sipKey struct{ k0, k1 uint64 }

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

func (k sipKey) init() (v0, v1, v2, v3 uint64) {
	return k.k0 ^ 0x736f6d6570736575, k.k1 ^ 0x646f72616e646f6d, k.k0 ^ 0x6c7967656e657261, k.k1 ^ 0x7465646279746573
}

func sipFinal(v0, v1, v2, v3 uint64) uint64 {
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// sum is SipHash-2-4 of msg, the reference algorithm for any length.
func (k sipKey) sum(msg []byte) uint64 {
	v0, v1, v2, v3 := k.init()
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		msg = msg[8:]
	}
	last := uint64(n) << 56
	for i, c := range msg {
		last |= uint64(c) << (8 * i)
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	return sipFinal(v0, v1, v2, v3)
}

// tuple is SipHash-2-4 of the 12-byte message src, dst (4 bytes each, network order), sport, dport (network
// order): the same value sum gives for those bytes, unrolled for the per-packet paths (no slice, no allocation).
func (k sipKey) tuple(src, dst [4]byte, sport, dport uint16) uint64 {
	v0, v1, v2, v3 := k.init()
	m := uint64(src[0]) | uint64(src[1])<<8 | uint64(src[2])<<16 | uint64(src[3])<<24 |
		uint64(dst[0])<<32 | uint64(dst[1])<<40 | uint64(dst[2])<<48 | uint64(dst[3])<<56
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m
	last := uint64(12)<<56 | uint64(sport>>8) | uint64(sport&0xff)<<8 | uint64(dport>>8)<<16 | uint64(dport&0xff)<<24
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	return sipFinal(v0, v1, v2, v3)
}

// tuple6 is SipHash-2-4 of the 36-byte message src, dst (16 bytes each, network order), sport, dport (network
// order), the IPv6 4-tuple with both whole addresses: the same value sum gives for those bytes, unrolled as tuple
// is. src and dst are the addresses as numbers (the first eight bytes big-endian in Hi), so a message word, eight
// bytes read little-endian, is a byte-reversed half.
func (k sipKey) tuple6(src, dst addrspan.U128, sport, dport uint16) uint64 {
	v0, v1, v2, v3 := k.init()
	for _, m := range [4]uint64{bits.ReverseBytes64(src.Hi), bits.ReverseBytes64(src.Lo), bits.ReverseBytes64(dst.Hi), bits.ReverseBytes64(dst.Lo)} {
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	last := uint64(36)<<56 | uint64(sport>>8) | uint64(sport&0xff)<<8 | uint64(dport>>8)<<16 | uint64(dport&0xff)<<24
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	return sipFinal(v0, v1, v2, v3)
}
