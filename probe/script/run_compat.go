package script

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// The runner's side of the packetdrill compatibility layer (see compat.go):
// the remote's application acts through the lab's app control, local
// observations are noted, lines without a remote equivalent skip the rest.

// AppController makes the remote's application end of our connection act,
// out of band: "close", "shutdown", "rst" or "write N" (package lab's app
// control; *walk.LabTarget is one). Config.Lab provides it when it can.
type AppController interface {
	App(ctx context.Context, peerPort uint16, action string) error
}

// HoldDialer asks the remote to connect and keep its socket open after our
// FIN until an app action closes it, as a packetdrill connect() does whose
// close() is a later line (*walk.LabTarget).
type HoldDialer interface {
	DialHold(ctx context.Context, port uint16) error
}

// Closed reports whether the script's socket is neither listening nor
// connected: a packetdrill socket in CLOSED, whose segments go to a port
// where nothing listens.
func (s *Script) Closed() bool { return s.Packetdrill && !s.Listens && !s.Dials }

// Skip reasons, named so that a suite's skips can be counted by reason.
const (
	ReasonNoClosedPort = "needs a port where nothing listens (the script's socket is in CLOSED): give one, or run against the lab"
	ReasonNoAppControl = "the remote app must act here, which needs the lab's app control (run against the lab)"
	ReasonListenerGone = "closes the listening socket while the script goes on: the remote's listener cannot be closed from here"
	ReasonNoDialer     = "connect() (%dial) needs the remote host to connect to us: run against the lab (its client dials) or give --dial-trigger"
)

func skipClosed(res walk.Result) walk.Result {
	res.Verdict, res.Reason = walk.Skipped, ReasonNoClosedPort
	res.Duration = time.Since(res.Start)
	return res
}

// later reports whether an event after i checks something: an expected
// segment or a state. An app action after the last check is clean-up, as
// a packetdrill script's final close() is: not made, noted.
func (r *runner) later(i int) bool {
	for _, e := range r.s.Events[i+1:] {
		if e.Kind == ExpectState || e.Kind == Packet && e.Segment.Dir == FromRemote {
			return true
		}
	}
	return false
}

// skip ends the script skipped at ev with reason.
func (r *runner) skip(ev *Event, reason string) {
	r.res.Verdict = walk.Skipped
	r.res.Reason = fmt.Sprintf("line %d, %q: %s", ev.Pos.Line, ev.Text, reason)
}

