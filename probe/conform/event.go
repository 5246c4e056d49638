package conform

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// env is one running check: its session and what it shares with the run.
type env struct {
	cfg *Config
	s   *walk.Session
	c   *walk.Conn
	tm  walk.Timing
	sh  *shared
	// skip, when set, says why the check cannot run on this target.
	skip string
	// gated: the check holds a place in the run's gate (see gate); long:
	// one of the places for connections held half-open.
	gated, long bool
	leave       sync.Once
}

func (e *env) skipf(format string, args ...any) error {
	e.skip = fmt.Sprintf(format, args...)
	return errSkip
}

// endState is what the confirmation probe says of the connection after an
// event.
type endState int

const (
	endNone    endState = iota // no answer
	endKept                    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, as before the event
	endClosed                  // a RST: the connection is gone
	endChanged                 // another answer: the remote's variables moved
)

// stale reports whether r is the remote's own retransmission, not an
// answer to our probe: its FIN or data again (its timers), or, in
// SYN_RCVD, its SYN,ACK again, unless a SYN of ours went out just before
// it (Linux answers a retransmitted SYN with its SYN,ACK; that answer
// comes within a round trip, the timer's on its own schedule, RFC 6298
// §5). Under loss a check lasts long enough for the SYN,ACK timer to fire.
// A repeated pure ACK is an answer (a challenge ACK looks like the ACK
// before it).
func (e *env) stale(r *walk.Reply) bool {
	if r.Seg == nil || !r.Seg.Retransmission {
		return false
	}
	if r.Flags.Has(craft.FlagFIN) || r.Seg.Len > 0 {
		return true
	}
	if r.Flags&^craft.FlagPSH != craft.FlagSYN|craft.FlagACK {
		return false
	}
	syn, rtt := synTimes(e.s.Segments())
	return syn.IsZero() || r.Seg.At.Sub(syn) > 2*rtt+answerSlack
}

// answerSlack is what an answer to our SYN may take beyond two round trips
// of the handshake: the remote's and our scheduling.
const answerSlack = 10 * time.Millisecond

// synTimes returns when our last SYN went out and the handshake's round
// trip: from the last SYN sent before the first SYN,ACK arrived (by their
// times: a SYN,ACK read late is recorded after a SYN sent after it) to that
// SYN,ACK.
func synTimes(segs []walk.Segment) (last time.Time, rtt time.Duration) {
	var firstSynAck time.Time
	for _, s := range segs {
		switch {
		case s.Dir == walk.Out && s.Flags == craft.FlagSYN:
			if s.At.After(last) {
				last = s.At
			}
		case s.Dir == walk.In && s.Flags == craft.FlagSYN|craft.FlagACK && firstSynAck.IsZero():
			firstSynAck = s.At
		}
	}
	if firstSynAck.IsZero() {
		return last, 0
	}
	var before time.Time
	for _, s := range segs {
		if s.Dir == walk.Out && s.Flags == craft.FlagSYN && !s.At.After(firstSynAck) && s.At.After(before) {
			before = s.At
		}
	}
	if !before.IsZero() {
		rtt = firstSynAck.Sub(before)
	}
	return last, rtt
}

// await sends with send and returns the first new segment (or ICMP error)
// the remote sent after our first send, waiting up to wait after each
// send, and sending again up to tries times when nothing came; nil when
// nothing came at all. Segments the kernel received before our first send
// answer something earlier (a reach step's probe, read late under load):
// they are kept in early, not taken for the answer. With spaced,
// sends are at least Timing.RateLimit apart: a zero-length probe that
// needs an answer must be (Linux answers one invalid segment per 500 ms
// per socket); KA1 carries a byte and is exempt.
func (e *env) await(ctx context.Context, spaced bool, send func() error, tries int, wait time.Duration) (answer, error) {
	var a answer
	for range tries {
		if spaced {
			if err := e.c.SpaceProbe(ctx); err != nil {
				return a, err
			}
		}
		if a.start.IsZero() {
			a.start = time.Now()
		}
		if err := send(); err != nil {
			return a, err
		}
		a.sends++
		deadline := time.Now().Add(wait)
		for {
			r, err := e.c.Next(ctx, deadline)
			if errors.Is(err, probe.ErrTimeout) {
				break
			}
			if err != nil {
				return a, err
			}
			switch {
			case r.Seg != nil && r.Seg.At.Before(a.start):
				a.early = append(a.early, r)
			case !e.stale(r):
				a.r = r
				return a, nil
			}
		}
	}
	return a, nil
}

