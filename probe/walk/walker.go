package walk

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/result"
)

// Config is what every walk needs.
type Config struct {
	Prober *probe.Prober
	// Port is the remote port walked (a listening one).
	Port uint16
	// ClosedPort is a remote port with no listener, for closed-port; zero:
	// the lab's when the trigger is the lab, else that walk is skipped.
	ClosedPort uint16
	// Trigger makes the remote app act; nil means none.
	Trigger Trigger
	// Dial makes the remote host connect to us (the syn-sent walk); nil:
	// the lab's client when Trigger is the lab, else that walk is skipped.
	Dial DialTrigger
	// DialProber, when set, is the prober the remote connects to: one
	// whose port range holds Dial.Port() (wait:PORT with a PORT outside
	// Prober's range). Nil: Prober.
	DialProber *probe.Prober
	// Oracle, when set, reads the remote kernel's states.
	Oracle Oracle
	Timing Timing
}

// Scenario is one named walk.
type Scenario struct {
	Name    string
	Summary string
	// Action is what the remote app must do, zero for none.
	Action Action
	run    func(ctx context.Context, w *Session) error
}

// Scenarios lists the walks in the order `all` reports them.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "closed-port", Summary: "CLOSED: a port with no listener resets SYN and ACK (RFC 9293 §3.10.7.1)", run: closedPort},
		{Name: "handshake", Summary: "LISTEN → SYN_RCVD → ESTABLISHED: the three-way handshake (§3.5)", run: handshake},
		{Name: "syn-rcvd", Summary: "SYN_RCVD: SYN-ACK retransmitted with the same ISS; a bad ACK is reset, the state kept", run: synRcvd},
		{Name: "passive-close", Summary: "we FIN first: ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSED", Action: CloseAfterFIN, run: passiveClose},
		{Name: "active-close", Summary: "remote FIN first: FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT", Action: CloseFirst, run: activeClose},
		{Name: "simultaneous-close", Summary: "both FIN before either ACK: FIN_WAIT_1 → CLOSING → TIME_WAIT", Action: CloseFirst, run: simultaneousClose},
		{Name: "half-close", Summary: "data still flows to us after our FIN (CLOSE_WAIT is half-open, §3.6)", Action: RespondAfterFIN, run: halfClose},
		{Name: "reset", Summary: "an exact RST closes an ESTABLISHED connection (§3.10.7.4, RFC 5961 §3.2)", run: reset},
		{Name: "syn-sent", Summary: "remote client: SYN_SENT, its SYN retransmitted, simultaneous open → SYN_RCVD", Action: Connect, run: synSent},
	}
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Names lists the scenario names, for help and errors.
func Names() []string {
	var out []string
	for _, s := range Scenarios() {
		out = append(out, s.Name)
	}
	return out
}

// Run walks the scenarios concurrently, each on its own source port, and
// returns their results in the order given. Each walk ends by itself: every
// wait has a deadline and our retransmissions are bounded.
func Run(ctx context.Context, cfg Config, scenarios []Scenario) []Result {
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming
	}
	if cfg.Trigger == nil {
		cfg.Trigger = payloadTrigger{name: "none"}
	}
	out := make([]Result, len(scenarios))
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = runOne(ctx, cfg, s)
		}()
	}
	wg.Wait()
	return out
}

// Session is one connection driven step by step: a Conn, the record of
// its segments, the judged checks, and the tidy-up. Each scenario runs on
// one (Run makes them); packages that build their own sequences on the walk
// machinery (conformance checks) make theirs with NewSession.
type Session struct {
	// afterFinalACK, when set, is called once the handshake's final ACK
	// is sent (AfterFinalACK).
	afterFinalACK func()
	cfg           Config
	res           *Result
	rec           recorder
	conn          *Conn
	flow          *probe.Flow
	plan          Plan
	dial          DialTrigger // for action Connect
	remote        netip.AddrPort
}

// Step names one judged step as the report shows it.
type Step struct {
	// Name is the check's name ("LISTEN → SYN_RCVD").
	Name string
	// Rule is the RFC rule that governs the step.
	Rule string
	// Probe is what we send, in the spec's notation ("" when we only wait).
	Probe string
	// Wire is the remote state the wire implies when the step passes (NoState for none).
	Wire result.State
}

