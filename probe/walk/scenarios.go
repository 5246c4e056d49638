package walk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/result"
)

// The RFC sections every expectation comes from (RFC 9293 unless named).
const (
	ruleClosed      = "RFC 9293 §3.10.7.1 (CLOSED: reset any segment but RST)"
	ruleListen      = "RFC 9293 §3.10.7.2 (LISTEN: SYN → SYN,ACK <SEQ=ISS><ACK=RCV.NXT>)"
	ruleSynRcvdAck  = "RFC 9293 §3.10.7.4 (SYN-RECEIVED: acceptable ACK → ESTABLISHED; there an ACK above SND.NXT draws an ACK, fifth, where SYN-RECEIVED resets it)"
	ruleSynRcvdBad  = "RFC 9293 §3.10.7.4 (SYN-RECEIVED: unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>)"
	ruleRetransmit  = "RFC 9293 §3.8.1 (retransmission timeout: the same segment again)"
	ruleKeepAlive   = "RFC 9293 §3.8.4 / §3.10.7.4 (unacceptable segment → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)"
	ruleFinRcvd     = "RFC 9293 §3.10.7.4 (eighth: FIN in ESTABLISHED → CLOSE-WAIT, ACK it)"
	ruleCloseCall   = "RFC 9293 §3.10.4 (CLOSE in CLOSE-WAIT: send FIN → LAST-ACK)"
	ruleLastAck     = "RFC 9293 §3.10.7.4 (LAST-ACK: ACK of our FIN → CLOSED)"
	ruleClosedProbe = "RFC 9293 §3.10.7.1 (CLOSED: ACK → <SEQ=SEG.ACK><CTL=RST>)"
	ruleActiveClose = "RFC 9293 §3.10.4 (CLOSE in ESTABLISHED: send FIN → FIN-WAIT-1)"
	ruleFinWait1    = "RFC 9293 §3.10.7.4 (FIN-WAIT-1: our FIN acknowledged → FIN-WAIT-2)"
	ruleFinWait2    = "RFC 9293 §3.10.7.4 (eighth: FIN in FIN-WAIT-2 → TIME-WAIT, ACK it)"
	ruleTimeWait    = "RFC 9293 §3.10.7.4 (TIME-WAIT: a retransmitted FIN is acknowledged, 2MSL restarts)"
	ruleClosing     = "RFC 9293 §3.10.7.4 (eighth: FIN in FIN-WAIT-1, ours not acknowledged → CLOSING)"
	ruleClosingAck  = "RFC 9293 §3.10.7.4 (CLOSING: ACK of our FIN → TIME-WAIT)"
	ruleHalfClose   = "RFC 9293 §3.6 (a closing side still receives: CLOSE-WAIT may send data)"
	ruleExactRST    = "RFC 9293 §3.10.7.4 (first: RST at RCV.NXT → CLOSED), RFC 5961 §3.2"
	ruleSynSent     = "RFC 9293 §3.10.1 (active OPEN: send SYN → SYN-SENT)"
	ruleSimOpen     = "RFC 9293 §3.10.7.3 (SYN-SENT: SYN without ACK → SYN-RECEIVED, <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>)"
)

