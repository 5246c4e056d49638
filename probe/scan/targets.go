package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// PortRange is an inclusive range of TCP ports.
type PortRange struct{ Lo, Hi uint16 }

// AllPorts is 1-65535, nmap's -p-.
var AllPorts = []PortRange{{1, 65535}}

// ParsePorts reads nmap's port list: "22", "1-1024", "22,80,443", "1-1024,8080", "-" or "1-65535" for all, and
// open ends "-1024" (from 1) and "60000-" (to 65535). Port 0 is refused: it cannot be a TCP destination.
func ParsePorts(s string) ([]PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty port list: write e.g. 22,80,443 or 1-1024 or - for all")
	}
	if s == "-" {
		return slices.Clone(AllPorts), nil
	}
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		var r PortRange
		var err error
		switch {
		case !isRange:
			r.Lo, err = probe.ParsePort(part)
			r.Hi = r.Lo
		default:
			r.Lo, r.Hi = 1, 65535
			if lo != "" {
				r.Lo, err = probe.ParsePort(lo)
			}
			if err == nil && hi != "" {
				r.Hi, err = probe.ParsePort(hi)
			}
			if err == nil && r.Lo > r.Hi {
				err = fmt.Errorf("range %s runs backwards", part)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bad port list %q: %v (write e.g. 22,80,443 or 1-1024 or - for all)", s, err)
		}
		out = append(out, r)
	}
	return mergePorts(out), nil
}

// mergePorts sorts ranges and merges overlapping and adjacent ones.
func mergePorts(rs []PortRange) []PortRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	var out []PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.Lo) <= uint32(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// ParseHost reads one host argument: an IPv4 or IPv6 address, a CIDR prefix (198.18.0.0/28, 2001:2::/120; an
// IPv6 one of at most MaxIPv6Sweep addresses, see CheckIPv6Sweep), or a name resolved to one IPv4 address.
func ParseHost(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return netip.Prefix{}, &probe.UsageError{Err: fmt.Errorf("bad host prefix %q: write a CIDR such as 198.18.0.0/28 or 2001:2::/120", s)}
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Addr().Is6() {
			if err := CheckIPv6Sweep(p); err != nil {
				return netip.Prefix{}, &probe.UsageError{Err: err}
			}
		}
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(s), "[]")); err == nil && a.Is6() && !a.Is4In6() {
		if err := probe.CheckDestination(a); err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, 128), nil
	}
	a, err := probe.ResolveHost(s, probe.TargetOptions{Family: probe.Family4}) // the scan speaks IPv4 only so far
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// MinIPv6SweepBits bounds an IPv6 sweep: a prefix must be this long or longer, so at most MaxIPv6Sweep addresses.
// An IPv4 scan can sweep a /8 in minutes; the same rate takes 584,000 years for one IPv6 /64 (2^64 addresses), so
// IPv6 hosts are listed, not swept (zmap takes IPv6 targets only from a list for the same reason).
const (
	MinIPv6SweepBits = 104
	MaxIPv6Sweep     = 1 << (128 - MinIPv6SweepBits) // 16,777,216 addresses, as an IPv4 /8
)

// CheckIPv6Sweep refuses an IPv6 prefix of more than MaxIPv6Sweep addresses, and ranges that hold no unicast
// host a scan may send to: multicast (RFC 4291 §2.7), link-local (which needs an interface), the unspecified
// address, and IPv4-mapped addresses (IPv4 hosts: scan their IPv4 addresses).
func CheckIPv6Sweep(p netip.Prefix) error {
	if p.Bits() < MinIPv6SweepBits {
		n := math.Ldexp(1, 128-p.Bits())
		years := n / 1e6 / (365.25 * 24 * 3600)
		return fmt.Errorf("refusing to sweep %v: that is 2^%d addresses (%.3g years at a million probes a second, for one port); an IPv6 prefix may hold at most 2^%d (a /%d or longer). List the hosts instead (arguments, or a file with -iL: from `ip -6 neigh`, DNS or logs), or sweep a narrow part, e.g. %v for its low addresses",
			p.Masked(), 128-p.Bits(), years, 128-MinIPv6SweepBits, MinIPv6SweepBits, netip.PrefixFrom(p.Masked().Addr(), 120))
	}
	for _, r := range refused6 {
		if r.Overlaps(p) {
			return fmt.Errorf("refusing to scan %v: it overlaps %v, %s", p.Masked(), r, refused6Why[r])
		}
	}
	return nil
}

