package conform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// Rules of the transitions that put the remote in a state (RFC 9293).
const (
	ruleListen     = "RFC 9293 §3.10.7.2 (LISTEN: SYN → SYN,ACK <SEQ=ISS><ACK=RCV.NXT>)"
	ruleKA1        = "RFC 9293 §3.8.4 / §3.10.7.4 (unacceptable segment → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)"
	ruleFinRcvd    = "RFC 9293 §3.10.7.4 (eighth: FIN in ESTABLISHED → CLOSE-WAIT, ACK it)"
	ruleCloseCall  = "RFC 9293 §3.10.4 (CLOSE in CLOSE-WAIT: send FIN → LAST-ACK)"
	ruleFinWait1   = "RFC 9293 §3.10.7.4 (FIN-WAIT-1: our FIN acknowledged → FIN-WAIT-2)"
	ruleClosing    = "RFC 9293 §3.10.7.4 (eighth: FIN in FIN-WAIT-1, ours not acknowledged → CLOSING)"
	ruleFinWait1TW = "RFC 9293 §3.10.7.4 (eighth: FIN in FIN-WAIT-1 acknowledging ours → TIME-WAIT)"
)

// errSkip ends a check whose state this target cannot be held in; env.skip
// says why.
var errSkip = errors.New("skipped")

// keepAlive checks, with KA1, that the remote is in state: it answers
// <SEQ=sndNxt><ACK=rcvNxt><CTL=ACK> at once (KA1 carries a byte, so no rate
// limit applies).
func (e *env) keepAlive(ctx context.Context, name, rule string, state result.State, sndNxt, rcvNxt tcpconn.Seq) error {
	_, err := e.s.ExpectStep(ctx, walk.Step{Name: name, Rule: rule, Probe: "KA1", Wire: state},
		func(bool) error { return e.c.KeepAlive() },
		walk.Want{Flags: craft.FlagACK, Seq: sndNxt, Ack: rcvNxt})
	return err
}

// reachSynRcvd sends our SYN and withholds the final ACK.
func reachSynRcvd(ctx context.Context, e *env) (tcb, error) {
	c := e.c
	r, err := e.s.ExpectSYNACK(ctx, walk.Step{Name: "LISTEN → SYN_RCVD", Rule: ruleListen, Probe: "SYN x"}, c.SendSYN)
	if err != nil {
		return tcb{}, err
	}
	c.RcvNxt = r.Seg.Seq + 1
	e.s.States(result.SynSent, result.SynRcvd)
	return tcb{state: result.SynRcvd, kept: result.Established, synRcvd: true, sndNxt: c.RcvNxt, rcvNxt: c.SndNxt, sndUna: c.RcvNxt - 1}, nil
}

// reachEstablished does the handshake.
func reachEstablished(ctx context.Context, e *env) (tcb, error) {
	if err := e.open(ctx); err != nil {
		return tcb{}, err
	}
	c := e.c
	return tcb{state: result.Established, sndNxt: c.RcvNxt, rcvNxt: c.SndNxt, sndUna: c.RcvNxt}, nil
}

// reachCloseWait sends our FIN to an app that does not close: the remote
// acknowledges it and stays in CLOSE_WAIT. An app that closes at once (its
// FIN follows) cannot be held there: the check is skipped.
func reachCloseWait(ctx context.Context, e *env) (tcb, error) {
	if err := e.open(ctx); err != nil {
		return tcb{}, err
	}
	c := e.c
	c.AutoAckData = true
	fin := c.SndNxt
	if err := c.SendNext(craft.FlagFIN|craft.FlagACK, nil, ""); err != nil {
		return tcb{}, err
	}
	e.s.States(result.FinWait1, result.NoState)
	// The ACK of our FIN; an app that closes at once may send its FIN
	// with it. Unacknowledged, the FIN is sent again, as TCP does
	// (RFC 9293 §3.8.1): it or its ACK may have been lost.
	sends := 1
	deadline := time.Now().Add(e.tm.Reply)
	for {
		r, err := c.Next(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) && sends < e.tm.Tries {
			if err := c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, c.RcvNxt, nil); err != nil {
				return tcb{}, err
			}
			sends++
			deadline = time.Now().Add(e.tm.Reply)
			continue
		}
		if errors.Is(err, probe.ErrTimeout) {
			e.s.Check(walk.Check{Name: "ESTABLISHED → CLOSE_WAIT", Rule: ruleFinRcvd, Expected: fmt.Sprintf("<ACK=%d>", fin+1),
				Received: "nothing", Verdict: walk.Inconclusive, Reason: fmt.Sprintf("our FIN was not acknowledged after %d sends, %v apart", sends, e.tm.Reply)}, result.NoState)
			return tcb{}, walk.ErrStop
		}
		if err != nil {
			return tcb{}, err
		}
		if c.RemoteFINSeen {
			return tcb{}, e.skipf("the app on port %d closed as soon as it read our FIN: CLOSE_WAIT cannot be held there (use a port whose app keeps connections open, like the lab's 7001)", e.s.Remote().Port())
		}
		if r.Flags.Has(craft.FlagACK) && r.Seg.Ack == fin+1 {
			e.s.Check(walk.Check{Name: "ESTABLISHED → CLOSE_WAIT", Rule: ruleFinRcvd, Expected: fmt.Sprintf("<ACK=%d><CTL=ACK>", fin+1),
				Received: walk.Describe(r.Seg), Verdict: walk.Pass}, result.CloseWait)
			break
		}
	}
	e.s.States(result.FinWait2, result.NoState)
	err := e.keepAlive(ctx, "CLOSE_WAIT: our FIN acknowledged, no FIN from the remote", ruleKA1, result.CloseWait, c.RcvNxt, fin+1)
	if err != nil && !c.RemoteFINSeen {
		return tcb{}, err
	}
	if c.RemoteFINSeen {
		return tcb{}, e.skipf("the app on port %d closed right after our FIN: CLOSE_WAIT cannot be held there", e.s.Remote().Port())
	}
	return tcb{state: result.CloseWait, sndNxt: c.RcvNxt, rcvNxt: fin + 1, sndUna: c.RcvNxt}, nil
}

