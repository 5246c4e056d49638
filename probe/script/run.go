package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// Config says where scripts run and what helps them.
type Config struct {
	Prober *probe.Prober
	// Port, when not zero, is the remote port of every script, whatever
	// its %port says.
	Port uint16
	// Lab lets %dial ask the lab's client to connect to us; without it a
	// script that dials is skipped. *walk.LabTarget is the one in use.
	Lab Dialer
	// Oracle, when set, reads the remote kernel's states: %expect-state
	// trusts it and reports where the wire inference disagrees.
	Oracle walk.Oracle
	// MaxWait bounds a "*" wait; zero means DefaultMaxWait.
	MaxWait time.Duration
	// DialTrigger, when set, makes the remote connect to us for %dial and
	// connect() instead of Lab (walk's --dial-trigger: wait:PORT,
	// connect-back:...); the SYN may take up to its Wait.
	DialTrigger walk.DialTrigger
	// ClosedPort is a port of the remote where nothing listens, for the
	// scripts whose socket is never listening nor connected (a packetdrill
	// socket in CLOSED); zero skips them.
	ClosedPort uint16
	// Slack is how much later than its line's time (tolerance included) an
	// expected segment may still come: packetdrill times a local stack,
	// tcpwalk a remote one behind a path with its own delay. Zero means
	// DefaultSlack; negative means none.
	Slack time.Duration
	// CloseTrigger, when set and there is no lab app control, makes a
	// packetdrill close() or shutdown(SHUT_WR) of the remote app in
	// ESTABLISHED with a request on the connection (walk's
	// --close-trigger http, string:..., hex:...; see trigger.go): the
	// script's sequence numbers are offset by the request's and the
	// answer's lengths after it.
	CloseTrigger walk.Trigger
	// Lossy says the path loses or duplicates segments (the user says so,
	// or the lab is impaired): the runner then plays lines as TCP would
	// on such a path (see loss.go).
	Lossy bool
}

// Dialer asks the remote host to connect to a port of ours (%dial). Dial
// returns once the request is accepted; the remote's SYN may come before.
type Dialer interface {
	Dial(ctx context.Context, port uint16) error
}

// Defaults of Config.
const (
	// DefaultMaxWait is how long an expected segment timed "*" may take.
	DefaultMaxWait = 10 * time.Second
	// DefaultSlack suits a lab or a LAN.
	DefaultSlack = 20 * time.Millisecond
)

// readGrace is how long past a deadline we still read, so that a segment
// the kernel timestamped in time but handed over late is judged by its
// timestamp, not by our scheduling.
const readGrace = 50 * time.Millisecond

// dialBusyWait bounds how long a dial waits for a busy lab client.
const dialBusyWait = 30 * time.Second

// oracleSettle is how long %expect-state polls the oracle for the state
// to appear: our last segment may still be on its way through the remote's
// stack.
const oracleSettle = 200 * time.Millisecond

// RunAll runs scripts, at most parallel at once (each on its own source
// port), and returns their results in the order given.
func RunAll(ctx context.Context, cfg Config, scripts []*Script, parallel int) []walk.Result {
	parallel = max(parallel, 1)
	out := make([]walk.Result, len(scripts))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, s := range scripts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = Run(ctx, cfg, s)
		}()
	}
	wg.Wait()
	return out
}

// Run runs one script as one connection and returns its result: Scenario
// is the script's name, each expected segment, %wait and %expect-state is a
// Check (Expected: the line as written; Received: what came, in the same
// notation; Rule: "script FILE:LINE"). The script stops at its first check
// that does not pass, as packetdrill does.
func Run(ctx context.Context, cfg Config, s *Script) walk.Result {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	switch {
	case cfg.Slack == 0:
		cfg.Slack = DefaultSlack
	case cfg.Slack < 0:
		cfg.Slack = 0
	}
	res := walk.Result{Scenario: s.Name, Summary: s.Summary, Start: time.Now(), Oracle: cfg.Oracle != nil}
	port := cfg.Port
	if port == 0 {
		port = s.Port
	}
	for _, a := range s.Assumptions {
		res.Assumptions = append(res.Assumptions, fmt.Sprintf("line %d: %s", a.Pos.Line, a.Text))
	}
	if s.Packetdrill {
		res.Assumptions = append(res.Assumptions, "the window and the option layout of \">\" lines are the stack the script was written for's own choice: not compared (flags, numbers, lengths and option kinds are)")
	}
	if s.Closed() {
		port = cfg.ClosedPort
		if port == 0 {
			return skipClosed(res)
		}
		res.Assumptions = append(res.Assumptions, fmt.Sprintf("nothing listens at port %d (the script's socket is in CLOSED)", port))
	}
	end := func(v walk.Verdict, reason string) walk.Result {
		res.Verdict, res.Reason, res.Duration = v, reason, time.Since(res.Start)
		return res
	}
	if cfg.Prober == nil {
		return end(walk.Inconclusive, "no prober")
	}
	res.Target = netip.AddrPortFrom(cfg.Prober.Remote(), port)
	if f := s.Family(); f != 0 && (f == 6) != cfg.Prober.Remote().Is6() {
		// packetdrill's --ip_version picks the family; here the
		// target address does, and it is the other one.
		have := 4
		if cfg.Prober.Remote().Is6() {
			have = 6
		}
		return end(walk.Skipped, fmt.Sprintf("the script is for IPv%d (--ip_version=%s) and the target %s is IPv%d: give the target's IPv%d address", f, s.IPVersion, cfg.Prober.Remote(), have, f))
	}
	if s.NeedsLab && cfg.Lab == nil {
		return end(walk.Skipped, "the script needs the lab (%needs lab: its control port or client), and the target is not the lab (run against it, or with --lab)")
	}
	if s.Dials && cfg.Lab == nil && cfg.DialTrigger == nil {
		return end(walk.Skipped, ReasonNoDialer)
	}
	if port == 0 && !s.Dials {
		return end(walk.Inconclusive, "no remote port: give %port in the script or HOST:PORT")
	}
	r := &runner{cfg: cfg, s: s, res: &res, m: newModel(s.Dials), ts: map[uint32]uint32{}, seen: map[[2]uint32]bool{}}
	var (
		flow *probe.Flow
		err  error
	)
	if s.Dials {
		var at uint16
		if cfg.DialTrigger != nil {
			at = cfg.DialTrigger.Port()
		}
		flow, err = cfg.Prober.Listen(at)
	} else {
		flow, err = cfg.Prober.NewFlow(port, 0)
		r.connected = true
	}
	if err != nil {
		return end(walk.Inconclusive, err.Error())
	}
	// The engine records both ways and tidies; the script's own segments
	// go out as written (SendVerbatim), as packetdrill sends them.
	r.c = tcpconn.New(flow, tcpconn.NewRecorder(result.NoState, r.m.state))
	r.flow, r.iss = flow, uint32(r.c.ISS)
	res.Local = r.flow.Local
	err = r.run(ctx)
	if err == nil && s.Packetdrill && res.Verdict != walk.Skipped && len(s.Events) > 0 {
		// packetdrill's last lines are often a final close() that is
		// clean-up here: what the remote sends right after the last
		// line (an answer to our last segment) is still judged, for a
		// little while, so that a verdict does not hang on a race.
		last := s.Events[len(s.Events)-1]
		err = r.quiet(ctx, time.Now().Add(readGrace), &Event{Pos: last.Pos, Text: "the end of the script"})
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, errStop)) {
		// Cut short: a wait the signal ended may have looked like the
		// silence a line wants. The rest of the script never ran.
		err = ctx.Err()
	}
	r.tidy()
	r.flow.Close()
	if err != nil && !errors.Is(err, errStop) {
		v, why := walk.Unfinished(err)
		res.Verdict = walk.Worse(res.Verdict, v)
		if res.Reason == "" || v == walk.Interrupted {
			res.Reason = why
		}
	}
	// Kernel timestamps order the record: a reply may have come before
	// our next segment went out, though we read it after.
	segs := r.c.Rec.Snapshot()
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].At.Before(segs[j].At) })
	res.Segments = segs
	res.Duration = time.Since(res.Start)
	finish(&res)
	if s.Optional != "" && res.Verdict == walk.Fail {
		res.Verdict = walk.Skipped
		res.Reason = "not implemented (optional): " + s.Optional + "; the remote answered otherwise (" + res.Reason + ")"
	}
	if s.Deviation != "" && res.Verdict == walk.Fail {
		// The failed line is the deviation's evidence.
		for i := range res.Checks {
			if c := &res.Checks[i]; c.Verdict == walk.Fail {
				c.Verdict, c.Deviation, c.Level = walk.Deviation, s.Deviation, "SHOULD"
				c.Reason = s.DeviationWhy + " (" + c.Reason + ")"
			}
		}
		res.Verdict, res.Reason = walk.Deviation, s.Deviation+": "+s.DeviationWhy
	}
	return res
}

