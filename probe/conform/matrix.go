package conform

import (
	"context"
	"fmt"
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// Check is one cell of the matrix: an event sent to the remote in one state.
type Check struct {
	// ID is "STATE/event", e.g. "ESTABLISHED/rst-in-window"; it is the
	// Scenario of the check's walk.Result.
	ID    string
	State result.State
	Event string
	// Rule names the RFC section the expectation comes from.
	Rule string
	// Summary says what the RFC expects, in words.
	Summary string
	// Action is what the remote app must do to reach State (zero: none).
	Action walk.Action
	run    func(ctx context.Context, e *env) error
}

// Offsets of the probes' sequence and acknowledgment numbers from the
// remote's variables. A window is at least a few kilobytes on any stack
// that completed a handshake with our 64240-byte window, and no window is
// 2^30 bytes, so these land in and out of it with margin.
const (
	inWindow    = 100     // RCV.NXT+100: in the window, not exact
	outOfWindow = 1 << 30 // RCV.NXT+2^30: beyond any window; also below SND.UNA−MAX.SND.WND
	ackAhead    = 1000    // SND.NXT+1000: acknowledges data never sent
	synBehind   = 100000  // a SYN below RCV.NXT in TIME_WAIT
	synAhead    = 100000  // a SYN above RCV.NXT in TIME_WAIT
)

// The RFC sections the expectations come from (RFC 9293 unless named).
const (
	ruleRSTExact    = "RFC 9293 §3.10.7.4 (second: RST at RCV.NXT → CLOSED)"
	ruleRSTIn       = "RFC 9293 §3.10.7.4 (second: RST in the window, not at RCV.NXT → a challenge ACK with RFC 5961 §3.2, optional; without it a valid reset)"
	ruleRSTOut      = "RFC 9293 §3.10.7.4 (first: RST outside the window → drop it silently)"
	ruleRSTMinus1   = "RFC 9293 §3.10.7.4 (first: RST at RCV.NXT−1 is outside the window → drop it silently)"
	ruleSYN         = "RFC 9293 §3.10.7.4 (fourth: SYN in a synchronized state → a challenge ACK with RFC 5961 §4.2, optional; without it RFC 793's reset, CLOSED)"
	ruleACKAbove    = "RFC 9293 §3.10.7.4 (fifth: SEG.ACK > SND.NXT → send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, drop)"
	ruleACKBelow    = "RFC 9293 §3.10.7.4 (fifth: a duplicate ACK can be ignored); RFC 5961 §5.2 (optional: a challenge ACK when below SND.UNA − MAX.SND.WND)"
	ruleDataAfter   = "RFC 9293 §3.10.7.4 (seventh: text after the peer's FIN → ignore it)"
	ruleFINAgain    = "RFC 9293 §3.10.7.4 (eighth: a retransmitted FIN is acknowledged again; TIME-WAIT restarts 2MSL)"
	ruleTWSynHigher = "RFC 1122 §4.2.2.13 (MAY: TIME-WAIT accepts a SYN above RCV.NXT as a new connection, with an ISS above the old SND.NXT; RFC 6191)"
	ruleTWSynLower  = "RFC 9293 §3.10.7.4 (first: unacceptable segment → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)"
	ruleSRBadACK    = "RFC 9293 §3.10.7.4 (SYN-RECEIVED: unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>, state kept)"
	ruleSRSynAgain  = "RFC 9293 §3.10.7.4 (first: the retransmitted SYN is not acceptable → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)"
	ruleSRRST       = "RFC 9293 §3.10.7.4 (second: RST in SYN-RECEIVED from a passive OPEN → the connection is gone, LISTEN stays)"
	ruleOptMSS      = "RFC 9293 §3.7.1 (SHLD-5: send an MSS option in every SYN)"
	ruleOptSACK     = "RFC 2018 §2 (optional; SACK-permitted in a SYN,ACK only when the SYN offered it)"
	ruleOptTS       = "RFC 7323 §3.2 (optional; TSopt in a SYN,ACK only when the SYN had one, and then TSecr MUST echo its TSval)"
	ruleOptWS       = "RFC 7323 §2.2 (optional; window scale in a SYN,ACK only when the SYN had one)"
	ruleOptions     = "RFC 7323, RFC 2018 (options are optional; a SYN,ACK carries one only when the SYN had it; MSS SHOULD be sent, RFC 9293 §3.7.1)"
)

// Requirement levels (RFC 2119) a deviation departs from.
const (
	levelMUST   = "MUST"
	levelSHOULD = "SHOULD"
)

// The optional mechanisms (MAYs) checks see in use or not; the stack
// profile lists them.
const (
	OptRFC5961RST = "RFC 5961 §3.2 challenge ACK to an in-window RST"
	OptRFC5961SYN = "RFC 5961 §4.2 challenge ACK to a SYN"
	OptRFC5961ACK = "RFC 5961 §5.2 challenge ACK to an old ACK"
	OptRFC1337    = "RFC 1337 TIME_WAIT protection (RSTs ignored)"
	OptSACK       = "SACK (RFC 2018)"
	OptTS         = "timestamps (RFC 7323)"
	OptWS         = "window scale (RFC 7323)"
	OptTWReopen   = "TIME_WAIT reopened by a new SYN (RFC 1122 §4.2.2.13, RFC 6191)"
)

// Stacks a deviation has been seen on.
var seenLinux = []string{"Linux"}

// anyState keys the choices and deviations of an event in every state.
const anyState = result.NoState

// tcb is what a check knows of the remote's connection once it is in a
// state: the remote's SND.NXT and RCV.NXT (spec notation).
type tcb struct {
	state          result.State
	sndNxt, rcvNxt tcpconn.Seq
	// sndUna is the remote's SND.UNA: what we have acknowledged.
	sndUna tcpconn.Seq
	// kept is the state a surviving connection is in after the event and
	// the confirmation (SYN_RCVD is confirmed by completing the handshake:
	// ESTABLISHED); usually state.
	kept result.State
	// synRcvd: confirm by the final ACK of the handshake instead of KA1.
	synRcvd bool
	// remoteFIN: the remote has sent its FIN (a FIN it sends later is news).
	remoteFIN bool
}

// outcome is one acceptable result of an event: a reply (one of replies,
// or nothing when silence) and what becomes of the connection.
type outcome struct {
	replies []func(t tcb) walk.Want
	silence bool
	closed  bool
}

// challengeACK is <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, the answer to an
// unacceptable segment and RFC 5961's challenge ACK alike.
func challengeACK(t tcb) walk.Want {
	return walk.Want{Flags: craft.FlagACK, Seq: t.sndNxt, Ack: t.rcvNxt}
}

var (
	silentClosed = outcome{silence: true, closed: true}
	silentKept   = outcome{silence: true}
	ackKept      = outcome{replies: []func(tcb) walk.Want{challengeACK}}
	ackOrNothing = outcome{replies: []func(tcb) walk.Want{challengeACK}, silence: true}
)

// describe writes o in the spec's notation.
func (o outcome) describe(t tcb) string {
	var alts []string
	for _, w := range o.replies {
		alts = append(alts, w(t).String())
	}
	if o.silence {
		alts = append(alts, "no reply")
	}
	end := "connection kept"
	if o.closed {
		end = result.Closed.String()
	}
	return strings.Join(alts, " or ") + ", then " + end
}

// matches reports whether what came is this outcome.
func (o outcome) matches(t tcb, reply *walk.Reply, end endState) bool {
	if (end == endClosed) != o.closed || (end != endClosed && end != endKept) {
		return false
	}
	if reply == nil {
		return o.silence
	}
	for _, w := range o.replies {
		if w(t).Match(reply.Seg, reply.Flags) {
			return true
		}
	}
	return false
}

// closesWithReply reports whether an acceptable outcome of the event in
// state (the RFC's, another the RFC allows, or a known deviation's) closes
// the connection with an answer: then "closed, no answer seen" may be that
// outcome with its answer lost.
func (ev event) closesWithReply(state result.State) bool {
	if ev.rfc.closed && len(ev.rfc.replies) > 0 {
		return true
	}
	for _, c := range ev.choices(state) {
		if c.outcome.closed && len(c.outcome.replies) > 0 {
			return true
		}
	}
	for _, d := range ev.deviations(state) {
		if d.outcome.closed && len(d.outcome.replies) > 0 {
			return true
		}
	}
	return false
}

// choice is an outcome the RFC allows besides an event's first one: what a
// stack with (or without) an optional mechanism does.
type choice struct {
	outcome outcome
	// optional is the mechanism the outcome shows in use (has) or not.
	optional string
	has      bool
	// note says what the outcome means, for the report.
	note string
}

// deviation is a documented behaviour that differs from the RFC, named by
// what it does (never by a stack).
type deviation struct {
	name string
	// level is the keyword departed from: SHOULD (verdict deviation) or
	// MUST (fail).
	level string
	// seenOn lists the stacks it has been seen on.
	seenOn []string
	// why says where the behaviour comes from (kernel source, sysctl).
	why     string
	outcome outcome
}

// event is one column of the matrix.
type event struct {
	name  string
	what  string // for the check's name
	rule  string
	probe func(t tcb) string
	send  func(c *walk.Conn, t tcb) error
	rfc   outcome
	// optional, when set, is the optional mechanism the rfc outcome shows
	// in use (rfcHas) or not.
	optional string
	rfcHas   bool
	// rfcOptionalIn names, by state, an optional mechanism the rfc
	// outcome shows absent there (an exact RST that closes TIME_WAIT:
	// no RFC 1337 protection).
	rfcOptionalIn map[result.State]string
	// alts are the other outcomes the RFC allows, by state (anyState: any).
	alts map[result.State][]choice
	// devs are the deviations known for this event, by state (anyState: any).
	devs map[result.State][]deviation
	// copyAfterClose, when set, is the answer a second copy of the event
	// draws once the first copy closed the connection. On a path seen
	// duplicating segments it makes the check inconclusive instead of
	// failed: the answer to the first copy may have been lost.
	copyAfterClose func(t tcb) walk.Want
}

// anyRST is a reset with any numbers, with or without ACK: the format of a
// reset (§3.10.7.1) is judged by the CLOSED checks, not here.
func anyRST(tcb) walk.Want {
	return walk.Want{Flags: craft.FlagRST, AnySeq: true, AnyAck: true}
}

func anyRSTACK(tcb) walk.Want {
	return walk.Want{Flags: craft.FlagRST | craft.FlagACK, AnySeq: true, AnyAck: true}
}

var (
	// resetClosed is RFC 793's answer to an in-window SYN, which RFC 9293
	// keeps for stacks without RFC 5961: a reset, CLOSED.
	resetClosed = outcome{replies: []func(tcb) walk.Want{anyRST, anyRSTACK}, closed: true}

	evRSTExact = event{name: "rst-exact", what: "exact RST (RSTx) → no reply, CLOSED", rule: ruleRSTExact,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=RST> (RCV.NXT)", t.rcvNxt) },
		send:  func(c *walk.Conn, t tcb) error { return c.SendRaw(craft.FlagRST, t.rcvNxt, 0, nil, "RSTx") },
		rfc:   silentClosed, rfcOptionalIn: map[result.State]string{result.TimeWait: OptRFC1337},
		alts: map[result.State][]choice{
			result.TimeWait: {{outcome: silentKept, optional: OptRFC1337, has: true,
				note: "RFC 1337 §3 (F1) drops RSTs in TIME-WAIT (Linux: net.ipv4.tcp_rfc1337=1)"}},
		}}
	evRSTIn = event{name: "rst-in-window", what: "RST in window (RSTin) → challenge ACK, or a valid reset", rule: ruleRSTIn,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=RST> (RCV.NXT+%d)", t.rcvNxt+inWindow, inWindow) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagRST, t.rcvNxt+inWindow, 0, nil, "RSTin")
		},
		rfc: ackKept, optional: OptRFC5961RST, rfcHas: true,
		alts: map[result.State][]choice{
			anyState: {{outcome: silentClosed, optional: OptRFC5961RST,
				note: "not implemented (optional): without RFC 5961 an in-window RST is a valid reset (RFC 9293 §3.10.7.4, second)"}},
			// Neither challenged nor taken: TIME-WAIT drops it. Not RFC
			// 1337's protection, which the exact RST shows.
			result.TimeWait: {{outcome: silentKept,
				note: "the RST is dropped in TIME-WAIT, without a challenge ACK (Linux's TIME_WAIT drops one not at RCV.NXT)"}},
		}}
	evRSTOut = event{name: "rst-out-of-window", what: "RST out of window → dropped, no reply", rule: ruleRSTOut,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=RST> (RCV.NXT+2^30)", t.rcvNxt+outOfWindow) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagRST, t.rcvNxt+outOfWindow, 0, nil, "RST out of window")
		},
		rfc: silentKept,
		devs: map[result.State][]deviation{
			result.FinWait2: {{name: "acks-out-of-window-rst", level: levelSHOULD, seenOn: seenLinux,
				why:     "an unacceptable segment draws an ACK \"unless the RST bit is set\" (RFC 9293 §3.10.7.4, first); Linux's orphaned FIN_WAIT_2, a TIME_WAIT mini-socket, answers a RST too (tcp_timewait_state_process)",
				outcome: ackKept}},
		}}
	evRSTMinus1 = event{name: "rst-rcv-nxt-minus-1", what: "RST at RCV.NXT−1 → dropped, no reply", rule: ruleRSTMinus1,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=RST> (RCV.NXT−1)", t.rcvNxt-1) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagRST, t.rcvNxt-1, 0, nil, "RST at RCV.NXT-1")
		},
		rfc: silentKept,
		devs: map[result.State][]deviation{
			anyState: {{name: "rst-at-rcv-nxt-minus-1-accepted", level: levelSHOULD, seenOn: seenLinux,
				why:     "a RST is valid only in the window (RFC 9293 §3.10.7.4, second); Linux (tcp_reset_check) accepts one at RCV.NXT−1 after the peer's FIN, as peers that reset right after their FIN use that number",
				outcome: silentClosed}},
		}}
	evSYN = event{name: "syn", what: "SYN (SYNx) → challenge ACK, or a reset", rule: ruleSYN,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=SYN> (RCV.NXT+%d)", t.rcvNxt+inWindow, inWindow) },
		send:  func(c *walk.Conn, t tcb) error { return c.SendRaw(craft.FlagSYN, t.rcvNxt+inWindow, 0, nil, "SYNx") },
		rfc:   ackKept, optional: OptRFC5961SYN, rfcHas: true,
		alts: map[result.State][]choice{
			anyState: {{outcome: resetClosed, optional: OptRFC5961SYN,
				note: "not implemented (optional): without RFC 5961 an in-window SYN is answered with a reset and closes the connection (RFC 9293 §3.10.7.4, fourth)"}},
		},
		// A stack that closes on a SYN answers a second copy as LISTEN
		// does: a new connection.
		copyAfterClose: func(t tcb) walk.Want {
			return walk.Want{Flags: craft.FlagSYN | craft.FlagACK, AnySeq: true, Ack: t.rcvNxt + inWindow + 1}
		}}
	evACKAbove = event{name: "ack-above-snd-nxt", what: "ACK above SND.NXT → ACK, dropped", rule: ruleACKAbove,
		probe: func(t tcb) string {
			return fmt.Sprintf("<SEQ=%d><ACK=%d><CTL=ACK> (SND.NXT+%d)", t.rcvNxt, t.sndNxt+ackAhead, ackAhead)
		},
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagACK, t.rcvNxt, t.sndNxt+ackAhead, nil, "ACK above SND.NXT")
		},
		rfc: ackKept,
		devs: map[result.State][]deviation{
			anyState: {{name: "silent-on-ack-above-snd-nxt", level: levelSHOULD, seenOn: []string{"Linux before 6.x", "Linux (orphaned FIN_WAIT_2)", "gVisor netstack (ESTABLISHED)"},
				why:     "RFC 9293 §3.10.7.4 (fifth) sends an ACK; Linux before 6.x (tcp_ack: SKB_DROP_REASON_TCP_ACK_UNSENT_DATA), its orphaned FIN_WAIT_2 (a TIME_WAIT mini-socket) and gVisor's netstack in ESTABLISHED drop it without one",
				outcome: silentKept}},
		}}
	evACKBelow = event{name: "ack-below-snd-una", what: "ACK far below SND.UNA → ignored, or a challenge ACK", rule: ruleACKBelow,
		probe: func(t tcb) string {
			return fmt.Sprintf("<SEQ=%d><ACK=%d><CTL=ACK> (SND.UNA−2^30)", t.rcvNxt, t.sndUna-outOfWindow)
		},
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagACK, t.rcvNxt, t.sndUna-outOfWindow, nil, "ACK below SND.UNA")
		},
		rfc: ackKept, optional: OptRFC5961ACK, rfcHas: true,
		alts: map[result.State][]choice{
			anyState: {{outcome: silentKept, optional: OptRFC5961ACK,
				note: "not implemented (optional): a duplicate ACK can be ignored (RFC 9293 §3.10.7.4, fifth)"}},
		}}
	// dataAfterCloseRST notes the RST that data after CLOSE draws.
	dataAfterCloseRST = "a RST: new data after the application's CLOSE SHOULD be reset to show it was lost (RFC 1122 §4.2.2.13)"
	evDataAfterFIN    = event{name: "data-after-fin", what: "data after our FIN → ignored", rule: ruleDataAfter,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=PSH,ACK> len %d", t.rcvNxt, len(afterFIN)) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagPSH|craft.FlagACK, t.rcvNxt, c.RcvNxt, afterFIN, "data after FIN")
		},
		rfc: ackOrNothing,
		// In CLOSING and LAST_ACK the remote app has called CLOSE: new
		// data then SHOULD draw a RST to show that it was lost (RFC 1122
		// §4.2.2.13, RFC 9293 §3.6.1), which ends the connection; RFC
		// 9293 §3.10.7.4 (seventh) ignores it. Both are the RFC's.
		alts: map[result.State][]choice{
			result.Closing: {{outcome: resetClosed, note: dataAfterCloseRST}},
			result.LastAck: {{outcome: resetClosed, note: dataAfterCloseRST}},
		}}
	evFINAgain = event{name: "fin-retransmit", what: "our FIN again → acknowledged again", rule: ruleFINAgain,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=FIN,ACK> (our FIN)", t.rcvNxt-1) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagFIN|craft.FlagACK, t.rcvNxt-1, c.RcvNxt, nil, "retransmission of our FIN")
		},
		rfc: ackKept}
	evTWSynLower = event{name: "syn-lower-seq", what: "SYN below RCV.NXT → ACK, TIME_WAIT kept", rule: ruleTWSynLower,
		probe: func(t tcb) string {
			return fmt.Sprintf("<SEQ=%d><CTL=SYN> (RCV.NXT−%d)", t.rcvNxt-synBehind, synBehind)
		},
		// Without TSopt, as the rule's test of sequence numbers needs: with
		// it, RFC 6191 §2 lets TIME-WAIT reopen on a newer TSval alone
		// (Linux does), whatever the sequence number.
		send: func(c *walk.Conn, t tcb) error {
			return c.SendSYNWith(t.rcvNxt-synBehind, nil, "SYN below RCV.NXT")
		},
		rfc: ackKept,
		devs: map[result.State][]deviation{
			result.TimeWait: {{name: "silent-on-old-syn-in-time-wait", level: levelSHOULD, seenOn: []string{"gVisor netstack"},
				why:     "RFC 9293 §3.10.7.4 (first) answers an unacceptable segment, here a SYN below RCV.NXT, with an ACK (\"should\"); the stack drops it without one, and TIME_WAIT is kept",
				outcome: silentKept}},
		}}

	// SYN_RCVD: SND.NXT = ISS+1, RCV.NXT = x+1.
	evSRBadACK = event{name: "bad-ack", what: "bad ACK → RST <SEQ=SEG.ACK>, state kept", rule: ruleSRBadACK,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><ACK=%d><CTL=ACK> (ISS+5)", t.rcvNxt, t.sndNxt+4) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagACK, t.rcvNxt, t.sndNxt+4, nil, "bad ACK")
		},
		rfc: outcome{replies: []func(tcb) walk.Want{func(t tcb) walk.Want {
			return walk.Want{Flags: craft.FlagRST, Seq: t.sndNxt + 4}
		}}}}
	evSRSynAgain = event{name: "syn-retransmit", what: "retransmitted SYN → ACK, state kept", rule: ruleSRSynAgain,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=SYN> (our SYN again)", t.rcvNxt-1) },
		send: func(c *walk.Conn, t tcb) error {
			return c.SendRaw(craft.FlagSYN, t.rcvNxt-1, 0, nil, "retransmission of our SYN")
		},
		rfc: ackKept,
		devs: map[result.State][]deviation{
			result.SynRcvd: {{name: "synack-on-retransmitted-syn", level: levelSHOULD, seenOn: seenLinux,
				why: "an unacceptable segment draws an ACK (RFC 9293 §3.10.7.4, first); Linux (tcp_check_req) answers a retransmitted SYN with its SYN,ACK again (at most one per 500 ms), as if the first were lost",
				outcome: outcome{replies: []func(tcb) walk.Want{func(t tcb) walk.Want {
					return walk.Want{Flags: craft.FlagSYN | craft.FlagACK, Seq: t.sndNxt - 1, Ack: t.rcvNxt}
				}}}}},
		}}
	evSRRSTExact = event{name: "rst-exact", what: "exact RST → no reply, the connection gone", rule: ruleSRRST,
		probe: func(t tcb) string { return fmt.Sprintf("<SEQ=%d><CTL=RST> (RCV.NXT)", t.rcvNxt) },
		send:  func(c *walk.Conn, t tcb) error { return c.SendRaw(craft.FlagRST, t.rcvNxt, 0, nil, "RSTx") },
		rfc:   silentClosed}
)