// Open does the three-way handshake with its checks: the SYN-ACK (LISTEN →
// SYN_RCVD) and, with KA1, that the remote is ESTABLISHED.
func (w *Session) Open(ctx context.Context) error {
	c := w.conn
	// The kernel's view of LISTEN is read before the SYN changes anything;
	// the wire's comes from the reply to the SYN.
	kernelListen, listenErr := result.NoState, error(nil)
	if w.cfg.Oracle != nil {
		ok, err := w.cfg.Oracle.Listening(w.remote)
		switch {
		case err != nil:
			listenErr = err
		case ok:
			kernelListen = result.Listen
		default:
			kernelListen = result.Closed
		}
	}
	at := len(w.res.Checks)
	r, err := w.ExpectSYNACK(ctx, Step{Name: "LISTEN → SYN_RCVD", Rule: ruleListen, Probe: "SYN x"}, c.SendSYN)
	listen := Check{Name: "LISTEN", Rule: ruleListen, Probe: "SYN x", Expected: "a SYN,ACK: a socket listens",
		Kernel: kernelListen, KernelErr: listenErr, At: time.Now()}
	syn := w.res.Checks[len(w.res.Checks)-1]
	switch {
	case err == nil:
		listen.Verdict, listen.Received, listen.Wire = Pass, syn.Received, result.Listen
	case syn.Verdict == Fail:
		listen.Verdict, listen.Received, listen.Wire = Fail, syn.Received, result.Closed
		listen.Reason = "no listener answered the SYN"
	default:
		listen.Verdict, listen.Received, listen.Reason = syn.Verdict, syn.Received, syn.Reason
	}
	listen.Disagree = listen.Wire != result.NoState && (listen.KernelErr != nil || listen.Kernel != result.NoState && listen.Kernel != listen.Wire)
	w.res.Checks = append(w.res.Checks[:at], append([]Check{listen}, w.res.Checks[at:]...)...)
	if err != nil {
		return err
	}
	c.RcvNxt = r.Seg.Seq + 1
	w.rec.states(result.SynSent, result.SynRcvd)
	if err := c.SendNext(craft.FlagACK, nil, ""); err != nil {
		return err
	}
	if f := w.afterFinalACK; f != nil {
		w.afterFinalACK = nil
		f()
	}
	w.rec.states(result.Established, result.NoState)
	return w.confirmEstablished(ctx)
}

// staleAnswer is the answer to our SYN of a connection that still holds the
// 4-tuple (one of an earlier walk whose tidy RST was lost): a challenge ACK
// (RFC 5961 §4, RFC 9293 §3.10.7.4) about that connection, not our SYN, or
// that connection's own retransmission (its FIN, its data), which may come
// first.
var staleAnswer = Want{Flags: craft.FlagACK, AnySeq: true, AnyAck: true, IgnoreFIN: true}

// staleAnswerOrSYNACK is staleAnswer or a SYN,ACK that does not acknowledge
// our SYN (ExpectSYNACK matches the right one first): the retransmitted
// SYN,ACK of a connection an earlier walk left half-open, in SYN_RCVD, on
// this 4-tuple. Linux drops or challenges our new SYNs while that
// connection lives (tcp_check_req), so its SYN,ACK may be all that comes.
var staleAnswerOrSYNACK = Want{Flags: craft.FlagACK, AnySeq: true, AnyAck: true, IgnoreFIN: true, IgnoreSYN: true}

// ExpectSYNACK sends a SYN at ISS with send and expects the listener's
// SYN,ACK acknowledging it; the step's Wire is SYN_RCVD. A stale connection's answer (staleAnswer, or a
// SYN,ACK with an unacceptable ACK) is reset as SYN-SENT does and the SYN
// sent again. On the last try a wrong SYN,ACK is no longer taken for a
// stale one: it came after Tries-1 resets, each of which removes a stale
// connection, so it is the remote's answer to our SYN, and judged.
func (w *Session) ExpectSYNACK(ctx context.Context, st Step, send func() error) (*Reply, error) {
	stale := staleAnswerOrSYNACK
	try := 0
	st.Wire = result.SynRcvd
	return w.ExpectStep(ctx, st,
		func(retry bool) error {
			if retry {
				if err := w.resetStale(); err != nil {
					return err
				}
			}
			if try++; try >= w.conn.tm.Tries {
				stale = staleAnswer
			}
			return send()
		},
		Want{Flags: craft.FlagSYN | craft.FlagACK, AnySeq: true, Ack: w.conn.ISS + 1, Retry: &stale})
}

// resetStale answers a segment of a stale connection (staleAnswerOrSYNACK)
// as SYN-SENT does, <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.3, RFC 5961
// §4.2), which removes that connection, so that the SYN sent next finds the
// listener. The recorder forgets the segment: the same one again comes from
// a new connection, and is an answer, not a repeat.
func (w *Session) resetStale() error {
	last := w.rec.last()
	if last == nil || last.Dir != In || last.ICMP != "" {
		return nil
	}
	f := last.Flags
	if !staleAnswerOrSYNACK.Match(last, f) || f.Has(craft.FlagSYN) && last.Ack == w.conn.ISS+1 {
		return nil
	}
	w.rec.forget(last, f)
	return w.conn.SendRaw(craft.FlagRST, last.Ack, 0, nil, "reset a stale connection (RFC 9293 §3.10.7.3)")
}