// reachLastAck sends our FIN to an app that closes after reading it, and
// withholds the ACK of the remote's FIN.
func reachLastAck(ctx context.Context, e *env) (tcb, error) {
	if err := e.open(ctx); err != nil {
		return tcb{}, err
	}
	c := e.c
	c.AutoAckData = true
	// The request rides in our FIN's segment, as walk's passive close
	// sends it: sent apart, an app that answers and closes at once may
	// send its FIN before our FIN arrives, and the remote is then in
	// CLOSING, not LAST_ACK. The segment is sent again until acknowledged
	// (RFC 9293 §3.8.1): lost, the app never closes. An ACK up to the FIN
	// only answers the request. The remote's FIN acknowledging ours passes
	// too: its pure ACK was lost, or the app closed at once.
	trigSeq := c.SndNxt
	payload := e.s.Plan().Payload
	fin := trigSeq.Add(tcpconn.Size(len(payload)))
	flags := craft.FlagFIN | craft.FlagACK
	note := ""
	if len(payload) > 0 {
		flags |= craft.FlagPSH
		note = "trigger with FIN"
	}
	if _, err := e.s.ExpectStep(ctx, walk.Step{Name: "ESTABLISHED → CLOSE_WAIT", Rule: ruleFinRcvd, Probe: "FIN", Wire: result.CloseWait},
		func(retry bool) error {
			if !retry {
				err := c.SendNext(flags, payload, note)
				e.s.States(result.FinWait1, result.NoState)
				return err
			}
			return c.Retransmit(flags, trigSeq, c.RcvNxt, payload)
		},
		walk.Want{Flags: craft.FlagACK, AnySeq: true, Ack: fin + 1,
			// IgnoreFIN: a FIN that does not cover ours (CLOSING) is
			// told apart below.
			Retry: &walk.Want{Flags: craft.FlagACK, AnySeq: true, Ack: fin, IgnoreFIN: true},
			Or:    &walk.Want{Flags: craft.FlagFIN | craft.FlagACK, AnySeq: true, Ack: fin + 1}, OrWire: result.LastAck,
			OrNote: "our FIN was acknowledged in the remote's own FIN"}); err != nil {
		if c.RemoteFINSeen && c.RemoteFINAck != fin+1 {
			return tcb{}, e.closingNotLastAck(fin)
		}
		return tcb{}, err
	}
	if c.RemoteFINSeen && c.RemoteFINAck != fin+1 {
		return tcb{}, e.closingNotLastAck(fin)
	}
	if !c.RemoteFINSeen {
		if _, err := e.s.ExpectRemote(ctx, walk.Step{Name: "CLOSE_WAIT → LAST_ACK", Rule: ruleCloseCall, Wire: result.LastAck},
			walk.Want{Flags: craft.FlagFIN | craft.FlagACK, AnySeq: true, Ack: fin + 1}, e.s.Plan().Wait); err != nil {
			return tcb{}, err
		}
	}
	e.s.States(result.Closing, result.NoState)
	f := c.RemoteFIN
	if err := e.keepAlive(ctx, "LAST_ACK: FIN sent, ours acknowledged", ruleKA1, result.LastAck, f+1, fin+1); err != nil {
		return tcb{}, err
	}
	return tcb{state: result.LastAck, sndNxt: f + 1, rcvNxt: fin + 1, sndUna: c.RcvNxt, remoteFIN: true}, nil
}