// finish computes the overall verdict as package walk does.
func finish(r *walk.Result) {
	if r.Verdict == result.Undecided && len(r.Checks) == 0 {
		r.Verdict = walk.Inconclusive
		if r.Reason == "" {
			r.Reason = "no check ran: the script expects nothing (add a `>` line, %wait or %expect-state)"
		}
	}
	if r.Verdict == result.Undecided {
		r.Verdict = walk.Pass
	}
	judged := 0
	for _, c := range r.Checks {
		if c.Verdict != walk.Skipped {
			judged++
		}
	}
	if judged == 0 && r.Verdict == walk.Pass {
		r.Verdict = walk.Inconclusive
		if r.Reason == "" {
			r.Reason = "no check ran: the script expects nothing (add a `>` line, %wait or %expect-state)"
		}
	}
	for _, c := range r.Checks {
		if c.Verdict == walk.Skipped {
			continue // a %expect-state no oracle could read: noted, not judged
		}
		r.Verdict = walk.Worse(r.Verdict, c.Verdict)
		if c.Disagree {
			r.Disagreements++
		}
		if c.Verdict != walk.Pass && r.Reason == "" {
			r.Reason = c.Rule + ": " + c.Reason
		}
	}
}

// ReasonNoListener begins the Reason of a script whose first SYN met
// RST,ACK where the script expected a listener: "no listener at PORT".
const ReasonNoListener = "no listener at"

// errStop ends a script after a check that did not pass.
var errStop = errors.New("script stopped")

// runner is one running script.
type runner struct {
	cfg       Config
	s         *Script
	res       *walk.Result
	c         *tcpconn.Conn // the connection engine
	flow      *probe.Flow   // c's
	connected bool          // false while a dialing script waits for the remote's SYN
	m         *model

	iss     uint32 // ours
	irs     uint32 // the remote's, once a "> S" line bound it
	haveIRS bool
	lastAck uint32 // the acknowledgment of our last ACK, relative
	// ts maps the TS values the script wrote on ">" lines to the ones the
	// remote really sent, so that "<" lines can echo them (packetdrill).
	ts map[uint32]uint32

	t0, prev time.Time // script start, the previous event's real time
	// actionRTT is the round trip of the app action just asked for: the
	// next expected segment may come that much later.
	actionRTT time.Duration
	// pending is a segment read while waiting for a time it came after:
	// it belongs to the next event.
	pending *in
	zeros   []byte
	// held is a segment a ">?" line did not take, for the next line.
	held *in
	// noTS: the remote's SYN or SYN,ACK came without TSopt, so ours are
	// left out of later segments.
	noTS bool
	// sent: a segment of ours went out ("answered none" needs it).
	sent bool

	// On a lossy path (see loss.go): our last injected segment and those
	// not yet confirmed, to send again; how often we did; whether we sent an ACK (lastAck is then
	// its acknowledgment); the states the wire model went through.
	last        ourSeg
	haveLast    bool
	unconfirmed []ourSeg // sent since the remote last confirmed ours
	ours        []ourSeg // our latest segments
	nOurs       int      // our segments so far
	matchedAt   int      // nOurs when a ">" line last matched
	resent      int
	lastAckSent bool
	history     []result.State
	// passedOver counts the remote's retransmissions and repeats passed
	// over on a lossy path: after one, the remote's timers run from
	// segments we did not see, and a line's timing tells nothing.
	passedOver int
	// reacks counts our answers to the remote's retransmissions of what
	// we acknowledged.
	reacks int
	// dialed: the last event was a %dial (see expect).
	dialed bool
	// remoteSYNs: the remote sent a bare SYN [0], a SYN,ACK [1].
	remoteSYNs [2]bool
	// triggered is the line of the app action a close trigger made (0:
	// none); ourOff and remoteOff are how far it shifted our and the
	// remote's sequence numbers past the script's (see trigger.go).
	triggered         int
	ourOff, remoteOff uint32
	// seen holds the flags and relative sequence number of every remote
	// segment with a SYN, FIN or data that came.
	seen map[[2]uint32]bool
}