// answer is what await got.
type answer struct {
	r     *walk.Reply   // the first new segment after our first send; nil: none
	early []*walk.Reply // segments received before our first send, read after it
	start time.Time     // our first send
	sends int           // how many times send was called
}

// confirm asks whether the connection survived: KA1 draws the ACK of t when
// it did and a RST when it is gone. A SYN_RCVD connection is confirmed by
// completing the handshake first (a kept one becomes ESTABLISHED; a gone one
// answers the final ACK with a RST). early is what came before the
// confirmation was sent but was read after it.
func (e *env) confirm(ctx context.Context, t tcb) (endState, answer, error) {
	c := e.c
	send := c.KeepAlive
	if t.synRcvd {
		send = func() error {
			if err := c.SendRaw(craft.FlagACK, t.rcvNxt, t.sndNxt, nil, "final ACK"); err != nil {
				return err
			}
			return c.KeepAlive()
		}
	}
	a, err := e.await(ctx, false, send, e.tm.Tries, e.tm.Reply)
	r := a.r
	if err == nil {
		e.sh.path.add(a.sends, r != nil)
	}
	switch {
	case err != nil || r == nil:
		return endNone, a, err
	case r.Flags.Has(craft.FlagRST):
		return endClosed, a, nil
	case r.Seg.ICMP == "" && challengeACK(t).Match(r.Seg, r.Flags):
		return endKept, a, nil
	}
	return endChanged, a, nil
}

// confirmProbe names the confirmation of t.
func confirmProbe(t tcb) string {
	if t.synRcvd {
		return "the final ACK and KA1"
	}
	return "KA1"
}

// received writes what came of an event.
func received(reply *walk.Reply, end endState, confirm *walk.Reply, t tcb) string {
	s := "nothing"
	if reply != nil {
		s = walk.Describe(reply.Seg)
	}
	s += "; then " + confirmProbe(t) + " → "
	switch end {
	case endNone:
		return s + "nothing"
	case endKept:
		return s + walk.Describe(confirm.Seg) + " (connection kept)"
	case endClosed:
		return s + walk.Describe(confirm.Seg) + " (CLOSED)"
	}
	return s + walk.Describe(confirm.Seg)
}

// eventRun is the check of ev in the state of st.
func eventRun(st stateDef, ev event) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		t, err := st.reach(ctx, e)
		if err != nil {
			return err
		}
		return e.event(ctx, t, ev)
	}
}