func closedPort(ctx context.Context, w *Session) error {
	c := w.conn
	w.rec.states(result.Closed, result.Closed)
	x := c.ISS
	// A SYN,ACK is no wrong CLOSED: the port is open. It is reset, and
	// nothing is judged (Beyond ends the step inconclusive).
	open := Want{Flags: craft.FlagSYN | craft.FlagACK, AnySeq: true, Ack: x + 1}
	if _, err := w.ExpectStep(ctx, Step{Name: "CLOSED: SYN → RST,ACK", Rule: ruleClosed, Probe: "SYN x", Wire: result.Closed},
		func(bool) error { return c.SendRaw(craft.FlagSYN, x, 0, nil, "") },
		Want{Flags: craft.FlagRST | craft.FlagACK, Seq: 0, Ack: x + 1, Beyond: &open}); err != nil {
		if last, seg := &w.res.Checks[len(w.res.Checks)-1], w.rec.last(); last.Verdict == Inconclusive && seg != nil && seg.Dir == In && seg.Flags == craft.FlagSYN|craft.FlagACK && seg.Ack == x+1 {
			last.Received = describe(seg)
			last.Reason = fmt.Sprintf("port %d answered with a SYN,ACK: it is open, not closed (reset); pass --closed-port with a port that has no listener", w.remote.Port())
			_ = c.SendRaw(craft.FlagRST, x+1, 0, nil, "reset the open port's connection")
		}
		return err
	}
	y := x ^ 0x5a5a5a5a
	if err := c.spaceProbe(ctx); err != nil {
		return err
	}
	_, err := w.ExpectStep(ctx, Step{Name: "CLOSED: ACK → RST", Rule: ruleClosedProbe, Probe: "ACK y", Wire: result.Closed},
		func(bool) error { return c.SendRaw(craft.FlagACK, x+1, y, nil, "") },
		Want{Flags: craft.FlagRST, Seq: y})
	return err
}

func handshake(ctx context.Context, w *Session) error {
	return w.Open(ctx)
}

func synRcvd(ctx context.Context, w *Session) error {
	c := w.conn
	iss := c.ISS
	r, err := w.ExpectSYNACK(ctx, Step{Name: "LISTEN → SYN_RCVD", Rule: ruleListen, Probe: "SYN x"}, c.SendSYN)
	if err != nil {
		return err
	}
	remoteISS := r.Seg.Seq
	c.RcvNxt = remoteISS + 1
	w.rec.states(result.SynSent, result.SynRcvd)
	// Withhold the final ACK: the remote retransmits its SYN-ACK with the
	// same ISS (Linux: after 1 s, then 3, 7, 15, 31 s).
	if _, err := w.ExpectRemote(ctx, Step{Name: "SYN_RCVD: SYN,ACK retransmitted with the same ISS", Rule: ruleRetransmit, Wire: result.SynRcvd},
		Want{Flags: craft.FlagSYN | craft.FlagACK, Seq: remoteISS, Ack: iss + 1}, w.cfg.Timing.RemoteRetransmit); err != nil {
		return err
	}
	bad := remoteISS + 5
	_, err = w.ExpectStep(ctx, Step{Name: "SYN_RCVD: bad ACK → RST, state kept", Rule: ruleSynRcvdBad, Probe: "ACK ISS+5", Wire: result.SynRcvd},
		func(bool) error { return c.SendRaw(craft.FlagACK, iss+1, bad, nil, "bad ACK") },
		Want{Flags: craft.FlagRST, Seq: bad})
	return err
}

// SendTrigger sends the plan's payload (the request that makes the app act)
// on an ESTABLISHED connection.
func (w *Session) SendTrigger() error {
	if len(w.plan.Payload) == 0 {
		return nil
	}
	return w.conn.SendNext(craft.FlagPSH|craft.FlagACK, w.plan.Payload, "trigger ("+w.cfg.Trigger.Name()+")")
}