func (r *runner) run(ctx context.Context) error {
	r.t0 = time.Now()
	r.prev = r.t0
	for i := range r.s.Events {
		ev := &r.s.Events[i]
		var err error
		switch ev.Kind {
		case Packet:
			if ev.Segment.Dir == FromRemote {
				err = r.expect(ctx, ev)
			} else if r.heldOpen(i) {
				r.skip(ev, ReasonCloseWaitHeld)
			} else {
				err = r.inject(ctx, ev)
			}
		case Dial:
			err = r.dial(ctx, ev)
		case ExpectState:
			err = r.expectState(ctx, ev)
		case Wait:
			err = r.wait(ctx, ev)
		case Send:
			err = r.send(ctx, ev)
		case App:
			err = r.app(ctx, i)
		case Note:
			err = r.note(ctx, ev)
		case Unsupported:
			err = r.unsupported(ctx, ev)
		default:
			err = fmt.Errorf("line %d: unknown event", ev.Pos.Line)
		}
		if err != nil {
			return err
		}
		if r.res.Verdict == walk.Skipped {
			return nil
		}
	}
	return nil
}

// window is when ev may happen: from..to, give or take tol.
func (r *runner) window(t Time) (from, to time.Time, tol time.Duration) {
	now := time.Now()
	var base time.Time
	switch t.Kind {
	case Absolute:
		base = r.t0
	case Relative:
		base = r.prev
	default: // Any
		return now, now.Add(r.cfg.MaxWait), 0
	}
	from, to = base.Add(t.Start), base.Add(t.End)
	gap := max(from.Sub(r.prev), 0)
	tol = max(r.s.Tolerance, time.Duration(float64(gap)*r.s.TolerancePercent/100))
	return from, to, tol
}

// rule names a line for checks.
func (r *runner) rule(ev *Event) string { return fmt.Sprintf("script %s:%d", r.s.Name, ev.Pos.Line) }

func (r *runner) name(ev *Event) string {
	t := ev.Text
	if ev.Kind == Packet {
		if i := strings.IndexAny(t, "<>"); i >= 0 {
			t = t[i:]
		}
	}
	if len(t) > 48 {
		t = t[:48] + "..."
	}
	return fmt.Sprintf("line %d: %s", ev.Pos.Line, t)
}

// check records a judged check; a passing one carries the state the wire
// implies. The oracle is not read here: the remote app acts on its own
// time (a FIN may already be on its way), so the kernel is asked only at
// %expect-state, where the script says the remote has settled.
func (r *runner) check(c walk.Check) walk.Check {
	c.At = time.Now()
	if c.Verdict == walk.Pass && c.Wire == result.NoState {
		c.Wire = r.m.state
	}
	r.res.Checks = append(r.res.Checks, c)
	return c
}

// kernel reads the oracle's state of our connection, or why it could not.
func (r *runner) kernel() (result.State, error) {
	if r.cfg.Oracle == nil || !r.connected {
		return result.NoState, nil
	}
	return r.cfg.Oracle.State(r.flow.Remote, r.flow.Local)
}

// in is a received segment or ICMP error, parsed before its buffer went
// back to the prober.
type in struct {
	seg      *walk.Segment // as the engine recorded it
	icmp     string
	flags    craft.Flags
	seq, ack uint32 // absolute
	win, urg uint16
	payload  []byte
	opts     []craft.Option
	at       time.Time
	retrans  bool
}

// read waits until deadline for the next segment of the connection,
// records it (through the engine: a copy the path made is passed over) and
// returns it; probe.ErrTimeout when none came. A retransmission is what
// the engine's recorder says it is: a repeat of sequence space, or the
// same flags, numbers and length again.
func (r *runner) read(ctx context.Context, deadline time.Time) (*in, error) {
	if g := r.held; g != nil {
		// A segment a ">?" line passed on (see expect).
		r.held = nil
		return g, nil
	}
	if g := r.pending; g != nil {
		r.pending = nil
		return g, nil
	}
	rp, err := r.c.Next(ctx, deadline)
	if err != nil {
		return nil, err
	}
	if rp.Seg.ICMP != "" {
		return &in{seg: rp.Seg, icmp: rp.Seg.ICMP, at: rp.Seg.At}, nil
	}
	t, err := rp.Seg.TCP()
	if err != nil {
		return nil, err
	}
	if !r.connected {
		if err := r.flow.Connect(t.SourcePort()); err != nil {
			return nil, err
		}
		r.connected = true
		r.res.Target = r.flow.Remote
	}
	g := &in{seg: rp.Seg, flags: t.Flags(), seq: t.SequenceNumber(), ack: t.AckNumber(), win: t.WindowSize(), urg: t.UrgentPointer(),
		payload: rp.Data, at: rp.Seg.At}
	for it := t.Options(); it.Next(); {
		o := it.Option()
		g.opts = append(g.opts, craft.Option{Kind: o.Kind, Data: bytes.Clone(o.Data)})
	}
	if rp.Seg.Retransmission || rp.Seg.Repeat {
		g.retrans = true
		if rp.Seg.Note == "" {
			rp.Seg.Note = "retransmission"
		}
	}
	return g, nil
}

// rel returns g in the script's numbers.
func (r *runner) rel(g *in) *wireSeg {
	w := &wireSeg{Flags: g.flags, Seq: g.seq, Ack: g.ack - r.iss, Win: g.win, Urg: g.urg, Payload: g.payload,
		Options: fromWire(g.opts, r.iss)}
	if r.haveIRS {
		w.Seq = g.seq - r.irs
	}
	if !g.flags.Has(craft.FlagACK) && g.ack == 0 {
		w.Ack = 0
	}
	return w
}

