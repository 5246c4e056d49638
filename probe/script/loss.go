package script

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// A script is exact, as packetdrill's are: on a clean path a missing or
// different segment is a FAIL. On a path that loses or duplicates segments
// the same script would fail for the path's sake, not the stack's, so the
// runner then plays its lines as TCP would (RFC 9293 §3.8.1): it sends its
// last injected segment again when an answer does not come, answers a
// remote's retransmission of what it acknowledged with that segment again,
// passes over repeats, and calls a difference that loss can explain
// inconclusive, with the reason. A difference loss cannot explain (other
// options, window or data in the line's own segment, an ACK of more than
// we sent) still fails.
//
// The path is known lossy when the user says so (Config.Lossy: `run
// --lossy`, or the lab's impairment). Evidence within a run is not taken
// for it: a byte-identical copy may answer a script that sent the same
// segment twice, and a clean path keeps packetdrill's strictness. A remote that
// retransmits what we acknowledged (our ACK did not reach it) gets our last
// segment again and is passed over on any path, a few times per script:
// a stack that goes on ignores our ACKs, which is judged.

// Loss handling bounds.
const (
	// lossTries is how many times a line sends our last segment again.
	lossTries = 3
	// lossWait is how long each try waits for its answer: above the 500 ms
	// a remote may rate-limit its answers to out-of-window segments by
	// (RFC 5961 §7, Linux's tcp_invalid_ratelimit), so that a repeat of
	// our segment is not ignored for coming too soon.
	lossWait = 600 * time.Millisecond
	// lossDialWait is how much later the line after a %dial may see the
	// client's SYN: the request to the lab's client crossed the lossy
	// path on a TCP connection, which retransmits after 200 ms to 1 s.
	lossDialWait = time.Second
)

// lossy reports whether the path is known to lose or duplicate segments.
func (r *runner) lossy() bool { return r.cfg.Lossy }

// lossNote says why the path is taken for lossy, for reasons.
func (r *runner) lossNote() string { return "the path is lossy (--lossy or the lab's impairment)" }

// ourSeg is a copy of a segment a "<" line or %send injected, for sending
// it again.
type ourSeg struct {
	seg  craft.Segment
	line int
	// before is the wire model's state when it went out; n counts our
	// segments (1 for the first).
	before result.State
	n      int
}

// maxUnconfirmed bounds the segments a retry sends again.
const maxUnconfirmed = 4

// keep records seg (copied: the caller's buffers are reused) as our last
// segment and as one not yet confirmed to have arrived; before is the wire
// model's state before it.
func (r *runner) keep(seg *craft.Segment, line int, before result.State) {
	r.nOurs++
	o := ourSeg{seg: *seg, line: line, before: before, n: r.nOurs}
	o.seg.ID = 0 // a new IP datagram: SendVerbatim draws a new ID
	o.seg.Payload = append([]byte(nil), seg.Payload...)
	o.seg.Options = make([]craft.Option, len(seg.Options))
	for i, op := range seg.Options {
		o.seg.Options[i] = craft.Option{Kind: op.Kind, Data: append([]byte(nil), op.Data...)}
	}
	if len(r.unconfirmed) == maxUnconfirmed {
		r.unconfirmed = append(r.unconfirmed[:0], r.unconfirmed[1:]...)
	}
	r.unconfirmed = append(r.unconfirmed, o)
	if len(r.ours) == maxOurs {
		r.ours = append(r.ours[:0], r.ours[1:]...)
	}
	r.ours = append(r.ours, o)
	r.last, r.haveLast = o, true
}

// maxOurs bounds the segments resendFrom may send again.
const maxOurs = 8

// sentIn is the index in ours of the last segment sent while the wire
// model was in state; -1 when none.
func (r *runner) sentIn(state result.State) int {
	for j := len(r.ours) - 1; j >= 0; j-- {
		if r.ours[j].before == state {
			return j
		}
	}
	return -1
}

// resendFrom sends again our segments from the last one that went out
// while the wire model was in state (a kernel still there did not get it)
// to our last; it returns the count of the first (0: none found, our last
// one sent again).
func (r *runner) resendFrom(state result.State, why string) (int, error) {
	i := r.sentIn(state)
	if i < 0 {
		return 0, r.resendLast(why)
	}
	for _, o := range r.ours[i:] {
		if err := r.resendOne(o, why); err != nil {
			return 0, err
		}
	}
	return r.ours[i].n, nil
}

// confirmed says the remote answered, or its kernel showed, what we sent
// so far: a retry sends only what comes after.
func (r *runner) confirmed() { r.unconfirmed = r.unconfirmed[:0] }

// lastLine is the line of our last segment, for reasons.
func (r *runner) lastLine() int { return r.last.line }

// resend sends our segments not yet confirmed again, in order (our last
// one when all are), byte for byte but for the IP ID: a TCP retransmits
// what was not acknowledged (RFC 9293 §3.8.1), and which of them the path
// lost is not known. Their TSvals stay: a script's TSvals are the script's
// clock, and a moved one would put the values of the script's later lines
// behind it, where PAWS (RFC 7323 §5.3) drops them; an unmoved TSval is
// what a clock that did not tick sends.
func (r *runner) resend(why string) error {
	if !r.haveLast {
		return nil
	}
	segs := r.unconfirmed
	if len(segs) == 0 {
		segs = []ourSeg{r.last}
	}
	for _, o := range segs {
		if err := r.resendOne(o, why); err != nil {
			return err
		}
	}
	return nil
}

// resendLast sends our last segment again (see resend).
func (r *runner) resendLast(why string) error {
	if !r.haveLast {
		return nil
	}
	return r.resendOne(r.last, why)
}