// afterFIN is the data sent after our FIN.
var afterFIN = []byte("tcpwalk")

// deviations returns the known deviations of ev in state.
func (ev event) deviations(state result.State) []deviation {
	return append(append([]deviation(nil), ev.devs[state]...), ev.devs[anyState]...)
}

// choices returns the outcomes besides ev.rfc the RFC allows in state.
func (ev event) choices(state result.State) []choice {
	return append(append([]choice(nil), ev.alts[state]...), ev.alts[anyState]...)
}

// expected writes every outcome the RFC allows for ev in state.
func (ev event) expected(state result.State, t tcb) string {
	out := ev.rfc.describe(t)
	for _, c := range ev.choices(state) {
		out += "; or " + c.outcome.describe(t)
	}
	return out
}

// stateDef is one row of the matrix: how to reach the state and which
// events to send there.
type stateDef struct {
	name   result.State
	action walk.Action
	reach  func(ctx context.Context, e *env) (tcb, error)
	events []event
}

// rows is the matrix, in RFC 9293 §3.3.2 order of the states.
func rows() []stateDef {
	common := []event{evRSTExact, evRSTIn, evRSTOut, evSYN, evACKAbove, evACKBelow}
	afterOurFIN := append(append([]event(nil), common...), evDataAfterFIN, evFINAgain)
	return []stateDef{
		{name: result.SynRcvd, reach: reachSynRcvd, events: []event{evSRRSTExact, evRSTOut, evSRBadACK, evSRSynAgain}},
		{name: result.Established, reach: reachEstablished, events: common},
		{name: result.FinWait1, action: walk.CloseFirst, reach: reachFinWait1, events: common},
		{name: result.FinWait2, action: walk.CloseFirst, reach: reachFinWait2, events: common},
		{name: result.CloseWait, reach: reachCloseWait, events: append(afterOurFIN, evRSTMinus1)},
		{name: result.Closing, action: walk.CloseFirst, reach: reachClosing, events: append(afterOurFIN, evRSTMinus1)},
		{name: result.LastAck, action: walk.CloseAfterFIN, reach: reachLastAck, events: append(afterOurFIN, evRSTMinus1)},
		{name: result.TimeWait, action: walk.CloseFirst, reach: reachTimeWait,
			events: []event{evRSTExact, evRSTIn, evRSTOut, evDataAfterFIN, evFINAgain, evTWSynLower}},
	}
}

