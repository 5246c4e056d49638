// Package rawsock does tcpwalk's raw IPv4 and IPv6 I/O on Linux (the project is Linux-only): a Sender (Sender6)
// for whole crafted IPv4 (IPv6) packets, a Receiver (Receiver6) for the TCP segments of our flows and an
// ICMPReceiver (ICMPv6Receiver) for ICMP (ICMPv6) errors that quote them;
// for scans, a PacketSender that puts the same packets on an Ethernet link through AF_PACKET (no route lookup, no
// netfilter, no qdisc: about twice the IP_HDRINCL rate per core), and a PacketReceiver for taps.
//
// # What the kernel does to a sent packet
//
// The Sender uses an IPPROTO_RAW socket, which implies IP_HDRINCL: the caller writes the IPv4 header. As
// x/net/ipv4 documents for RawConn.WriteTo, Linux still rewrites some of it (raw_send_hdrinc):
//   - the total length is always set to the length passed to send;
//   - the IP header checksum is always recomputed;
//   - a zero Identification is replaced with a kernel-chosen one;
//   - a zero source address is replaced with the source of the route to the destination.
//
// The TCP checksum is not touched: the caller computes it (over the source address it will actually leave with).
// A packet larger than the route's MTU fails with EMSGSIZE; the kernel does not fragment it.
//
// IPv6 has no IP_HDRINCL option: the Sender6 uses an AF_INET6 SOCK_RAW IPPROTO_RAW socket, on which Linux sets
// hdrincl itself, and sends the caller's bytes from the IPv6 header on with nothing rewritten (rawv6_send_hdrinc;
// TestSender6KernelRewritesNothing checks it on the wire): a zero source address leaves as ::, the payload length
// leaves as written even when it is wrong, and the traffic class, flow label and hop limit are the caller's. The
// route is looked up for the sockaddr's destination; there is no header checksum to fix, and the TCP checksum is
// the caller's (RFC 8200 §8.1 pseudo-header). A packet larger than the route's MTU fails with EMSGSIZE. Link-local
// destinations are refused (they need an interface index).
//
// A PacketSender's frames are sent as built: nothing in the IPv4 header is rewritten, netfilter never sees them
// (so neither the RST guard's exemption nor a stateful firewall's conntrack applies), and local taps do not see
// them either.
//
// # What reaches a Receiver
//
// A raw IPPROTO_TCP socket gets a copy of every TCP segment the host receives, after netfilter INPUT: a reply
// dropped in INPUT never arrives, so never filter replies there. Each Receiver attaches a classic BPF filter
// (SO_ATTACH_FILTER) so that only segments of our flows are copied to user space, and turns on SO_TIMESTAMPNS so
// every packet carries the kernel's receive time.
//
// An AF_INET6 raw socket never returns the IPv6 header (RFC 3542 §3): it hands over the packet from the TCP (or
// ICMPv6) header on, after the kernel has walked and removed any extension headers and reassembled fragments.
// Its filter reads the addresses through SKF_NET_OFF, the network header's offset in classic BPF. A Receiver6 or
// ICMPv6Receiver rebuilds a 40-byte header in front of each packet from the source address the kernel reports and
// the IPV6_PKTINFO (destination), IPV6_HOPLIMIT and IPV6_FLOWINFO (traffic class and flow label) control
// messages, with the payload length of what was read and next header 6 (58); extension headers that were on the
// wire are not in it. A PacketReceiver from NewPacketReceiver6 sees the wire bytes instead.
package rawsock
