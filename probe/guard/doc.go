// Package guard keeps the local kernel quiet while tcpwalk drives TCP flows from user space (Linux-only, like the
// project).
//
// The local kernel has no socket for our flows, so it answers the remote's SYN-ACK or FIN with a RST (RFC 9293
// §3.10.7.1: a segment for a CLOSED connection draws a reset), which would kill the connection we are walking.
// Install adds an nftables table (family inet, so one table for IPv4 and IPv6) with one OUTPUT chain that drops
// those RSTs and lets through our own crafted packets, which carry an SO_MARK. A per-flow guard (Config.PerFlow, the prober's) drops only the RSTs
// of the 4-tuples its flows add to its sets (Add, Remove), so a local client that happens to use a port of
// tcpwalk's range keeps its own; a scan's guard covers its one source port, which the scan holds with a bound
// socket. The table is owned by the netlink socket that made it (NFT_TABLE_F_OWNER), so
// the kernel deletes it when that socket closes: on Close, on exit, and on SIGKILL. Nothing is left behind.
//
// Watch is the check that the guard works: it sees local RSTs that escape anyway, over IPv4 and IPv6 (an IPv6
// RST behind extension headers is not seen; the kernel's own RSTs carry none).
package guard
