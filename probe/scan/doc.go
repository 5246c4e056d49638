// Package scan runs stateless port and firewall scans over many hosts and ports, as nmap's -sS/-sA/-sF/-sN/-sX/
// -sW/-sM do, at masscan's speed. It is Linux-only, like the rest of tcpwalk.
//
// # Stateless matching
//
// No state is kept per probe. The sequence number of every probe is a cookie: a keyed SipHash-2-4 of the 4-tuple
// (our address, the target, both ports: 12 bytes over IPv4, 36 over IPv6, both 128-bit addresses whole), with a
// fresh random key per run. A reply is matched by recomputing the
// cookie from the reply's own 4-tuple and checking that the reply acknowledges it (RFC 9293 §3.10.7: a RST to a
// segment without ACK carries ACK = SEG.SEQ + SEG.LEN; a RST to a segment with ACK carries SEQ = SEG.ACK, so the
// acknowledgment number we send is a second half of the same cookie). Replies that do not match, stale ones from
// an earlier run, spoofed ones and those of other tools, are counted and ignored.
//
// # Order and shards
//
// The targets, hosts × ports, are numbered 0..N-1 and probed in the order of a keyed pseudo-random permutation of
// that range (a Feistel network with cycle walking, seeded by Config.Seed). Shard i of n probes the permutation's
// positions i-1, i-1+n, i-1+2n, …: shards with the same seed cover every target exactly once, so one scan splits
// across machines with no overlap and no gap.
//
// # Targets, host discovery, merging
//
// ParseTarget reads nmap's target syntax (octet ranges and lists, prefixes, names) into prefixes; ResolveTargets
// takes exclusions away; the plan is built from what is left, so the RST guard, the kernel filter and the
// address limits see exactly the hosts probed. Services reads nmap-services (or tcpwalk's own small table) for
// service names and --top-ports. A host is down when it answered nothing at all: no TCP reply, no ICMP error of
// its own, and no ARP on the link (neighboursUp reads the kernel's neighbour table after the scan; the probes
// made the kernel ask). Merge rebuilds a whole scan's Result from its shards' outputs: the permutation tells
// each target's shard, so a target no output mentions was silent, and one reported by a shard it is not in
// belongs to another scan.
//
// # IPv6
//
// A scan is of one family, the hosts' (each family needs its own local address, sockets and cookie input). An
// IPv6 scan sends on a raw IPv6 socket (rawsock.Sender6; the AF_PACKET path resolves next hops with ARP and is
// IPv4 only), reads replies and ICMPv6 errors (RFC 4443: destination unreachable codes 0-6 and time exceeded read
// as filtered, as ICMP's do) through Receiver6 and ICMPv6Receiver, and its RST guard covers the IPv6 flows. IPv6
// hosts are listed, not swept: a prefix or range may hold at most MaxIPv6Sweep addresses (see CheckIPv6Sweep).
// IPv6 has no broadcast addresses (RFC 4291 §2); a host is up on neighbour discovery as an IPv4 one on ARP.
//
// # Broadcast addresses
//
// TCP is unicast: a segment to a broadcast address is to be dropped by its receivers (RFC 9293 §3.9.1, RFC 1122
// §4.2.3.10), and the kernel refuses to send one without SO_BROADCAST (EACCES). The targets at the broadcast
// addresses of the scanning namespace (see localBroadcasts) are marked skipped before the first probe: no pass
// probes them, and Result.Skipped reports them with the reason. The target space and so the shards do not depend
// on them. A subnet's network address is probed, as nmap does: Linux routes it as unicast.
//
// # The per-packet paths
//
// Probes are built from a craft.Template (incremental checksum), sent in sendmmsg batches, and paced to
// Config.Rate. Replies are read in recvmmsg batches behind a kernel BPF filter and classified in place into a
// preallocated table, one byte per target of the shard, indexed by the position in the permutation. Neither path
// allocates or sends on a channel per packet. Retries probe again only the targets still unanswered after a pass.
//
// # Send paths
//
// Under SendAuto the probes go out as Ethernet frames on an AF_PACKET socket (rawsock.PacketSender), straight to
// the next hop's MAC address with the qdisc bypassed: no route lookup, neighbour lookup or netfilter per probe,
// about twice the rate of the IP_HDRINCL raw socket (SendRaw). That needs one next hop for every host (one address,
// or a range behind one gateway) on an Ethernet interface; its MAC address is read from the neighbour table, after
// sending the first probe on the raw path if the kernel has yet to resolve it (bounded by a second). Loopback,
// on-link ranges, point-to-point links and unanswered ARP fall back to the raw path, as does a namespace with
// netfilter hooks on its receive path: conntrack never sees a frame we send, so a stateful rule would call every
// reply invalid. Frames also bypass netfilter OUTPUT, which the RST guard does not need (it drops the kernel's
// RSTs, not our probes). Replies are read on the raw IP sockets either way.
//
// # The local kernel
//
// The local kernel has no socket for our probes, so it would answer every SYN-ACK with a RST. An nftables RST
// guard (package guard) drops those while the scan runs; we reset the remote's half-open connection ourselves
// with a marked RST carrying our own sequence number, so no SYN_RECV state is left behind (unless
// Config.LeaveOpen).
//
// # Classification
//
// As nmap's (see State and Classify): for a SYN scan a SYN-ACK (or a bare SYN, a split handshake) is open, a RST
// closed; for an ACK scan a RST is unfiltered; for a window scan a RST with a nonzero window is open, with a zero
// window closed; for FIN, NULL, Xmas and Maimon scans a RST is closed and silence open|filtered. Silence after
// the retries is filtered for SYN, ACK and window scans; an ICMP unreachable (type 3 codes 0, 1, 2, 3, 9, 10, 13)
// or time exceeded (type 11) is filtered for every type.
package scan
