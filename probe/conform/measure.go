package conform

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// Measurement is something tcpwalk measures and reports without judging it.
type Measurement struct {
	// ID is "STATE/item", e.g. "SYN_RCVD/synack-schedule".
	ID   string
	Name string
	// Rule is where the behaviour is specified.
	Rule string
	// Value is the result in words.
	Value string
	// Intervals are the gaps between successive transmissions of one
	// segment (the first is from the original to the first
	// retransmission), for schedules.
	Intervals []time.Duration
	// OK is false when nothing could be measured; Value says why.
	OK bool
	// Caveat, when set, says why the value may differ from what an idle
	// prober on a clean path measures (Value ends with it too).
	Caveat string
	// Interrupted is true when the user stopped the run before the
	// measurement ended; OK is then false.
	Interrupted bool
	Duration    time.Duration
	// Result is the session the measurement's value comes from; nil when
	// it made none of its own.
	Result *walk.Result
	// Sessions is every session the measurement made (Result among
	// them), for the pcap writer: a pcap holds all segments of a run.
	Sessions []walk.Result
}

// Measurement IDs.
const (
	MeasureSynAckSchedule = "SYN_RCVD/synack-schedule"
	MeasureFINBackoff     = "FIN_WAIT_1/fin-backoff"
	MeasureSynCookies     = "LISTEN/syn-cookies"
	MeasureTWFingerprint  = "TIME_WAIT/fingerprint"
)

// Measurements lists the measurement IDs in the order Run reports them.
func Measurements() []string {
	return []string{MeasureSynAckSchedule, MeasureFINBackoff, MeasureSynCookies, MeasureTWFingerprint}
}

// How long the measurements wait. By default the first retransmissions
// only: Linux's SYN,ACK comes again after 1 and 3 s, its FIN after 0.2, 0.6
// and 1.4 s; with Config.AllRetransmissions, all of them (Linux gives a
// half-open connection up after 63 s, an orphaned FIN after about 100 s).
const (
	synAckFirst    = 2
	synAckWait     = 4 * time.Second
	synAckWaitAll  = 70 * time.Second
	finFirst       = 3
	finWait        = 3500 * time.Millisecond
	finWaitAll     = 110 * time.Second
	ruleSchedule   = "RFC 6298 §5.5 (RTO doubles on each retransmission; RFC 9293 §3.8.1)"
	ruleSynCookies = "RFC 4987 §3.6 (SYN cookies: no state, so no SYN,ACK retransmission, options the cookie cannot hold dropped)"
	ruleTWISS      = "RFC 6191 §2 (a TIME-WAIT connection reopened by a SYN gets an ISS above the old SND.NXT)"
)

// shared is what checks and measurements of one run tell each other.
type shared struct {
	mu sync.Mutex
	// twOffset is ISS' − old SND.NXT seen by TIME_WAIT/syn-higher-seq;
	// 0 when the SYN was answered with an ACK.
	twOffset uint32
	twSeen   bool
	// retransmitted: the SYN,ACK schedule saw a retransmission (-1 not
	// measured, 0 none, 1 yes).
	synAckRetransmitted int
	// path is the loss the run's confirmation probes saw.
	path pathLoss
	// synAckOptions is what options-offered's SYN,ACK carried (optBit…),
	// -1 when it did not run.
	synAckOptions int
	// gate bounds the connections in the remote's handshake; priority
	// counts the SYN,ACK schedule's connections not yet in it (the checks
	// start after them).
	gate     *gate
	priority sync.WaitGroup
}

// Bits of shared.synAckOptions.
const (
	optBitSACK = 1 << iota
	optBitWS
	optBitTS
)

// setSynAckOptions notes the options of the SYN,ACK to a SYN offering all.
func (sh *shared) setSynAckOptions(seg *walk.Segment) {
	opts, err := synOptions(seg)
	if err != nil {
		return
	}
	bits := 0
	if _, ok := opts[craft.OptSACKPermitted]; ok {
		bits |= optBitSACK
	}
	if _, ok := opts[craft.OptWindowScale]; ok {
		bits |= optBitWS
	}
	if _, ok := opts[craft.OptTimestamps]; ok {
		bits |= optBitTS
	}
	sh.mu.Lock()
	sh.synAckOptions = bits
	sh.mu.Unlock()
}

