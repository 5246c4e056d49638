// Package probe sends crafted TCP segments on raw IPv4 sockets and matches the
// replies of a remote, unmodified TCP stack to the flows that caused them.
//
// The package is Linux-only. A Prober owns one raw send socket (IP_HDRINCL,
// marked with SO_MARK), one receive socket whose kernel BPF filter passes only
// segments of our flows, one ICMP receive socket for errors about our
// segments, and the RST guard that keeps the local kernel from resetting the
// remote's replies (see package guard). A Flow is one 4-tuple: Send writes a
// segment, Next and Expect read what the remote answered, with kernel receive
// timestamps.
//
// What the kernel rewrites on a raw IP_HDRINCL send (Linux, raw(7)): it always
// fills the IP total length and the IP header checksum; it fills a zero IP ID
// and a zero source address. Packets larger than the route MTU fail with
// EMSGSIZE. The TCP checksum covers the source address, so probe resolves the
// local address for each destination itself (a connected UDP socket, which
// sends nothing) instead of leaving it zero.
//
// A Prober whose Remote is IPv6 uses rawsock's IPv6 sockets instead, on which
// the kernel rewrites nothing (see package rawsock); Event carries the IPv6
// header in IP6 and ICMPv6 errors in ICMP6, and its Source, Destination,
// HopLimit and ICMPText methods answer for both families. The RST guard
// covers IPv6 flows as it covers IPv4 ones (its inet table has ip6 sets).
//
// Packages below probe do one job each: rawsock (sockets, BPF, timestamps),
// guard (nftables RST guard), netns (namespaces), sockdiag (the kernel's own
// socket states), lab (the namespace lab), privs (capabilities).
package probe
