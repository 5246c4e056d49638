package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// ParseHost reads one host argument: an IPv4 address, a CIDR prefix (198.18.0.0/28), or a name resolved to one
// IPv4 address.
func ParseHost(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Unmap().Is4() {
			return netip.Prefix{}, &probe.UsageError{Err: fmt.Errorf("bad host prefix %q: write an IPv4 CIDR such as 198.18.0.0/28", s)}
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := probe.ResolveHost(s, probe.TargetOptions{Family: probe.Family4}) // the scan speaks IPv4 only so far
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, 32), nil
}

// refused are the ranges a scan never sends to: "this network" (RFC 1122 §3.2.1.3), multicast (RFC 5771) and
// the reserved block with the limited broadcast address (RFC 1112 §4, RFC 919).
var refused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// hostRange is a run of consecutive IPv4 addresses.
type hostRange struct {
	lo    uint32 // first address
	count uint64 // addresses in the run
	cum   uint64 // host index of lo: addresses in the runs before
}

// plan is the target space of a scan: hosts × ports, numbered t = host + port·H, in address order of the hosts
// and numeric order of the ports. It is read-only once made.
type plan struct {
	hosts     []hostRange
	nHosts    uint64
	ports     []uint16       // port index -> port
	portIndex [65536]int32   // port -> port index, or -1
	prefixes  []netip.Prefix // the hosts as prefixes (guard)
	cover     netip.Prefix   // the smallest prefix holding every host (kernel filter)
}

func newPlan(hosts []netip.Prefix, ports []PortRange) (*plan, error) {
	if len(hosts) == 0 {
		return nil, errors.New("no hosts to scan")
	}
	if len(ports) == 0 {
		return nil, errors.New("no ports to scan")
	}
	p := &plan{}
	for _, h := range hosts {
		if !h.IsValid() || !h.Addr().Is4() {
			return nil, fmt.Errorf("host %v is not an IPv4 address or prefix", h)
		}
		h = h.Masked()
		for _, r := range refused {
			if r.Overlaps(h) {
				return nil, fmt.Errorf("refusing to scan %v: it overlaps %v, which holds no unicast hosts", h, r)
			}
		}
	}
	merged := addrspan.Merge(hosts)
	for _, s := range merged {
		p.hosts = append(p.hosts, hostRange{lo: uint32(s.Lo), count: s.Hi - s.Lo, cum: p.nHosts})
		p.nHosts += s.Hi - s.Lo
	}
	for _, h := range hosts {
		p.prefixes = append(p.prefixes, h.Masked())
	}
	p.cover = coverPrefix(uint32(merged[0].Lo), uint32(merged[len(merged)-1].Hi-1))

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

// targets is N, the number of host × port pairs.
func (p *plan) targets() uint64 { return p.nHosts * uint64(len(p.ports)) }

// target returns the address (as a big-endian number) and port of target t.
func (p *plan) target(t uint64) (uint32, uint16) {
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
	return r.lo + uint32(h-r.cum), p.ports[port]
}

// lookup returns the target number of (addr, port), and whether it is one of the plan's targets. It allocates
// nothing: replies go through it.
func (p *plan) lookup(addr uint32, port uint16) (uint64, bool) {
	pi := p.portIndex[port]
	if pi < 0 {
		return 0, false
	}
	hs := p.hosts
	i, j := 0, len(hs)
	for i < j { // the first run starting after addr
		m := int(uint(i+j) >> 1)
		if hs[m].lo <= addr {
			i = m + 1
		} else {
			j = m
		}
	}
	if i == 0 {
		return 0, false
	}
	r := &hs[i-1]
	if uint64(addr-r.lo) >= r.count {
		return 0, false
	}
	return r.cum + uint64(addr-r.lo) + uint64(pi)*p.nHosts, true
}

// hostAddrs returns every host address in order, calling fn until it returns false.
func (p *plan) eachHost(fn func(h uint64, addr uint32) bool) {
	for _, r := range p.hosts {
		for k := uint64(0); k < r.count; k++ {
			if !fn(r.cum+k, r.lo+uint32(k)) {
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