func runOne(ctx context.Context, cfg Config, s Scenario) Result {
	port := cfg.Port
	if s.Name == "closed-port" {
		port = cfg.ClosedPort
		if port == 0 {
			if _, lab := cfg.Trigger.(*LabTarget); lab {
				port = labPortClosed
			} else {
				// Only a port seen answering RST: the walked port is
				// usually open, and its SYN,ACK is no CLOSED's answer.
				var why string
				if port, why = FindClosedPort(ctx, cfg); port == 0 {
					res := Result{Scenario: s.Name, Summary: s.Summary, Start: time.Now(), Verdict: Skipped,
						Target: netip.AddrPortFrom(cfg.Prober.Remote(), cfg.Port),
						Reason: why + "; pass --closed-port with a port that has no listener"}
					return res
				}
			}
		}
	}
	sess, res := newSession(cfg, s.Name, s.Summary, s.Action, port)
	if res != nil {
		return *res
	}
	err := s.run(ctx, sess)
	if ctx.Err() != nil && (err == nil || errors.Is(err, errStop)) {
		// Cut short: a wait that the signal ended may have looked like
		// the silence a check wants, and later checks never ran.
		err = ctx.Err()
	}
	return sess.Finish(err)
}

// NewSession prepares a connection to port for a walk named name. When
// action is not zero, the trigger's plan may choose another port; when the
// trigger cannot cause action, the returned Result says why (Skipped) and
// the Session is nil.
func NewSession(cfg Config, name string, action Action, port uint16) (*Session, *Result) {
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming
	}
	if cfg.Trigger == nil {
		cfg.Trigger = payloadTrigger{name: "none"}
	}
	return newSession(cfg, name, "", action, port)
}

func newSession(cfg Config, name, summary string, action Action, port uint16) (*Session, *Result) {
	res := Result{Scenario: name, Summary: summary, Start: time.Now(), Oracle: cfg.Oracle != nil}
	w := &Session{cfg: cfg, res: &res, rec: newRecorder(result.Closed, result.Listen)}
	if action == Connect {
		return w.connectSession()
	}
	if action != 0 {
		plan, err := cfg.Trigger.Plan(action, port)
		if err != nil {
			res.Verdict, res.Reason = Skipped, fmt.Sprintf("the remote app must %s: %v", action, err)
			res.Target = netip.AddrPortFrom(cfg.Prober.Remote(), port)
			res.Duration = time.Since(res.Start)
			return nil, &res
		}
		w.plan, port = plan, plan.Port
	}
	w.remote = netip.AddrPortFrom(cfg.Prober.Remote(), port)
	res.Target = w.remote
	var err error
	w.flow, err = cfg.Prober.NewFlow(port, 0)
	return w.started(err)
}

// connectSession prepares a session whose remote connects to us (action
// Connect): a listening flow on the dial trigger's port.
func (w *Session) connectSession() (*Session, *Result) {
	res := w.res
	w.dial = w.cfg.dialTrigger()
	if w.dial == nil {
		res.Verdict, res.Reason = Skipped, "the remote host must connect to us: pass --dial-trigger wait:PORT and make it connect (curl, nc, its own client), or connect-back:PORT:TEXT; in the lab, --close-trigger lab"
		res.Target = netip.AddrPortFrom(w.cfg.Prober.Remote(), 0)
		res.Duration = time.Since(res.Start)
		return nil, res
	}
	w.plan = Plan{Wait: w.dial.Wait()}
	if _, lab := w.dial.(*LabTarget); lab {
		w.plan.Port = labPortDialer // until its SYN names the client's port
	}
	w.remote = netip.AddrPortFrom(w.cfg.Prober.Remote(), w.plan.Port)
	res.Target = w.remote
	p := w.cfg.Prober
	if w.cfg.DialProber != nil {
		p = w.cfg.DialProber
	}
	var err error
	w.flow, err = p.Listen(w.dial.Port())
	return w.started(err)
}

// started ends newSession: the session on w.flow, or the result that says
// why there is none.
func (w *Session) started(err error) (*Session, *Result) {
	res := w.res
	if err != nil {
		res.Verdict, res.Reason = Inconclusive, err.Error()
		res.Duration = time.Since(res.Start)
		return nil, res
	}
	res.Local = w.flow.Local
	w.conn = newConn(w.flow, w.cfg.Timing, w.rec)
	return w, nil
}

// dialTrigger is what makes the remote connect to us: Dial, else the lab.
func (c *Config) dialTrigger() DialTrigger {
	if c.Dial != nil {
		return c.Dial
	}
	if lab, ok := c.Trigger.(*LabTarget); ok {
		return lab
	}
	return nil
}

// Finish tidies the remote (an exact RST when a connection may remain),
// releases the flow and returns the walk's result. err is what the steps
// returned: ErrStop (a judged check ended the walk) is not an error.
func (w *Session) Finish(err error) Result {
	res := w.res
	w.tidy()
	w.flow.Close()
	if err != nil && !errors.Is(err, errStop) {
		v, why := Unfinished(err)
		res.Verdict = Worse(res.Verdict, v)
		if res.Reason == "" || v == Interrupted {
			res.Reason = why
		}
	}
	res.Segments = w.rec.snapshot()
	res.Duration = time.Since(res.Start)
	res.Finish()
	return *res
}

