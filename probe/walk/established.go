package walk

import (
	"context"
	"errors"
	"fmt"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

// ackAheadProbe is how far above the remote's SND.NXT the ACK that tells
// SYN_RCVD from ESTABLISHED acknowledges: any number above SND.NXT is
// unacceptable in both states.
const ackAheadProbe = 1000

// confirmEstablished shows that our final ACK of the handshake arrived, with
// only what RFC 9293 asks of every stack:
//
//   - KA1 cannot tell: SYN_RCVD answers an unacceptable segment with an ACK
//     as ESTABLISHED does (§3.10.7.4, first).
//   - An ACK above SND.NXT can: SYN-RECEIVED MUST answer it with
//     <SEQ=SEG.ACK><CTL=RST> and keep its state (§3.10.7.4, fifth), so a
//     reset means our ACK was lost and it is sent again; ESTABLISHED sends
//     <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and drops it (fifth).
//   - A segment the remote sends by itself after ESTABLISHED (its app's
//     data, such as a banner, or the FIN of an app that closes at once)
//     shows it too: in SYN_RCVD the app holds no socket yet.
//
// The old ACK RFC 5961 §5.2 challenges is not used: that mitigation is
// optional, and a stack without it ignores the segment (§3.10.7.4, fifth:
// a duplicate ACK "can be ignored"). Some stacks drop an ACK above SND.NXT
// silently too: then no reset to our final ACK sent Tries times, each
// followed by that ACK, is what SYN-RECEIVED cannot do, and KA1's answer
// shows a synchronized connection: ESTABLISHED, with that noted.
func (w *Session) confirmEstablished(ctx context.Context) error {
	c := w.conn
	ahead := c.RcvNxt + ackAheadProbe
	name, probeDesc := "SYN_RCVD → ESTABLISHED", "ACK, then an ACK above SND.NXT"
	want := established(c)
	r, other, err := c.Exchange(ctx, func(retry bool) error {
		if retry {
			if err := c.Retransmit(craft.FlagACK, c.SndNxt, c.RcvNxt, nil); err != nil {
				return err
			}
		}
		// Linux rate-limits its answer to an unacceptable zero-length
		// segment per socket (tcp_invalid_ratelimit).
		if err := c.spaceProbe(ctx); err != nil {
			return err
		}
		return c.SendRaw(craft.FlagACK, c.SndNxt, ahead, nil, "ACK above SND.NXT")
	}, withRetry(want, Want{Flags: craft.FlagRST, Seq: ahead}))
	if err == nil && r != nil {
		return w.passEstablished(name, probeDesc, want, r, "")
	}
	if !errors.Is(err, errNoReply) || other != nil {
		// A wrong answer, an ICMP error, our ACK lost every time, or an
		// error of ours: judged as any step.
		w.Check(w.judgeExchange(Check{Name: name, Rule: ruleSynRcvdAck, Probe: probeDesc, Expected: want.String()}, other, err), result.NoState)
		return errStop
	}
	// No answer at all: no reset from SYN-RECEIVED. KA1 shows the
	// connection synchronized.
	r, other, err = c.Exchange(ctx, func(bool) error { return c.KeepAlive() }, want)
	if err == nil && r != nil {
		return w.passEstablished(name, probeDesc+", then KA1", want, r,
			fmt.Sprintf("no answer to %d ACKs above SND.NXT, each after our final ACK: not SYN-RECEIVED, which MUST reset them (RFC 9293 §3.10.7.4, fifth); ESTABLISHED should acknowledge them", c.tm.Tries))
	}
	w.Check(w.judgeExchange(Check{Name: name, Rule: ruleSynRcvdAck, Probe: probeDesc + ", then KA1", Expected: want.String()}, other, err), result.NoState)
	return errStop
}

// established is the answer of an ESTABLISHED remote to an unacceptable
// segment, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where SND.NXT is whatever
// the remote has sent by then (a banner moves it), or its own FIN (Or: its
// app closed at once, so it is in FIN_WAIT_1), which only an ESTABLISHED
// connection's app can send.
func established(c *Conn) Want {
	return Want{Flags: craft.FlagACK, AnySeq: true, Ack: c.SndNxt,
		Or: &Want{Flags: craft.FlagFIN | craft.FlagACK, AnySeq: true, Ack: c.SndNxt}, OrWire: result.FinWait1,
		OrNote: "the remote's app closed at once: its FIN shows the connection was ESTABLISHED"}
}

func withRetry(w Want, retry Want) Want {
	w.Retry = &retry
	return w
}

// passEstablished records the passing check; note, when set, is its reason.
func (w *Session) passEstablished(name, probeDesc string, want Want, r *Reply, note string) error {
	wire := result.Established
	chk := Check{Name: name, Rule: ruleSynRcvdAck, Probe: probeDesc, Expected: want.String(), Received: describe(r.Seg), Verdict: Pass, Reason: note}
	if !want.Match(r.Seg, r.Flags) {
		wire, chk.Reason = want.OrWire, want.OrNote
	}
	w.Check(chk, wire)
	return nil
}

// judgeExchange fills the verdict of a step whose wanted answer did not
// come: other is the wrong answer (if any), err the exchange's error.
func (w *Session) judgeExchange(c Check, other *Segment, err error) Check {
	switch {
	case errors.Is(err, context.Canceled):
		// Cut short before the wanted reply could come: not decided,
		// whatever else came meanwhile.
		c.Received = describe(other)
		c.Verdict, c.Reason = Unfinished(err)
	case other != nil && other.ICMP != "":
		// The path, not the remote's TCP, answered (an unreachable host,
		// a filtering firewall): nothing was learned about the TCP.
		c.Verdict, c.Received = Inconclusive, describe(other)
		c.Reason = "the path answered with an ICMP error instead of the remote's TCP"
	case other != nil:
		c.Verdict, c.Received = Fail, describe(other)
		c.Reason = "the reply differs from the RFC's"
	case errors.Is(err, errNoReply):
		c.Verdict, c.Received = Inconclusive, "nothing"
		c.Reason = fmt.Sprintf("no reply after %d tries, %v apart", w.cfg.Timing.Tries, w.cfg.Timing.Reply) + w.malformedNote() + inputNote(w.cfg.Prober)
	default:
		c.Received = "nothing"
		c.Verdict, c.Reason = Unfinished(err)
	}
	return c
}
