package scan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// maxSpecRuns bounds the separate address runs one target specification may
// expand to ("1-254.1-254.1-254.1" is 16 million of them): a plan of more
// would be slow to build and no scan of this tool's size needs it.
const maxSpecRuns = 1 << 16

// ParseTarget reads one target as nmap takes it: an IPv4 address, a CIDR
// prefix (198.18.0.0/28), octet ranges and lists in any octet
// (198.18.0.2-20, 198.18.0-1.1-254, 198.18.0.2,5,7; "-" or "*" is 0-255,
// and an open end "5-" or "-5" runs to 255 or from 0), or a host name
// resolved to one IPv4 address. IPv6 targets are an address (2001:2::2, or
// [2001:2::2]), a prefix of at most MaxIPv6Sweep addresses (2001:2::/120;
// see CheckIPv6Sweep for why a /64 is refused), a range of addresses
// (2001:2::1-2001:2::1:0), and ranges and lists in the last group, in hex
// as the address is written (2001:2::1-ff, 2001:2::2,5,a); MaxIPv6Sweep
// bounds a range or list too. It returns the addresses as prefixes, in
// address order, the fewest that cover them exactly.
func ParseTarget(s string) ([]netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if isIPv6Spec(s) {
		ps, err := parseIPv6Spec(s)
		if err != nil {
			return nil, &probe.UsageError{Err: fmt.Errorf("bad target %q: %v (write e.g. 2001:2::1-ff, 2001:2::2,5,a or 2001:2::1-2001:2::1:0)", s, err)}
		}
		return ps, nil
	}
	if !isOctetSpec(s) {
		p, err := ParseHost(s)
		if err != nil {
			return nil, err
		}
		return []netip.Prefix{p}, nil
	}
	rs, err := octetRuns(s)
	if err != nil {
		return nil, &probe.UsageError{Err: fmt.Errorf("bad target %q: %v (write e.g. 198.18.0.2-20, 198.18.0-1.1-254 or 198.18.0.2,5,7)", s, err)}
	}
	return addrspan.Prefixes(rs), nil
}

// isIPv6Spec reports whether s is an IPv6 range or list: an address with a "-" or ",".
func isIPv6Spec(s string) bool {
	return strings.Contains(s, ":") && strings.ContainsAny(s, "-,") && !strings.Contains(s, "/")
}

