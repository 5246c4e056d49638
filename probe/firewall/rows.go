package firewall

import (
	"github.com/tcpwalk/tcpwalk/craft"
)

// seqs are the sequence variables of one connection (RFC 9293 §3.3.1), as
// our side sees them: ours (ISS, SND.NXT) and the target's (IRS, RCV.NXT).
type seqs struct {
	iss, sndNxt, irs, rcvNxt uint32
}

// far is an offset that puts a number outside any window (RFC 9293 §3.4:
// windows are below 2^30 even with window scaling, RFC 7323 §2.3).
const far = 1 << 30

// portKind says which target port a row's connection uses.
type portKind uint8

const (
	_           portKind = iota
	portMain             // Config.Port: listening and allowed
	portBlocked          // Config.BlockedPort: refused by a filtering policy
	portClose            // Config.ClosePort: its app closes first
)

// row is one probe of the matrix.
type row struct {
	state State
	name  string
	sent  string // the probe in the spec's notation
	port  portKind
	// answers: an RFC 9293 TCP always answers this probe, so silence
	// without a capture means it did not arrive.
	answers bool
	// resetFirst: send an exact RST before the probe.
	resetFirst bool
	// synOptions: the probe carries the options Linux puts on a SYN, which
	// a middlebox may rewrite.
	synOptions bool
	build      func(s seqs) craft.Segment
	// wants are the expectations under PolicyOpen, PolicyStateless and
	// PolicyStateful.
	wants [3]Want
	note  string
}

func (r *row) want(p Policy) Want {
	switch p {
	case PolicyOpen:
		return r.wants[0]
	case PolicyStateless:
		return r.wants[1]
	case PolicyStateful:
		return r.wants[2]
	}
	return Any
}

var (
	allPass       = [3]Want{Pass, Pass, Pass}
	statefulBlock = [3]Want{Pass, Pass, Block}
)

