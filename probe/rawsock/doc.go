// Package rawsock does tcpwalk's raw IPv4 I/O on Linux (the project is Linux-only): a Sender for whole crafted
// IPv4 packets, a Receiver for the TCP segments of our flows and an ICMPReceiver for ICMP errors that quote them;
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
package rawsock