// event sends ev, reads the answer, confirms what became of the connection
// and judges both against the RFC and the known deviations.
//
// No answer proves nothing on its own: the event or its answer may have
// been lost. So while nothing comes and the confirmation finds the
// connection as it was, the event is sent again (it changed nothing, so
// the remote is where it was before the first send), until the path's
// loss makes the silence believable (see pathLoss). In SYN_RCVD the
// confirmation completes the handshake, so there the event is sent that
// many times first and confirmed once: none of those events leaves
// SYN_RCVD other than by closing, after which a RST is ignored and a SYN
// or ACK draws what it would have drawn anyway.
func (e *env) event(ctx context.Context, t tcb, ev event) error {
	c := e.c
	// From the event on we send only the event and the confirmation: an
	// ACK of the remote's late data (its retransmission of what the path
	// lost while the state was reached) would draw answers of its own,
	// such as CLOSED's <SEQ=SEG.ACK><CTL=RST> after a reset the remote
	// took, that would be judged as answers to the event.
	c.AutoAckData = false
	// Silence that the RFC allows needs less evidence than silence that
	// goes against it (see silenceRiskAgainstRFC).
	risk := silenceRisk
	if !ev.rfc.silence {
		risk = silenceRiskAgainstRFC
	}
	var (
		reply *walk.Reply
		end   endState
		conf  answer
		start time.Time // our first send of the event
		sends int
	)
	for {
		if err := e.apart(ctx); err != nil {
			return err
		}
		a, err := e.await(ctx, true, func() error { return ev.send(c, t) }, 1, e.tm.Reply)
		if err != nil {
			return err
		}
		if start.IsZero() {
			start = a.start
		}
		sends++
		reply = a.r
		more := reply == nil && sends < min(e.sh.path.silentTries(risk), maxSilent)
		if t.synRcvd && more {
			continue
		}
		end, conf, err = e.confirm(ctx, t)
		if err != nil {
			return err
		}
		// An answer to the event that we read only after its wait ended (a
		// loaded machine) still answers it: the kernel's receive time says so.
		for _, r := range conf.early {
			if reply == nil && !r.Seg.At.Before(a.start) && !e.stale(r) {
				reply = r
			}
		}
		if reply != nil || end != endKept || !more {
			break
		}
	}
	if !t.remoteFIN && c.RemoteFINSeen {
		// The app closed by itself: the state could not be held for the
		// check (an app that closes soon after our FIN, or idles out).
		return e.skipf("the app on port %d closed the connection during the check: %s cannot be held there (use a port whose app keeps connections open, like the lab's 7001)",
			e.s.Remote().Port(), t.state)
	}
	rcv := received(reply, end, conf.r, t)
	if sends > 1 {
		rcv = fmt.Sprintf("%s (the event sent %d times)", rcv, sends)
	}
	chk := walk.Check{Name: t.state.String() + ": " + ev.what, Rule: ev.rule, Probe: ev.probe(t) + ", then " + confirmProbe(t),
		Expected: ev.expected(t.state, t), Received: rcv}
	switch {
	case end == endNone:
		chk.Verdict = walk.Inconclusive
		chk.Reason = fmt.Sprintf("no answer to %s after %d tries, %v apart: the connection's fate is unknown", confirmProbe(t), e.tm.Tries, e.tm.Reply)
	case reply == nil && end == endKept && sends < e.sh.path.silentTries(risk):
		chk.Verdict, chk.Reason = walk.Inconclusive, e.sh.path.tooLossy(sends, risk)
	case reply == nil && end == endClosed && ev.closesWithReply(t.state):
		// Closed, so the event cannot be sent again, and an answer that
		// comes with closing may have been lost: which outcome this was is
		// unknown.
		chk.Verdict = walk.Inconclusive
		chk.Reason = "the connection closed and no answer was seen, but an expected outcome closes it with an answer: it may have been lost"
	case ev.rfc.matches(t, reply, end):
		chk.Verdict, chk.Optional, chk.Has = walk.Pass, ev.optional, ev.rfcHas
		if o, ok := ev.rfcOptionalIn[t.state]; ok {
			chk.Optional, chk.Has = o, false
		}
	case judgeChoice(&chk, ev.choices(t.state), t, reply, end):
	default:
		chk.Verdict, chk.Reason = walk.Fail, "the answer differs from every one the RFC allows"
		for _, d := range ev.deviations(t.state) {
			if d.outcome.matches(t, reply, end) {
				d.apply(&chk)
				break
			}
		}
		if chk.Verdict == walk.Fail && chk.Deviation == "" && ev.copyAfterClose != nil && reply != nil && reply.Seg.ICMP == "" {
			n := e.duplicates()
			switch {
			case n == 0:
			case ev.copyAfterClose(t).Match(reply.Seg, reply.Flags):
				chk.Verdict = walk.Inconclusive
				chk.Reason = fmt.Sprintf("the answer a copy of the event draws once an earlier copy closed the connection; the path duplicates segments (%d copies seen in this run), so the answer to that earlier copy may have been lost", n)
			case reply.Flags.Has(craft.FlagRST) && e.copyAnswered(ev, t, start):
				chk.Verdict = walk.Inconclusive
				chk.Reason = fmt.Sprintf("a reset closed the connection, then a copy of the event drew the answer it draws once closed (%s), and the confirmation met that new connection; the path duplicates segments (%d copies seen in this run)", ev.copyAfterClose(t), n)
			}
		}
	}
	wire := result.NoState
	switch end {
	case endKept:
		wire = t.state
		if t.kept != result.NoState {
			wire = t.kept
		}
	case endClosed:
		wire = result.Closed
		c.Forget()
	}
	e.record(chk, wire)
	return nil
}

