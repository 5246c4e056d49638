// Package tcpconn is tcpwalk's one TCP connection engine: our end of a
// connection to an unmodified remote stack, played with raw segments on a
// probe.Flow. Every command that holds a connection (walks, conformance
// checks, scripts, firewall runs, the tidy of a send run) goes through it,
// so the rules below are written once.
//
// It owns:
//   - the sequence state (TCB, RFC 9293 §3.3.1) in a modular type, Seq;
//   - the options both SYNs negotiated (MSS, window scale, SACK-permitted,
//     timestamps) and the SYN that offers them, chosen per connection;
//   - a conformant sender: once timestamps are negotiated every non-RST
//     segment carries TSopt, TSval from a 1 ms clock and TSecr = TS.Recent
//     (RFC 7323 §3.2, §4.3, §5.4); windows scaled as negotiated (§2.3); no
//     data above the remote's MSS (RFC 9293 §3.7.1); a retransmission is
//     the same segment again, only its TSval moved;
//   - one recorder with one rule for what is a retransmission, a repeat,
//     and a copy the path made ([Recorder.Received]);
//   - one tidy ([Conn.Tidy]): the exact RST that leaves nothing behind.
//
// A caller may still send what a conformant sender never would (an ACK
// 2^30 old, a RST in the window, a script's own options): the numbers of
// SendRaw are the caller's, and SendVerbatim sends a segment as given.
//
// The package is Linux-only, like package probe under it.
package tcpconn
