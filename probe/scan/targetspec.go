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
// resolved to one IPv4 address. It returns the addresses as prefixes, in
// address order, the fewest that cover them exactly.
func ParseTarget(s string) ([]netip.Prefix, error) {
	s = strings.TrimSpace(s)
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
// continues the last octet of the one before).
func SplitTargetList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if n := len(out); n > 0 && p != "" && !strings.Contains(p, ".") && strings.Trim(p, "0123456789-*") == "" {
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
	left := addrspan.Prefixes(addrspan.Subtract(addrspan.Merge(hosts), addrspan.Merge(ex)))
	if len(left) == 0 {
		return nil, &probe.UsageError{Err: errors.New("every target is excluded: nothing left to scan (check --exclude and --excludefile)")}
	}
	return left, nil
}

// parseExclusion reads an exclusion like a target, but accepts any IPv4
// address, also those no probe may go to: excluding one is harmless.
func parseExclusion(s string) ([]netip.Prefix, error) {
	if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && a.Unmap().Is4() {
		return []netip.Prefix{netip.PrefixFrom(a.Unmap(), 32)}, nil
	}
	ps, err := ParseTarget(s)
	if err != nil {
		return nil, fmt.Errorf("exclude: %w", err)
	}
	return ps, nil
}

// FormatHosts writes hosts as few nmap-style specifications: an address, a
// prefix when the run is one, a last-octet range (198.18.0.2-20) or a range
// of addresses (198.18.0.250-198.18.1.4).
func FormatHosts(hosts []netip.Prefix) string {
	var parts []string
	for _, r := range addrspan.Merge(hosts) {
		lo, hi := addrOf(uint32(r.Lo)), addrOf(uint32(r.Hi-1))
		switch ps := addrspan.Prefixes([]addrspan.Range{r}); {
		case r.Hi-r.Lo == 1:
			parts = append(parts, lo.String())
		case len(ps) == 1:
			parts = append(parts, ps[0].String())
		case r.Lo>>8 == (r.Hi-1)>>8:
			parts = append(parts, lo.String()+"-"+strconv.Itoa(int((r.Hi-1)&0xff)))
		default:
			parts = append(parts, lo.String()+"-"+hi.String())
		}
	}
	return strings.Join(parts, " ")
}