// refused are the ranges a scan never sends to: "this network" (RFC 1122 §3.2.1.3), multicast (RFC 5771) and
// the reserved block with the limited broadcast address (RFC 1112 §4, RFC 919).
var refused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// refused6 are the IPv6 ranges a scan never sends to, and why (CheckIPv6Sweep).
var (
	refused6 = []netip.Prefix{
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("::ffff:0:0/96"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
	refused6Why = map[netip.Prefix]string{
		refused6[0]: "the unspecified address, which is no host (RFC 4291 §2.5.2)",
		refused6[1]: "IPv4-mapped addresses, which are IPv4 hosts: scan their IPv4 addresses",
		refused6[2]: "link-local addresses, which need an interface tcpwalk does not take yet: use global ones, e.g. the lab's 2001:2::2",
		refused6[3]: "multicast addresses (RFC 4291 §2.7): TCP is unicast",
	}
)

// hostRange is a run of consecutive addresses.
type hostRange struct {
	lo    addrspan.U128 // first address: an IPv4 address is its 32-bit number, an IPv6 one its 128-bit number
	count uint64        // addresses in the run
	cum   uint64        // host index of lo: addresses in the runs before
}

// plan is the target space of a scan: hosts × ports, numbered t = host + port·H, in address order of the hosts
// and numeric order of the ports. The hosts are of one family. It is read-only once made.
type plan struct {
	v6        bool // the hosts are IPv6
	hosts     []hostRange
	nHosts    uint64
	ports     []uint16       // port index -> port
	portIndex [65536]int32   // port -> port index, or -1
	prefixes  []netip.Prefix // the hosts as prefixes (guard)
	cover     netip.Prefix   // the smallest prefix holding every host (kernel filter)
}

// maxPlanHosts bounds the hosts of a plan (prefixes can add up past what a table, or a 64-bit count, takes).
const maxPlanHosts = 1 << 40

func newPlan(hosts []netip.Prefix, ports []PortRange) (*plan, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no hosts to scan")
	}
	if len(ports) == 0 {
		return nil, errors.New("no ports to scan")
	}
	p := &plan{v6: hosts[0].Addr().Is6()}
	for _, h := range hosts {
		switch {
		case !h.IsValid():
			return nil, fmt.Errorf("host %v is not an address or prefix", h)
		case h.Addr().Is6() != p.v6:
			return nil, fmt.Errorf("hosts %v and %v are of two families: scan IPv4 and IPv6 hosts in two runs (each needs its own local address and sockets)", hosts[0], h)
		case p.v6:
			if err := CheckIPv6Sweep(h); err != nil {
				return nil, err
			}
			continue
		}
		h = h.Masked()
		for _, r := range refused {
			if r.Overlaps(h) {
				return nil, fmt.Errorf("refusing to scan %v: it overlaps %v, which holds no unicast hosts", h, r)
			}
		}
	}
	if p.v6 {
		merged := addrspan.Merge6(hosts)
		for _, s := range merged {
			n, ok := s.Size()
			if !ok || n > maxPlanHosts || p.nHosts+n > maxPlanHosts {
				return nil, fmt.Errorf("more than %d IPv6 hosts: narrow the prefixes", uint64(maxPlanHosts))
			}
			p.hosts = append(p.hosts, hostRange{lo: s.Lo, count: n, cum: p.nHosts})
			p.nHosts += n
		}
		p.cover = coverPrefix6(merged[0].Lo, merged[len(merged)-1].Last)
	} else {
		merged := addrspan.Merge(hosts)
		for _, s := range merged {
			p.hosts = append(p.hosts, hostRange{lo: addrspan.U128{Lo: s.Lo}, count: s.Hi - s.Lo, cum: p.nHosts})
			p.nHosts += s.Hi - s.Lo
		}
		p.cover = coverPrefix(uint32(merged[0].Lo), uint32(merged[len(merged)-1].Hi-1))
	}
	for _, h := range hosts {
		p.prefixes = append(p.prefixes, h.Masked())
	}

	for i := range p.portIndex {
		p.portIndex[i] = -1
	}
	for _, r := range mergePorts(ports) {
		if r.Lo == 0 || r.Lo > r.Hi {
			return nil, fmt.Errorf("bad port range %d-%d", r.Lo, r.Hi)
		}
		for port := uint32(r.Lo); port <= uint32(r.Hi); port++ {
			p.portIndex[port] = int32(len(p.ports))
			p.ports = append(p.ports, uint16(port))
		}
	}
	return p, nil
}

// coverPrefix is the longest prefix holding both lo and hi.
func coverPrefix(lo, hi uint32) netip.Prefix {
	bits := 32
	for bits > 0 && lo>>(32-bits) != hi>>(32-bits) {
		bits--
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], lo)
	return netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked()
}