// app is a system call of the remote's application (close, shutdown,
// write): asked of the lab's app control at the line's time.
func (r *runner) app(ctx context.Context, i int) error {
	ev := &r.s.Events[i]
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	if !r.later(i) {
		r.res.Assumptions = append(r.res.Assumptions, fmt.Sprintf("line %d: %s after the last check: clean-up, not made", ev.Pos.Line, ev.Text))
		r.advance(from)
		return nil
	}
	if ev.Listener {
		r.skip(ev, ReasonListenerGone)
		return nil
	}
	a, ok := r.cfg.Lab.(AppController)
	if !ok || r.cfg.Lab == nil {
		if payload, wait, ok := r.triggerPlan(); ok {
			return r.closeByTrigger(ctx, i, payload, wait)
		}
		r.skip(ev, ReasonNoAppControl)
		return nil
	}
	asked := time.Now()
	// The lab's server accepts a connection a moment after its
	// handshake: "none" is asked again for a little while.
	var err error
	for try := 0; try < 10; try++ {
		if err = a.App(ctx, r.flow.Local.Port(), ev.Action); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "no connection") {
			break
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if err != nil {
		c := walk.Check{Name: r.name(ev), Rule: r.rule(ev), Expected: "the remote app: " + ev.Action, Received: "nothing"}
		c.Verdict, c.Reason = walk.Unfinished(err)
		r.check(c)
		return errStop
	}
	r.prev, r.actionRTT = asked, time.Since(asked)
	return nil
}

// note is a local observation of packetdrill's: not checked, noted once
// per call.
func (r *runner) note(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	name := ev.Text
	if i := strings.IndexByte(name, '('); i > 0 {
		name = strings.TrimSpace(strings.TrimLeft(name[:i], "+0123456789.~* "))
	}
	text := fmt.Sprintf("line %d: %s", ev.Pos.Line, ev.Reason)
	dup := false
	for _, a := range r.res.Assumptions {
		if strings.Contains(a, ": "+name+"(") {
			dup = true
			break
		}
	}
	if !dup {
		r.res.Assumptions = append(r.res.Assumptions, text)
	}
	r.advance(from)
	return nil
}

// unsupported ends the script skipped at a line with no remote equivalent.
func (r *runner) unsupported(ctx context.Context, ev *Event) error {
	from, _, _ := r.window(ev.Time)
	if err := r.quiet(ctx, from, ev); err != nil {
		return err
	}
	r.skip(ev, ev.Reason)
	return nil
}

// advance moves the previous event's time to a line that took no time on
// the wire.
func (r *runner) advance(from time.Time) {
	if from.After(r.prev) {
		r.prev = from
	}
}

// listenerMissing is the one rule for a script whose listener is not
// there: the script waits for its first SYN,ACK (no IRS yet) and our SYN
// draws the answer of CLOSED instead, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
// <CTL=RST,ACK> (RFC 9293 §3.10.7.1). That is no list of RFC failures: a
// packetdrill script's precondition (its listen()) does not hold, and it
// ends skipped; a native script's target port is wrong, and it ends
// inconclusive (run exits 3, "no listener"). Both begin their reason with
// ReasonNoListener.
func (r *runner) listenerMissing(want *Segment, g *in) bool {
	if r.haveIRS || !want.Flags.Has(craft.FlagSYN|craft.FlagACK) || g.flags != craft.FlagRST|craft.FlagACK || !r.acksOurSYN(g.ack) {
		return false
	}
	port := r.flow.Remote.Port()
	if r.s.Packetdrill {
		if !r.s.Listens {
			return false
		}
		r.res.Verdict = walk.Skipped
		r.res.Reason = fmt.Sprintf("%s %d: the script needs one (its listen())", ReasonNoListener, port)
		r.res.Checks = append(r.res.Checks, walk.Check{Name: "listener at the target port", Rule: "script precondition (listen())",
			Expected: "a SYN,ACK to our SYN", Received: r.describe(g), Verdict: walk.Skipped, Reason: r.res.Reason, At: time.Now()})
		return true
	}
	r.res.Checks, r.res.Verdict = nil, walk.Inconclusive
	r.res.Reason = fmt.Sprintf("%s %d (its SYN was answered with RST,ACK)", ReasonNoListener, port)
	return true
}

// acksOurSYN reports whether ack acknowledges a SYN the script sent.
func (r *runner) acksOurSYN(ack uint32) bool {
	for i := range r.s.Events {
		ev := &r.s.Events[i]
		if ev.Kind == Packet && ev.Segment.Dir == ToRemote && ev.Segment.Flags.Has(craft.FlagSYN) && !ev.Segment.Flags.Has(craft.FlagACK) &&
			ack == r.iss+ev.Segment.Start+1 {
			return true
		}
	}
	return false
}

// sameOptionKinds compares the option kinds as a set, NOP and EOL aside:
// a packetdrill script's ">" options are one stack's layout (FreeBSD's
// order, its window scale); what the RFC asks of the remote is which
// options it sends, not their order or its own choice of shift. SACK
// blocks are compared.
func sameOptionKinds(got, want []Option) bool {
	kinds := func(os []Option) ([]int, [][]craft.SACKBlock) {
		var k []int
		var b [][]craft.SACKBlock
		for _, o := range os {
			switch o.Kind {
			case craft.OptNOP, craft.OptEOL:
				continue
			case craft.OptSACK:
				b = append(b, o.Blocks)
			}
			k = append(k, int(o.Kind))
		}
		sort.Ints(k)
		return k, b
	}
	gk, gb := kinds(got)
	wk, wb := kinds(want)
	if fmt.Sprint(gk) != fmt.Sprint(wk) || len(gb) != len(wb) {
		return false
	}
	for i := range gb {
		if fmt.Sprint(gb[i]) != fmt.Sprint(wb[i]) {
			return false
		}
	}
	return true
}

// SkipReason is a skipped script's reason without its line: "line 41:
// `tcpdrop -s TIME_WAIT`: the shell command ..." becomes the reason alone,
// so that a suite's skips can be counted by reason.
func SkipReason(reason string) string {
	_, rest, ok := strings.Cut(reason, ", ")
	if !strings.HasPrefix(reason, "line ") || !ok {
		return reason
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return reason
	}
	return strings.TrimPrefix(rest[len(q):], ": ")
}
