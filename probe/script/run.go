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
	"github.com/tcpwalk/tcpwalk/probe/walk"
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
	// Slack is how much later than its line's time (tolerance included) an
	// expected segment may still come: packetdrill times a local stack,
	// tcpwalk a remote one behind a path with its own delay. Zero means
	// DefaultSlack; negative means none.
	Slack time.Duration
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
	end := func(v walk.Verdict, reason string) walk.Result {
		res.Verdict, res.Reason, res.Duration = v, reason, time.Since(res.Start)
		return res
	}
	if cfg.Prober == nil {
		return end(walk.Inconclusive, "no prober")
	}
	res.Target = netip.AddrPortFrom(cfg.Prober.Remote(), port)
	if s.Dials && cfg.Lab == nil {
		return end(walk.Skipped, "%dial needs the remote host to connect to us: only the lab's client can be asked to (run against the lab)")
	}
	if port == 0 && !s.Dials {
		return end(walk.Inconclusive, "no remote port: give %port in the script or HOST:PORT")
	}
	r := &runner{cfg: cfg, s: s, res: &res, m: newModel(s.Dials), iss: probe.RandomUint32(),
		ts: map[uint32]uint32{}, seen: map[[4]uint32]bool{}}
	var err error
	if s.Dials {
		r.flow, err = cfg.Prober.Listen(0)
	} else {
		r.flow, err = cfg.Prober.NewFlow(port, 0)
		r.connected = true
	}
	if err != nil {
		return end(walk.Inconclusive, err.Error())
	}
	res.Local = r.flow.Local
	err = r.run(ctx)
	r.tidy()
	r.flow.Close()
	if err != nil && !errors.Is(err, errStop) {
		res.Verdict = walk.Worse(res.Verdict, walk.Inconclusive)
		if res.Reason == "" {
			res.Reason = err.Error()
		}
	}
	// Kernel timestamps order the record: a reply may have come before
	// our next segment went out, though we read it after.
	sort.SliceStable(r.segs, func(i, j int) bool { return r.segs[i].At.Before(r.segs[j].At) })
	res.Segments = r.segs
	res.Duration = time.Since(res.Start)
	finish(&res)
	return res
}

// finish computes the overall verdict as package walk does.
func finish(r *walk.Result) {
	if r.Verdict == "" {
		r.Verdict = walk.Pass
	}
	if len(r.Checks) == 0 && r.Verdict == walk.Pass {
		r.Verdict = walk.Inconclusive
		if r.Reason == "" {
			r.Reason = "no check ran: the script expects nothing (add a `>` line, %wait or %expect-state)"
		}
	}
	for _, c := range r.Checks {
		r.Verdict = walk.Worse(r.Verdict, c.Verdict)
		if c.Disagree {
			r.Disagreements++
		}
		if c.Verdict != walk.Pass && r.Reason == "" {
			r.Reason = c.Rule + ": " + c.Reason
		}
	}
}

// errStop ends a script after a check that did not pass.
var errStop = errors.New("script stopped")

// runner is one running script.
type runner struct {
	cfg       Config
	s         *Script
	res       *walk.Result
	flow      *probe.Flow
	connected bool // false while a dialing script waits for the remote's SYN
	m         *model

	iss     uint32 // ours
	irs     uint32 // the remote's, once a "> S" line bound it
	haveIRS bool
	lastAck uint32 // the acknowledgment of our last ACK, relative
	// synSeq is our last SYN without ACK (relative), and synPending says
	// it was the last segment we sent and its answer (SYN,ACK or RST,ACK
	// acknowledging it) was not read: tidy resets what it may have opened.
	synSeq     uint32
	synPending bool
	// ts maps the TS values the script wrote on ">" lines to the ones the
	// remote really sent, so that "<" lines can echo them (packetdrill).
	ts map[uint32]uint32

	t0, prev time.Time // script start, the previous event's real time
	segs     []walk.Segment
	seen     map[[4]uint32]bool
	zeros    []byte
}