// copyAnswered reports whether the remote sent, since our first send of
// the event, the answer that ev's copyAfterClose describes: a copy of the
// event reached a connection an earlier copy had closed.
func (e *env) copyAnswered(ev event, t tcb, since time.Time) bool {
	want := ev.copyAfterClose(t)
	segs := e.s.Segments()
	for i := range segs {
		if s := &segs[i]; s.Dir == walk.In && s.ICMP == "" && !s.At.Before(since) && want.Match(s, s.Flags) {
			return true
		}
	}
	return false
}

// duplicates counts the copies the path made in this run: those of this
// check's connection and of the checks that ended before.
func (e *env) duplicates() int {
	return e.sh.path.duplicates() + copiesIn(e.s.Segments())
}

// copiesIn counts the remote's segments that the path delivered twice.
func copiesIn(segs []walk.Segment) int {
	n := 0
	for _, seg := range segs {
		if seg.Dir == walk.In && seg.Duplicate {
			n++
		}
	}
	return n
}

// apart waits until dupWindow has passed since the remote's last segment.
// A challenge ACK is the very ACK that answered the KA1 before it; sent
// within the same millisecond (the timestamp clock's tick), it is the same
// bytes, and the recorder takes a byte-identical copy that soon for one the
// path made, and drops it: a loss of our own making.
func (e *env) apart(ctx context.Context) error {
	segs := e.s.Segments()
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].Dir != walk.In {
			continue
		}
		wait := time.Until(segs[i].At.Add(dupWindow))
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// record adds a judged check. A pass or a deviation whose state the kernel
// (the oracle) contradicts is inconclusive: the wire inference was wrong,
// which says nothing of the target.
func (e *env) record(chk walk.Check, wire result.State) {
	if chk.Verdict == walk.Pass || chk.Verdict == walk.Deviation {
		if wire != result.NoState && e.cfg.Walk.Oracle != nil {
			k, kerr := e.s.Kernel()
			switch {
			case kerr != nil:
				chk.Verdict = walk.Inconclusive
				chk.Reason = fmt.Sprintf("the wire says %s, the kernel (sock_diag) could not be read: %v", wire, kerr)
				chk.Wire, chk.KernelErr, chk.Disagree = wire, kerr, true
			case k != wire:
				chk.Verdict = walk.Inconclusive
				chk.Reason = fmt.Sprintf("the wire says %s, the kernel (sock_diag) says %s", wire, k)
				chk.Wire, chk.Kernel, chk.Disagree = wire, k, true
			default:
				chk.Kernel = k
			}
		}
	}
	if chk.Verdict != walk.Pass && wire != result.NoState {
		chk.Wire = wire
		e.s.States(result.NoState, wire)
	}
	e.s.Check(chk, wire)
}

// judgeChoice passes chk when what came is one of the other outcomes the RFC
// allows, noting the optional mechanism it shows.
func judgeChoice(chk *walk.Check, cs []choice, t tcb, reply *walk.Reply, end endState) bool {
	for _, c := range cs {
		if c.outcome.matches(t, reply, end) {
			chk.Verdict, chk.Optional, chk.Has, chk.Reason = walk.Pass, c.optional, c.has, c.note
			return true
		}
	}
	return false
}

// apply records d on chk: a SHOULD departed from is a deviation, a MUST a
// failure; either way named, with its level and where it was seen.
func (d deviation) apply(chk *walk.Check) {
	chk.Verdict = walk.Deviation
	if d.level == levelMUST {
		chk.Verdict = walk.Fail
	}
	chk.Deviation, chk.Level, chk.SeenOn, chk.Reason = d.name, d.level, d.seenOn, d.why
}