// observe moves the model for a received segment and stamps the states.
func (r *runner) observe(g *in) {
	r.observeModel(g)
	r.c.Rec.States(result.NoState, r.m.state)
	r.noteState()
}

// observeModel moves the wire model for g and stamps its relative numbers.
func (r *runner) observeModel(g *in) {
	if g.icmp == "" {
		w := r.rel(g)
		// A SYN again (its ISS known: the engine's retransmission or
		// repeat) starts nothing: taken as a new SYN it would put our
		// next sequence number back to its ACK field, 1, after we sent
		// data or a FIN (a late copy, or one a lossy path made us wait
		// for).
		if !(g.retrans && g.flags.Has(craft.FlagSYN)) {
			r.m.remoteSent(g.flags, w.Seq, w.Ack, uint32(len(g.payload)))
		}
		if g.flags.Has(craft.FlagSYN) && !g.flags.Has(craft.FlagRST) {
			r.remoteSYNs[synKind(g.flags)] = true
		}
		if g.flags&(craft.FlagSYN|craft.FlagFIN) != 0 || len(g.payload) > 0 {
			r.seen[[2]uint32{uint32(g.flags), w.Seq}] = true
		}
		s := g.seg
		if r.haveIRS {
			s.RelSeq = w.Seq
		}
		s.RelAck = w.Ack
	}
}

// describe writes a received segment for a check.
func (r *runner) describe(g *in) string {
	if g.icmp != "" {
		return g.icmp
	}
	s := "> " + r.rel(g).String()
	if g.retrans {
		s += " (retransmission)"
	}
	return s
}

// quiet reads until until: the remote must send nothing meanwhile
// (packetdrill's "unexpected outbound packet"), retransmissions aside when
// the script allows them.
func (r *runner) quiet(ctx context.Context, until time.Time, ev *Event) error {
	for {
		g, err := r.read(ctx, until)
		if errors.Is(err, probe.ErrTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
		if g.at.After(until) {
			// Came after the line's time (by the kernel's clock), though
			// read now: the next event judges it.
			r.pending = g
			return nil
		}
		r.observe(g)
		if g.retrans {
			if again, err := r.passOver(g); err != nil {
				return err
			} else if again || r.s.AllowRetransmissions {
				continue
			}
		}
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "nothing from the remote before " + ev.Text,
			Received: r.describe(g), Verdict: walk.Fail, Reason: "unexpected segment from the remote"}
		switch {
		case g.icmp != "":
			c.Verdict, c.Reason = walk.Inconclusive, "an ICMP error: the path, not the stack, answered"
		case r.lossy():
			c = r.lossCheck(ev, c.Expected, c.Received, "a segment the remote did not expect to send (an answer to a copy, or to a state a lost segment left)")
		}
		r.check(c)
		return errStop
	}
}