func (sh *shared) setFingerprint(off uint32) {
	sh.mu.Lock()
	sh.twOffset, sh.twSeen = off, true
	sh.mu.Unlock()
}

// intervalsText writes gaps in seconds.
func intervalsText(d []time.Duration) string {
	parts := make([]string, len(d))
	for i, v := range d {
		parts[i] = fmt.Sprintf("%.2fs", v.Seconds())
	}
	return strings.Join(parts, ", ")
}

// gaps returns the intervals between successive times.
func gaps(at []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i].Sub(at[i-1]))
	}
	return out
}

// collectRetransmissions reads the connection until want copies of the
// remote segment matching same came after the original at first (want 0:
// until deadline), and returns the times of the original and each copy.
// A copy within window of the one before is passed over: for a SYN,ACK,
// dupWindow, as no SYN,ACK timer is that short (RFC 6298 §2.1: 1 s) and
// such a copy answers a copy the path made of our SYN. (The path's own
// copies are byte-identical and never reach here.)
func collectRetransmissions(ctx context.Context, c *walk.Conn, first time.Time, same func(*walk.Reply) bool, want int, deadline time.Time, window time.Duration) ([]time.Time, error) {
	at := []time.Time{first}
	// The wait follows the remote's timer: RFC 6298 §2.1 allows an initial
	// RTO of 1 s, RFC 1122's 3 s is still common, and each retransmission
	// doubles it (§5.5). A wait sized for Linux's 1 s would take a 3 s
	// stack for one that lost its second retransmission.
	limit := first.Add(maxScheduleWait)
	for want == 0 || len(at) <= want {
		if n := len(at); want > 0 && n >= 2 {
			next := at[n-1].Add(at[n-1].Sub(at[n-2])*5/2 + 100*time.Millisecond)
			if next.After(deadline) {
				deadline = next
			}
			if deadline.After(limit) {
				deadline = limit
			}
		}
		r, err := c.Next(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) {
			break
		}
		if err != nil {
			return at, err
		}
		if r.Seg != nil && r.Seg.ICMP == "" && same(r) && r.Seg.At.Sub(at[len(at)-1]) >= window {
			at = append(at, r.Seg.At)
		}
	}
	return at, nil
}

// maxScheduleWait bounds a measurement's wait however slow the remote's
// timer: a first retransmission after 3 s and a second 6 s later fit.
const maxScheduleWait = 10 * time.Second

// dupWindow: see collectRetransmissions.
const dupWindow = 100 * time.Millisecond

// scheduleProbes is how many connections time a schedule at once. A lost
// retransmission merges two intervals into one, a lost original shifts
// them, and nothing on the wire shows either when the remote's IP IDs do
// not count its segments (a SYN,ACK from Linux's request socket has ID 0):
// only connections that agree are believed (see agreed).
const scheduleProbes = 3

// schedule is what one connection measured.
type schedule struct {
	res  walk.Result
	gaps []time.Duration
	// lost, when set, says which segment of the remote's the connection
	// shows was lost: its gaps are not the schedule.
	lost string
	// counted: the remote's IP IDs counted every segment it sent on the
	// connection, and none is missing: the gaps are the schedule.
	counted bool
	// late is how long our latest ACK took after what it acknowledged.
	late time.Duration
}

// measured reports whether the connection measured anything.
func (s schedule) measured() bool { return s.res.Verdict == walk.Pass && s.lost == "" }

// sameGap reports whether two intervals are the same timer's: within
// 50 ms and 10 % (timers fire a little late on a loaded machine, never by
// a whole interval of a doubling schedule).
func sameGap(a, b time.Duration) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 50*time.Millisecond+max(a, b)/10
}