// parseIPv6Spec reads an IPv6 range or list (see ParseTarget) into prefixes.
func parseIPv6Spec(s string) ([]netip.Prefix, error) {
	items := strings.Split(s, ",")
	lo, hi, isRange := strings.Cut(items[0], "-")
	base, err := netip.ParseAddr(strings.Trim(lo, "[]"))
	switch {
	case err == nil && base.Is4In6():
		return nil, fmt.Errorf("%s is IPv4-mapped: write the IPv4 addresses instead (%v, and ranges as 198.18.0.1-20)", base, base.Unmap())
	case err != nil || !base.Is6() || base.Zone() != "":
		return nil, fmt.Errorf("%q is not an IPv6 address", lo)
	}
	b := addrspan.From16(base)
	group := func(v string) (addrspan.U128, error) { // base with its last group set to v (hex)
		n, err := strconv.ParseUint(v, 16, 16)
		if err != nil {
			return addrspan.U128{}, fmt.Errorf("%q is not a last group: want hex from 0 to ffff", v)
		}
		return addrspan.U128{Hi: b.Hi, Lo: b.Lo&^0xffff | n}, nil
	}
	var rs []addrspan.Range6
	var total uint64
	add := func(lo, last addrspan.U128, what string) error {
		if last.Cmp(lo) < 0 {
			return fmt.Errorf("range %s runs backwards", what)
		}
		n, ok := addrspan.Range6{Lo: lo, Last: last}.Size()
		if total += n; !ok || total > MaxIPv6Sweep {
			return fmt.Errorf("more than %d addresses: an IPv6 sweep is bounded as a /%d is (see scan --help)", MaxIPv6Sweep, MinIPv6SweepBits)
		}
		rs = append(rs, addrspan.Range6{Lo: lo, Last: last})
		return nil
	}
	switch {
	case !isRange:
		err = add(b, b, items[0])
	case strings.Contains(hi, ":"):
		a, perr := netip.ParseAddr(strings.Trim(hi, "[]"))
		if perr != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IPv6 address", hi)
		}
		err = add(b, addrspan.From16(a), items[0])
	default:
		var last addrspan.U128
		if last, err = group(hi); err == nil {
			err = add(b, last, items[0])
		}
	}
	if err != nil {
		return nil, err
	}
	for _, it := range items[1:] {
		if strings.Contains(it, ":") {
			return nil, fmt.Errorf("list item %q: after the first address, a list holds last groups only (2001:2::2,5,a); give other addresses as separate targets", it)
		}
		l, h, isRange := strings.Cut(it, "-")
		if !isRange {
			h = l
		}
		gl, err := group(l)
		if err != nil {
			return nil, err
		}
		gh, err := group(h)
		if err != nil {
			return nil, err
		}
		if err := add(gl, gh, it); err != nil {
			return nil, err
		}
	}
	var ps []netip.Prefix
	for _, r := range rs {
		ps = append(ps, addrspan.Prefixes6([]addrspan.Range6{r})...)
	}
	ps = addrspan.Prefixes6(addrspan.Merge6(ps))
	for _, p := range ps {
		if err := CheckIPv6Sweep(p); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// isOctetSpec reports whether s is four dot-separated octet specifications
// with at least one range or list: an address or a prefix is not.
func isOctetSpec(s string) bool {
	if strings.Count(s, ".") != 3 || !strings.ContainsAny(s, "-,*") {
		return false
	}
	return strings.Trim(s, "0123456789.,-*") == ""
}

// octetRuns expands an octet specification into merged address runs, in
// address order.
func octetRuns(s string) ([]addrspan.Range, error) {
	parts := strings.Split(s, ".")
	var sets [4][]octetRange
	for i, p := range parts {
		rs, err := parseOctet(p)
		if err != nil {
			return nil, fmt.Errorf("octet %d %q: %v", i+1, p, err)
		}
		sets[i] = rs
	}
	var out []addrspan.Range
	var err error
	// Every combination of the first three octets, in order, with the runs
	// of the last; adjacent runs merge as they come.
	eachValue(sets[0], func(a uint64) bool {
		return eachValue(sets[1], func(b uint64) bool {
			return eachValue(sets[2], func(c uint64) bool {
				base := a<<24 | b<<16 | c<<8
				for _, r := range sets[3] {
					lo, hi := base|uint64(r.lo), base|uint64(r.hi)+1
					if n := len(out); n > 0 && out[n-1].Hi == lo {
						out[n-1].Hi = hi
						continue
					}
					if len(out) == maxSpecRuns {
						err = fmt.Errorf("more than %d separate address runs: split the scan, or write the ranges as prefixes", maxSpecRuns)
						return false
					}
					out = append(out, addrspan.Range{Lo: lo, Hi: hi})
				}
				return true
			})
		})
	})
	return out, err
}

type octetRange struct{ lo, hi uint8 }

// parseOctet reads "5", "1-254", "-", "*", "5-", "-5" and lists of them,
// into sorted, merged ranges.
func parseOctet(s string) ([]octetRange, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	var rs []octetRange
	for _, item := range strings.Split(s, ",") {
		r := octetRange{0, 255}
		lo, hi, isRange := strings.Cut(item, "-")
		var err error
		switch {
		case item == "*":
		case item == "":
			return nil, errors.New("empty list item")
		case !isRange:
			r.lo, err = octetValue(item)
			r.hi = r.lo
		default:
			if lo != "" {
				r.lo, err = octetValue(lo)
			}
			if err == nil && hi != "" {
				r.hi, err = octetValue(hi)
			}
			if err == nil && r.lo > r.hi {
				err = fmt.Errorf("range %s runs backwards", item)
			}
		}
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	// Sort (insertion: at most a few items) and merge.
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].lo < rs[j-1].lo; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		if last := &out[len(out)-1]; int(r.lo) <= int(last.hi)+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func octetValue(s string) (uint8, error) {
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number from 0 to 255", s)
	}
	return uint8(v), nil
}

// eachValue calls fn with every value of the ranges in order, until fn
// returns false; it returns false if fn did.
func eachValue(rs []octetRange, fn func(uint64) bool) bool {
	for _, r := range rs {
		for v := uint64(r.lo); v <= uint64(r.hi); v++ {
			if !fn(v) {
				return false
			}
		}
	}
	return true
}

// SplitTargetList splits a comma-separated list of targets, as --exclude
// takes them, keeping octet lists whole: "198.18.0.2,5,7,198.18.1.0/24" is
// the targets "198.18.0.2,5,7" and "198.18.1.0/24" (a piece without a dot
// continues the last octet of the one before); after an IPv6 address, a hex
// piece without a colon continues its last group ("2001:2::2,5,a").
func SplitTargetList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		n := len(out)
		if n > 0 && p != "" && !strings.Contains(p, ".") && strings.Trim(p, "0123456789-*") == "" && !strings.Contains(out[n-1], ":") {
			out[n-1] += "," + p
			continue
		}
		if n > 0 && p != "" && strings.Contains(out[n-1], ":") && !strings.Contains(out[n-1], "/") && strings.Trim(p, "0123456789abcdefABCDEF-") == "" {
			out[n-1] += "," + p
			continue
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ReadTargetList reads targets from a file as nmap's -iL does: separated by
// spaces, tabs or newlines, "#" to the end of a line a comment. name is the
// file's name, for errors.
func ReadTargetList(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		out = append(out, strings.Fields(text)...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read targets from %s (after line %d): %w", name, line, err)
	}
	return out, nil
}

// ResolveTargets parses targets and exclusions (each as ParseTarget) and
// returns the targets' addresses less the excluded ones, as the fewest
// prefixes. Excluding every target is a usage error: there is nothing to
// scan.
func ResolveTargets(targets, exclude []string) ([]netip.Prefix, error) {
	var hosts, ex []netip.Prefix
	for _, t := range targets {
		ps, err := ParseTarget(t)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, ps...)
	}
	if len(hosts) == 0 {
		return nil, &probe.UsageError{Err: errors.New("no targets: give hosts, prefixes or ranges such as 198.18.0.2-20, or a file with -iL")}
	}
	if len(exclude) == 0 {
		return hosts, nil
	}
	for _, t := range exclude {
		ps, err := parseExclusion(t)
		if err != nil {
			return nil, err
		}
		ex = append(ex, ps...)
	}
	h4, h6 := addrspan.ByFamily(hosts)
	x4, x6 := addrspan.ByFamily(ex)
	left := addrspan.Prefixes(addrspan.Subtract(addrspan.Merge(h4), addrspan.Merge(x4)))
	left = append(left, addrspan.Prefixes6(addrspan.Subtract6(addrspan.Merge6(h6), addrspan.Merge6(x6)))...)
	if len(left) == 0 {
		return nil, &probe.UsageError{Err: errors.New("every target is excluded: nothing left to scan (check --exclude and --excludefile)")}
	}
	return left, nil
}

// parseExclusion reads an exclusion like a target, but accepts any IPv4 or
// IPv6 address, also those no probe may go to, and any IPv6 prefix, a /64
// too: excluding one is harmless.
func parseExclusion(s string) ([]netip.Prefix, error) {
	if a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(s), "[]")); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
		return []netip.Prefix{p.Masked()}, nil
	}
	ps, err := ParseTarget(s)
	if err != nil {
		return nil, fmt.Errorf("exclude: %w", err)
	}
	return ps, nil
}