func passiveClose(ctx context.Context, w *Session) error {
	c := w.conn
	if err := w.Open(ctx); err != nil {
		return err
	}
	c.AutoAckData = true
	// Our FIN: the remote acknowledges it and enters CLOSE_WAIT. A
	// trigger's payload rides in the FIN's segment: sent apart, an app
	// that answers and closes at once (an HTTP/1.0 server) may send its
	// FIN before our FIN arrives, and that is a simultaneous close
	// (CLOSING), not a passive one. Unless acknowledged, the segment is
	// sent again, as TCP does (§3.8.1).
	trigSeq := c.SndNxt
	finSeq := trigSeq.Add(tcpconn.Size(len(w.plan.Payload)))
	finFlags, note := craft.FlagFIN|craft.FlagACK, ""
	if len(w.plan.Payload) > 0 {
		finFlags |= craft.FlagPSH
		note = "trigger (" + w.cfg.Trigger.Name() + ") with FIN"
	}
	if _, err := w.ExpectStep(ctx, Step{Name: "ESTABLISHED → CLOSE_WAIT", Rule: ruleFinRcvd, Probe: "FIN", Wire: result.CloseWait},
		func(retry bool) error {
			if !retry {
				err := c.SendNext(finFlags, w.plan.Payload, note)
				w.rec.states(result.FinWait1, result.NoState)
				return err
			}
			return c.Retransmit(finFlags, trigSeq, c.RcvNxt, w.plan.Payload)
		},
		// An ACK up to our FIN only answers the request: the FIN is not
		// taken yet (lost, or still on its way).
		// Its FIN acknowledging ours passes too: the ACK came with the FIN
		// of an app that closed at once (or the pure ACK was lost); either
		// way the remote took our FIN (CLOSE_WAIT) and closed (LAST_ACK).
		Want{Flags: craft.FlagACK, AnySeq: true, Ack: finSeq + 1,
			Retry: &Want{Flags: craft.FlagACK, AnySeq: true, Ack: finSeq},
			Or:    &Want{Flags: craft.FlagFIN | craft.FlagACK, AnySeq: true, Ack: finSeq + 1}, OrWire: result.LastAck,
			OrNote: "our FIN was acknowledged in the remote's own FIN: CLOSE_WAIT lasted no time (its app closed on EOF)"}); err != nil {
		return err
	}
	w.rec.states(result.FinWait2, result.NoState)
	// The remote app closes: its FIN comes, its ACK covering ours.
	if !c.RemoteFINSeen {
		if _, err := w.ExpectRemote(ctx, Step{Name: "CLOSE_WAIT → LAST_ACK", Rule: ruleCloseCall, Wire: result.LastAck},
			Want{Flags: craft.FlagFIN | craft.FlagACK, AnySeq: true, Ack: finSeq + 1}, w.plan.Wait); err != nil {
			return err
		}
	} else if c.RemoteFINAck != finSeq+1 {
		// Its FIN left before our FIN arrived: both sides closed at once
		// (FIN_WAIT_1 → CLOSING, §3.6), which this walk cannot judge.
		w.Check(Check{Name: "CLOSE_WAIT → LAST_ACK", Rule: ruleCloseCall,
			Expected: fmt.Sprintf("<FIN> after our FIN, <ACK=%d>", finSeq+1),
			Received: fmt.Sprintf("<FIN> with <ACK=%d>", c.RemoteFINAck), Verdict: Inconclusive,
			Reason: "the remote app closed before our FIN reached it: a simultaneous close (CLOSING), not a passive close; use a trigger after which the app waits for our FIN (--close-trigger lab in the lab)"}, result.Closing)
		return errStop
	} else {
		w.Check(Check{Name: "CLOSE_WAIT → LAST_ACK", Rule: ruleCloseCall, Expected: "<FIN> after our FIN",
			Received: "FIN", Verdict: Pass}, result.LastAck)
	}
	f := c.RemoteFIN
	// Withhold our ACK of F: KA1 shows LAST_ACK, <SEQ=F+1><ACK=x+1>.
	if _, err := w.ExpectStep(ctx, Step{Name: "LAST_ACK: FIN sent, ours acknowledged", Rule: ruleKeepAlive, Probe: "KA1", Wire: result.LastAck},
		func(bool) error { return c.KeepAlive() },
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: finSeq + 1}); err != nil {
		return err
	}
	c.RcvNxt = f + 1
	if err := c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ACK of FIN"); err != nil {
		return err
	}
	w.rec.states(result.TimeWait, result.Closed)
	// Nothing may answer our ACK (a retransmission of its FIN means our
	// ACK was lost). The silence shows no state by itself: a lost ACK is
	// silent too. A reset <SEQ=F+1> is what CLOSED answers to a second
	// copy of our ACK, so on a duplicating path it proves nothing.
	if err := w.expectSilenceUnsure(ctx, Step{Name: "LAST_ACK → CLOSED: no reply to the ACK of its FIN", Rule: ruleLastAck}, "nothing",
		w.cfg.Timing.Quiet, func(r *Reply) bool { return !r.Seg.Retransmission },
		func(r *Reply) string {
			if r.Flags == craft.FlagRST && r.Seg.Seq == c.RcvNxt {
				return "a reset answered our ACK: CLOSED's answer to a copy of it (a duplicating path), or a reset instead of silence"
			}
			return ""
		}); err != nil {
		return err
	}
	// Then any segment draws a RST: CLOSED. LAST_ACK's answer to KA1
	// instead means our ACK was lost: send it again.
	_, err := w.ExpectStep(ctx, Step{Name: "CLOSED: ACK → RST", Rule: ruleClosedProbe, Probe: "KA1", Wire: result.Closed},
		func(retry bool) error {
			if retry {
				if err := c.Retransmit(craft.FlagACK, c.SndNxt, c.RcvNxt, nil); err != nil {
					return err
				}
			}
			return c.KeepAlive()
		},
		Want{Flags: craft.FlagRST, Seq: c.RcvNxt, Retry: &Want{Flags: craft.FlagACK, Seq: f + 1, Ack: finSeq + 1}})
	c.HaveIRS = false // nothing left to tidy
	return err
}

