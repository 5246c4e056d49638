package scan

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// The reference vectors of the SipHash paper (appendix A) and its reference implementation: key 00 01 … 0f,
// message 00 01 … (len-1).
func TestSipHashVectors(t *testing.T) {
	var kb [16]byte
	for i := range kb {
		kb[i] = byte(i)
	}
	k := sipKey{binary.LittleEndian.Uint64(kb[:8]), binary.LittleEndian.Uint64(kb[8:])}
	want := []uint64{
		0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
		0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
		0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
		0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
	}
	msg := make([]byte, len(want))
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, w := range want {
		if got := k.sum(msg[:n]); got != w {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", n, got, w)
		}
	}
}

// tuple is an unrolled sum over 12 bytes: compare them on random keys and tuples (fixed seeds).
func TestSipHashTupleMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		k := sipKey{r.Uint64(), r.Uint64()}
		var src, dst [4]byte
		binary.BigEndian.PutUint32(src[:], r.Uint32())
		binary.BigEndian.PutUint32(dst[:], r.Uint32())
		sp, dp := uint16(r.Uint32()), uint16(r.Uint32())
		msg := make([]byte, 0, 12)
		msg = append(msg, src[:]...)
		msg = append(msg, dst[:]...)
		msg = binary.BigEndian.AppendUint16(msg, sp)
		msg = binary.BigEndian.AppendUint16(msg, dp)
		if got, want := k.tuple(src, dst, sp, dp), k.sum(msg); got != want {
			t.Fatalf("tuple(%v, %v, %d, %d) = %#x, reference %#x", src, dst, sp, dp, got, want)
		}
	}
}

func BenchmarkSipHashTuple(b *testing.B) {
	k := sipKey{1, 2}
	var sink uint64
	b.ReportAllocs()
	for i := range b.N {
		sink += k.tuple([4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 61000, uint16(i))
	}
	_ = sink
}

// tuple6 is an unrolled sum over the 36 bytes of an IPv6 4-tuple: compare them on random keys and tuples (fixed
// seeds).
func TestSipHashTuple6MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		k := sipKey{r.Uint64(), r.Uint64()}
		src, dst := addrspan.U128{Hi: r.Uint64(), Lo: r.Uint64()}, addrspan.U128{Hi: r.Uint64(), Lo: r.Uint64()}
		sp, dp := uint16(r.Uint32()), uint16(r.Uint32())
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		msg := make([]byte, 0, 36)
		msg = append(msg, s16[:]...)
		msg = append(msg, d16[:]...)
		msg = binary.BigEndian.AppendUint16(msg, sp)
		msg = binary.BigEndian.AppendUint16(msg, dp)
		if got, want := k.tuple6(src, dst, sp, dp), k.sum(msg); got != want {
			t.Fatalf("tuple6(%v, %v, %d, %d) = %#x, reference %#x", src.Addr(), dst.Addr(), sp, dp, got, want)
		}
	}
}

// The IPv6 cookie covers both whole addresses and both ports: a change of any bit of the 4-tuple, in either
// address's upper or lower half (where an IPv4-style key over 32 bits would see nothing), gives another cookie.
func TestCookie6CoversTheWholeTuple(t *testing.T) {
	k := sipKey{0x0123456789abcdef, 0xfedcba9876543210}
	src, dst := addrspan.From16(netip.MustParseAddr("2001:2::1")), addrspan.From16(netip.MustParseAddr("2001:2::2"))
	base := k.tuple6(src, dst, 61234, 80)
	flip := func(u addrspan.U128, bit int) addrspan.U128 {
		if bit < 64 {
			u.Hi ^= 1 << (63 - bit)
		} else {
			u.Lo ^= 1 << (127 - bit)
		}
		return u
	}
	for bit := range 128 {
		if k.tuple6(flip(src, bit), dst, 61234, 80) == base || k.tuple6(src, flip(dst, bit), 61234, 80) == base {
			t.Errorf("flipping address bit %d leaves the cookie %#x", bit, base)
		}
	}
	for bit := range 16 {
		if k.tuple6(src, dst, 61234^1<<bit, 80) == base || k.tuple6(src, dst, 61234, 80^1<<bit) == base {
			t.Errorf("flipping port bit %d leaves the cookie %#x", bit, base)
		}
	}
	if k.tuple6(dst, src, 61234, 80) == base {
		t.Error("the swapped addresses give the same cookie")
	}
}

func BenchmarkSipHashTuple6(b *testing.B) {
	k := sipKey{1, 2}
	src, dst := addrspan.From16(netip.MustParseAddr("2001:2::1")), addrspan.From16(netip.MustParseAddr("2001:2::2"))
	var sink uint64
	b.ReportAllocs()
	for i := range b.N {
		sink += k.tuple6(src, dst, 61000, uint16(i))
	}
	_ = sink
}
