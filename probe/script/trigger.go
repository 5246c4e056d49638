package script

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

// A close trigger in band (Config.CloseTrigger): on a host without the
// lab's app control, a packetdrill close() or shutdown(SHUT_WR) of the
// remote app in ESTABLISHED is made by a request on the connection under
// test (walk's --close-trigger: an HTTP/1.0 request, whose server answers
// and closes). The request takes N bytes of our sequence space and the
// answer M bytes of the remote's, which the script does not know: after
// the trigger, its relative numbers are mapped through those offsets
// (ours + N, the remote's + M: shift), and the answer is accepted and
// acknowledged as data outside the script (RFC 9293 §3.10.7.4: in-order
// text is acknowledged). What the script checks after that, the remote's
// FIN and what follows, keeps its meaning: only the origin of each
// sequence space moved.

// Skip reasons of a close trigger, named so that a suite's skips can be
// counted by reason.
const (
	ReasonTriggerAfterFIN = "the remote app must close after our FIN, and a close trigger's request cannot follow a FIN of ours: run against the lab's app control"
	ReasonCloseWaitHeld   = "the remote app must keep its socket open after our FIN until a later close() (CLOSE_WAIT), and without the lab's app control a server may close at our FIN on its own (an HTTP server does, after its answer): run against the lab's app control"
	ReasonTriggerData     = "data went either way before the remote app closes: a close trigger's request and answer would mix with the script's data: run against the lab's app control"
	ReasonTriggerState    = "the remote app must close before the connection is ESTABLISHED, where a close trigger's request cannot go: run against the lab's app control"
	ReasonTriggerOnly     = "the remote app must write or reset here, and a close trigger can only make it close: run against the lab's app control"
	ReasonTriggerReadsOn  = "shutdown(SHUT_WR) keeps the remote app reading and the script sends data after it, but the close trigger's server closes its socket (data would be reset): run against the lab's app control"
)

// triggerPlan returns the close trigger's request and how long its answer
// may take, when the trigger can act on this script's connection.
func (r *runner) triggerPlan() ([]byte, time.Duration, bool) {
	t := r.cfg.CloseTrigger
	if t == nil || !r.connected {
		return nil, 0, false
	}
	p, err := t.Plan(walk.CloseFirst, r.flow.Remote.Port())
	if err != nil || len(p.Payload) == 0 || p.Port != r.flow.Remote.Port() {
		// No request (wait, none), or one for another port (the lab's):
		// nothing to send on this connection.
		return nil, 0, false
	}
	return p.Payload, p.Wait, true
}

// triggerable says why the app action at event i cannot be made by a close
// trigger ("" when it can).
func (r *runner) triggerable(i int) string {
	ev := &r.s.Events[i]
	switch {
	case ev.Action != "close" && ev.Action != "shutdown":
		return ReasonTriggerOnly
	case r.m.ourFIN:
		return ReasonTriggerAfterFIN
	case r.m.state != result.Established:
		return ReasonTriggerState
	case r.m.ourNext != 1 || r.m.remoteNext != 1:
		return ReasonTriggerData
	}
	if ev.Action == "shutdown" {
		for _, e := range r.s.Events[i+1:] {
			if e.Kind == Send || e.Kind == Packet && e.Segment.Dir == ToRemote && e.Segment.Len() > 0 {
				return ReasonTriggerReadsOn
			}
		}
	}
	return ""
}

// heldOpen reports whether the "<" line at event i is a FIN of ours after
// which the script has the remote app close (with checks after that)
// while the remote has not closed yet: its app must wait in CLOSE_WAIT for
// the script, which only the lab's app control makes sure of.
func (r *runner) heldOpen(i int) bool {
	ev := &r.s.Events[i]
	if _, ok := r.cfg.Lab.(AppController); ok && r.cfg.Lab != nil || !ev.Segment.Flags.Has(craft.FlagFIN) || r.m.remoteFIN || !r.s.Packetdrill {
		return false
	}
	for j := i + 1; j < len(r.s.Events); j++ {
		if e := &r.s.Events[j]; e.Kind == App && !e.Listener && (e.Action == "close" || e.Action == "shutdown") && r.later(j) {
			return true
		}
	}
	return false
}

// shift moves the origins of both sequence spaces: from now on the
// script's relative numbers are ours + ourBy and the remote's + remoteBy
// on the wire (rel, sendSegment and tidy all count from r.iss and r.irs).
func (r *runner) shift(ourBy, remoteBy uint32) {
	r.iss += ourBy
	r.irs += remoteBy
	r.ourOff += ourBy
	r.remoteOff += remoteBy
}