// RemoteCloses makes the remote app close first and waits for its FIN,
// acknowledging its data but not the FIN: the remote is in FIN_WAIT_1.
func (w *Session) RemoteCloses(ctx context.Context) error {
	c := w.conn
	c.AutoAckData = true
	trigSeq := c.SndNxt
	if err := w.SendTrigger(); err != nil {
		return err
	}
	if !c.RemoteFINSeen {
		// The request is sent again until acknowledged, as TCP does
		// (§3.8.1): lost, the app would never close.
		acked := len(w.plan.Payload) == 0
		deadline := time.Now().Add(w.plan.Wait)
		for try := 1; !c.RemoteFINSeen; {
			wait := deadline
			if !acked && try < w.cfg.Timing.Tries {
				wait = time.Now().Add(w.cfg.Timing.Reply)
			}
			r, err := c.next(ctx, wait)
			if errors.Is(err, probe.ErrTimeout) && time.Now().Before(deadline) {
				if err := c.Retransmit(craft.FlagPSH|craft.FlagACK, trigSeq, c.RcvNxt, w.plan.Payload); err != nil {
					return err
				}
				try++
				continue
			}
			if err == nil && r.Seg != nil && r.Flags.Has(craft.FlagACK) && c.SndNxt.LessEq(r.Seg.Ack) {
				acked = true
			}
			if err != nil {
				w.Check(Check{Name: "ESTABLISHED → FIN_WAIT_1", Rule: ruleActiveClose, Expected: "a FIN from the remote",
					Received: "nothing", Verdict: Inconclusive,
					Reason: fmt.Sprintf("the remote app did not close within %v (trigger %s)", w.plan.Wait, w.cfg.Trigger.Name())}, result.NoState)
				return errStop
			}
		}
	}
	w.Check(Check{Name: "ESTABLISHED → FIN_WAIT_1", Rule: ruleActiveClose, Expected: "<CTL=FIN,ACK> from the remote",
		Received: describe(w.rec.lastFIN()), Verdict: Pass}, result.FinWait1)
	w.rec.states(result.CloseWait, result.NoState)
	return nil
}