// FormatHosts writes hosts as few nmap-style specifications: an address, a
// prefix when the run is one, a last-octet range (198.18.0.2-20) or a range
// of addresses (198.18.0.250-198.18.1.4); IPv6 runs alike, with a range in
// the last group in hex (2001:2::2-1f), after the IPv4 ones. ParseTarget
// reads each back.
func FormatHosts(hosts []netip.Prefix) string {
	var parts []string
	h4, h6 := addrspan.ByFamily(hosts)
	for _, r := range addrspan.Merge6(h6) {
		lo, hi := r.Lo.Addr(), r.Last.Addr()
		switch ps := addrspan.Prefixes6([]addrspan.Range6{r}); {
		case r.Lo == r.Last:
			parts = append(parts, lo.String())
		case len(ps) == 1:
			parts = append(parts, ps[0].String())
		case r.Lo.Hi == r.Last.Hi && r.Lo.Lo>>16 == r.Last.Lo>>16:
			parts = append(parts, lo.String()+"-"+strconv.FormatUint(r.Last.Lo&0xffff, 16))
		default:
			parts = append(parts, lo.String()+"-"+hi.String())
		}
	}
	var v4 []string
	for _, r := range addrspan.Merge(h4) {
		lo, hi := addrOf(uint32(r.Lo)), addrOf(uint32(r.Hi-1))
		switch ps := addrspan.Prefixes([]addrspan.Range{r}); {
		case r.Hi-r.Lo == 1:
			v4 = append(v4, lo.String())
		case len(ps) == 1:
			v4 = append(v4, ps[0].String())
		case r.Lo>>8 == (r.Hi-1)>>8:
			v4 = append(v4, lo.String()+"-"+strconv.Itoa(int((r.Hi-1)&0xff)))
		default:
			v4 = append(v4, lo.String()+"-"+hi.String())
		}
	}
	return strings.Join(append(v4, parts...), " ")
}