// closeByTrigger makes the remote app's close() or shutdown(SHUT_WR) at
// event i with the close trigger: our request at SND.NXT, the answer
// accepted and acknowledged, the numbers shifted past both; the remote's
// FIN (or whatever else came instead) is left for the next line to judge.
func (r *runner) closeByTrigger(ctx context.Context, i int, payload []byte, wait time.Duration) error {
	ev := &r.s.Events[i]
	if r.triggered != 0 {
		// The trigger's server closed its socket (close(), not only
		// shutdown()): a later close() is made already.
		r.res.Assumptions = append(r.res.Assumptions, fmt.Sprintf("line %d: %s: made already by the close trigger at line %d (its server closes its socket)", ev.Pos.Line, ev.Text, r.triggered))
		return nil
	}
	if why := r.triggerable(i); why != "" {
		r.skip(ev, why)
		return nil
	}
	r.triggered = ev.Pos.Line
	seg := r.triggerSeg(craft.FlagPSH|craft.FlagACK, payload)
	asked := time.Now()
	if err := r.c.SendVerbatim(&seg, fmt.Sprintf("line %d: the close trigger's request (%s)", ev.Pos.Line, r.cfg.CloseTrigger.Name())); err != nil {
		return fmt.Errorf("%s:%d: send the close trigger's request: %w", r.s.Name, ev.Pos.Line, err)
	}
	if out := r.c.Rec.Last(); out != nil {
		out.RelSeq, out.RelAck = r.m.ourNext, r.m.remoteNext
	}
	r.sent = true
	r.shift(uint32(len(payload)), 0)
	defer func() {
		r.res.Assumptions = append(r.res.Assumptions, fmt.Sprintf("line %d: %s made with %s: our request (%d bytes) and the remote's answer (%d bytes, accepted and acknowledged) are not the script's; sequence numbers offset by %d/%d (ours/the remote's) after it; its server closes its socket",
			ev.Pos.Line, ev.Text, triggerName(r.cfg.CloseTrigger), r.ourOff, r.remoteOff, r.ourOff, r.remoteOff))
	}()
	deadline := asked.Add(wait)
	for {
		g, err := r.read(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) {
			r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "the remote app closes: its FIN after the answer to the close trigger's request",
				Received: fmt.Sprintf("no FIN in %v (%d bytes of answer)", wait, r.remoteOff), Verdict: walk.Inconclusive,
				Reason: "the close trigger did not make the remote app close: the server keeps the connection open (not HTTP/1.0 answer-and-close?), or its answer was lost"})
			return errStop
		}
		if err != nil {
			return err
		}
		if g.icmp != "" || g.flags&(craft.FlagSYN|craft.FlagRST) != 0 {
			r.pending = g // for the next line to judge
			break
		}
		next := r.irs + r.m.remoteNext
		if n := uint32(len(g.payload)); n > 0 {
			if g.seq != next {
				// A retransmission of answer we took (our ACK lost),
				// or a gap: acknowledge what we have, wait for more.
				g.seg.Note = "the close trigger's answer, out of order or again"
				if err := r.ackTrigger(ev); err != nil {
					return err
				}
				continue
			}
			r.shift(0, n)
			g.seg.Note = fmt.Sprintf("the close trigger's answer (%d bytes, not the script's)", n)
			t := *g
			t.seq, t.payload, t.flags = g.seq+n, nil, g.flags&^craft.FlagPSH
			if g.flags.Has(craft.FlagFIN) {
				r.pending = &t // the FIN the script's next line wants
				break
			}
			r.observe(&t)
			if err := r.ackTrigger(ev); err != nil {
				return err
			}
			continue
		}
		if g.flags.Has(craft.FlagFIN) {
			r.pending = g
			break
		}
		// An ACK of our request, before the answer.
		r.observe(g)
	}
	// The FIN came at some time in the request's round trip: the next
	// line may come that much later, as after a lab app action.
	r.prev, r.actionRTT = asked, time.Since(asked)
	return nil
}

// ackTrigger acknowledges the close trigger's answer so far.
func (r *runner) ackTrigger(ev *Event) error {
	seg := r.triggerSeg(craft.FlagACK, nil)
	if err := r.c.SendVerbatim(&seg, fmt.Sprintf("line %d: acknowledges the close trigger's answer", ev.Pos.Line)); err != nil {
		return fmt.Errorf("%s:%d: acknowledge the close trigger's answer: %w", r.s.Name, ev.Pos.Line, err)
	}
	if out := r.c.Rec.Last(); out != nil {
		out.RelSeq, out.RelAck = r.m.ourNext, r.m.remoteNext
	}
	return nil
}

// triggerSeg is a segment of ours outside the script, at SND.NXT and
// acknowledging RCV.NXT, with the window and TSopt of our last segment (a
// TSopt once both sides sent one goes on every segment, RFC 7323 §3.2).
func (r *runner) triggerSeg(f craft.Flags, payload []byte) craft.Segment {
	seg := craft.Segment{Seq: r.iss + r.m.ourNext, Ack: r.irs + r.m.remoteNext, Flags: f, Window: tcpconn.DefaultWindow, Payload: payload}
	if r.haveLast {
		seg.Window = r.last.seg.Window
		for _, o := range r.last.seg.Options {
			if o.Kind == craft.OptTimestamps && !r.noTS {
				seg.Options = append(seg.Options, o)
			}
		}
	}
	return seg
}

// triggerName names a close trigger for an assumption.
func triggerName(t walk.Trigger) string {
	if t.Name() == "http" {
		return "an HTTP close trigger"
	}
	return "the close trigger " + t.Name()
}