func activeClose(ctx context.Context, w *Session) error {
	c := w.conn
	if err := w.Open(ctx); err != nil {
		return err
	}
	if err := w.RemoteCloses(ctx); err != nil {
		return err
	}
	f := c.RemoteFIN
	// We do not ACK F: it is retransmitted; KA1 shows <SEQ=F+1>.
	if _, err := w.ExpectRemote(ctx, Step{Name: "FIN_WAIT_1: FIN retransmitted", Rule: ruleRetransmit, Wire: result.FinWait1},
		Want{Flags: craft.FlagFIN | craft.FlagACK, Seq: f, AnyAck: true, IgnoreData: true}, w.cfg.Timing.RemoteRetransmit); err != nil {
		return err
	}
	if _, err := w.ExpectStep(ctx, Step{Name: "FIN_WAIT_1: FIN sent, not yet acknowledged", Rule: ruleKeepAlive, Probe: "KA1", Wire: result.FinWait1},
		func(bool) error { return c.KeepAlive() },
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: c.SndNxt}); err != nil {
		return err
	}
	// ACK F+1, no FIN of ours: FIN_WAIT_2.
	c.RcvNxt = f + 1
	if err := c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ACK of FIN"); err != nil {
		return err
	}
	w.rec.states(result.CloseWait, result.FinWait2)
	if _, err := w.ExpectStep(ctx, Step{Name: "FIN_WAIT_1 → FIN_WAIT_2", Rule: ruleFinWait1, Probe: "ACK F+1, then KA1", Wire: result.FinWait2},
		func(bool) error { return c.KeepAlive() },
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: c.SndNxt}); err != nil {
		return err
	}
	// Our FIN: TIME_WAIT.
	fin := c.SndNxt
	if _, err := w.ExpectStep(ctx, Step{Name: "FIN_WAIT_2 → TIME_WAIT", Rule: ruleFinWait2, Probe: "FIN", Wire: result.TimeWait},
		func(retry bool) error {
			if retry {
				return c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, c.RcvNxt, nil)
			}
			err := c.SendNext(craft.FlagFIN|craft.FlagACK, nil, "")
			w.rec.states(result.LastAck, result.NoState)
			return err
		},
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: fin + 1}); err != nil {
		return err
	}
	w.rec.states(result.Closed, result.TimeWait)
	return w.timeWaitReACK(ctx, "TIME_WAIT: retransmitted FIN re-acknowledged", ruleTimeWait, f, fin)
}

// timeWaitReACK retransmits our FIN into TIME_WAIT: it is acknowledged again
// (the check named name, by rule), which shows the remote is in TIME_WAIT.
func (w *Session) timeWaitReACK(ctx context.Context, name, rule string, f, fin tcpconn.Seq) error {
	c := w.conn
	// The re-ACK answers a duplicate segment: space it past the rate limit.
	c.last = time.Now()
	if err := c.spaceProbe(ctx); err != nil {
		return err
	}
	_, err := w.ExpectStep(ctx, Step{Name: name, Rule: rule, Probe: "our FIN again", Wire: result.TimeWait},
		func(bool) error { return c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, f+1, nil) },
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: fin + 1})
	return err
}

func simultaneousClose(ctx context.Context, w *Session) error {
	c := w.conn
	if err := w.Open(ctx); err != nil {
		return err
	}
	if err := w.RemoteCloses(ctx); err != nil {
		return err
	}
	f := c.RemoteFIN
	// Our FIN acknowledges the data before F, not F: the remote is CLOSING
	// and acknowledges our FIN <SEQ=F+1><ACK=fin+1>.
	fin := c.SndNxt
	if _, err := w.ExpectStep(ctx, Step{Name: "FIN_WAIT_1 → CLOSING", Rule: ruleClosing, Probe: "FIN, ACK F (not F+1)", Wire: result.Closing},
		func(retry bool) error {
			if retry {
				return c.Retransmit(craft.FlagFIN|craft.FlagACK, fin, f, nil)
			}
			err := c.SendNext(craft.FlagFIN|craft.FlagACK, nil, "")
			w.rec.states(result.Closing, result.NoState)
			return err
		},
		Want{Flags: craft.FlagACK, Seq: f + 1, Ack: fin + 1}); err != nil {
		return err
	}
	// ACK F+1: TIME_WAIT, shown by a re-ACK of our FIN.
	c.RcvNxt = f + 1
	if err := c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ACK of FIN"); err != nil {
		return err
	}
	w.rec.states(result.TimeWait, result.TimeWait)
	return w.timeWaitReACK(ctx, "CLOSING → TIME_WAIT", ruleClosingAck, f, fin)
}

