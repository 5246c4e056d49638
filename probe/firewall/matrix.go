package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// State is the state of the connection a probe is sent on, as both the
// target and a stateful firewall on the path track it.
type State string

// Connection states of the matrix, in order.
const (
	// StateNone: no connection; each probe uses a fresh 4-tuple.
	StateNone State = "none"
	// StateHandshaking: our SYN was answered, we have not ACKed (the
	// target is in SYN_RCVD).
	StateHandshaking State = "handshaking"
	// StateEstablished: the three-way handshake is done.
	StateEstablished State = "established"
	// StateClosing: our FIN was acknowledged; the target, whose app has not
	// closed, is in CLOSE_WAIT.
	StateClosing State = "closing"
	// StateTimeWait: the target closed first and got our FIN: it is in
	// TIME_WAIT.
	StateTimeWait State = "time-wait"
)

// States lists the matrix's states in order.
var States = []State{StateNone, StateHandshaking, StateEstablished, StateClosing, StateTimeWait}

// Outcome is what became of one probe on the path.
type Outcome string

// Outcomes.
const (
	// Delivered: the probe reached the target unchanged (seen by the
	// capture), or, without a capture, the target answered it.
	Delivered Outcome = "delivered"
	// Rewritten: the probe reached the target with header fields changed.
	Rewritten Outcome = "rewritten"
	// Dropped: the probe did not reach the target and nothing answered.
	// Without a capture this is inferred for probes a TCP always answers.
	Dropped Outcome = "dropped"
	// Rejected: the path answered in the target's stead, with an ICMP
	// error or a RST that the target did not send.
	Rejected Outcome = "rejected"
	// NoAnswer: without a capture, nothing came back for a probe the target
	// may silently ignore: dropped on the path or ignored by the target.
	NoAnswer Outcome = "no-answer"
	// NotRun: the connection could not be brought into the state (Reason
	// says why), so the probe was not sent.
	NotRun Outcome = "not-run"
	// Proxied: a middlebox completed the handshake in the target's name
	// (a SYN proxy: its SYN-ACK does not come from the target) and reaches
	// the target only once the handshake is done, translating sequence
	// numbers from then on. The path lets the connection through.
	Proxied Outcome = "proxied"
	// AnsweredByMiddlebox: something on the path answered the probe in the
	// target's name with a segment that is not a RST (Detail gives the
	// evidence and the hop); the probe did not reach the target.
	AnsweredByMiddlebox Outcome = "answered by a middlebox"
	// Undecided: what was seen cannot decide between delivered and refused
	// (Detail says why, e.g. silence on a path that lost segments).
	Undecided Outcome = "undecided"
	// Interrupted: the user stopped tcpwalk (SIGINT, SIGTERM) before the
	// probe's outcome was known.
	Interrupted Outcome = "interrupted"
)

// Outcomes lists every outcome in the order a summary counts them.
func Outcomes() []Outcome {
	return []Outcome{Delivered, Rewritten, Proxied, Dropped, Rejected, AnsweredByMiddlebox, NoAnswer, Undecided, NotRun, Interrupted}
}

// Policy is what the user expects of the path (--expect).
type Policy string

// Policies.
const (
	// PolicyOpen: everything is delivered (no filtering on the path).
	PolicyOpen Policy = "open"
	// PolicyStateless: a port filter: connections to the blocked port are
	// refused, all segments to allowed ports pass whatever their flags.
	PolicyStateless Policy = "stateless"
	// PolicyStateful: connection tracking: only a SYN opens a connection,
	// and segments that belong to no connection or fall outside its
	// window are refused (dropped or rejected).
	PolicyStateful Policy = "stateful"
)

// Policies lists the policies, for help and errors.
func Policies() []Policy { return []Policy{PolicyOpen, PolicyStateless, PolicyStateful} }

// ParsePolicy reads --expect.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies() {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown policy %q: want open, stateless or stateful", s)
}

// Want is what a policy expects of one probe.
type Want string

// Expectations.
const (
	// Pass: the probe must reach the target (delivered or rewritten).
	Pass Want = "pass"
	// Block: the probe must not reach the target (dropped or rejected).
	Block Want = "block"
	// Any: the policy does not decide; the cell is reported, not judged.
	Any Want = "any"
)