// expect waits for the segment of a ">" line. On a lossy path (see
// loss.go) it sends our last segment again when nothing came in time,
// passes over the remote's retransmissions and repeats, and calls what
// loss explains inconclusive.
func (r *runner) expect(ctx context.Context, ev *Event) error {
	want := ev.Segment
	from, to, tol := r.window(ev.Time)
	// A remote app action just asked for (close(), write()) happened
	// somewhere in the control request's round trip: it may come that
	// much later.
	deadline := to.Add(tol + r.cfg.Slack + r.actionRTT)
	r.actionRTT = 0
	tries, waits := 0, 0
	absent := func(why string) error {
		r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: why, Verdict: walk.Pass,
			Reason: "the line may be absent (>?)"})
		return nil
	}
	// again sends our last segment once more, when loss may be why
	// nothing came and the line waits for an answer to it (not for the
	// remote's own retransmission timer); false when it may not.
	missed := false // the line's segment went by unseen (see unseen)
	again := func() (bool, error) {
		if r.lossy() && waits < lossTries && r.unseen(want) {
			// Its first copy was lost: the remote's timer sends it
			// again, nothing of ours would.
			waits++
			missed = true
			deadline = time.Now().Add(max(lossWait, tol+r.cfg.Slack))
			return true, nil
		}
		if !r.lossy() || tries >= lossTries || !r.haveLast || r.awaitsRetransmission(want) {
			return false, nil
		}
		tries++
		if err := r.resend(fmt.Sprintf("no answer for line %d", ev.Pos.Line)); err != nil {
			return false, err
		}
		deadline = time.Now().Add(max(lossWait, tol+r.cfg.Slack))
		return true, nil
	}
	if r.dialed && r.lossy() {
		// The request went to the lab's client over the same lossy
		// path (a TCP connection that retransmits by itself): when the
		// client got it, and so the base of this line's time, is not
		// known. Its segment may come that much later.
		deadline = deadline.Add(lossDialWait)
	}
	r.dialed = false
	nothing := func() error {
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: "nothing",
			Verdict: walk.Fail, Reason: fmt.Sprintf("nothing came by %s", r.when(deadline)) + r.inputNote()}
		if r.lossy() {
			why := fmt.Sprintf("nothing came by %s, after %d retransmissions of line %d: the segment, or its answer, may have been lost each time",
				r.when(deadline), tries, r.lastLine())
			if tries == 0 {
				why = fmt.Sprintf("nothing came by %s: the segment may have been lost (it is the remote's to send again, by its own timer)", r.when(deadline))
			}
			c = r.lossCheck(ev, ev.Text, "nothing", why+r.inputNote())
		}
		r.check(c)
		return errStop
	}
	for {
		g, err := r.read(ctx, deadline.Add(readGrace))
		if err == nil && g.retrans && g.icmp == "" && len(r.diff(want, g)) > 0 {
			// A repeat or retransmission this line does not want: on a
			// lossy path, a sign of loss, not an answer.
			over, err := r.passOver(g)
			if err != nil {
				return err
			}
			if over {
				r.observe(g)
				continue
			}
		}
		if want.MayBeAbsent && (errors.Is(err, probe.ErrTimeout) || err == nil && g.at.After(deadline)) {
			r.held = g
			return absent("nothing in time")
		}
		if err == nil && g.at.After(deadline) {
			// Past the deadline by the kernel's clock (read during the
			// grace): the wanted segment came too late, anything else is
			// kept in the record and the line saw nothing in time.
			late := len(r.diff(want, g)) == 0
			if !late && r.lossy() {
				// Judged after the retry, as if it came then.
				if ok, err := again(); err != nil {
					return err
				} else if ok {
					r.held = g
					continue
				}
			}
			r.observe(g)
			c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: "nothing", Verdict: walk.Fail,
				Reason: fmt.Sprintf("nothing came by %s", r.when(deadline)) + r.inputNote()}
			if late {
				c.Received = r.describe(g)
				c.Reason = fmt.Sprintf("came at %s, after the line's time %s, its tolerance %v and %v slack",
					r.when(g.at), r.when(to), tol, r.cfg.Slack)
				if r.lossy() {
					c = r.lossCheck(ev, ev.Text, c.Received, c.Reason+": its first copy may have been lost")
				}
			} else if r.lossy() {
				c = r.lossCheck(ev, ev.Text, "nothing", fmt.Sprintf("nothing came by %s, after %d retransmissions of line %d", r.when(deadline), tries, r.lastLine()))
			}
			r.check(c)
			return errStop
		}
		if errors.Is(err, probe.ErrTimeout) {
			if ok, err := again(); err != nil {
				return err
			} else if ok {
				continue
			}
			return nothing()
		}
		if err != nil {
			return err
		}
		if g.icmp != "" {
			r.observe(g)
			r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: g.icmp,
				Verdict: walk.Inconclusive, Reason: "an ICMP error: the path, not the stack, answered"})
			return errStop
		}
		// A "> S" line binds the remote's ISS (packetdrill's relative
		// numbers): its start is the ISS's offset.
		if want.Flags.Has(craft.FlagSYN) && g.flags.Has(craft.FlagSYN) && (!r.haveIRS || want.AnySeq) {
			r.irs, r.haveIRS = g.seq-want.Start, true
			if want.AnySeq {
				r.irs = g.seq
			}
		}
		diffs := r.diff(want, g)
		if want.MayBeAbsent && len(diffs) > 0 && g.icmp == "" && !(g.retrans && r.s.AllowRetransmissions) {
			// Not this line's segment: the next line's (an ACK that
			// rode on the FIN the next line wants).
			r.held = g
			return absent("not on its own: " + r.describe(g) + " came, for the next line")
		}
		if len(diffs) > 0 && r.lossy() && r.ackOfOurs(g) {
			// An ACK of what we sent, or of less (one answering a copy
			// of ours, or sent before a segment of ours arrived): it
			// moves nothing the line waits for.
			r.observe(g)
			r.passedOver++
			continue
		}
		r.observe(g)
		if len(diffs) == 0 {
			c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: r.describe(g), Verdict: walk.Pass}
			if tries > 0 {
				c.Reason = fmt.Sprintf("answered after %d retransmissions of line %d (%s)", tries, r.lastLine(), r.lossNote())
			}
			if missed {
				c.Reason = "its first copy was lost (the remote's later segments are past it): this is its retransmission, whose time is the remote's timer's, not the line's (" + r.lossNote() + ")"
			}
			if ev.Time.Kind != Any && g.at.Before(from.Add(-tol)) {
				c.Verdict = walk.Fail
				c.Reason = fmt.Sprintf("came at %s, %v before the line's time %s (tolerance %v)",
					r.when(g.at), from.Sub(g.at).Round(time.Millisecond), r.when(from), tol)
				if r.lossy() && (r.resent > 0 || r.passedOver > 0) {
					c = r.lossCheck(ev, ev.Text, c.Received, c.Reason+": after a loss the remote's timers run from segments we did not see")
				}
			}
			r.learnTS(want, g)
			r.prev = g.at
			r.confirmed()
			r.matchedAt = r.nOurs
			if r.check(c).Verdict != walk.Pass {
				return errStop
			}
			return nil
		}
		if g.retrans && r.s.AllowRetransmissions {
			continue
		}
		if r.listenerMissing(want, g) {
			return errStop
		}
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: r.describe(g),
			Verdict: walk.Fail, Reason: strings.Join(diffs, "; ")}
		if r.lossy() {
			if why, ok := r.lossExplains(want, g); ok {
				c = r.lossCheck(ev, ev.Text, c.Received, strings.Join(diffs, "; ")+": "+why)
			}
		}
		r.check(c)
		return errStop
	}
}

// awaitsRetransmission reports whether want is a segment whose sequence
// space the remote already sent: its retransmission, which the remote's
// timer sends, not an answer to ours.
func (r *runner) awaitsRetransmission(want *Segment) bool {
	if want.AnySeq || want.Len() == 0 && !want.Flags.Has(craft.FlagSYN) && !want.Flags.Has(craft.FlagFIN) {
		return false
	}
	if want.Flags.Has(craft.FlagSYN) {
		// A SYN,ACK after the remote's bare SYN answers our SYN (a
		// simultaneous open): only the same flags again are its timer's.
		return r.remoteSYNs[synKind(want.Flags)]
	}
	return r.m.remoteSYN && int32(want.Start-r.m.remoteNext) < 0
}

// unseen reports whether want is a FIN or data the remote sent, as its
// later segments (past it) show, but that never came: its first copy was
// lost, and only the remote's retransmission timer brings it.
func (r *runner) unseen(want *Segment) bool {
	if want.AnySeq || want.Flags.Has(craft.FlagSYN) || !want.Flags.Has(craft.FlagFIN) && want.Len() == 0 || !r.haveIRS {
		return false
	}
	return int32(want.Start-r.m.remoteNext) < 0 && !r.seen[[2]uint32{uint32(want.Flags), want.Start}]
}

// synKind indexes runner.remoteSYNs: 1 for a SYN,ACK, 0 for a bare SYN.
func synKind(f craft.Flags) int {
	if f.Has(craft.FlagACK) {
		return 1
	}
	return 0
}

