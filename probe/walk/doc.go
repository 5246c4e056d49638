// Package walk drives a remote, unmodified TCP stack through the states of
// RFC 9293 §3.3.2 with hand-made segments, and judges every reply against the
// rule that governs it.
//
// A Conn plays our end of one connection: the connection engine
// (tcpconn.Conn: both sides' sequence variables as seen on the wire, the
// negotiated options, the recorder of every segment in both directions, the
// tidy) with the walk's timing and bounded retransmissions of its own
// segments on top. A Session holds one Conn, its record and its judged
// checks. A scenario (handshake, passive-close, ...) is a function that
// drives one Session: each step that expects a transition (Session.ExpectStep,
// ExpectRemote, ExpectSilence, named by a Step) yields a Check with the
// expected and the received segment, the RFC section, a verdict, and, when
// an Oracle is available, the state the remote kernel itself reports.
// Package conform builds its checks on Sessions too.
//
// Expectations are written in RFC 9293's notation (§3.10)
// <SEQ=a><ACK=b><CTL=F,A>, where ISS is the remote's initial sequence
// number, x ours, and SND.NXT/RCV.NXT the remote's variables.
package walk