func (r *runner) run(ctx context.Context) error {
	r.t0 = time.Now()
	r.prev = r.t0
	for i := range r.s.Events {
		ev := &r.s.Events[i]
		var err error
		switch ev.Kind {
		case Packet:
			if ev.Segment.Dir == Out {
				err = r.expect(ctx, ev)
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
	if c.Verdict == walk.Pass && c.Wire == "" {
		c.Wire = r.m.state
	}
	r.res.Checks = append(r.res.Checks, c)
	return c
}

// kernel reads the oracle's state of our connection.
func (r *runner) kernel() string {
	if r.cfg.Oracle == nil || !r.connected {
		return ""
	}
	st, err := r.cfg.Oracle.State(r.flow.Remote, r.flow.Local)
	if err != nil {
		return "error: " + err.Error()
	}
	return st
}

// in is a received segment or ICMP error, parsed before its buffer went
// back to the prober.
type in struct {
	idx      int // in r.segs
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
// records it and returns it; probe.ErrTimeout when none came.
func (r *runner) read(ctx context.Context, deadline time.Time) (*in, error) {
	e, err := r.flow.Next(ctx, deadline)
	if err != nil {
		return nil, err
	}
	defer r.flow.Release(e)
	if e.Kind == probe.EventICMP {
		txt := e.ICMP.String()
		r.segs = append(r.segs, walk.Segment{At: e.At, Dir: walk.In, ICMP: txt, RemoteState: r.m.state, Raw: bytes.Clone(e.Bytes())})
		return &in{idx: len(r.segs) - 1, icmp: txt, at: e.At}, nil
	}
	t := e.Seg.TCP
	if !r.connected {
		if err := r.flow.Connect(t.SourcePort()); err != nil {
			return nil, err
		}
		r.connected = true
		r.res.Target = r.flow.Remote
	}
	g := &in{flags: t.Flags(), seq: t.SequenceNumber(), ack: t.AckNumber(), win: t.WindowSize(), urg: t.UrgentPointer(),
		payload: bytes.Clone(t.Payload()), at: e.At}
	seg := walk.Segment{At: e.At, Dir: walk.In, Flags: g.flags.String(), Seq: g.seq, Ack: g.ack, Win: g.win,
		Len: len(g.payload), Raw: bytes.Clone(e.Bytes())}
	for it := t.Options(); it.Next(); {
		o := it.Option()
		g.opts = append(g.opts, craft.Option{Kind: o.Kind, Data: bytes.Clone(o.Data)})
		seg.Options = append(seg.Options, o.String())
	}
	// A segment that occupies sequence space is a retransmission when it
	// comes again; a pure ACK when its ACK and window are the same too.
	key := [4]uint32{uint32(g.flags), g.seq, uint32(len(g.payload)), 0}
	if len(g.payload) == 0 && !g.flags.Has(craft.FlagSYN) && !g.flags.Has(craft.FlagFIN) {
		key[3] = g.ack ^ uint32(g.win)<<16
	}
	if r.seen[key] {
		g.retrans, seg.Retransmission, seg.Note = true, true, "retransmission"
	}
	r.seen[key] = true
	r.segs = append(r.segs, seg)
	g.idx = len(r.segs) - 1
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
	if g.icmp == "" {
		w := r.rel(g)
		r.m.remoteSent(g.flags, w.Seq, w.Ack, uint32(len(g.payload)))
		if g.flags.Has(craft.FlagACK) && g.flags&(craft.FlagSYN|craft.FlagRST) != 0 && w.Ack == r.synSeq+1 {
			r.synPending = false // our SYN's answer
		}
		s := &r.segs[g.idx]
		if r.haveIRS {
			s.RelSeq = w.Seq
		}
		s.RelAck = w.Ack
	}
	r.segs[g.idx].RemoteState = r.m.state
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
		r.observe(g)
		if g.retrans && r.s.AllowRetransmissions {
			continue
		}
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "nothing from the remote before " + ev.Text,
			Received: r.describe(g), Verdict: walk.Fail, Reason: "unexpected segment from the remote"}
		if g.icmp != "" {
			c.Verdict, c.Reason = walk.Inconclusive, "an ICMP error: the path, not the stack, answered"
		}
		r.check(c)
		return errStop
	}
}

// expect waits for the segment of a ">" line.
func (r *runner) expect(ctx context.Context, ev *Event) error {
	want := ev.Segment
	from, to, tol := r.window(ev.Time)
	deadline := to.Add(tol + r.cfg.Slack)
	for {
		g, err := r.read(ctx, deadline.Add(readGrace))
		if err == nil && g.at.After(deadline) {
			// Past the deadline by the kernel's clock (read during the
			// grace): the wanted segment came too late, anything else is
			// kept in the record and the line saw nothing in time.
			late := len(r.diff(want, g)) == 0
			r.observe(g)
			c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: "nothing", Verdict: walk.Fail,
				Reason: fmt.Sprintf("nothing came by %s", r.when(deadline)) + r.inputNote()}
			if late {
				c.Received = r.describe(g)
				c.Reason = fmt.Sprintf("came at %s, after the line's time %s, its tolerance %v and %v slack",
					r.when(g.at), r.when(to), tol, r.cfg.Slack)
			}
			r.check(c)
			return errStop
		}
		if errors.Is(err, probe.ErrTimeout) {
			r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: "nothing",
				Verdict: walk.Fail, Reason: fmt.Sprintf("nothing came by %s", r.when(deadline)) + r.inputNote()})
			return errStop
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
		if want.Flags.Has(craft.FlagSYN) && g.flags.Has(craft.FlagSYN) && !r.haveIRS {
			r.irs, r.haveIRS = g.seq-want.Start, true
		}
		diffs := r.diff(want, g)
		r.observe(g)
		if len(diffs) == 0 {
			c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: r.describe(g), Verdict: walk.Pass}
			if ev.Time.Kind != Any && g.at.Before(from.Add(-tol)) {
				c.Verdict = walk.Fail
				c.Reason = fmt.Sprintf("came at %s, %v before the line's time %s (tolerance %v)",
					r.when(g.at), from.Sub(g.at).Round(time.Millisecond), r.when(from), tol)
			}
			r.learnTS(want, g)
			r.prev = g.at
			if r.check(c).Verdict != walk.Pass {
				return errStop
			}
			return nil
		}
		if g.retrans && r.s.AllowRetransmissions {
			continue
		}
		r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.Text, Received: r.describe(g),
			Verdict: walk.Fail, Reason: strings.Join(diffs, "; ")})
		return errStop
	}
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
	if w.Seq != want.Start {
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
	if want.HasWin && g.win != want.Win {
		d = append(d, fmt.Sprintf("win %d, want %d", g.win, want.Win))
	}
	if want.HasUrg && g.urg != want.Urg {
		d = append(d, fmt.Sprintf("urg %d, want %d", g.urg, want.Urg))
	}
	if !want.AnyOptions && !sameOptions(w.Options, want.Options) {
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
	return r.sendSegment(ev.Segment, ev)
}

// sendSegment builds and sends a "<" segment in absolute numbers.
func (r *runner) sendSegment(s *Segment, ev *Event) error {
	seg := craft.Segment{Seq: r.iss + s.Start, Flags: s.Flags, Window: probe.DefaultWin, Urgent: s.Urg}
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
		seg.Options = append(seg.Options, r.craftOption(o))
	}
	seg.Payload = s.Payload
	if seg.Payload == nil && s.Len() > 0 {
		if uint32(len(r.zeros)) < s.Len() {
			r.zeros = make([]byte, s.Len())
		}
		seg.Payload = r.zeros[:s.Len()]
	}
	at, err := r.flow.Send(&seg)
	if err != nil {
		return fmt.Errorf("%s:%d: send %s: %w", r.s.Name, ev.Pos.Line, ev.Text, err)
	}
	out := walk.Segment{At: at, Dir: walk.Out, Flags: seg.Flags.String(), Seq: seg.Seq, Ack: seg.Ack, Win: seg.Window,
		Len: len(seg.Payload), RelSeq: s.Start, Note: fmt.Sprintf("line %d", ev.Pos.Line), Raw: bytes.Clone(r.flow.LastSent())}
	if r.haveIRS && s.HasAck {
		out.RelAck = seg.Ack - r.irs
	}
	for _, o := range seg.Options {
		out.Options = append(out.Options, o.String())
	}
	r.m.weSent(s.Flags, s.Start, s.Ack, s.Len(), s.HasAck)
	r.synPending = s.Flags&(craft.FlagSYN|craft.FlagACK|craft.FlagRST) == craft.FlagSYN
	if r.synPending {
		r.synSeq = s.Start
	}
	out.RemoteState = r.m.state
	r.segs = append(r.segs, out)
	if s.Flags.Has(craft.FlagACK) && s.HasAck {
		r.lastAck = s.Ack
	}
	r.prev = at
	return nil
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
	n := uint32(len(ev.Data))
	seg := &Segment{Dir: In, Flags: craft.FlagPSH | craft.FlagACK, Start: r.m.ourNext, End: r.m.ourNext + n,
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
	if err := r.cfg.Lab.Dial(ctx, r.flow.Local.Port()); err != nil {
		r.check(walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "the lab's client connects to us", Received: "nothing",
			Verdict: walk.Inconclusive, Reason: err.Error()})
		return errStop
	}
	r.prev = asked
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
	c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: ev.State, Wire: wire}
	if r.cfg.Oracle != nil && r.connected {
		deadline := time.Now().Add(oracleSettle)
		k := r.kernelFor(ev.State)
		for k != ev.State && time.Now().Before(deadline) {
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			k = r.kernelFor(ev.State)
		}
		c.Kernel, c.Disagree = k, wire != "" && wire != k
		c.Received = "kernel: " + k + ", wire: " + orUnknown(wire)
		if k == ev.State {
			c.Verdict = walk.Pass
		} else {
			c.Verdict, c.Reason = walk.Fail, fmt.Sprintf("the remote kernel says %s", k)
		}
	} else {
		c.Received = "wire: " + orUnknown(wire)
		switch wire {
		case ev.State:
			c.Verdict = walk.Pass
		case "":
			c.Verdict, c.Reason = walk.Inconclusive, "nothing on the wire tells the state yet, and there is no oracle"
		default:
			c.Verdict, c.Reason = walk.Fail, fmt.Sprintf("the segments so far put the remote in %s", wire)
		}
	}
	r.res.Checks = append(r.res.Checks, c)
	r.res.Checks[len(r.res.Checks)-1].At = time.Now()
	if c.Verdict != walk.Pass {
		return errStop
	}
	return nil
}

