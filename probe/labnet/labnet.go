// Package labnet defines, once, the address ranges tcpwalk's labs live in
// and the only ones a lab may use: RFC 2544's IPv4 benchmarking range
// 198.18.0.0/15 and RFC 5180's IPv6 one, 2001:2::/48. Neither is routed
// on the Internet. Package lab builds its namespaces inside them, package
// probe refuses to send to them through a default route, and the commands
// probe a target in them from the lab's namespace.
//
// The package is portable Go.
package labnet

import "net/netip"

var (
	// IPv4 is 198.18.0.0/15 (RFC 2544 Appendix C, benchmarking).
	IPv4 = netip.MustParsePrefix("198.18.0.0/15")
	// IPv6 is 2001:2::/48 (RFC 5180, IPv6 benchmarking).
	IPv6 = netip.MustParsePrefix("2001:2::/48")
)

// Contains reports whether a is in either lab range.
func Contains(a netip.Addr) bool { return IPv4.Contains(a) || IPv6.Contains(a) }