// Reply is one packet that came back to us for a probe.
type Reply struct {
	From netip.Addr `json:"from"`
	TTL  uint8      `json:"ttl"`
	// Flags, Seq and Ack describe a TCP segment; ICMP an ICMP error.
	Flags string `json:"flags,omitempty"`
	Seq   uint32 `json:"seq,omitempty"`
	Ack   uint32 `json:"ack,omitempty"`
	// Len is the TCP payload length.
	Len  int    `json:"len,omitempty"`
	ICMP string `json:"icmp,omitempty"`
	// Retransmission: the segment repeats one the target had sent before
	// the probe (see isRetransmission); it is not an answer to the probe.
	Retransmission bool `json:"retransmission,omitempty"`
	// Unprompted: the capture saw the target send it although the probe
	// never arrived: the target's own (its app closing, a timer), not an
	// answer.
	Unprompted bool `json:"unprompted,omitempty"`

	at    time.Time
	flags craft.Flags
}

// String writes "R. from 198.18.2.2 ttl 63" or the ICMP description.
func (r Reply) String() string {
	if r.ICMP != "" {
		return r.ICMP
	}
	s := fmt.Sprintf("%s from %s ttl %d", r.Flags, r.From, r.TTL)
	if r.Retransmission {
		s += " (the target's retransmission)"
	}
	if r.Unprompted {
		s += " (sent by the target unprompted: the probe never arrived)"
	}
	return s
}