func halfClose(ctx context.Context, w *Session) error {
	c := w.conn
	if err := w.Open(ctx); err != nil {
		return err
	}
	c.AutoAckData = true
	// The request and our FIN go in one segment, so that the remote takes
	// both at once or neither: a FIN lost after the request would let the
	// app answer and close before it, and the remote would not be
	// half-closed at all. Unacknowledged, the segment is sent again, as
	// TCP does (§3.8.1).
	trigSeq := c.SndNxt
	if err := c.SendNext(craft.FlagFIN|craft.FlagPSH|craft.FlagACK, w.plan.Payload, "trigger ("+w.cfg.Trigger.Name()+") with FIN"); err != nil {
		return err
	}
	w.rec.states(result.FinWait1, result.NoState)
	// Only data that acknowledges our FIN (SEG.ACK = our FIN + 1) was sent
	// after the remote took it.
	finAck := c.OurFIN + 1
	got, finAcked, ourFINAcked := 0, false, false
	deadline := time.Now().Add(w.plan.Wait)
	for try := 1; got == 0 || !c.RemoteFINSeen; {
		wait := deadline
		if !ourFINAcked && try < w.cfg.Timing.Tries {
			wait = time.Now().Add(w.cfg.Timing.Reply)
		}
		had := len(c.Received)
		r, err := c.next(ctx, wait)
		if errors.Is(err, probe.ErrTimeout) && time.Now().Before(deadline) {
			if err := c.Retransmit(craft.FlagFIN|craft.FlagPSH|craft.FlagACK, trigSeq, c.RcvNxt, w.plan.Payload); err != nil {
				return err
			}
			try++
			continue
		}
		if err != nil {
			break
		}
		if r.Seg != nil && r.Flags.Has(craft.FlagACK) && r.Seg.Ack == finAck {
			ourFINAcked = true
		}
		if r.Seg == nil || r.Seg.ICMP != "" || r.Seg.Ack != finAck || !r.Flags.Has(craft.FlagACK) {
			continue
		}
		// Data taken now (a retransmission that carries its FIN again may
		// bring data we lost).
		got += len(c.Received) - had
		if r.Flags.Has(craft.FlagFIN) {
			finAcked = true
		}
	}
	chk := Check{Name: "CLOSE_WAIT: data still flows after our FIN", Rule: ruleHalfClose,
		Expected: "data from the remote after it acknowledged our FIN", Verdict: Pass,
		Received: fmt.Sprintf("%d bytes, then FIN", got)}
	switch {
	case got == 0 && len(c.Received) > 0:
		chk.Verdict, chk.Reason = Inconclusive, fmt.Sprintf("the remote's data did not acknowledge our FIN (lost?) within %v", w.plan.Wait)
	case got == 0:
		chk.Verdict, chk.Reason = Inconclusive, fmt.Sprintf("the remote sent no data within %v", w.plan.Wait)
	}
	// With its FIN sent after ours was taken (and not yet acknowledged by
	// us) the remote is in LAST_ACK. Without its FIN it may be in
	// CLOSE_WAIT or its FIN may be lost: no state is claimed.
	wire := result.NoState
	if finAcked {
		wire = result.LastAck
	}
	w.Check(chk, wire)
	if chk.Verdict != Pass {
		return errStop
	}
	if !c.RemoteFINSeen {
		return nil
	}
	f := c.RemoteFIN
	c.RcvNxt = f + 1
	if err := c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ACK of FIN"); err != nil {
		return err
	}
	w.rec.states(result.TimeWait, result.Closed)
	c.HaveIRS = false
	return nil
}