func (r *runner) resendOne(o ourSeg, why string) error {
	seg := o.seg
	if err := r.c.SendVerbatim(&seg, fmt.Sprintf("line %d again: %s", o.line, why)); err != nil {
		return fmt.Errorf("%s:%d: send again: %w", r.s.Name, o.line, err)
	}
	if out := r.c.Rec.Last(); out != nil {
		out.RelSeq = seg.Seq - r.iss
		out.RelAck = 0
		if r.haveIRS && seg.Flags.Has(craft.FlagACK) {
			out.RelAck = seg.Ack - r.irs
		}
	}
	r.c.Rec.States(result.NoState, r.m.state)
	r.resent++
	return nil
}

// acknowledged reports whether all of g's sequence space is below the
// acknowledgment of our last ACK: a retransmission of it means that ACK
// was lost (or the stack ignores ACKs, which loss cannot be told from).
func (r *runner) acknowledged(g *in) bool {
	if !r.haveIRS || !r.lastAckSent {
		return false
	}
	w := r.rel(g)
	end := w.Seq + uint32(len(g.payload))
	if g.flags.Has(craft.FlagSYN) {
		end++
	}
	if g.flags.Has(craft.FlagFIN) {
		end++
	}
	return end != w.Seq && seqLE(end, r.lastAck)
}

// ackOfOurs reports whether g is a bare ACK at (or past) the remote's next
// sequence number acknowledging no more than we sent: what a TCP sends for a copy of
// our segment, or before our next one arrived. It brings nothing new.
func (r *runner) ackOfOurs(g *in) bool {
	if g.icmp != "" || g.flags != craft.FlagACK || len(g.payload) > 0 || !r.haveIRS {
		return false
	}
	// At or past the remote's next sequence number: past it, a segment
	// of the remote's was lost (its retransmission is still to come).
	w := r.rel(g)
	return w.Seq-r.m.remoteNext < 1<<16 && seqLE(w.Ack, r.m.ourNext)
}

func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

// lossExplains says whether loss can explain that g, not want, came; the
// reason when it can. Only the line's own segment (the same flags,
// sequence number and length) with other options, window, urgent pointer
// or data, or acknowledging more than we sent, cannot be loss's doing;
// anything else may answer a state that a lost segment, ours or the
// remote's, left behind.
func (r *runner) lossExplains(want *Segment, g *in) (string, bool) {
	w := r.rel(g)
	sameSeg := g.flags == want.Flags && (want.AnySeq || w.Seq == want.Start) && uint32(len(g.payload)) == want.Len()
	if !sameSeg {
		return "a segment of ours or of the remote's may have been lost, and this may answer what did arrive", true
	}
	if want.HasAck && w.Ack != want.Ack {
		// An ACK short of what we sent: our data, SYN or FIN did not all
		// arrive. One above it is wrong on any path.
		if int32(w.Ack-want.Ack) < 0 && int32(w.Ack-r.m.ourNext) < 0 {
			return fmt.Sprintf("its ACK %d is short of our %d: a segment of ours was lost", w.Ack, r.m.ourNext), true
		}
	}
	return "", false
}

// wasState reports whether the wire model held state s before now: a
// kernel there is behind the segments we sent, as after one was lost.
func (r *runner) wasState(s result.State) bool {
	for _, h := range r.history {
		if h == s {
			return true
		}
	}
	return false
}

// laterState reports whether a line after ev expects state s.
func (r *runner) laterState(ev *Event, s result.State) bool {
	after := false
	for i := range r.s.Events {
		e := &r.s.Events[i]
		if e == ev {
			after = true
			continue
		}
		if after && e.Kind == ExpectState && e.State == s {
			return true
		}
	}
	return false
}

// noteState records the model's state in its history when it changed.
func (r *runner) noteState() {
	st := r.m.state
	if st == result.NoState || len(r.history) > 0 && r.history[len(r.history)-1] == st {
		return
	}
	r.history = append(r.history, st)
}

// lossCheck is an inconclusive check for a line whose difference loss
// explains.
func (r *runner) lossCheck(ev *Event, expected, received, why string) walk.Check {
	return walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: expected, Received: received, Verdict: walk.Inconclusive,
		Reason: r.lossNote() + ": " + why}
}

// catchUp, on a lossy path with an oracle, makes sure the remote got our
// segments before the next one goes out: the next segment's answer depends
// on the state ours left (an ACK far below SND.UNA draws a challenge ACK in
// ESTABLISHED, a reset in SYN_RCVD). A kernel still in a state the wire
// model left gets our segments again from the one that left it, as TCP
// retransmits what was not acknowledged. A kernel elsewhere (ahead: the
// remote app acted) is left to the script's lines to judge.
func (r *runner) catchUp(ctx context.Context) error {
	if !r.lossy() || r.cfg.Oracle == nil || !r.connected || len(r.unconfirmed) == 0 {
		return nil
	}
	want := r.m.state
	if want == result.NoState {
		return nil
	}
	// A kernel that cannot be read (NoState and kerr) is left to the next
	// %expect-state to report.
	k, _, err := r.settle(ctx, want, oracleSettle)
	for tries := 0; err == nil && k != want && k != result.NoState && r.wasState(k) && tries < lossTries; tries++ {
		if _, err = r.resendFrom(k, fmt.Sprintf("the kernel says %s, not %s, before the next line", k, want)); err != nil {
			return err
		}
		k, _, err = r.settle(ctx, want, lossWait)
	}
	if err != nil {
		return err
	}
	if k == want {
		r.confirmed()
	}
	return nil
}