// passOver decides about a remote retransmission or repeat g that the line
// does not want. One of what we acknowledged means our ACK was lost (or
// the stack ignores ACKs, which only an oracle could tell): we send our
// last segment again, as a TCP answers a duplicate (RFC 9293 §3.10.7.4),
// and pass it over, lossTries times per script on any path; a remote that
// goes on is judged, on a lossy path too. On a lossy path other repeats
// and retransmissions are passed over (true).
func (r *runner) passOver(g *in) (bool, error) {
	if g.icmp != "" {
		return false, nil
	}
	f := r.last.seg.Flags
	if r.acknowledged(g) {
		if r.reacks >= lossTries || !r.haveLast || !f.Has(craft.FlagACK) || f.Has(craft.FlagRST) {
			// It goes on whatever we send: not the path's doing alone.
			return false, nil
		}
		r.reacks++
		r.passedOver++
		return true, r.resendLast("the remote sent again what we acknowledged")
	}
	if !r.lossy() {
		return false, nil
	}
	r.passedOver++
	return true, nil
}

// when writes t as seconds since the script started.
func (r *runner) when(t time.Time) string {
	return fmt.Sprintf("%.3f s", t.Sub(r.t0).Seconds())
}

// diff lists how g differs from want (empty: it matches). Flags, sequence
// numbers, length and options are always compared; ack, win, urg and the
// payload when the line gives them; TS val never (it is the remote's
// clock), as in packetdrill.
func (r *runner) diff(want *Segment, g *in) []string {
	var d []string
	w := r.rel(g)
	if g.flags != want.Flags {
		d = append(d, fmt.Sprintf("flags %s, want %s", flagText(g.flags), flagText(want.Flags)))
	}
	if !want.AnySeq && w.Seq != want.Start {
		d = append(d, fmt.Sprintf("seq %d, want %d", w.Seq, want.Start))
	}
	if uint32(len(g.payload)) != want.Len() {
		d = append(d, fmt.Sprintf("%d bytes of data, want %d", len(g.payload), want.Len()))
	} else if want.Payload != nil && !bytes.Equal(g.payload, want.Payload) {
		d = append(d, fmt.Sprintf("data %q, want %q", g.payload, want.Payload))
	}
	if want.HasAck && w.Ack != want.Ack {
		d = append(d, fmt.Sprintf("ack %d, want %d", w.Ack, want.Ack))
	}
	if want.HasWin && g.win != want.Win && !r.s.Packetdrill {
		d = append(d, fmt.Sprintf("win %d, want %d", g.win, want.Win))
	}
	if want.HasUrg && g.urg != want.Urg {
		d = append(d, fmt.Sprintf("urg %d, want %d", g.urg, want.Urg))
	}
	if r.s.Packetdrill {
		if !want.AnyOptions && !sameOptionKinds(w.Options, want.Options) {
			d = append(d, fmt.Sprintf("options <%s>, want <%s> (kinds compared)", optionsText(w.Options), optionsText(want.Options)))
		}
	} else if !want.AnyOptions && (want.Negotiated && !negotiatedOptions(w.Options, want.Options) || !want.Negotiated && !sameOptions(w.Options, want.Options)) {
		d = append(d, fmt.Sprintf("options <%s>, want <%s>", optionsText(w.Options), optionsText(want.Options)))
	}
	return d
}

func flagText(f craft.Flags) string {
	if f == 0 {
		return "-"
	}
	return f.String()
}

// negotiatedOptions matches a line with optional (?) or any (*) options:
// as a set, in any order, NOPs and EOL aside (padding is the stack's
// choice). Every option the line names must come unless optional, with its
// value unless any; none it does not name may come.
func negotiatedOptions(got, want []Option) bool {
	pad := func(k craft.OptionKind) bool { return k == craft.OptNOP || k == craft.OptEOL }
	used := make([]bool, len(got))
	for _, w := range want {
		if pad(w.Kind) {
			continue
		}
		found := false
		for i, g := range got {
			if !used[i] && g.Kind == w.Kind && sameValue(g, w) {
				used[i], found = true, true
				break
			}
		}
		if !found && !w.Optional {
			return false
		}
	}
	for i, g := range got {
		if !used[i] && !pad(g.Kind) {
			return false
		}
	}
	return true
}

// sameValue compares one option's value as a line wants it.
func sameValue(g, w Option) bool {
	if w.AnyValue {
		return true
	}
	if g.Value != w.Value || g.TSEcr != w.TSEcr || len(g.Blocks) != len(w.Blocks) {
		return false
	}
	for j := range g.Blocks {
		if g.Blocks[j] != w.Blocks[j] {
			return false
		}
	}
	return true
}

// sameOptions compares options in order; a TS val is not compared.
func sameOptions(got, want []Option) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Value != w.Value || g.TSEcr != w.TSEcr || len(g.Blocks) != len(w.Blocks) {
			return false
		}
		for j := range g.Blocks {
			if g.Blocks[j] != w.Blocks[j] {
				return false
			}
		}
	}
	return true
}

// learnTS remembers the remote's real TS value for the one the script wrote.
func (r *runner) learnTS(want *Segment, g *in) {
	if g.flags.Has(craft.FlagSYN) {
		r.noTS = true
		for _, o := range g.opts {
			if o.Kind == craft.OptTimestamps {
				r.noTS = false
			}
		}
	}
	var got []Option
	for _, o := range want.Options {
		if o.Kind != craft.OptTimestamps {
			continue
		}
		if got == nil {
			got = fromWire(g.opts, r.iss)
		}
		for _, h := range got {
			if h.Kind == craft.OptTimestamps {
				r.ts[o.TSVal] = h.TSVal
			}
		}
	}
}

// inject sends the segment of a "<" line at its time.
func (r *runner) inject(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	if !r.connected {
		r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: "nothing",
			Verdict: walk.Inconclusive, Reason: "nothing to send to yet: the remote has not connected (expect its SYN first: `> S 0:0(0) <...>`)"})
		return errStop
	}
	if err := r.catchUp(ctx); err != nil {
		return err
	}
	return r.sendSegment(ev.Segment, ev)
}

