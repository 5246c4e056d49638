// Package walk drives a remote, unmodified TCP stack through the states of
// RFC 9293 §3.3.2 with hand-made segments, and judges every reply against the
// rule that governs it.
//
// A Conn plays our end of one connection: it keeps both sides' sequence
// variables as seen on the wire, sends segments built from them, retransmits
// its own segments a bounded number of times, and records every segment in
// both directions. A scenario (handshake, passive-close, ...) is a list of
// steps; each step that expects a transition yields a Check with the expected
// and the received segment, the RFC section, a verdict, and, when an Oracle
// is available, the state the remote kernel itself reports.
//
// The expectations come from ../shared/spec/tcp-states.md: notation
// <SEQ=a><ACK=b><CTL=F,A>, where ISS is the remote's initial sequence number,
// x ours, and SND.NXT/RCV.NXT the remote's variables.
package walk
