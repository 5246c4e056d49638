// Package addrspan turns IPv4 prefixes into the merged ranges of addresses
// they cover: the guard's nftables interval set and the scanner's host
// order are both built from them.
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
