// Package addrspan turns IPv4 prefixes (Merge, Subtract, Prefixes) and IPv6
// prefixes (Merge6, Subtract6, Prefixes6, over 128-bit numbers) into the
// merged ranges of addresses they cover: the scanner's host order and its
// targets less the exclusions are built from them.
package addrspan

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Range is the addresses [Lo, Hi) as numbers; Hi is exclusive, so that the
// range ending at 255.255.255.255 fits (2^32).
type Range struct{ Lo, Hi uint64 }

// Merge returns the ranges the IPv4 prefixes cover, sorted, with
// overlapping and adjacent ones merged into one (nil for none).
func Merge(pfxs []netip.Prefix) []Range {
	if len(pfxs) == 0 {
		return nil
	}
	rs := make([]Range, 0, len(pfxs))
	for _, p := range pfxs {
		a := p.Masked().Addr().As4()
		lo := uint64(binary.BigEndian.Uint32(a[:]))
		rs = append(rs, Range{lo, lo + 1<<(32-p.Bits())})
	}
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.Lo, b.Lo) })
	merged := rs[:1]
	for _, r := range rs[1:] {
		last := &merged[len(merged)-1]
		if r.Lo <= last.Hi {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Subtract returns the addresses of rs that are in none of ex, as merged
// ranges. Both must be sorted and merged, as Merge returns them.
func Subtract(rs, ex []Range) []Range {
	var out []Range
	j := 0
	for _, r := range rs {
		lo := r.Lo
		for j < len(ex) && ex[j].Hi <= lo {
			j++
		}
		for k := j; k < len(ex) && ex[k].Lo < r.Hi; k++ {
			if ex[k].Lo > lo {
				out = append(out, Range{lo, ex[k].Lo})
			}
			lo = max(lo, ex[k].Hi)
		}
		if lo < r.Hi {
			out = append(out, Range{lo, r.Hi})
		}
	}
	return out
}

// Prefixes returns the fewest prefixes that cover exactly the ranges: each
// range split into the largest aligned blocks, in address order.
func Prefixes(rs []Range) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rs {
		for lo := r.Lo; lo < r.Hi; {
			size := uint64(1)
			for bits := 0; bits < 32; bits++ {
				next := size << 1
				if lo%next != 0 || lo+next > r.Hi {
					break
				}
				size = next
			}
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], uint32(lo))
			out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), 32-bitsOf(size)))
			lo += size
		}
	}
	return out
}

// bitsOf is log2 of a power of two.
func bitsOf(size uint64) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}