func reset(ctx context.Context, w *Session) error {
	c := w.conn
	if err := w.Open(ctx); err != nil {
		return err
	}
	if err := c.SendRaw(craft.FlagRST, c.SndNxt, 0, nil, "RSTx"); err != nil {
		return err
	}
	w.rec.states(result.Closed, result.Closed)
	// Silence shows no state by itself: a lost RST is silent too.
	if err := w.ExpectSilence(ctx, Step{Name: "ESTABLISHED → CLOSED on an exact RST", Rule: ruleExactRST}, "no reply to a RST (§3.10.7.4)",
		w.cfg.Timing.Quiet, func(r *Reply) bool { return !r.Seg.Retransmission }); err != nil {
		return err
	}
	// ESTABLISHED's answer to KA1 instead of a reset means our RST was
	// lost (or ignored): send it again.
	_, err := w.ExpectStep(ctx, Step{Name: "CLOSED: ACK → RST", Rule: ruleClosedProbe, Probe: "KA1", Wire: result.Closed},
		func(retry bool) error {
			if retry {
				if err := c.SendRaw(craft.FlagRST, c.SndNxt, 0, nil, "RSTx again"); err != nil {
					return err
				}
			}
			return c.KeepAlive()
		},
		Want{Flags: craft.FlagRST, Seq: c.RcvNxt, Retry: &Want{Flags: craft.FlagACK, Seq: c.RcvNxt, Ack: c.SndNxt}})
	c.HaveIRS = false
	return err
}

func synSent(ctx context.Context, w *Session) error {
	c := w.conn
	w.rec.states(result.Listen, result.Closed)
	if err := w.dial.Dial(ctx, w.flow.Local.Port()); err != nil {
		c := Check{Name: "CLOSED → SYN_SENT", Rule: ruleSynSent, Expected: "a SYN from the remote", Received: "nothing"}
		c.Verdict, c.Reason = Unfinished(err)
		w.Check(c, result.NoState)
		return errStop
	}
	// The client's SYN: learn its port and ISS.
	deadline := time.Now().Add(w.plan.Wait)
	var syn *Reply
	for syn == nil {
		r, err := c.next(ctx, deadline)
		if err != nil {
			w.Check(Check{Name: "CLOSED → SYN_SENT", Rule: ruleSynSent, Expected: "a SYN from the remote", Received: "nothing",
				Verdict: Inconclusive, Reason: fmt.Sprintf("no SYN within %v", w.plan.Wait)}, result.NoState)
			return errStop
		}
		if r.Flags == craft.FlagSYN {
			syn = r
		}
	}
	if err := w.flow.Connect(syn.SrcPort); err != nil {
		return err
	}
	w.remote = w.flow.Remote
	w.res.Target = w.remote
	irs := syn.Seg.Seq
	c.RcvNxt = irs + 1
	w.Check(Check{Name: "CLOSED → SYN_SENT", Rule: ruleSynSent, Expected: "<SEQ=ISS><CTL=SYN> from the remote",
		Received: describe(syn.Seg), Verdict: Pass}, result.SynSent)
	// Stay silent: the SYN comes again with the same ISS (Linux: after 1 s).
	if _, err := w.ExpectRemote(ctx, Step{Name: "SYN_SENT: SYN retransmitted with the same ISS", Rule: ruleRetransmit, Wire: result.SynSent},
		Want{Flags: craft.FlagSYN, Seq: irs}, w.cfg.Timing.RemoteRetransmit); err != nil {
		return err
	}
	// Simultaneous open: our bare SYN draws <SEQ=ISS><ACK=x+1><CTL=SYN,ACK>.
	iss := c.ISS
	_, err := w.ExpectStep(ctx, Step{Name: "SYN_SENT → SYN_RCVD (simultaneous open)", Rule: ruleSimOpen, Probe: "SYN x", Wire: result.SynRcvd},
		func(retry bool) error {
			if retry {
				c.SndNxt = iss
			}
			return c.SendNext(craft.FlagSYN, nil, "")
		},
		// A challenge ACK <SEQ=ISS+1><ACK=x+1> (RFC 5961 §4) answers our
		// SYN again when its SYN,ACK was lost: it comes again by its
		// timer, which backs off past our tries' span when a copy is lost
		// too.
		Want{Flags: craft.FlagSYN | craft.FlagACK, Seq: irs, Ack: iss + 1,
			Retry:     &Want{Flags: craft.FlagACK, Seq: irs + 1, Ack: iss + 1},
			RetryWait: w.cfg.Timing.RemoteRetransmit})
	if err == nil {
		w.rec.states(result.SynRcvd, result.SynRcvd)
	}
	return err
}