// Reasons for a walk cut short by its context: what stopped it, not anything the remote did.
const (
	ReasonInterrupted = "interrupted (SIGINT or SIGTERM)"
	ReasonTimeLimit   = "gave up: time limit"
)

// reasonOf is the Check or Result reason for err. A cancelled context means the user interrupted tcpwalk (its
// signal handler cancels the context); an expired one, that the run's time limit passed. Go's own words for
// them ("context canceled") would read like a fault of the remote or of tcpwalk.
func reasonOf(err error) string {
	_, why := Unfinished(err)
	return why
}

// Unfinished is the verdict and reason of a check or walk that err ended before it was decided: Interrupted
// when the context was cancelled (the user's SIGINT or SIGTERM), else Inconclusive (a time limit, a local
// error). Every package that judges on the walk machinery (conform, script, firewall) ends unfinished work
// through it, so that an interruption is never reported as anything else.
func Unfinished(err error) (Verdict, string) {
	switch {
	case errors.Is(err, context.Canceled):
		return Interrupted, ReasonInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return Inconclusive, ReasonTimeLimit
	}
	return Inconclusive, err.Error()
}

// ErrStop is returned by steps after a check that failed or was
// inconclusive: later steps depend on it.
var ErrStop = errStop

// Conn is the session's connection.
func (w *Session) Conn() *Conn { return w.conn }

// Plan is the trigger's plan for the session's action (zero without one).
func (w *Session) Plan() Plan { return w.plan }

// Remote is the remote end of the connection.
func (w *Session) Remote() netip.AddrPort { return w.remote }

// Local is our end of the connection.
func (w *Session) Local() netip.AddrPort { return w.flow.Local }

// AfterFinalACK sets f to be called once, when Open has sent the
// handshake's final ACK: from then on the remote's listener no longer holds
// the connection half-open, which a caller bounding the connections in a
// listen backlog (conform's gate) needs to know before Open's confirmation
// and oracle reads end.
func (w *Session) AfterFinalACK(f func()) { w.afterFinalACK = f }

// States sets the states the ladder shows from the last segment on
// (result.NoState keeps one).
func (w *Session) States(local, remote result.State) { w.rec.states(local, remote) }

// Segments returns what was recorded so far.
func (w *Session) Segments() []Segment { return w.rec.snapshot() }

// Describe writes a recorded segment in the spec's notation.
func Describe(seg *Segment) string { return describe(seg) }

// errStop ends a walk after a failed or inconclusive check: later steps
// depend on it.
var errStop = errors.New("walk stopped")

// tidy leaves no connection behind on the remote: the engine's tidy
// (tcpconn.Conn.Tidy: an exact RST for a synchronized TCB or a TIME_WAIT,
// and one for what a SYN whose answer was not read may have opened). A
// closed port holds nothing.
func (w *Session) tidy() {
	if w.res.Scenario == "closed-port" {
		return
	}
	w.conn.Tidy()
}

// Kernel reads the oracle's state of the connection (NoState without an oracle),
// or why it could not.
func (w *Session) Kernel() (result.State, error) {
	if w.cfg.Oracle == nil {
		return result.NoState, nil
	}
	return w.cfg.Oracle.State(w.remote, w.flow.Local)
}

// Check records a judged check; wire is the remote state it implies when it
// passed (the oracle is read then).
func (w *Session) Check(c Check, wire result.State) Check {
	c.At = time.Now()
	if c.Verdict == Pass {
		c.Wire = wire
		w.rec.states(result.NoState, wire)
	}
	if w.cfg.Oracle != nil && c.Verdict == Pass && wire != result.NoState {
		c.Kernel, c.KernelErr = w.Kernel()
		c.Disagree = c.KernelErr != nil || c.Kernel != c.Wire
		if at := w.rec.lastIn(); !at.IsZero() {
			c.KernelLag = time.Since(at)
		}
	}
	w.res.Checks = append(w.res.Checks, c)
	return c
}

// ExpectStep is the common shape of a step: send with send (retransmitting
// up to Timing.Tries) until a segment matching want comes, and record the
// check.
func (w *Session) ExpectStep(ctx context.Context, st Step, send func(retry bool) error, want Want) (*Reply, error) {
	wire := st.Wire
	r, other, err := w.conn.Exchange(ctx, send, want)
	c := Check{Name: st.Name, Rule: st.Rule, Probe: st.Probe, Expected: want.String()}
	if err == nil && r != nil {
		c.Verdict, c.Received = Pass, describe(r.Seg)
		if want.Or != nil && !want.Match(r.Seg, r.Flags) {
			wire, c.Reason = want.OrWire, want.OrNote
		}
	} else {
		c = w.judgeExchange(c, other, err)
	}
	w.Check(c, wire)
	if c.Verdict != Pass {
		return nil, errStop
	}
	return r, nil
}