// sendSegment builds and sends a "<" segment in absolute numbers.
func (r *runner) sendSegment(s *Segment, ev *Event) error {
	seg := r.outgoing(s)
	if err := r.c.SendVerbatim(&seg, fmt.Sprintf("line %d", ev.Pos.Line)); err != nil {
		return fmt.Errorf("%s:%d: send %s: %w", r.s.Name, ev.Pos.Line, ev.Text, err)
	}
	r.sent = true
	if out := r.c.Rec.Last(); out != nil {
		// The script's own numbers: its ACK is relative to the ISS a
		// "> S" line bound, which the engine may not know.
		out.RelSeq, out.RelAck = s.Start, 0
		if r.haveIRS && s.HasAck {
			out.RelAck = seg.Ack - r.irs
		}
	}
	r.keep(&seg, ev.Pos.Line, r.m.state)
	r.m.weSent(s.Flags, s.Start, s.Ack, s.Len(), s.HasAck)
	r.c.Rec.States(result.NoState, r.m.state)
	r.noteState()
	if s.Flags.Has(craft.FlagACK) && s.HasAck {
		r.lastAck, r.lastAckSent = s.Ack, true
	}
	r.prev = r.c.LastSend
	return nil
}

// outgoing is a "<" segment in absolute numbers: the script's relative
// ones from our ISS and the remote's (as shifted by a close trigger).
func (r *runner) outgoing(s *Segment) craft.Segment {
	seg := craft.Segment{Seq: r.iss + s.Start, Flags: s.Flags, Window: tcpconn.DefaultWindow, Urgent: s.Urg}
	if s.HasAck {
		seg.Ack = s.Ack
		if r.haveIRS {
			seg.Ack += r.irs
		}
	}
	if s.HasWin {
		seg.Window = s.Win
	}
	for _, o := range s.Options {
		// A stack that did not take our TSopt (its SYN,ACK had none) must
		// not get one on later segments (RFC 7323 §3.2): a script
		// written for one that did still runs, without it.
		if o.Kind == craft.OptTimestamps && r.noTS && !s.Flags.Has(craft.FlagSYN) {
			continue
		}
		seg.Options = append(seg.Options, r.craftOption(o))
	}
	seg.Payload = s.Payload
	if seg.Payload == nil && s.Len() > 0 {
		if uint32(len(r.zeros)) < s.Len() {
			r.zeros = make([]byte, s.Len())
		}
		seg.Payload = r.zeros[:s.Len()]
	}
	return seg
}

// craftOption turns a script option into wire form: a TS ecr the script
// took from a ">" line echoes the remote's real value; SACK blocks are
// relative to the remote's ISS.
func (r *runner) craftOption(o Option) craft.Option {
	switch o.Kind {
	case craft.OptMSS:
		return craft.MSS(uint16(o.Value))
	case craft.OptWindowScale:
		return craft.WindowScale(uint8(o.Value))
	case craft.OptSACKPermitted:
		return craft.SACKPermitted()
	case craft.OptTimestamps:
		ecr := o.TSEcr
		if v, ok := r.ts[ecr]; ok {
			ecr = v
		}
		return craft.Timestamps(o.TSVal, ecr)
	case craft.OptSACK:
		blocks := make([]craft.SACKBlock, len(o.Blocks))
		for i, b := range o.Blocks {
			blocks[i] = craft.SACKBlock{Left: b.Left + r.irs, Right: b.Right + r.irs}
		}
		return craft.SACK(blocks...)
	case craft.OptEOL:
		return craft.EOL()
	}
	return craft.NOP()
}

// send is %send: data at our next sequence number, acknowledging what our
// last ACK did, with PSH as a write() would.
func (r *runner) send(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	if err := r.catchUp(ctx); err != nil {
		return err
	}
	n := uint32(len(ev.Data))
	seg := &Segment{Dir: ToRemote, Flags: craft.FlagPSH | craft.FlagACK, Start: r.m.ourNext, End: r.m.ourNext + n,
		Ack: r.lastAck, HasAck: true, Payload: ev.Data}
	return r.sendSegment(seg, ev)
}

// dial is %dial: the lab's client connects to our port.
func (r *runner) dial(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	// The line happens when we ask, as a packetdrill call line happens
	// when the call starts: the client's SYN may come before the lab
	// confirms the request.
	asked := time.Now()
	var dial func(context.Context, uint16) error
	if t := r.cfg.DialTrigger; t != nil {
		// A trigger's remote (a user's client, a server connecting
		// back) may take up to its Wait to send the SYN.
		dial = t.Dial
		defer func() { r.actionRTT = t.Wait() }()
	} else if h, ok := r.cfg.Lab.(HoldDialer); ok && r.s.Packetdrill {
		// connect(): the client's socket closes when the script says.
		dial = h.DialHold
	} else {
		dial = r.cfg.Lab.Dial
	}
	err := dial(ctx, r.flow.Local.Port())
	// A lab client busy with other dials (a suite run in parallel) is
	// asked again: the script starts later, its absolute times with it.
	for busy := time.Now().Add(dialBusyWait); err != nil && strings.Contains(err.Error(), `"busy"`) && time.Now().Before(busy) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
		again := time.Now()
		err = dial(ctx, r.flow.Local.Port())
		r.t0 = r.t0.Add(again.Sub(asked))
		asked = again
	}
	if err != nil {
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "the lab's client connects to us", Received: "nothing"}
		c.Verdict, c.Reason = walk.Unfinished(err)
		r.check(c)
		return errStop
	}
	r.prev = asked
	r.dialed = true
	return nil
}

// wait is %wait: nothing may come for its time.
func (r *runner) wait(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text,
		Received: fmt.Sprintf("nothing for %v", ev.Time.Start), Verdict: walk.Pass})
	r.prev = from
	return nil
}

