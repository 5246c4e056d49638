package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Family is the address family a target must have: what `-4` and `-6` ask
// for, like ping's and curl's.
type Family uint8

const (
	// FamilyAny takes a literal of either family, and for a name the first
	// address the resolver returns (the system's order: RFC 6724's
	// destination address selection, which prefers IPv6 when this host
	// has an IPv6 route to it, as ping and getaddrinfo do).
	FamilyAny Family = iota
	Family4          // IPv4 only (-4)
	Family6          // IPv6 only (-6)
)

func (f Family) String() string {
	switch f {
	case Family4:
		return "IPv4"
	case Family6:
		return "IPv6"
	}
	return "IPv4 or IPv6"
}

// flag is how the user asked for f.
func (f Family) flag() string {
	if f == Family6 {
		return "-6"
	}
	return "-4"
}

// Resolver looks up a name's addresses; *net.Resolver is one. Tests inject
// their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DefaultResolveWait bounds a name lookup when TargetOptions.Wait is zero.
const DefaultResolveWait = 3 * time.Second

// TargetOptions says how ParseTarget and ResolveHost read a host. The zero
// value takes either family, needs a port and asks the system's resolver.
type TargetOptions struct {
	Family Family // the family the host must have; FamilyAny: either
	// Port is the port of a target written without one ("2001:2::2" with
	// -p 80); zero: the target must carry its port.
	Port     uint16
	Resolver Resolver      // nil: net.DefaultResolver
	Wait     time.Duration // bound on a name lookup; zero: DefaultResolveWait
}

func targetOptions(o []TargetOptions) TargetOptions {
	if len(o) > 0 {
		return o[0]
	}
	return TargetOptions{}
}

// ParseTarget reads a target "HOST:PORT": HOST is an IPv4 address, an IPv6
// address in brackets ("[2001:2::2]:80", RFC 3986 §3.2.2) or a name, looked
// up with a bounded wait and picked by o's Family. With o.Port set, a bare
// HOST ("2001:2::2", "198.18.0.2") takes that port. Errors are UsageErrors
// that name the problem. o is optional (at most one).
func ParseTarget(s string, o ...TargetOptions) (netip.AddrPort, error) {
	opt := targetOptions(o)
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		bare := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		a, aerr := netip.ParseAddr(bare)
		switch {
		case opt.Port != 0 && (aerr == nil || !strings.Contains(s, ":")):
			host, portStr = bare, strconv.Itoa(int(opt.Port))
		case aerr == nil && a.Is6():
			return netip.AddrPort{}, usagef(fmt.Errorf("target %q has no port: write [%s]:PORT, e.g. [%s]:80 (an IPv6 address goes in brackets before its port)", s, bare, bare))
		case !strings.Contains(s, ":"):
			return netip.AddrPort{}, usagef(fmt.Errorf("target %q has no port: write HOST:PORT, e.g. 198.18.0.2:80 or [2001:2::2]:80", s))
		default:
			why := err.Error()
			var ae *net.AddrError
			if errors.As(err, &ae) {
				why = ae.Err
			}
			return netip.AddrPort{}, usagef(fmt.Errorf("bad target %q: %s (write HOST:PORT, e.g. 198.18.0.2:80; an IPv6 address goes in brackets, [2001:2::2]:80)", s, why))
		}
	}
	port, err := ParsePort(portStr)
	if err != nil {
		return netip.AddrPort{}, usagef(fmt.Errorf("bad target %q: %w", s, err))
	}
	addr, err := ResolveHost(host, opt)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addr, port), nil
}

