package addrspan

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// ByFamily splits prefixes into the IPv4 and the IPv6 ones, in order.
func ByFamily(pfxs []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range pfxs {
		if p.Addr().Is6() {
			v6 = append(v6, p)
		} else {
			v4 = append(v4, p)
		}
	}
	return v4, v6
}

// U128 is an IPv6 address as a 128-bit number: Hi holds the first eight bytes, Lo the last eight, both big-endian.
type U128 struct{ Hi, Lo uint64 }

// From16 returns the number of a (its 16 bytes; an IPv4 address counts as IPv4-mapped).
func From16(a netip.Addr) U128 {
	b := a.As16()
	return U128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// Addr returns the IPv6 address numbered u.
func (u U128) Addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.Hi)
	binary.BigEndian.PutUint64(b[8:], u.Lo)
	return netip.AddrFrom16(b)
}

// Cmp compares u and v as numbers: -1, 0 or +1.
func (u U128) Cmp(v U128) int {
	if c := cmp.Compare(u.Hi, v.Hi); c != 0 {
		return c
	}
	return cmp.Compare(u.Lo, v.Lo)
}

// Add returns u + n, wrapping at 2^128.
func (u U128) Add(n uint64) U128 {
	lo, c := bits.Add64(u.Lo, n, 0)
	return U128{u.Hi + c, lo}
}

// Sub returns u - v, wrapping at 2^128.
func (u U128) Sub(v U128) U128 {
	lo, b := bits.Sub64(u.Lo, v.Lo, 0)
	return U128{u.Hi - v.Hi - b, lo}
}

// max128 is the last IPv6 address, ffff:…:ffff.
var max128 = U128{^uint64(0), ^uint64(0)}

// Range6 is the IPv6 addresses Lo to Last, inclusive (so that the range ending at ffff:…:ffff fits).
type Range6 struct{ Lo, Last U128 }

// Size returns how many addresses r holds, and false if that is more than 2^64-1.
func (r Range6) Size() (uint64, bool) {
	d := r.Last.Sub(r.Lo)
	if d.Hi != 0 || d.Lo == ^uint64(0) {
		return 0, false
	}
	return d.Lo + 1, true
}

// Merge6 returns the ranges the IPv6 prefixes cover, sorted, with overlapping and adjacent ones merged into one
// (nil for none): Merge for IPv6.
func Merge6(pfxs []netip.Prefix) []Range6 {
	if len(pfxs) == 0 {
		return nil
	}
	rs := make([]Range6, 0, len(pfxs))
	for _, p := range pfxs {
		lo := From16(p.Masked().Addr())
		rs = append(rs, Range6{lo, lo.or(hostMask(p.Bits()))})
	}
	slices.SortFunc(rs, func(a, b Range6) int { return a.Lo.Cmp(b.Lo) })
	merged := rs[:1]
	for _, r := range rs[1:] {
		last := &merged[len(merged)-1]
		if last.Last == max128 || r.Lo.Cmp(last.Last.Add(1)) <= 0 {
			if r.Last.Cmp(last.Last) > 0 {
				last.Last = r.Last
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// hostMask is the host part of a /bits prefix, all ones.
func hostMask(bits int) U128 {
	switch {
	case bits <= 0:
		return max128
	case bits < 64:
		return U128{^uint64(0) >> bits, ^uint64(0)}
	case bits < 128:
		return U128{0, ^uint64(0) >> (bits - 64)}
	}
	return U128{}
}

func (u U128) or(v U128) U128 { return U128{u.Hi | v.Hi, u.Lo | v.Lo} }

// Subtract6 returns the addresses of rs that are in none of ex, as merged ranges; both must be sorted and merged,
// as Merge6 returns them. Subtract for IPv6.
func Subtract6(rs, ex []Range6) []Range6 {
	var out []Range6
	j := 0
	for _, r := range rs {
		lo, done := r.Lo, false
		for j < len(ex) && ex[j].Last.Cmp(lo) < 0 {
			j++
		}
		for k := j; k < len(ex) && !done && ex[k].Lo.Cmp(r.Last) <= 0; k++ {
			if ex[k].Last.Cmp(lo) < 0 {
				continue
			}
			if ex[k].Lo.Cmp(lo) > 0 {
				out = append(out, Range6{lo, ex[k].Lo.Sub(U128{0, 1})})
			}
			if ex[k].Last.Cmp(r.Last) >= 0 {
				done = true
			} else {
				lo = ex[k].Last.Add(1)
			}
		}
		if !done {
			out = append(out, Range6{lo, r.Last})
		}
	}
	return out
}

// Prefixes6 returns the fewest IPv6 prefixes that cover exactly the ranges: each range split into the largest
// aligned blocks, in address order. Prefixes for IPv6.
func Prefixes6(rs []Range6) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rs {
		for lo := r.Lo; ; {
			// The block: as large as lo's alignment allows, and no larger than what is left.
			align := 128
			if lo.Lo != 0 {
				align = bits.TrailingZeros64(lo.Lo)
			} else if lo.Hi != 0 {
				align = 64 + bits.TrailingZeros64(lo.Hi)
			}
			d := r.Last.Sub(lo) // addresses left, less one
			fit := 128
			if d != max128 {
				n := d.Add(1)
				fit = 127 - leadingZeros128(n)
			}
			k := min(align, fit)
			out = append(out, netip.PrefixFrom(lo.Addr(), 128-k))
			end := lo.or(hostMask(128 - k))
			if end.Cmp(r.Last) >= 0 {
				break
			}
			lo = end.Add(1)
		}
	}
	return out
}

func leadingZeros128(u U128) int {
	if u.Hi != 0 {
		return bits.LeadingZeros64(u.Hi)
	}
	return 64 + bits.LeadingZeros64(u.Lo)
}