// Lookup finds a check by ID.
func Lookup(id string) (Check, bool) {
	for _, c := range Checks() {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Checks lists the matrix in the order Run reports it.
func Checks() []Check {
	var out []Check
	for _, st := range rows() {
		for _, ev := range st.events {
			out = append(out, Check{ID: st.name.String() + "/" + ev.name, State: st.name, Event: ev.name, Rule: ev.rule,
				Summary: st.name.String() + ": " + ev.what, Action: st.action, run: eventRun(st, ev)})
		}
		if st.name == result.TimeWait {
			out = append(out, Check{ID: "TIME_WAIT/syn-higher-seq", State: st.name, Event: "syn-higher-seq", Rule: ruleTWSynHigher,
				Summary: "TIME_WAIT: SYN above RCV.NXT → SYN,ACK of a new connection, ISS above the old SND.NXT (or refused: an ACK or a RST)",
				Action:  st.action, run: timeWaitSynHigher})
		}
	}
	out = append(out,
		Check{ID: "LISTEN/options-offered", State: result.Listen, Event: "options-offered", Rule: ruleOptions,
			Summary: "LISTEN: a SYN offering MSS, SACK-permitted, timestamps and window scale gets MSS and any of the others the stack implements", run: optionsOffered},
		Check{ID: "LISTEN/options-not-offered", State: result.Listen, Event: "options-not-offered", Rule: ruleOptions,
			Summary: "LISTEN: a SYN without options gets MSS only", run: optionsNotOffered},
	)
	return out
}
