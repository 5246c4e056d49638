// Package firewall tests what a path of middleboxes does to crafted TCP
// segments: for each connection state (none, handshaking, established,
// closing, time-wait) it sends the segments a firewall must judge
// (unsolicited SYN-ACK and ACK, FIN/NULL/Xmas scans, out-of-window data and
// ACKs, in-window and exact RSTs, data after a RST, a SYN to a TIME_WAIT
// 4-tuple, a SYN with options to rewrite) and decides, per probe, whether it
// was delivered, rewritten, dropped, or rejected and by whom.
//
// Delivery is decided by a capture on the target's side when one is
// available (a namespace of the lab, see package lab): it sees the segment
// arrive, with every header field a middlebox changed, and sees whether the
// target answered even when the path then drops the answer. Without a
// capture, the answers that come back decide: a RST whose TTL differs from
// the target's own segments, or an ICMP error, was sent by the path.
//
// Path changes are also found without a capture, from TTL-limited copies of
// a SYN: each router where the TTL runs out quotes the segment as it arrived
// in its ICMP time-exceeded message (RFC 792; Linux quotes up to 576 bytes,
// RFC 1812 §4.3.2.3), so the hop whose quote first differs from the one
// before names the router that changed it (see Trace).
//
// The package is Linux-only, like the rest of tcpwalk.
package firewall
