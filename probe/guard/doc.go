// Package guard keeps the local kernel quiet while tcpwalk drives TCP flows from user space (Linux-only, like the
// project).
//
// The local kernel has no socket for our flows, so it answers the remote's SYN-ACK or FIN with a RST (RFC 9293
// §3.10.7.1: a segment for a CLOSED connection draws a reset), which would kill the connection we are walking.
// Install adds an nftables table with one OUTPUT chain that drops those RSTs and lets through our own crafted
// packets, which carry an SO_MARK. The table is owned by the netlink socket that made it (NFT_TABLE_F_OWNER), so
// the kernel deletes it when that socket closes: on Close, on exit, and on SIGKILL. Nothing is left behind.
//
// Watch is the check that the guard works: it sees local RSTs that escape anyway.
package guard
