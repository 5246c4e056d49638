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
// Who answered: the target's own TTL is learned first, from the ACK of a
// byte of data on a connection that reached it (see profile). A SYN-ACK with
// another TTL came from a middlebox nearer to us (hopOf names its hop); the
// rest of the evidence (a zero window opened by a window update, the
// timestamp clock, the IP ID, the target's own ISS in the capture, a
// TTL-limited SYN that runs out at the hop) says what it is. A middlebox that
// completes the handshake and then lets the connection reach the target is
// a SYN proxy: the SYN rows are Proxied. Any other answer in the target's
// name from another TTL is AnsweredByMiddlebox, or Rejected for a RST.
//
// Retransmissions are not replies: a segment that repeats one the target
// sent before the probe, or lies below RCV.NXT, was sent by its timer (or
// copied by the path) and decides nothing (isRetransmission).
//
// Silence is weighed against loss: a probe that met silence is sent again
// (spaced beyond the target's rate limit for challenge ACKs); without a
// capture, a drop inferred from silence on a path whose setup lost segments
// stands only when loss cannot explain so many unanswered copies, and is
// Undecided otherwise. Rows whose outcome follows from a known ruleset
// mistake carry an Explanation with the fix (explain).
//
// Path changes are also found without a capture, from TTL-limited copies of
// a SYN: each router where the TTL runs out quotes the segment as it arrived
// in its ICMP time-exceeded message (RFC 792; Linux quotes up to 576 bytes,
// RFC 1812 §4.3.2.3), so the hop whose quote first differs from the one
// before names the router that changed it (see Trace).
//
// The package is Linux-only, like the rest of tcpwalk.
package firewall
