package conform

import (
	"context"
	"fmt"
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// linuxTWOffset is what Linux adds to a TIME_WAIT connection's SND.NXT for
// the ISS of a connection that reopens it (tcp_timewait_state_process:
// tw_snd_nxt + 65535 + 2): a fingerprint of the stack.
const linuxTWOffset = 65537

// timeWaitSynHigher sends a SYN above RCV.NXT into TIME_WAIT. A stack that
// reopens the connection answers with a SYN,ACK whose ISS is above the old
// SND.NXT (RFC 1122 §4.2.2.13, RFC 6191); one that keeps TIME_WAIT answers
// with a challenge ACK (RFC 5961 §4.2). Both conform. The ISS offset is the
// TIME_WAIT fingerprint.
func timeWaitSynHigher(ctx context.Context, e *env) error {
	t, err := reachTimeWait(ctx, e)
	if err != nil {
		return err
	}
	c := e.c
	seq := t.rcvNxt + synAhead
	a, err := e.await(ctx, true, func() error {
		return c.SendRaw(craft.FlagSYN, seq, 0, nil, "SYN above RCV.NXT")
	}, e.tm.Tries, e.tm.Reply)
	if err != nil {
		return err
	}
	reply := a.r
	synack := walk.Want{Flags: craft.FlagSYN | craft.FlagACK, AnySeq: true, Ack: seq + 1}
	chk := walk.Check{Name: "TIME_WAIT: SYN above RCV.NXT → a new connection, ISS above the old SND.NXT", Rule: ruleTWSynHigher,
		Probe:    fmt.Sprintf("<SEQ=%d><CTL=SYN> (RCV.NXT+%d)", seq, synAhead),
		Expected: fmt.Sprintf("<SEQ=ISS'><ACK=%d><CTL=SYN,ACK> with any ISS' > %d (old SND.NXT); or refused: %s or a RST", seq+1, t.sndNxt, challengeACK(t)),
		Received: "nothing", Optional: OptTWReopen}
	wire := result.NoState
	switch {
	case reply == nil:
		chk.Verdict, chk.Reason = walk.Inconclusive, fmt.Sprintf("no answer after %d tries", e.tm.Tries)
	case reply.Seg.ICMP == "" && synack.Match(reply.Seg, reply.Flags):
		iss := reply.Seg.Seq
		off := iss - t.sndNxt
		chk.Received = fmt.Sprintf("%s: ISS' = old SND.NXT + %d", walk.Describe(reply.Seg), off)
		chk.Has = true
		if int32(off) > 0 {
			chk.Verdict, wire = walk.Pass, result.SynRcvd
		} else {
			deviation{name: "time-wait-reopened-with-lower-iss", level: levelMUST,
				why: "the new ISS is not above the old SND.NXT: old duplicates could be taken for new data (RFC 1122 §4.2.2.13 (a), RFC 6191 §2)"}.apply(&chk)
		}
		e.sh.setFingerprint(uint32(off))
		// The new connection's RCV.NXT: the tidy RST at SND.NXT removes it.
		c.SndNxt, c.RcvNxt = seq+1, iss+1
	case reply.Seg.ICMP == "" && challengeACK(t).Match(reply.Seg, reply.Flags):
		chk.Received = walk.Describe(reply.Seg) + " (TIME_WAIT kept)"
		chk.Verdict, wire = walk.Pass, result.TimeWait
		chk.Reason = "not implemented (optional): TIME_WAIT kept, the SYN answered as an unacceptable segment"
		e.sh.setFingerprint(0)
	case reply.Seg.ICMP == "" && reply.Flags.Has(craft.FlagRST):
		// RFC 1122 only allows the reopening; a stack that does not
		// reopen may refuse the SYN with a reset (§3.10.7.4, fourth, RFC
		// 793's rule).
		chk.Received = walk.Describe(reply.Seg)
		chk.Verdict, chk.Reason = walk.Pass, "not implemented (optional): the SYN refused with a reset"
		e.sh.setFingerprint(0)
		c.Forget()
	default:
		chk.Received = walk.Describe(reply.Seg)
		chk.Verdict, chk.Reason = walk.Fail, "neither a new connection nor a refusal (an ACK or a RST)"
	}
	e.record(chk, wire)
	return nil
}

// synOptions lists the options of a recorded segment by kind.
func synOptions(seg *walk.Segment) (map[craft.OptionKind]craft.Option, error) {
	t, err := seg.TCP()
	if err != nil {
		return nil, err
	}
	out := map[craft.OptionKind]craft.Option{}
	for it := t.Options(); it.Next(); {
		o := it.Option()
		out[o.Kind] = craft.Option{Kind: o.Kind, Data: append([]byte(nil), o.Data...)}
	}
	return out, nil
}

// optionsText writes a segment's options as tcpdump does.
func optionsText(seg *walk.Segment) string {
	if len(seg.Options) == 0 {
		return "no options"
	}
	return "<" + strings.Join(seg.Options, ",") + ">"
}

// optionsOffered sends a SYN with MSS, SACK-permitted, timestamps and
// window scale, and checks the SYN,ACK: MSS SHOULD come back; each of the
// others is optional, so its absence is "not implemented", and a TSopt
// that comes MUST echo our TSval.
func optionsOffered(ctx context.Context, e *env) error {
	c := e.c
	r, err := e.s.ExpectSYNACK(ctx, walk.Step{Name: "LISTEN → SYN_RCVD", Rule: ruleListen, Probe: fmt.Sprintf("SYN x <mss %d,sackOK,TS,nop,wscale 7>", c.Offer.MSS)}, c.SendSYN)
	if err != nil {
		return err
	}
	c.RcvNxt = r.Seg.Seq + 1
	e.s.States(result.SynSent, result.SynRcvd)
	// Our SYN may have gone out more than once, each copy with its own
	// TSval (RFC 7323 §5.4: the clock ticks): the SYN,ACK echoes the copy
	// it answers, whichever that was.
	ourTS := map[uint32]bool{}
	var lastTS uint32
	for _, s := range e.s.Segments() {
		if s.Dir == walk.Out && s.Flags == craft.FlagSYN {
			if opts, err := synOptions(&s); err == nil {
				lastTS, _ = opts[craft.OptTimestamps].Timestamps()
				ourTS[lastTS] = true
			}
		}
	}
	e.sh.setSynAckOptions(r.Seg)
	return e.judgeOptions(r.Seg, []optionWant{
		{kind: craft.OptMSS, offered: true, rule: ruleOptMSS},
		{kind: craft.OptSACKPermitted, offered: true, rule: ruleOptSACK, optional: OptSACK},
		{kind: craft.OptTimestamps, offered: true, rule: ruleOptTS, optional: OptTS, check: func(o craft.Option) string {
			if _, ecr := o.Timestamps(); !ourTS[ecr] {
				if len(ourTS) > 1 {
					return fmt.Sprintf("TSecr %d echoes none of our %d SYNs' TSvals (the last %d)", ecr, len(ourTS), lastTS)
				}
				return fmt.Sprintf("TSecr %d does not echo our TSval %d", ecr, lastTS)
			}
			return ""
		}},
		{kind: craft.OptWindowScale, offered: true, rule: ruleOptWS, optional: OptWS},
	})
}

// optionsNotOffered sends a SYN without options: the SYN,ACK may carry MSS
// only.
func optionsNotOffered(ctx context.Context, e *env) error {
	c := e.c
	x := c.ISS
	r, err := e.s.ExpectSYNACK(ctx, walk.Step{Name: "LISTEN → SYN_RCVD", Rule: ruleListen, Probe: "SYN x without options"},
		func() error { return c.SendSYNWith(x, nil, "SYN without options") })
	if err != nil {
		return err
	}
	c.SndNxt, c.RcvNxt = x+1, r.Seg.Seq+1
	e.s.States(result.SynSent, result.SynRcvd)
	return e.judgeOptions(r.Seg, []optionWant{
		{kind: craft.OptMSS, offered: false, rule: ruleOptMSS},
		{kind: craft.OptSACKPermitted, offered: false, rule: ruleOptSACK},
		{kind: craft.OptTimestamps, offered: false, rule: ruleOptTS},
		{kind: craft.OptWindowScale, offered: false, rule: ruleOptWS},
	})
}

// optionWant is one option of a SYN,ACK and what the RFC says of it.
type optionWant struct {
	kind craft.OptionKind
	// offered: our SYN carried the option.
	offered bool
	rule    string
	// optional names the mechanism the option negotiates ("" for MSS,
	// which SHOULD always be sent).
	optional string
	// check, when set, returns what is wrong with a present option.
	check func(craft.Option) string
}

var optionNames = map[craft.OptionKind]string{craft.OptMSS: "MSS", craft.OptSACKPermitted: "SACK-permitted",
	craft.OptTimestamps: "timestamps", craft.OptWindowScale: "window scale"}

// judgeOptions records one check per option of a SYN,ACK.
func (e *env) judgeOptions(synack *walk.Segment, wants []optionWant) error {
	opts, err := synOptions(synack)
	if err != nil {
		e.record(walk.Check{Name: "SYN,ACK options", Rule: ruleOptMSS, Expected: "well-formed options",
			Received: optionsText(synack), Verdict: walk.Fail, Reason: err.Error()}, result.NoState)
		return nil
	}
	for _, w := range wants {
		name := optionNames[w.kind]
		chk := walk.Check{Rule: w.rule, Received: optionsText(synack), Verdict: walk.Pass}
		o, ok := opts[w.kind]
		switch {
		case w.kind == craft.OptMSS:
			// RFC 9293 §3.7.1: SHOULD, whatever the SYN had.
			chk.Name, chk.Expected = "SYN,ACK carries MSS", "MSS present"
			if !ok {
				deviation{name: "synack-without-mss", level: levelSHOULD,
					why: "a SYN SHOULD carry an MSS option (RFC 9293 §3.7.1, SHLD-5); without one the peer assumes 536 bytes"}.apply(&chk)
			}
		case w.offered:
			chk.Name, chk.Expected = "SYN,ACK answers "+name, name+" present, or absent (optional: not implemented)"
			chk.Optional, chk.Has = w.optional, ok
			switch {
			case !ok:
				chk.Reason = "not implemented (optional)"
			case w.check != nil:
				if why := w.check(o); why != "" {
					deviation{name: "tsecr-not-echoed", level: levelMUST, why: why + " (RFC 7323 §3.2: TSecr MUST echo TS.Recent)"}.apply(&chk)
				}
			}
		default:
			chk.Name, chk.Expected = "SYN,ACK without "+name+" (not offered)", name+" absent"
			if ok {
				deviation{name: "unoffered-option-in-synack", level: levelMUST,
					why: name + " sent though our SYN did not offer it: the option is negotiated, a SYN,ACK carries it only in answer to the SYN's (" + w.rule + ")"}.apply(&chk)
			}
		}
		e.record(chk, result.SynRcvd)
	}
	return nil
}
