// Package script runs packetdrill-style scripts against a remote, unmodified
// TCP stack: the packet lines of packetdrill, plus directives for what
// packetdrill does with system calls on the machine under test and tcpwalk
// cannot do on a remote host.
//
// The package is Linux-only, like the rest of tcpwalk (it sends through
// package probe's raw sockets).
//
// # Packet lines
//
// As in packetdrill, "<" is a segment we inject towards the stack under test
// and ">" one that stack must send:
//
//	0     < S  0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
//	+0    > S. 0:0(0) ack 1 <...>
//	+.1   < .  1:1(0) ack 1 win 257
//	+0    < P. 1:7(6) ack 1 win 257 "close\n"
//	+0~+1 > F. 1:1(0) ack 7
//
// Fields, in order: the time; the direction; the flags, letters of
// "S . F R P U E W" ('.' is ACK) or "-" for none; start:end(len), data bytes
// only (SYN and FIN do not count); then "ack N", "win N", "urg N"; then the
// options "<...>" in order (nop, eol, mss N, wscale N, sackOK,
// sack L:R..., TS val N ecr N); "<...>" skips the option check, and a line
// without options wants none. tcpwalk adds one thing: a quoted payload at
// the end ("GET / HTTP/1.0\r\n\r\n", Go escapes) whose length must match
// len. A "<" line without one sends len zero bytes; on a ">" line it is
// compared.
//
// Sequence numbers are relative, as in packetdrill: ours to our ISS (a
// random x), the remote's to its ISS. The remote's ISS is unknown until its
// SYN comes: the first "> S" line binds it (so "> S. 0:0(0) ack 1" makes
// the remote's SYN-ACK number 0). Before that, the remote's numbers (the seq
// of ">" lines, the ack of "<" lines) are absolute, which is how a closed
// port's "> R. 0:0(0) ack 1" reads. TS values the script wrote on a ">"
// line are mapped to the remote's real ones, so a "<" line can echo them
// (TS ecr), as packetdrill does.
//
// Where stacks may differ, ">" lines may say so (tcpwalk's extensions):
// "mss *" and "wscale *" take any value; "sackOK?", "TS? val N ecr N",
// "wscale? *" may be absent (the options are then matched as a set, NOPs
// aside); ">?" is a segment that may not come on its own (an ACK riding on
// the FIN of the next line): what comes instead is the next line's;
// "*:*(len)" takes any sequence number.
//
// A ">" line matches when the flags, the sequence numbers, the length and
// the options (a TS val excepted: it is the remote's clock) are what the line
// says, and ack, win, urg and payload when the line gives them.
//
// # Time
//
// "0.100" is absolute (seconds from the start of the script), "+0.1" after
// the previous event really happened, "*" whenever (up to Config.MaxWait),
// "a~b" and "+a~+b" a range; "*" and ranges only on ">" lines. An expected
// segment may come max(4 ms, 12.5% of the gap since the previous event) early
// or late (packetdrill's --tolerance_usecs=N and --tolerance_percent=P
// lines change both), and Config.Slack later still: packetdrill times a
// local stack, tcpwalk a remote one behind a path. Arrival times are the
// kernel's receive timestamps, so our own scheduling does not count. Between
// events, nothing may come from the remote: an
// unexpected segment fails the script, as in packetdrill, except a
// retransmission when the script says %allow-retransmissions.
//
// # Directives
//
// Settings, on their own line:
//
//	%port 7001               the remote port (HOST:PORT on the command line wins)
//	%summary TEXT            one line for reports
//	%allow-retransmissions   the remote may repeat a segment it sent before
//	%needs lab               the script needs the lab (control port, client):
//	                         skipped against other hosts
//	%optional TEXT           the script expects an optional behaviour (a
//	                         MAY): a stack that answers otherwise is skipped,
//	                         "not implemented (optional)"
//	%deviation NAME TEXT     the script expects what the RFC asks with a
//	                         SHOULD (or in words) and correct stacks are known
//	                         to leave out: a stack that answers otherwise has
//	                         the deviation NAME (verdict deviation), not a fail
//
// Events, optionally after a time (default +0):
//
//	%dial                    ask the lab's client to connect to us: the
//	                         script then waits for "> S 0:0(0) <...>"; the
//	                         line's time is when we ask (its SYN may come
//	                         before the lab confirms)
//	%send "TEXT"             data at our next sequence number, P., acking
//	                         what our last ACK acked (a request that makes
//	                         the remote app act: "close\n" to the lab's
//	                         control port, an HTTP request, ...)
//	%expect-state STATE      the remote is in STATE (one of the 11; RFC or
//	                         Linux spelling): the oracle (sock_diag) decides
//	                         when there is one, else the wire inference
//	%wait SECONDS            nothing may come for that long (a check)
//
// Wire inference: the runner moves a model of the remote's TCP with every
// segment, as RFC 9293 §3.10.7 would (an in-order FIN of ours in
// ESTABLISHED: CLOSE_WAIT; the ACK of its FIN in LAST_ACK: CLOSED ...). It
// names the remote's state on each recorded segment and each passing check.
// The oracle is read at %expect-state only, where the script says the
// remote has settled (at an expected segment the remote app may already
// have moved on); a disagreement with the wire is reported, never hidden.
//
// # packetdrill compatibility
//
// packetdrill's system-call lines, shell commands and options act on the
// machine under test, which tcpwalk does not control; each becomes what the
// remote must be or do (compat.go, run_compat.go): listen() a precondition
// (a listener at the target port, packetdrill's 8080 by default, which the
// first SYN checks), connect() the remote dialing us (Config.Lab's client
// with "dial PORT hold", or Config.DialTrigger), close(), shutdown() and
// write() the remote app's actions through the lab's out-of-band app
// control (AppController) or, without it, a close() or shutdown(SHUT_WR)
// in ESTABLISHED through Config.CloseTrigger, an in-band request whose
// server answers and closes, the script's sequence numbers offset past the
// request and the answer (trigger.go), getsockopt() and read() notes, sysctl lines and
// options assumptions (Script.Assumptions, walk.Result.Assumptions), sockstat
// counts and tcpi_state assertions %expect-state, #ifdef STANDARD branches
// kept (Defines). A line with no remote equivalent ends its script skipped
// with the line and the reason (SkipReason names it for counting). IP-level
// fields are refused with a message at file:line:col. Comments are //,
// /* */ and # (but #ifdef, #ifndef, #else and #endif).
//
// A script runs over the family of Config.Prober's remote, IPv4 or IPv6,
// with the same lines and the same verdicts (the engine encodes each
// family's header and pseudo-header checksum, RFC 8200 §8.1; the script's
// options go out as written). packetdrill's --ip_version (Script.IPVersion,
// Script.Family) pins a script to one family: against a target of the
// other it is skipped, saying which address to give (`tcpwalk run` against
// the dual-stack lab runs it against the lab's address of that family).
// ipv4-mapped-ipv6 is IPv4 on the wire.
//
// # Results
//
// One script is one connection and one walk.Result: Scenario is the
// script's name; each ">" line, %wait and %expect-state is a walk.Check with
// the line as written in Expected, what came in the same notation in
// Received, and "script FILE:LINE" in Rule. The script stops at the first
// check that does not pass, and ends with an exact RST so that the remote
// keeps nothing.
//
// # Lossy paths
//
// On a clean path a script is as strict as packetdrill's. On a path that
// loses or duplicates segments (Config.Lossy) the
// runner plays lines as TCP would: it sends the segments the remote has not
// confirmed again when an answer does not come or the oracle shows the
// kernel behind, passes over the remote's retransmissions and repeats, and
// calls a difference that loss explains inconclusive with the reason (see
// loss.go for what loss cannot explain, which still fails).
package script