// Cell is one probe in one state and what became of it.
type Cell struct {
	State State  `json:"state"`
	Probe string `json:"probe"`
	// Sent is the probe in the spec's notation, e.g. "<SEQ=x><CTL=FIN>".
	Sent    string  `json:"sent"`
	Outcome Outcome `json:"outcome"`
	// Delivered is whether the target-side capture saw the probe; nil
	// without a capture.
	Delivered *bool `json:"delivered,omitempty"`
	// Changes are the fields changed on the way (capture only).
	Changes []Change `json:"changes,omitempty"`
	// TargetAnswer is what the target sent back, as the capture saw it
	// leave (even if the path then dropped it); "" for nothing.
	TargetAnswer string `json:"target_answer,omitempty"`
	// Replies is what reached us.
	Replies []Reply `json:"replies,omitempty"`
	// RejectedBy is who answered in the target's stead: the ICMP sender,
	// or the source a RST claimed (HopsShort then says how many hops
	// before the target it came from, by its TTL).
	RejectedBy netip.Addr `json:"rejected_by,omitzero"`
	HopsShort  int        `json:"hops_short,omitempty"`
	// Detail says what the outcome rests on.
	Detail string `json:"detail"`
	// Explanation names the ruleset pattern the outcome follows from and
	// the rule that would change it; nil when none applies.
	Explanation *Explanation `json:"explanation,omitempty"`
	Expected    Want         `json:"expected,omitempty"`
	Verdict     walk.Verdict `json:"verdict,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	Note        string       `json:"note,omitempty"`

	// portMissing: NotRun because the row's port was not configured;
	// probeSYN: the probe is a bare SYN.
	portMissing, probeSYN bool
	// copies is how often the probe was sent.
	copies int
}

// Matrix is the whole check: every probe in every state.
type Matrix struct {
	Target netip.AddrPort `json:"target"`
	Local  netip.Addr     `json:"local"`
	// Capture is whether a target-side capture decided delivery.
	Capture bool `json:"capture"`
	// TargetTTL is the TTL the target's own segments arrive with, learned
	// from a connection that reached it (the ACK of data we sent): a
	// segment with another TTL was not sent by the target.
	TargetTTL uint8 `json:"target_ttl"`
	// TTLFromSYNACK: no data of the baseline was acknowledged, so
	// TargetTTL is the SYN-ACK's, which a middlebox may have sent.
	TTLFromSYNACK bool `json:"ttl_from_synack,omitempty"`
	// Middlebox is what answered the baseline handshake in the target's
	// name, or nil when the target answered it itself.
	Middlebox *Middlebox `json:"middlebox,omitempty"`
	// Lossy counts the setup exchanges of the run that had to be sent
	// again: silence on such a path proves no drop.
	Lossy int `json:"lossy_exchanges,omitempty"`
	// exchanges estimates how many exchanges the run made, Lossy of them
	// sent again.
	exchanges int
	Policy    Policy        `json:"policy,omitempty"`
	Verdict   walk.Verdict  `json:"verdict,omitempty"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration_ns"`
	Cells     []Cell        `json:"cells"`
	// Interrupted is true when the user stopped the run: the cells cut
	// short have the outcome Interrupted.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Cell returns the cell of probe in state, or nil.
func (m *Matrix) Cell(state State, probe string) *Cell {
	for i := range m.Cells {
		if m.Cells[i].State == state && m.Cells[i].Probe == probe {
			return &m.Cells[i]
		}
	}
	return nil
}

// Judge sets every cell's expectation and verdict under p, and the
// matrix's overall verdict (the worst). A probe that was not run is
// skipped; an outcome that cannot tell delivered from refused (NoAnswer)
// is inconclusive.
func (m *Matrix) Judge(p Policy) {
	m.Policy = p
	m.Verdict = walk.Pass
	for i := range m.Cells {
		c := &m.Cells[i]
		r := lookupRow(c.State, c.Probe)
		if r == nil {
			continue
		}
		c.Expected = r.want(p)
		c.Verdict, c.Reason = judge(c.Expected, c)
		if c.Expected == Any && r.note != "" {
			c.Note = r.note
		}
		// A row left out for want of a port (Skipped) does not decide
		// the matrix; one that could not be run or decided does.
		if c.Verdict != walk.Skipped {
			m.Verdict = walk.Worse(m.Verdict, c.Verdict)
		}
	}
}

// Reached says whether an outcome means the path let the probe (or the
// connection it asks for) through to the target.
func (o Outcome) Reached() bool { return o == Delivered || o == Rewritten || o == Proxied }

// Refused says whether an outcome means the path kept the probe from the
// target.
func (o Outcome) Refused() bool { return o == Dropped || o == Rejected || o == AnsweredByMiddlebox }

func judge(w Want, c *Cell) (walk.Verdict, string) {
	o := c.Outcome
	if o == Interrupted {
		return walk.Interrupted, walk.ReasonInterrupted
	}
	if o == NotRun {
		if c.portMissing {
			return walk.Skipped, "the row needs a port that was not given"
		}
		return walk.Inconclusive, "undecided: the state could not be reached (" + c.Detail + ")"
	}
	if o == Undecided {
		return walk.Inconclusive, "undecided: " + c.Detail
	}
	reached, refused := o.Reached(), o.Refused()
	switch w {
	case Any:
		return walk.Pass, ""
	case Pass:
		if reached {
			return walk.Pass, ""
		}
		if refused {
			return walk.Fail, "the policy lets it through, the path " + string(o) + " it"
		}
	case Block:
		if refused {
			return walk.Pass, ""
		}
		if reached {
			return walk.Fail, "the policy refuses it, the path delivered it"
		}
	}
	return walk.Inconclusive, "nothing came back and no capture shows whether it arrived (use --oracle-netns)"
}

// Results turns the matrix into one walk.Result per state, each cell a
// check, for report.WriteJUnit and the like.
func (m *Matrix) Results() []walk.Result {
	var out []walk.Result
	for _, s := range States {
		res := walk.Result{Scenario: "firewall " + string(s), Summary: "probes on a connection in state " + string(s),
			Target: m.Target, Local: netip.AddrPortFrom(m.Local, 0), Start: m.Start, Verdict: walk.Pass}
		for _, c := range m.Cells {
			if c.State != s {
				continue
			}
			v := c.Verdict
			switch {
			case c.Outcome == Interrupted:
				v = walk.Interrupted
			case v == result.Undecided:
				v = walk.Pass // no --expect: an outcome, not a judgement
			}
			received := string(c.Outcome) + ": " + c.Detail
			if c.Explanation != nil {
				received += " — " + c.Explanation.String()
			}
			res.Checks = append(res.Checks, walk.Check{
				Name: c.Probe, Rule: "firewall policy " + string(m.Policy), Probe: c.Sent,
				Expected: string(c.Expected), Received: received,
				Verdict: v, Reason: c.Reason, At: m.Start,
			})
			res.Verdict = walk.Worse(res.Verdict, v)
		}
		if len(res.Checks) > 0 {
			out = append(out, res)
		}
	}
	return out
}

// describeRejection says who answered in the target's stead.
func describeRejection(c *Cell, targetTTL uint8) string {
	var b strings.Builder
	for _, r := range c.Replies {
		if r.ICMP != "" {
			return r.ICMP
		}
	}
	for _, r := range c.Replies {
		fmt.Fprintf(&b, "%s in the name of %s, ttl %d", r.Flags, r.From, r.TTL)
		if targetTTL != 0 && r.TTL != targetTTL {
			fmt.Fprintf(&b, " (the target's arrive with %d: sent %d hop(s) before it)", targetTTL, int(r.TTL)-int(targetTTL))
		}
		break
	}
	return b.String()
}