// coverPrefix6 is the longest IPv6 prefix holding both lo and last.
func coverPrefix6(lo, last addrspan.U128) netip.Prefix {
	n := 128
	if x := lo.Hi ^ last.Hi; x != 0 {
		n = bits.LeadingZeros64(x)
	} else if x := lo.Lo ^ last.Lo; x != 0 {
		n = 64 + bits.LeadingZeros64(x)
	}
	return netip.PrefixFrom(lo.Addr(), n).Masked()
}

// num is a's number in a plan: the 32-bit number of an IPv4 address, the 128-bit one of an IPv6 address.
func num(a netip.Addr) addrspan.U128 {
	if a.Is4() {
		b := a.As4()
		return addrspan.U128{Lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	return addrspan.From16(a)
}

// addr is the address numbered u in the plan's family.
func (p *plan) addr(u addrspan.U128) netip.Addr {
	if p.v6 {
		return u.Addr()
	}
	return addrOf(uint32(u.Lo))
}

// targets is N, the number of host × port pairs.
func (p *plan) targets() uint64 { return p.nHosts * uint64(len(p.ports)) }

// target returns the address (as its number, see num) and port of target t.
func (p *plan) target(t uint64) (addrspan.U128, uint16) {
	h, port := t%p.nHosts, t/p.nHosts
	i, j := 0, len(p.hosts)-1
	for i < j { // the run holding host index h
		m := int(uint(i+j) >> 1)
		if r := &p.hosts[m]; r.cum+r.count > h {
			j = m
		} else {
			i = m + 1
		}
	}
	r := &p.hosts[i]
	return r.lo.Add(h - r.cum), p.ports[port]
}

// lookup returns the target number of (addr, port), and whether it is one of the plan's targets. It allocates
// nothing: replies go through it.
func (p *plan) lookup(addr addrspan.U128, port uint16) (uint64, bool) {
	pi := p.portIndex[port]
	if pi < 0 {
		return 0, false
	}
	hs := p.hosts
	i, j := 0, len(hs)
	for i < j { // the first run starting after addr
		m := int(uint(i+j) >> 1)
		if hs[m].lo.Cmp(addr) <= 0 {
			i = m + 1
		} else {
			j = m
		}
	}
	if i == 0 {
		return 0, false
	}
	r := &hs[i-1]
	d := addr.Sub(r.lo)
	if d.Hi != 0 || d.Lo >= r.count {
		return 0, false
	}
	return r.cum + d.Lo + uint64(pi)*p.nHosts, true
}

// eachHost calls fn with every host index and address in order, until it returns false.
func (p *plan) eachHost(fn func(h uint64, addr netip.Addr) bool) {
	for _, r := range p.hosts {
		for k := uint64(0); k < r.count; k++ {
			if !fn(r.cum+k, p.addr(r.lo.Add(k))) {
				return
			}
		}
	}
}

// FormatPorts writes ports as a list of ranges ("1-1024,8080"), as -p
// takes them.
func FormatPorts(rs []PortRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.Lo)))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.Hi)))
		}
	}
	return b.String()
}

func addrOf(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}