// ParsePort reads a TCP port, 1 to 65535.
func ParsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("missing port")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q: want a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// ResolveHost returns the address of host: an IPv4 or IPv6 literal, or a
// name looked up with a bounded wait (o.Wait), of o's Family. o is
// optional (at most one).
func ResolveHost(host string, o ...TargetOptions) (netip.Addr, error) {
	opt := targetOptions(o)
	if host == "" {
		return netip.Addr{}, usagef(errors.New("missing host: write HOST:PORT, e.g. 198.18.0.2:80 or [2001:2::2]:80"))
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap() // ::ffff:198.18.0.2 is the IPv4 host
		if err := CheckDestination(a); err != nil {
			return netip.Addr{}, err
		}
		if (opt.Family == Family4 && !a.Is4()) || (opt.Family == Family6 && !a.Is6()) {
			return netip.Addr{}, usagef(fmt.Errorf("%s is not an %s address, which %s asks for: drop %s or give an %s address", host, opt.Family, opt.Family.flag(), opt.Family.flag(), opt.Family))
		}
		return a, nil
	}
	// Neither of these is a name: asking the DNS about them only sends a
	// query that cannot succeed.
	if strings.Trim(host, "0123456789.") == "" {
		return netip.Addr{}, usagef(fmt.Errorf("bad IPv4 address %q: want four numbers from 0 to 255, e.g. 198.18.0.2", host))
	}
	if strings.Contains(host, ":") {
		return netip.Addr{}, usagef(fmt.Errorf("bad IPv6 address %q: want eight groups of hex digits with :: for zeros once, e.g. 2001:2::2", host))
	}
	if n := strings.ToLower(strings.TrimSuffix(host, ".")); n == "invalid" || strings.HasSuffix(n, ".invalid") {
		// RFC 6761 §6.4: resolver libraries should answer names under
		// .invalid negatively at once.
		return netip.Addr{}, usagef(fmt.Errorf("cannot resolve host %q: names under .invalid never resolve (RFC 6761 §6.4)", host))
	}
	var r Resolver = net.DefaultResolver
	if opt.Resolver != nil {
		r = opt.Resolver
	}
	wait := opt.Wait
	if wait <= 0 {
		wait = DefaultResolveWait
	}
	network := map[Family]string{FamilyAny: "ip", Family4: "ip4", Family6: "ip6"}[opt.Family]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, network, host)
	var found []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if (opt.Family == Family4 && a.Is4()) || (opt.Family == Family6 && a.Is6()) || (opt.Family == FamilyAny && a.IsValid()) {
			found = append(found, a)
		}
	}
	if len(found) == 0 {
		why := "no address"
		switch {
		case ctx.Err() != nil:
			why = fmt.Sprintf("no answer within %v", wait)
		case err != nil:
			why = err.Error()
		}
		hint := ""
		if opt.Family != FamilyAny {
			hint = fmt.Sprintf("; without %s it may resolve to the other family", opt.Family.flag())
		}
		return netip.Addr{}, usagef(fmt.Errorf("cannot resolve host %q to an %s address: %s%s", host, opt.Family, why, hint))
	}
	return found[0], CheckDestination(found[0])
}

// CheckDestination refuses addresses a unicast TCP probe must never go to:
// unspecified, limited broadcast, multicast (RFC 9293 §3.9.1: SYNs to
// broadcast or multicast addresses are to be ignored; we do not send them);
// for IPv6 also link-local ones, which need an interface tcpwalk does not
// take yet, and IPv4-mapped ones, which are IPv4 hosts.
func CheckDestination(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return usagef(errors.New("missing destination address"))
	case a.Is4In6():
		return usagef(fmt.Errorf("%s is an IPv4-mapped address: write the IPv4 address %s", a, a.Unmap()))
	case a.Is6() && a.IsUnspecified():
		return usagef(fmt.Errorf("refusing destination %s: the unspecified address is not a host", a))
	case a.Is6() && a.IsMulticast():
		return usagef(fmt.Errorf("refusing destination %s: multicast address (TCP is unicast)", a))
	case a.Is6() && (a.IsLinkLocalUnicast() || a.Zone() != ""):
		return usagef(fmt.Errorf("refusing destination %s: link-local IPv6 addresses are not supported yet (use a global one, e.g. the lab's 2001:2::2)", a))
	case a.Is6():
		return nil
	case !a.Is4():
		return usagef(fmt.Errorf("%s is not an IP address", a))
	case a.IsUnspecified():
		return usagef(fmt.Errorf("refusing destination %s: the unspecified address is not a host", a))
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return usagef(fmt.Errorf("refusing destination %s: broadcast address (TCP is unicast)", a))
	case a.IsMulticast():
		return usagef(fmt.Errorf("refusing destination %s: multicast address (TCP is unicast)", a))
	}
	return nil
}