// agreed returns the schedule that the connections agree on: one that at
// least two measured alike, with as many intervals as any connection saw,
// and none longer than another connection's at the same place (loss only
// ever lengthens or drops intervals). ok is false when there is none; why
// then lists what each saw.
func agreed(scheds []schedule) (gaps []time.Duration, ok bool, why string) {
	var got [][]time.Duration
	var notes []string
	for _, s := range scheds {
		switch {
		case s.res.Verdict != walk.Pass:
			notes = append(notes, "not measured: "+reasonOf(s.res))
		case s.lost != "":
			notes = append(notes, s.lost)
		default:
			got = append(got, s.gaps)
			notes = append(notes, "["+intervalsText(s.gaps)+"]")
		}
	}
	alike := func(a, b []time.Duration) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameGap(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	finest := func(a []time.Duration) bool {
		for _, b := range got {
			if len(b) > len(a) {
				return false
			}
			for i := range b {
				if a[i] > b[i] && !sameGap(a[i], b[i]) {
					return false
				}
			}
		}
		return true
	}
	for i, a := range got {
		for _, b := range got[i+1:] {
			if alike(a, b) && finest(a) {
				return a, true, ""
			}
		}
	}
	return nil, false, fmt.Sprintf("%d connections timed it, and no two that show no sign of loss agree (a lost retransmission merges two intervals, a lost original shifts them): %s",
		len(scheds), strings.Join(notes, "; "))
}

// measureSchedules runs scheduleProbes sessions of fn at once and returns
// what each measured.
func measureSchedules(ctx context.Context, cfg *Config, sh *shared, id string, action walk.Action, fn func(context.Context, *env) (schedule, error)) []schedule {
	// The connections read no oracle: a kernel read after a step (tens to
	// hundreds of ms, in another namespace) delays our ACK that follows
	// it, the handshake's above all, and the remote's RTO, whose schedule
	// is measured, follows its round-trip samples (RFC 6298 §2).
	mcfg := *cfg
	mcfg.Walk.Oracle = nil
	cfg = &mcfg
	out := make([]schedule, scheduleProbes)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s schedule
			s.res = session(ctx, cfg, sh, id, action, func(ctx context.Context, e *env) error {
				var err error
				s, err = fn(ctx, e)
				return err
			})
			out[i] = s
		}()
	}
	wg.Wait()
	return out
}

// doubling reports whether each interval is about twice the one before, as
// an RTO backed off by RFC 6298 §5.5 makes them (timers fire a little late
// on a loaded machine: 1.5× to 2.7× is taken for 2×).
func doubling(gaps []time.Duration) bool {
	for i := 1; i < len(gaps); i++ {
		if r := float64(gaps[i]) / float64(gaps[i-1]); r < 1.5 || r > 2.7 {
			return false
		}
	}
	return true
}

// sessionsOf lists the sessions of scheds.
func sessionsOf(scheds []schedule) []walk.Result {
	out := make([]walk.Result, len(scheds))
	for i, s := range scheds {
		out[i] = s.res
	}
	return out
}