// rows is the matrix, state by state. Each row runs on its own connection,
// so a probe never meets a socket's rate limit for challenge ACKs
// (tcp_invalid_ratelimit) or a state another probe left behind.
var rows = []row{
	{state: StateNone, name: "SYN with options", sent: "<SEQ=x><CTL=SYN> mss 1460,sackOK,TS,wscale 7", port: portMain,
		answers: true, synOptions: true, wants: allPass,
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.iss, Flags: craft.FlagSYN} }},
	{state: StateNone, name: "SYN to a blocked port", sent: "<SEQ=x><CTL=SYN>", port: portBlocked,
		answers: true, wants: [3]Want{Pass, Block, Block},
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.iss, Flags: craft.FlagSYN} }},
	{state: StateNone, name: "unsolicited SYN-ACK", sent: "<SEQ=x><ACK=y><CTL=SYN,ACK>", port: portMain,
		answers: true, wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.iss, Ack: s.iss ^ 0x5a5a5a5a, Flags: craft.FlagSYN | craft.FlagACK}
		}},
	{state: StateNone, name: "ACK without a connection", sent: "<SEQ=x><ACK=y><CTL=ACK>", port: portMain,
		answers: true, wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.iss, Ack: s.iss ^ 0x5a5a5a5a, Flags: craft.FlagACK}
		}},
	{state: StateNone, name: "FIN scan", sent: "<SEQ=x><CTL=FIN>", port: portMain, wants: statefulBlock,
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.iss, Flags: craft.FlagFIN} }},
	{state: StateNone, name: "NULL scan", sent: "<SEQ=x><CTL=none>", port: portMain, wants: statefulBlock,
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.iss} }},
	{state: StateNone, name: "Xmas scan", sent: "<SEQ=x><CTL=FIN,PSH,URG>", port: portMain, wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.iss, Flags: craft.FlagFIN | craft.FlagPSH | craft.FlagURG}
		}},

	{state: StateHandshaking, name: "SYN retransmitted", sent: "<SEQ=x><CTL=SYN> mss 1460, again", port: portMain,
		answers: true, wants: allPass,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.iss, Flags: craft.FlagSYN, Options: []craft.Option{craft.MSS(1460)}}
		}},
	{state: StateHandshaking, name: "ACK of an unsent number", sent: "<SEQ=x+1><ACK=ISS+1+2^30><CTL=ACK>", port: portMain,
		answers: true, wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt, Ack: s.rcvNxt + far, Flags: craft.FlagACK}
		}},

	{state: StateEstablished, name: "data in window", sent: "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=PSH,ACK> 1 byte", port: portMain,
		answers: true, wants: allPass,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt, Ack: s.rcvNxt, Flags: craft.FlagPSH | craft.FlagACK, Payload: []byte("x")}
		}},
	{state: StateEstablished, name: "data out of window", sent: "<SEQ=SND.NXT+2^30><ACK=RCV.NXT><CTL=PSH,ACK> 1 byte", port: portMain,
		answers: true, wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt + far, Ack: s.rcvNxt, Flags: craft.FlagPSH | craft.FlagACK, Payload: []byte("x")}
		}},
	{state: StateEstablished, name: "ACK out of window", sent: "<SEQ=SND.NXT><ACK=RCV.NXT+2^30><CTL=ACK>", port: portMain,
		wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt, Ack: s.rcvNxt + far, Flags: craft.FlagACK}
		}},
	{state: StateEstablished, name: "RST in window, not exact", sent: "<SEQ=SND.NXT+100><CTL=RST>", port: portMain,
		answers: true, wants: allPass,
		note:  "RFC 5961 §3.2: the target answers with a challenge ACK and keeps the connection",
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.sndNxt + 100, Flags: craft.FlagRST} }},
	{state: StateEstablished, name: "exact RST", sent: "<SEQ=SND.NXT><CTL=RST>", port: portMain, wants: allPass,
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.sndNxt, Flags: craft.FlagRST} }},
	{state: StateEstablished, name: "data after RST", sent: "<SEQ=SND.NXT><CTL=RST>, then <SEQ=SND.NXT><ACK=RCV.NXT><CTL=PSH,ACK>",
		port: portMain, answers: true, resetFirst: true, wants: [3]Want{Pass, Pass, Any},
		note: "conntrack keeps a reset connection for nf_conntrack_tcp_timeout_close (10 s) and lets in-window segments through",
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt, Ack: s.rcvNxt, Flags: craft.FlagPSH | craft.FlagACK, Payload: []byte("x")}
		}},

	{state: StateClosing, name: "keep-alive", sent: "<SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK> 1 byte", port: portMain,
		answers: true, wants: allPass,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt - 1, Ack: s.rcvNxt, Flags: craft.FlagACK, Payload: []byte{0}}
		}},
	{state: StateClosing, name: "ACK out of window", sent: "<SEQ=SND.NXT><ACK=RCV.NXT+2^30><CTL=ACK>", port: portMain,
		wants: statefulBlock,
		build: func(s seqs) craft.Segment {
			return craft.Segment{Seq: s.sndNxt, Ack: s.rcvNxt + far, Flags: craft.FlagACK}
		}},

	{state: StateTimeWait, name: "SYN to the TIME_WAIT 4-tuple", sent: "<SEQ=SND.NXT+2^16><CTL=SYN>", port: portClose,
		answers: true, wants: allPass,
		note:  "RFC 9293 §3.10.7.4 / RFC 6191: a SYN above RCV.NXT may reopen a TIME_WAIT connection",
		build: func(s seqs) craft.Segment { return craft.Segment{Seq: s.sndNxt + 1<<16, Flags: craft.FlagSYN} }},
}

// lookupRow finds the row of probe name in state.
func lookupRow(state State, name string) *row {
	for i := range rows {
		if rows[i].state == state && rows[i].name == name {
			return &rows[i]
		}
	}
	return nil
}