// expectState is %expect-state: the oracle decides when there is one (the
// wire inference is compared with it), else the wire inference.
func (r *runner) expectState(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	// An observation takes no time on the wire: the next "+" line counts
	// from when it was due, not from when the oracle answered.
	if from.After(r.prev) {
		r.prev = from
	}
	wire := r.m.state
	c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.State.String(), Wire: wire}
	if r.cfg.Oracle != nil && r.connected {
		k, kerr, err := r.settle(ctx, ev.State, oracleSettle)
		if err != nil {
			return err
		}
		// On a lossy path our last segment may not have arrived: send it
		// again, as TCP would, and read again.
		// A kernel in a state the wire model left gets our segments from
		// the one that made the model leave it.
		tries, from := 0, 0
		for k != ev.State && r.lossy() && r.haveLast && r.wasState(k) && k != wire && tries < lossTries {
			tries++
			n, err := r.resendFrom(k, fmt.Sprintf("the kernel says %s, not %s", k, ev.State))
			if err != nil {
				return err
			}
			if n > 0 && (from == 0 || n < from) {
				from = n
			}
			if k, kerr, err = r.settle(ctx, ev.State, lossWait); err != nil {
				return err
			}
		}
		c.Kernel, c.KernelErr, c.Disagree = k, kerr, wire != result.NoState && (kerr != nil || wire != k)
		c.Received = "kernel: " + k.String() + ", wire: " + orUnknown(wire)
		switch {
		case kerr != nil:
			// Our oracle failed, not the target: nothing is judged.
			c.Received = "kernel: error: " + kerr.Error() + ", wire: " + orUnknown(wire)
			c.Verdict, c.Reason = walk.Inconclusive, fmt.Sprintf("the remote kernel (sock_diag) could not be read: %v", kerr)
		case k == ev.State && from > 0 && from <= r.matchedAt:
			// The segment the kernel missed went out before a ">" line
			// matched: that line's answer came from the state loss left.
			c = r.lossCheck(ev, ev.State.String(), c.Received, fmt.Sprintf("the remote kernel reached %s only after we sent again segments older than the last expected one, whose answer so came from a state a lost segment left", k))
			c.Kernel, c.Wire = k, wire
		case k == ev.State:
			c.Verdict = walk.Pass
			r.confirmed()
			if tries > 0 {
				c.Reason = fmt.Sprintf("after %d retransmissions of line %d (%s)", tries, r.lastLine(), r.lossNote())
			}
		case r.lossy() && r.wasState(k) && k != wire:
			c = r.lossCheck(ev, ev.State.String(), c.Received, fmt.Sprintf("the remote kernel says %s, a state before our segments, after %d retransmissions of line %d: they may have been lost", k, tries, r.lastLine()))
			c.Kernel, c.Wire = k, wire
		case r.lossy() && r.laterState(ev, k):
			// Ahead: the remote app acted on its own time (a timer the
			// script set) while a lost segment held us back.
			c = r.lossCheck(ev, ev.State.String(), c.Received, fmt.Sprintf("the remote kernel is already in %s, which a later line expects: a lost segment held the script back while the remote moved on", k))
			c.Kernel, c.Wire = k, wire
		default:
			c.Verdict, c.Reason = walk.Fail, fmt.Sprintf("the remote kernel says %s", k)
		}
	} else {
		c.Received = "wire: " + orUnknown(wire)
		switch wire {
		case ev.State:
			c.Verdict = walk.Pass
		case result.NoState:
			// Not judged, and not the end of the script: the rest runs.
			c.Verdict, c.Reason = walk.Skipped, "not checked: nothing on the wire tells the state yet, and there is no oracle (sock_diag: run against the lab or give --oracle-netns)"
		default:
			c.Verdict, c.Reason = walk.Fail, fmt.Sprintf("the segments so far put the remote in %s", wire)
			if r.lossy() {
				// The wire model takes what we sent as received.
				c = r.lossCheck(ev, ev.State.String(), c.Received, c.Reason+", but some of them may have been lost")
				c.Wire = wire
			}
		}
	}
	r.res.Checks = append(r.res.Checks, c)
	r.res.Checks[len(r.res.Checks)-1].At = time.Now()
	if c.Verdict != walk.Pass && c.Verdict != walk.Skipped {
		return errStop
	}
	return nil
}

// settle polls the oracle for up to d until it reads want, and returns the
// last reading: our last segment may still be on its way through the
// remote's stack. kerr is why the last reading failed (k is then "").
func (r *runner) settle(ctx context.Context, want result.State, d time.Duration) (k result.State, kerr, err error) {
	deadline := time.Now().Add(d)
	k, kerr = r.kernelFor(want)
	for k != want && time.Now().Before(deadline) {
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return k, kerr, ctx.Err()
		case <-t.C:
		}
		k, kerr = r.kernelFor(want)
	}
	return k, kerr, nil
}

// kernelFor reads the oracle for %expect-state want: LISTEN is not a state
// of our 4-tuple (it has no socket: CLOSED) but of the port.
func (r *runner) kernelFor(want result.State) (result.State, error) {
	k, err := r.kernel()
	if err != nil || want != result.Listen || k != result.Closed {
		return k, err
	}
	ok, err := r.cfg.Oracle.Listening(r.flow.Remote)
	switch {
	case err != nil:
		return result.NoState, err
	case ok:
		return result.Listen, nil
	}
	return k, nil
}

func orUnknown(s result.State) string {
	if s == result.NoState {
		return "unknown"
	}
	return s.String()
}

// tidy leaves no connection behind on the remote: the engine's tidy (an
// exact RST for a synchronized TCB or a Linux TIME_WAIT, RFC 9293
// §3.10.7.4; acknowledging the remote's SYN in SYN_SENT, §3.10.7.3; and a
// RST for what a SYN of ours whose answer was not read may have opened),
// with the sequence state as the script's wire model holds it.
func (r *runner) tidy() {
	if !r.connected {
		return
	}
	c := r.c
	st := r.m.state
	c.SndNxt = tcpconn.Seq(r.iss + r.m.ourNext)
	if r.haveIRS {
		c.IRS, c.RcvNxt = tcpconn.Seq(r.irs-r.remoteOff), tcpconn.Seq(r.irs+r.m.remoteNext)
	}
	// A connection may remain only where the model says so.
	c.HaveIRS = c.HaveIRS && (synchronized(st) || st == result.SynSent)
	c.Tidy()
}

// inputNote tells, for a line that saw nothing, that a local input rule may
// have dropped the reply ("" when the prober found none).
func (r *runner) inputNote() string {
	if n := r.cfg.Prober.InputRules(); n != "" {
		return "; " + n
	}
	return ""
}