// kernelFor reads the oracle for %expect-state want: LISTEN is not a state
// of our 4-tuple (it has no socket: CLOSED) but of the port.
func (r *runner) kernelFor(want string) string {
	k := r.kernel()
	if want != "LISTEN" || k != "CLOSED" {
		return k
	}
	ok, err := r.cfg.Oracle.Listening(r.flow.Remote)
	switch {
	case err != nil:
		return "error: " + err.Error()
	case ok:
		return "LISTEN"
	}
	return k
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// tidy leaves no connection behind on the remote: an exact RST destroys a
// synchronized TCB (RFC 9293 §3.10.7.4) and a Linux TIME_WAIT
// (tcp_rfc1337=0); in SYN_SENT it must acknowledge the SYN (§3.10.7.3).
//
// A script cut short (SIGINT, SIGTERM) right after a SYN of ours, before
// its answer was read, may leave the remote in SYN_RCVD for that SYN (a
// first one, or a new connection out of TIME_WAIT) while the model knows
// no state or the old one: a RST at that SYN's sequence number + 1 is in
// the new connection's window and removes it, and a listener or closed
// port that never took the SYN ignores it (§3.10.7.1-2).
func (r *runner) tidy() {
	if !r.connected {
		return
	}
	st := r.m.state
	synPending := r.synPending
	if synchronized(st) || st == "SYN_SENT" {
		seg := craft.Segment{Seq: r.iss + r.m.ourNext, Flags: craft.FlagRST}
		if st == "SYN_SENT" && r.haveIRS {
			seg.Flags |= craft.FlagACK
			seg.Ack = r.irs + r.m.remoteNext
		}
		r.sendTidy(seg, r.m.ourNext, "tidy: reset")
		if r.synSeq+1 == r.m.ourNext {
			synPending = false // the same RST
		}
	}
	if synPending {
		r.sendTidy(craft.Segment{Seq: r.iss + r.synSeq + 1, Flags: craft.FlagRST}, r.synSeq+1, "tidy: reset the SYN's connection")
	}
}

// sendTidy sends and records one tidy RST (relSeq in the script's numbers).
func (r *runner) sendTidy(seg craft.Segment, relSeq uint32, note string) {
	at, err := r.flow.Send(&seg)
	if err != nil {
		return
	}
	r.segs = append(r.segs, walk.Segment{At: at, Dir: walk.Out, Flags: seg.Flags.String(), Seq: seg.Seq, Ack: seg.Ack,
		RelSeq: relSeq, Note: note, RemoteState: "CLOSED", Raw: bytes.Clone(r.flow.LastSent())})
}

// inputNote tells, for a line that saw nothing, that a local input rule may
// have dropped the reply ("" when the prober found none).
func (r *runner) inputNote() string {
	if n := r.cfg.Prober.InputRules(); n != "" {
		return "; " + n
	}
	return ""
}