// closingNotLastAck ends a LAST_ACK check whose remote sent its FIN before
// it took ours: that FIN's ACK field does not cover our FIN, so the remote
// closed at the same time as we did (FIN_WAIT_1 → CLOSING, RFC 9293 §3.6),
// and LAST_ACK was never reached. The wire model says so; the check is
// skipped, not judged in the wrong state.
func (e *env) closingNotLastAck(fin tcpconn.Seq) error {
	c := e.c
	e.s.States(result.NoState, result.Closing)
	return e.skipf("the app on port %d closed before our FIN reached it (its FIN acknowledges %d, not our FIN %d): the remote is in CLOSING, not LAST_ACK; use a trigger after which the app waits for our FIN (the lab's)",
		e.s.Remote().Port(), c.RemoteFINAck, fin)
}

// closeFirst opens a connection and makes the remote app close first; its
// FIN is not acknowledged: the remote is in FIN_WAIT_1.
func (e *env) closeFirst(ctx context.Context) (f tcpconn.Seq, err error) {
	if err := e.open(ctx); err != nil {
		return 0, err
	}
	if err := e.s.RemoteCloses(ctx); err != nil {
		return 0, err
	}
	return e.c.RemoteFIN, nil
}

func reachFinWait1(ctx context.Context, e *env) (tcb, error) {
	f, err := e.closeFirst(ctx)
	if err != nil {
		return tcb{}, err
	}
	c := e.c
	if err := e.keepAlive(ctx, "FIN_WAIT_1: FIN sent, not yet acknowledged", ruleKA1, result.FinWait1, f+1, c.SndNxt); err != nil {
		return tcb{}, err
	}
	return tcb{state: result.FinWait1, sndNxt: f + 1, rcvNxt: c.SndNxt, sndUna: c.RcvNxt, remoteFIN: true}, nil
}

func reachFinWait2(ctx context.Context, e *env) (tcb, error) {
	f, err := e.closeFirst(ctx)
	if err != nil {
		return tcb{}, err
	}
	c := e.c
	c.RcvNxt = f + 1
	if err := c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ACK of FIN"); err != nil {
		return tcb{}, err
	}
	e.s.States(result.CloseWait, result.FinWait2)
	if err := e.keepAlive(ctx, "FIN_WAIT_1 → FIN_WAIT_2", ruleFinWait1, result.FinWait2, f+1, c.SndNxt); err != nil {
		return tcb{}, err
	}
	return tcb{state: result.FinWait2, sndNxt: f + 1, rcvNxt: c.SndNxt, sndUna: f + 1, remoteFIN: true}, nil
}

// reachClosing answers the remote's FIN with ours, not acknowledging its
// FIN: both FINs cross.
func reachClosing(ctx context.Context, e *env) (tcb, error) {
	f, err := e.closeFirst(ctx)
	if err != nil {
		return tcb{}, err
	}
	c := e.c
	fin := c.SndNxt
	if _, err := e.s.ExpectStep(ctx, walk.Step{Name: "FIN_WAIT_1 → CLOSING", Rule: ruleClosing, Probe: "FIN, ACK F (not F+1)", Wire: result.Closing},
		func(retry bool) error {
			if retry {
				return c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, f, nil)
			}
			err := c.SendNext(craft.FlagFIN|craft.FlagACK, nil, "")
			e.s.States(result.Closing, result.NoState)
			return err
		},
		walk.Want{Flags: craft.FlagACK, Seq: f + 1, Ack: fin + 1}); err != nil {
		return tcb{}, err
	}
	return tcb{state: result.Closing, sndNxt: f + 1, rcvNxt: fin + 1, sndUna: f, remoteFIN: true}, nil
}

// reachTimeWait answers the remote's FIN with ours, acknowledging it.
func reachTimeWait(ctx context.Context, e *env) (tcb, error) {
	f, err := e.closeFirst(ctx)
	if err != nil {
		return tcb{}, err
	}
	c := e.c
	c.RcvNxt = f + 1
	fin := c.SndNxt
	if _, err := e.s.ExpectStep(ctx, walk.Step{Name: "FIN_WAIT_1 → TIME_WAIT", Rule: ruleFinWait1TW, Probe: "FIN, ACK F+1", Wire: result.TimeWait},
		func(retry bool) error {
			if retry {
				return c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, f+1, nil)
			}
			err := c.SendNext(craft.FlagFIN|craft.FlagACK, nil, "")
			e.s.States(result.LastAck, result.NoState)
			return err
		},
		walk.Want{Flags: craft.FlagACK, Seq: f + 1, Ack: fin + 1}); err != nil {
		return tcb{}, err
	}
	e.s.States(result.Closed, result.TimeWait)
	return tcb{state: result.TimeWait, sndNxt: f + 1, rcvNxt: fin + 1, sndUna: f + 1, remoteFIN: true}, nil
}
