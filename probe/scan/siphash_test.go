package scan

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
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
