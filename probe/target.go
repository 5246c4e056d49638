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

// ParseTarget reads "HOST:PORT" where HOST is an IPv4 address or a name that
// resolves to one. Errors are UsageErrors that name the problem.
func ParseTarget(s string) (netip.AddrPort, error) { return parseTarget(s, false) }

// ParseTargetAny is ParseTarget for the commands that speak IPv6 too (send,
// so far): HOST may also be an IPv6 literal in brackets, "[2001:2::2]:80".
// Names still resolve to IPv4 only.
func ParseTargetAny(s string) (netip.AddrPort, error) { return parseTarget(s, true) }

func parseTarget(s string, v6 bool) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if !strings.Contains(s, ":") {
			return netip.AddrPort{}, usagef(fmt.Errorf("target %q has no port: write HOST:PORT, e.g. 198.18.0.2:80", s))
		}
		why := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			why = ae.Err
		}
		return netip.AddrPort{}, usagef(fmt.Errorf("bad target %q: %s (write HOST:PORT, e.g. 198.18.0.2:80; an IPv6 address goes in brackets, [2001:2::2]:80)", s, why))
	}
	port, err := ParsePort(portStr)
	if err != nil {
		return netip.AddrPort{}, usagef(fmt.Errorf("bad target %q: %w", s, err))
	}
	addr, err := resolveHost(host, v6)
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

// ResolveHost returns the IPv4 address of host: a literal, or a name looked up
// with a bounded wait. tcpwalk speaks IPv4 only.
func ResolveHost(host string) (netip.Addr, error) { return resolveHost(host, false) }

// resolveHost is ResolveHost; v6 lets an IPv6 literal through.
func resolveHost(host string, v6 bool) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, usagef(errors.New("missing host: write HOST:PORT, e.g. 198.18.0.2:80"))
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !a.Is4() && !v6 {
			return netip.Addr{}, usagef(fmt.Errorf("%s is not an IPv4 address: tcpwalk speaks IPv4 only", host))
		}
		return a, CheckDestination(a)
	}
	// Neither of these is a name: asking the DNS about them only sends a
	// query that cannot succeed.
	if strings.Trim(host, "0123456789.") == "" {
		return netip.Addr{}, usagef(fmt.Errorf("bad IPv4 address %q: want four numbers from 0 to 255, e.g. 198.18.0.2", host))
	}
	if n := strings.ToLower(strings.TrimSuffix(host, ".")); n == "invalid" || strings.HasSuffix(n, ".invalid") {
		// RFC 6761 §6.4: resolver libraries should answer names under
		// .invalid negatively at once.
		return netip.Addr{}, usagef(fmt.Errorf("cannot resolve host %q: names under .invalid never resolve (RFC 6761 §6.4)", host))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, usagef(fmt.Errorf("cannot resolve host %q to an IPv4 address", host))
	}
	a := addrs[0].Unmap()
	return a, CheckDestination(a)
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
		return usagef(fmt.Errorf("%s is not an IPv4 address: tcpwalk speaks IPv4 only", a))
	case a.IsUnspecified():
		return usagef(fmt.Errorf("refusing destination %s: the unspecified address is not a host", a))
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return usagef(fmt.Errorf("refusing destination %s: broadcast address (TCP is unicast)", a))
	case a.IsMulticast():
		return usagef(fmt.Errorf("refusing destination %s: multicast address (TCP is unicast)", a))
	}
	return nil
}