// measureSynAck withholds the final ACK and times the SYN,ACK's
// retransmissions, on scheduleProbes connections.
func measureSynAck(ctx context.Context, cfg *Config, sh *shared) (m Measurement) {
	m = Measurement{ID: MeasureSynAckSchedule, Name: "SYN,ACK retransmission schedule", Rule: ruleSchedule}
	start := time.Now()
	want, wait := synAckFirst, synAckWait
	if cfg.AllRetransmissions {
		want, wait = 0, synAckWaitAll
	}
	scheds := measureSchedules(ctx, cfg, sh, m.ID, 0, func(ctx context.Context, e *env) (schedule, error) {
		t, err := reachSynRcvd(ctx, e)
		if err != nil {
			return schedule{}, err
		}
		// The SYN,ACK that answered our last SYN: Linux restarts the
		// timer on answering a retransmitted SYN (tcp_check_req).
		first := lastIn(e.s.Segments(), craft.FlagSYN|craft.FlagACK)
		iss := t.sndNxt - 1
		at, err := collectRetransmissions(ctx, e.c, first, func(r *walk.Reply) bool {
			return r.Flags == craft.FlagSYN|craft.FlagACK && r.Seg.Seq == iss
		}, want, first.Add(wait), dupWindow)
		s := schedule{gaps: gaps(at)}
		if n := synsSent(e.s.Segments()); n > 1 {
			// Our SYN went again (its SYN,ACK lost, or read late): the
			// remote answered a copy or not (rate-limited), restarted its
			// timer or not, and which SYN,ACK began the schedule is unsure.
			s.lost = fmt.Sprintf("[%s]: our SYN went out %d times, so the schedule's start is unsure", intervalsText(s.gaps), n)
			return s, err
		}
		if !doubling(s.gaps) {
			// RFC 6298 §5.5: the RTO doubles with each retransmission.
			// Intervals that do not are two merged by a lost one (a 1 s
			// stack's lost first retransmission reads 3 s, then 4 s).
			s.lost = fmt.Sprintf("[%s]: the intervals do not double (RFC 6298 §5.5): a retransmission was lost", intervalsText(s.gaps))
			return s, err
		}
		if n := len(s.gaps); n > 0 && n < want {
			// Fewer than asked for, but some: a later one may have been
			// lost (or the schedule is slower than the wait; then
			// AllRetransmissions measures it).
			s.lost = fmt.Sprintf("[%s]: only %d of the first %d retransmissions within %v, one may have been lost", intervalsText(s.gaps), n, want, wait)
		}
		return s, err
	})
	m.Result, m.Duration = &scheds[0].res, time.Since(start)
	m.Sessions = sessionsOf(scheds)
	gaps, ok, why := agreed(scheds)
	if ok && cfg.AllRetransmissions && len(gaps) > 0 {
		m.Caveat = "the remote's last retransmission, if lost, cannot be told from its giving up"
		defer func() { m.Value += "; " + m.Caveat }()
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, s := range scheds {
		if s.measured() && len(s.gaps) > 0 {
			// Loss never makes a retransmission: one is proof.
			sh.synAckRetransmitted = 1
		}
	}
	switch {
	case !ok:
		m.Value = "not measured: " + why
	case len(gaps) == 0:
		m.OK, m.Value = true, "no retransmission within "+wait.String()+" (SYN cookies, or an initial RTO beyond it)"
		sh.synAckRetransmitted = 0
	default:
		m.Intervals = gaps
		m.OK, m.Value = true, intervalsText(gaps)
	}
	return m
}

// measureFINBackoff lets the remote app close first, withholds the ACK of
// its FIN and times the FIN's retransmissions, on scheduleProbes
// connections. A connection whose remote numbers its segments (Linux: the
// IP ID counts a socket's segments) shows a lost one as a gap and is not
// believed.
func measureFINBackoff(ctx context.Context, cfg *Config, sh *shared) (m Measurement) {
	m = Measurement{ID: MeasureFINBackoff, Name: "FIN retransmission backoff in FIN_WAIT_1", Rule: ruleSchedule}
	start := time.Now()
	want, wait := finFirst, finWait
	if cfg.AllRetransmissions {
		want, wait = 0, finWaitAll
	}
	scheds := measureSchedules(ctx, cfg, sh, m.ID, walk.CloseFirst, func(ctx context.Context, e *env) (schedule, error) {
		f, err := e.closeFirst(ctx)
		if err != nil {
			return schedule{}, err
		}
		first := lastIn(e.s.Segments(), craft.FlagFIN)
		at, err := collectRetransmissions(ctx, e.c, first, func(r *walk.Reply) bool {
			return r.Flags.Has(craft.FlagFIN) && r.Seg.Seq.Add(tcpconn.Size(r.Seg.Len)) == f
		}, want, first.Add(wait), 0)
		segs := e.s.Segments()
		lost, counted := lostSegment(segs)
		if lost == "" {
			lost = repeatedACK(segs)
		}
		g := gaps(at)
		if n := len(g); lost == "" && n > 0 && n < want {
			// IP IDs cannot show a lost last retransmission: no later
			// segment tells.
			lost = fmt.Sprintf("[%s]: only %d of the first %d retransmissions within %v, the last may have been lost", intervalsText(g), n, want, wait)
		}
		late := lateACK(segs)
		if early := finBeforeDataACK(segs); early > late {
			late = early
		}
		return schedule{gaps: g, lost: lost, counted: counted, late: late}, err
	})
	m.Result, m.Duration = &scheds[0].res, time.Since(start)
	m.Sessions = sessionsOf(scheds)
	// A connection whose IP IDs show that nothing was lost is believed on
	// its own; of several, the one whose ACKs were least late (the
	// remote's RTO follows its round-trip samples, RFC 6298 §2). Else the
	// connections must agree.
	best := -1
	for i, s := range scheds {
		if s.measured() && s.counted && (best < 0 || s.late < scheds[best].late) {
			best = i
		}
	}
	var gaps []time.Duration
	var ok bool
	var why string
	var late time.Duration
	if best >= 0 {
		gaps, ok, late = scheds[best].gaps, true, scheds[best].late
		m.Result = &scheds[best].res
	} else {
		gaps, ok, why = agreed(scheds)
		for _, s := range scheds {
			late = max(late, s.late)
		}
	}
	if ok && cfg.AllRetransmissions {
		m.Caveat = "the remote's last retransmission, if lost, cannot be told from its giving up"
	}
	if late > lateACKCaveat {
		m.Caveat = fmt.Sprintf("our ACKs were late (up to %v after what they acknowledged, or after the remote's first FIN retransmission: a loaded prober): the remote's round-trip samples, and so its RTO (RFC 6298 §2) and tail loss probe, include that",
			late.Round(time.Millisecond))
	}
	defer func() {
		if m.OK && m.Caveat != "" {
			m.Value += "; " + m.Caveat
		}
	}()
	switch {
	case !ok:
		m.Value = "not measured: " + why
	case len(gaps) == 0:
		m.OK, m.Value = true, "no retransmission within "+wait.String()
	default:
		m.Intervals = gaps
		m.OK, m.Value = true, intervalsText(gaps)
	}
	return m
}

// lateACKCaveat: an ACK of ours later than this after what it
// acknowledges lengthens the remote's RTO noticeably beyond Linux's 200 ms
// floor (RTO = SRTT + max(4·RTTVAR, 200 ms)).
const lateACKCaveat = 30 * time.Millisecond

// lateACK is the longest our ACKs took after the remote segment they
// acknowledged, the final ACK of the handshake and ACKs of data: the
// remote takes that time for a round trip.
func lateACK(segs []walk.Segment) time.Duration {
	var late time.Duration
	var lastIn time.Time
	for _, s := range segs {
		switch {
		case s.Dir == walk.In && !s.Duplicate && (s.Len > 0 || s.Flags == craft.FlagSYN|craft.FlagACK):
			lastIn = s.At
		case s.Dir == walk.Out && s.Flags == craft.FlagACK && !lastIn.IsZero():
			late = max(late, s.At.Sub(lastIn))
			lastIn = time.Time{}
		}
	}
	return late
}

// finBeforeDataACK is how long before our ACK of the remote's data its
// FIN was first retransmitted (0 when not): the FIN's timers then ran with
// data in flight (Linux probes a tail of two segments within a few
// milliseconds), so its schedule is what a slow prober sees. It counts as
// a late ACK: a reason to note, above lateACKCaveat.
func finBeforeDataACK(segs []walk.Segment) time.Duration {
	// Record order is read order, not the kernel's receive order: compare
	// the times.
	var rexmit, acked time.Time
	for _, s := range segs {
		switch {
		case s.Dir == walk.In && s.Retransmission && !s.Duplicate && s.Flags.Has(craft.FlagFIN) && rexmit.IsZero():
			rexmit = s.At
		case s.Dir == walk.Out && s.Note == "ack data":
			acked = s.At
		}
	}
	if rexmit.IsZero() || acked.IsZero() || !acked.After(rexmit) {
		return 0
	}
	return lateACKCaveat + acked.Sub(rexmit) + time.Millisecond
}

// repeatedACK says that we sent the handshake's final ACK more than once
// ("" when once): the first was lost or not taken, and the remote's first
// round-trip sample, on which its RTO rests (RFC 6298 §2.2), then
// includes our wait before the next.
func repeatedACK(segs []walk.Segment) string {
	n := 0
	for _, s := range segs {
		if s.Dir == walk.Out && s.Flags == craft.FlagACK && s.RelSeq == 1 && s.RelAck == 1 && s.Len == 0 {
			n++
		}
	}
	if n > 1 {
		return fmt.Sprintf("our final ACK of the handshake went out %d times: the remote's round-trip sample may include our wait", n)
	}
	return ""
}

// lostSegment tells, from the remote's IP IDs, that a segment it sent on
// the connection did not reach us ("" when none is known lost), and
// whether the IDs counted every segment it sent (counted: all steps were
// one, so nothing is missing). Linux numbers a connected socket's
// segments one by one (ip_select_ident_segs); a SYN,ACK from a request
// socket has ID 0 and is passed over. A stack with random or zero IDs
// shows nothing: a gap counts only between IDs less than 64 apart, which
// random IDs rarely are. A remote data retransmission (our ACK of its data
// was lost) also disturbs the FIN's timer, so it too makes the connection
// unbelieved.
func lostSegment(segs []walk.Segment) (lost string, counted bool) {
	var prev uint16
	have := false
	steps, ones := 0, 0
	for _, s := range segs {
		// IPv6 has no IP ID outside a fragment header (RFC 8200 §4.5):
		// over IPv6 nothing is counted.
		if s.Dir != walk.In || s.ICMP != "" || s.Duplicate || len(s.Raw) < 20 || s.Raw[0]>>4 != 4 {
			continue
		}
		if s.Retransmission && s.Len > 0 {
			return fmt.Sprintf("the remote retransmitted its data (seq %d) before an ACK of ours covering it reached it", s.RelSeq), false
		}
		id := binary.BigEndian.Uint16(s.Raw[4:6])
		if id == 0 {
			continue
		}
		if have {
			steps++
			switch d := id - prev; {
			case d == 1:
				ones++
			case d < 64:
				return fmt.Sprintf("the remote's IP ID went from %d to %d: %d of its segments did not reach us", prev, id, d-1), false
			}
		}
		prev, have = id, true
	}
	return "", steps > 0 && ones == steps
}

// synsSent counts our SYNs in segs.
func synsSent(segs []walk.Segment) int {
	n := 0
	for _, s := range segs {
		if s.Dir == walk.Out && s.Flags == craft.FlagSYN {
			n++
		}
	}
	return n
}

// lastIn is the time of the last remote segment that has all of flags
// (SYN,ACK or FIN), zero if none.
func lastIn(segs []walk.Segment, flags craft.Flags) time.Time {
	var at time.Time
	for _, s := range segs {
		if s.Dir == walk.In && s.Flags.Has(flags) && !s.Retransmission {
			at = s.At
		}
	}
	return at
}

// reasonOf is why a result did not pass: its reason, or its first check's
// that did not pass.
func reasonOf(r walk.Result) string {
	if r.Reason != "" {
		return r.Reason
	}
	for _, c := range r.Checks {
		if c.Verdict != walk.Pass {
			return c.Name + ": " + c.Reason
		}
	}
	return r.Verdict.String()
}

// probeSynCookies sends a SYN with MSS, SACK-permitted and window scale but
// no timestamps, and reports which options the SYN,ACK keeps: a Linux SYN
// cookie can only carry them in the timestamp, so without one it answers
// with MSS alone. The engine's Tidy resets the half-open connection on
// every way out, also when ctx ends before the SYN,ACK was read (SIGINT).
func probeSynCookies(ctx context.Context, cfg *Config) (sack, ws bool, err error) {
	f, err := cfg.Walk.Prober.NewFlow(cfg.Walk.Port, 0)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	c := tcpconn.New(f, nil)
	defer c.Tidy()
	opts := []craft.Option{craft.MSS(tcpconn.DefaultMSSFor(f.Remote.Addr())), craft.SACKPermitted(), craft.NOP(), craft.WindowScale(7)}
	tm := cfg.Walk.Timing
	for range tm.Tries {
		if err := c.SendSYNWith(c.ISS, opts, "SYN without timestamps"); err != nil {
			return false, false, err
		}
		deadline := time.Now().Add(tm.Reply)
		for {
			r, err := c.Next(ctx, deadline)
			if errors.Is(err, probe.ErrTimeout) {
				break
			}
			if err != nil {
				return false, false, err
			}
			if r.Seg.ICMP != "" || r.Flags != craft.FlagSYN|craft.FlagACK || r.Seg.Ack != c.ISS+1 {
				continue
			}
			c.SndNxt = c.ISS + 1
			return c.Neg.SACK, c.Neg.WindowScale, nil
		}
	}
	return false, false, fmt.Errorf("no SYN,ACK to a SYN without timestamps after %d tries", tm.Tries)
}

// synCookies combines the option probe with the SYN,ACK schedule and says
// only what they showed. A retransmitted SYN,ACK means a SYN_RCVD entry,
// which a cookie does not make: not in use (for those connections). A
// SYN,ACK without SACK-permitted or window scale to a SYN without
// timestamps means cookies only when the stack sends them otherwise (the
// options-offered check saw them): a stack that does not implement them
// drops them always. Cookies are then "in use" only when, besides, no
// SYN,ACK was retransmitted.
func synCookies(sack, ws bool, probeErr error, sh *shared, d time.Duration) Measurement {
	m := Measurement{ID: MeasureSynCookies, Name: "SYN cookies", Rule: ruleSynCookies, Duration: d}
	sh.mu.Lock()
	retr := sh.synAckRetransmitted
	offered := sh.synAckOptions // -1 unknown, else a bit set of what options-offered got
	sh.mu.Unlock()
	var ev []string
	dropped := false // options a stack otherwise sends were dropped
	switch {
	case probeErr != nil:
		ev = append(ev, "option probe failed: "+probeErr.Error())
	case sack && ws:
		ev = append(ev, "SACK-permitted and window scale echoed to a SYN without timestamps")
	case offered < 0:
		ev = append(ev, "SACK-permitted or window scale missing from the SYN,ACK to a SYN without timestamps (whether the stack sends them otherwise is unknown)")
	case (offered&optBitSACK != 0 && !sack) || (offered&optBitWS != 0 && !ws):
		dropped = true
		ev = append(ev, "SACK-permitted or window scale, sent to a SYN with timestamps, dropped from the SYN,ACK to a SYN without them (a cookie without timestamps cannot hold them)")
	default:
		ev = append(ev, "the SYN,ACK to a SYN without timestamps has the options the stack always sends")
	}
	switch retr {
	case 1:
		ev = append(ev, "the SYN,ACK was retransmitted (a cookie keeps no state to retransmit from)")
	case 0:
		ev = append(ev, "the SYN,ACK was not retransmitted")
	}
	switch {
	case retr == 1:
		m.OK, m.Value = true, "not in use: "+strings.Join(ev, "; ")
	case dropped && retr == 0:
		m.OK, m.Value = true, "in use: "+strings.Join(ev, "; ")
	case probeErr != nil && retr == -1:
		m.Value = "not measured: " + strings.Join(ev, "; ")
	default:
		m.OK, m.Value = true, "no sign of them: "+strings.Join(ev, "; ")
	}
	return m
}

// twFingerprint reports the ISS offset of a reopened TIME_WAIT connection.
func twFingerprint(sh *shared) Measurement {
	m := Measurement{ID: MeasureTWFingerprint, Name: "TIME_WAIT fingerprint", Rule: ruleTWISS}
	sh.mu.Lock()
	off, seen := sh.twOffset, sh.twSeen
	sh.mu.Unlock()
	switch {
	case !seen:
		m.Value = "not measured: TIME_WAIT/syn-higher-seq did not get an answer"
	case off == 0:
		m.OK, m.Value = true, "a SYN above RCV.NXT does not reopen TIME_WAIT (challenge ACK)"
	case off == linuxTWOffset:
		m.OK, m.Value = true, fmt.Sprintf("ISS = old SND.NXT + %d (Linux)", off)
	default:
		m.OK, m.Value = true, fmt.Sprintf("ISS = old SND.NXT + %d (not Linux's +%d)", off, linuxTWOffset)
	}
	return m
}