// inputNote tells, for a step that saw no reply, that a local input rule
// may have dropped it ("" when the prober found none).
func inputNote(p *probe.Prober) string {
	if p == nil || p.InputRules() == "" {
		return ""
	}
	return "; " + p.InputRules()
}

// malformedNote tells, for a step that saw no reply, that replies did come
// but were dropped as malformed ("" when none were): "no reply" alone would
// hide what the remote got wrong.
func (w *Session) malformedNote() string {
	n := w.flow.Malformed()
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d malformed replies on this connection were dropped (the last: %s)", n, w.cfg.Prober.LastMalformed())
}

// ExpectRemote waits up to wait for a segment the remote sends by itself
// (its retransmission, its FIN), without sending anything.
func (w *Session) ExpectRemote(ctx context.Context, st Step, want Want, wait time.Duration) (*Reply, error) {
	name, rule, wire := st.Name, st.Rule, st.Wire
	var other *Segment
	deadline := time.Now().Add(wait)
	for {
		r, err := w.conn.next(ctx, deadline)
		if err != nil {
			c := Check{Name: name, Rule: rule, Probe: st.Probe, Expected: want.String(), Received: "nothing", Verdict: Inconclusive}
			if errors.Is(err, probe.ErrTimeout) {
				c.Reason = fmt.Sprintf("nothing came in %v", wait) + w.malformedNote()
			} else {
				c.Verdict, c.Reason = Unfinished(err)
			}
			if other != nil && c.Verdict != Interrupted {
				c.Verdict, c.Received, c.Reason = Fail, describe(other), "the remote sent something else"
			}
			w.Check(c, wire)
			return nil, errStop
		}
		if r.Seg != nil && r.Seg.ICMP == "" && want.Match(r.Seg, r.Flags) {
			w.Check(Check{Name: name, Rule: rule, Probe: st.Probe, Expected: want.String(), Received: describe(r.Seg), Verdict: Pass}, wire)
			return r, nil
		}
		if r.Seg != nil && r.Flags&^(craft.FlagPSH|craft.FlagACK) != 0 && !r.Seg.Retransmission && !r.Seg.Repeat {
			other = r.Seg // a control segment we did not expect
		}
	}
}

// ExpectSilence checks that nothing for which bad is true comes for d;
// expected is what the report shows as expected.
func (w *Session) ExpectSilence(ctx context.Context, st Step, expected string, d time.Duration, bad func(*Reply) bool) error {
	return w.expectSilenceUnsure(ctx, st, expected, d, bad, nil)
}

// expectSilenceUnsure is expectSilence where a segment for which unsure
// returns a reason makes the check inconclusive instead of failed: the
// segment is also what a correct remote sends when the path duplicated one
// of our segments. Only segments that came after our last send count, and
// never repeats of earlier answers.
func (w *Session) expectSilenceUnsure(ctx context.Context, st Step, expected string, d time.Duration, bad func(*Reply) bool, unsure func(*Reply) string) error {
	name, rule, wire := st.Name, st.Rule, st.Wire
	since := w.conn.LastSend
	rs, err := w.conn.Collect(ctx, d)
	if err != nil {
		c := Check{Name: name, Rule: rule, Expected: expected}
		c.Verdict, c.Reason = Unfinished(err)
		w.Check(c, wire)
		return errStop
	}
	for _, r := range rs {
		if r.Seg == nil || r.Seg.At.Before(since) || r.Seg.Repeat {
			continue
		}
		if unsure != nil {
			if why := unsure(r); why != "" {
				w.Check(Check{Name: name, Rule: rule, Expected: expected, Received: describe(r.Seg), Verdict: Inconclusive,
					Reason: why}, wire)
				return errStop
			}
		}
		if bad(r) {
			w.Check(Check{Name: name, Rule: rule, Expected: expected, Received: describe(r.Seg), Verdict: Fail,
				Reason: "the remote sent a segment it must not send here"}, wire)
			return errStop
		}
	}
	w.Check(Check{Name: name, Rule: rule, Expected: expected, Received: fmt.Sprintf("nothing of that in %v", d), Verdict: Pass}, wire)
	return nil
}

// describe writes a recorded segment in the spec's notation plus length.
func describe(s *Segment) string {
	if s == nil {
		return "nothing"
	}
	if s.ICMP != "" {
		return s.ICMP
	}
	f := s.Flags
	var b strings.Builder
	fmt.Fprintf(&b, "<SEQ=%d>", s.Seq)
	if f.Has(craft.FlagACK) {
		fmt.Fprintf(&b, "<ACK=%d>", s.Ack)
	}
	fmt.Fprintf(&b, "<CTL=%s>", ctlNames(f))
	if s.Len > 0 {
		fmt.Fprintf(&b, " len %d", s.Len)
	}
	if s.Retransmission {
		b.WriteString(" (retransmission)")
	}
	return b.String()
}
