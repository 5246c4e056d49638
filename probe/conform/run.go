package conform

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// Config is what a conformance run needs.
type Config struct {
	// Walk is the walk machinery's config: Prober, Port (a listening port
	// whose app keeps connections open, like the lab's 7001), Trigger
	// (how the remote app is made to close), Oracle and Timing.
	Walk walk.Config
	// AllRetransmissions waits for every SYN,ACK and FIN retransmission
	// (about a minute on Linux) instead of the first few.
	AllRetransmissions bool
	// Only keeps the checks and measurements whose ID matches one of these
	// path.Match patterns ("TIME_WAIT/*", "*/rst-in-window"); empty: all.
	Only []string
	// Parallel bounds the connections in the remote's handshake at once
	// (what its listen backlog must hold); 0: DefaultParallel.
	Parallel int
}

// Report is the outcome of a run.
type Report struct {
	Target  netip.AddrPort
	Trigger string
	// Oracle is true when the remote kernel's states were read.
	Oracle   bool
	Start    time.Time
	Duration time.Duration
	// Results has one walk.Result per check, in Checks() order; its
	// Scenario is the check's ID.
	Results      []walk.Result
	Measurements []Measurement
	// Interrupted is true when the user stopped the run (SIGINT, SIGTERM):
	// the checks and measurements cut short say so (walk.Interrupted).
	Interrupted bool
	// Profile describes the remote's optional mechanisms, timers and
	// formats, and the stack family it resembles (see Profile).
	Profile Profile
	// Notes are what the run noticed about the listener: SYNs that went
	// unanswered (a listen queue overflowing), SYN cookies in use.
	Notes []string
}

// Counts tallies checks by verdict.
type Counts struct {
	Pass, Deviation, Fail, Inconclusive, Skipped, Interrupted int
}

// Counts tallies the report's checks. A verdict outside walk's six counts
// as inconclusive, so the numbers add up to len(Results).
func (r Report) Counts() Counts {
	var n Counts
	for _, res := range r.Results {
		switch res.Verdict {
		case walk.Pass:
			n.Pass++
		case walk.Deviation:
			n.Deviation++
		case walk.Fail:
			n.Fail++
		case walk.Skipped:
			n.Skipped++
		case walk.Interrupted:
			n.Interrupted++
		default:
			n.Inconclusive++
		}
	}
	return n
}

// Longest is the check or measurement that took longest, and its duration.
func (r Report) Longest() (id string, d time.Duration) {
	for _, res := range r.Results {
		if res.Duration > d {
			id, d = res.Scenario, res.Duration
		}
	}
	for _, m := range r.Measurements {
		if m.Duration > d {
			id, d = m.ID, m.Duration
		}
	}
	return id, d
}

// AllResults is every session of the run: the checks, then every session
// of the measurements (for pcap files). The SYN-cookie probe's segments are
// not among them: it runs on a bare flow with no record.
func (r Report) AllResults() []walk.Result {
	out := append([]walk.Result(nil), r.Results...)
	for _, m := range r.Measurements {
		switch {
		case len(m.Sessions) > 0:
			out = append(out, m.Sessions...)
		case m.Result != nil:
			out = append(out, *m.Result)
		}
	}
	return out
}

// Deviations names the deviations seen in one check's result (SHOULDs,
// and MUSTs, which fail).
func Deviations(r walk.Result) []string {
	var out []string
	for _, c := range r.Checks {
		if (c.Verdict == walk.Deviation || c.Verdict == walk.Fail) && c.Deviation != "" {
			out = append(out, c.Deviation)
		}
	}
	return out
}

// Select returns the checks and measurement IDs matching patterns
// (path.Match; empty: all), or an error naming a pattern that is malformed
// or matches nothing.
func Select(patterns []string) ([]Check, []string, error) {
	all, meas := Checks(), Measurements()
	if len(patterns) == 0 {
		return all, meas, nil
	}
	match := func(id string) (bool, error) {
		for _, p := range patterns {
			ok, err := path.Match(p, id)
			if err != nil {
				return false, fmt.Errorf("conform: pattern %q: %w", p, err)
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	}
	var checks []Check
	var ms []string
	for _, c := range all {
		ok, err := match(c.ID)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			checks = append(checks, c)
		}
	}
	for _, id := range meas {
		if ok, _ := match(id); ok {
			ms = append(ms, id)
		}
	}
	if len(checks) == 0 && len(ms) == 0 {
		return nil, nil, fmt.Errorf("conform: no check matches %q (IDs look like ESTABLISHED/rst-in-window; patterns like TIME_WAIT/* or */syn)", patterns)
	}
	return checks, ms, nil
}

// Run runs the selected checks and measurements concurrently, each on its
// own 4-tuple, and returns when all have ended: every wait has a deadline
// and every retransmission of ours is bounded.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Walk.Prober == nil {
		return Report{}, errors.New("conform: no prober (open one with probe.Open)")
	}
	if cfg.Walk.Port == 0 {
		return Report{}, errors.New("conform: no port: want the remote's listening port")
	}
	if cfg.Walk.Timing == (walk.Timing{}) {
		cfg.Walk.Timing = walk.DefaultTiming
	}
	checks, meas, err := Select(cfg.Only)
	if err != nil {
		return Report{}, err
	}
	if cfg.Walk.Trigger == nil {
		// walk.NewSession would pick "none" too; the report names it.
		cfg.Walk.Trigger, _ = walk.ParseTrigger("none", nil)
	}
	rep := Report{Target: netip.AddrPortFrom(cfg.Walk.Prober.Remote(), cfg.Walk.Port), Trigger: cfg.Walk.Trigger.Name(),
		Oracle: cfg.Walk.Oracle != nil, Start: time.Now(), Results: make([]walk.Result, len(checks))}
	sh := &shared{synAckRetransmitted: -1, synAckOptions: -1, gate: newGate(cfg.Parallel)}
	want := map[string]bool{}
	for _, id := range meas {
		want[id] = true
	}
	var synAck, finBackoff Measurement
	var sack, ws bool
	var cookieErr error
	var cookieTime time.Duration
	var mwg sync.WaitGroup
	// cut records, per measurement, that the run was interrupted before it
	// ended: what it saw until then is not a measurement.
	cut := map[string]bool{}
	var cutMu sync.Mutex
	measured := func(id string) {
		if ctx.Err() != nil {
			cutMu.Lock()
			cut[id] = true
			cutMu.Unlock()
		}
	}
	if want[MeasureSynAckSchedule] {
		// Its connections hold SYN_RCVD, and a place in the gate, for the
		// longest: they go first, or the run would wait for them.
		sh.priority.Add(scheduleProbes)
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			synAck = measureSynAck(ctx, &cfg, sh)
			measured(MeasureSynAckSchedule)
		}()
	}
	if want[MeasureFINBackoff] {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			finBackoff = measureFINBackoff(ctx, &cfg, sh)
			measured(MeasureFINBackoff)
		}()
	}
	if want[MeasureSynCookies] {
		mwg.Add(1)
		go func() {
			defer mwg.Done()
			start := time.Now()
			if cookieErr = sh.gate.acquire(ctx, true); cookieErr == nil {
				sack, ws, cookieErr = probeSynCookies(ctx, &cfg)
				sh.gate.release(true)
			}
			cookieTime = time.Since(start)
			measured(MeasureSynCookies)
		}()
	}
	sh.priority.Wait()
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Results[i] = session(ctx, &cfg, sh, ch.ID, ch.Action, ch.run)
			rep.Results[i].Summary = ch.Summary
		}()
	}
	wg.Wait()
	mwg.Wait()
	// The TIME_WAIT fingerprint is read from checks, which ended by now.
	measured(MeasureTWFingerprint)
	for _, id := range meas {
		switch id {
		case MeasureSynAckSchedule:
			rep.Measurements = append(rep.Measurements, synAck)
		case MeasureFINBackoff:
			rep.Measurements = append(rep.Measurements, finBackoff)
		case MeasureSynCookies:
			rep.Measurements = append(rep.Measurements, synCookies(sack, ws, cookieErr, sh, cookieTime))
		case MeasureTWFingerprint:
			rep.Measurements = append(rep.Measurements, twFingerprint(sh))
		}
		if m := &rep.Measurements[len(rep.Measurements)-1]; cut[id] {
			m.Interrupted, m.OK = true, false
			m.Value = walk.ReasonInterrupted + " before it was measured"
		}
	}
	rep.Interrupted = ctx.Err() != nil
	rep.Notes = guardCookies(&rep, cfg.Parallel)
	rep.Profile = buildProfile(rep)
	rep.Duration = time.Since(rep.Start)
	return rep, nil
}

// session runs fn on a new walk.Session named id and returns its result:
// skipped when the trigger cannot cause action or fn says the target cannot
// be held in the state.
func session(ctx context.Context, cfg *Config, sh *shared, id string, action walk.Action, fn func(context.Context, *env) error) walk.Result {
	// The SYN,ACK schedule's connections tell Run once they hold their
	// place in the gate, on every way out.
	prio := id == MeasureSynAckSchedule
	defer func() {
		if prio {
			sh.priority.Done()
		}
	}()
	s, res := walk.NewSession(cfg.Walk, id, action, cfg.Walk.Port)
	if res != nil {
		return *res
	}
	e := &env{cfg: cfg, s: s, c: s.Conn(), tm: cfg.Walk.Timing, sh: sh}
	e.long = holdsHalfOpen(id)
	err := sh.gate.acquire(ctx, e.long)
	if prio {
		sh.priority.Done()
		prio = false
	}
	if err == nil {
		e.gated = true
		err = fn(ctx, e)
		e.leaveGate()
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, errSkip)) {
		// Cut short: a wait that the signal ended may have looked like
		// the silence a check wants. Never a pass, nor a skip.
		err, e.skip = ctx.Err(), ""
	}
	sh.path.addDuplicates(copiesIn(s.Segments()))
	if errors.Is(err, errSkip) {
		err = nil
	}
	r := s.Finish(err)
	if e.skip != "" {
		r.Verdict, r.Reason = walk.Skipped, e.skip
	}
	return r
}

// guardCookies notices a listener in trouble and says so. SYNs that needed
// sending again before a SYN,ACK came suggest its queue overflowed (or the
// path lost them). With SYN cookies in use, a SYN,ACK may come from no
// state at all, so a SYN_RCVD check cannot know it talks to SYN_RCVD: those
// checks become inconclusive, never judged on a cookie's connection.
func guardCookies(rep *Report, parallel int) []string {
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	var notes []string
	resent := 0
	for _, r := range rep.Results {
		if firstSYNUnanswered(r.Segments) {
			resent++
		}
	}
	if resent > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d checks sent their SYN again before a SYN,ACK came: the listener may have dropped SYNs (a listen queue too short for %d connections in the handshake at once: lower --parallel), or the path lost them",
			resent, len(rep.Results), parallel))
	}
	cookies := false
	for _, m := range rep.Measurements {
		if m.ID == MeasureSynCookies && strings.HasPrefix(m.Value, "in use") {
			cookies = true
		}
	}
	if !cookies {
		return notes
	}
	notes = append(notes, "SYN cookies are in use: a SYN,ACK may come from no SYN_RCVD state, so the SYN_RCVD checks are not judged")
	for i := range rep.Results {
		r := &rep.Results[i]
		if strings.HasPrefix(r.Scenario, "SYN_RCVD/") && (r.Verdict == walk.Pass || r.Verdict == walk.Deviation || r.Verdict == walk.Fail) {
			r.Verdict = walk.Inconclusive
			r.Reason = "SYN cookies are in use (LISTEN/syn-cookies): the SYN,ACK may be a cookie's, with no SYN_RCVD state behind it"
		}
	}
	return notes
}

// firstSYNUnanswered reports whether our first SYN of a connection drew
// nothing at all before the next one went out (an answer of a stale
// connection on the 4-tuple, which is reset and the SYN sent again, is an
// answer: the listener took the SYN).
func firstSYNUnanswered(segs []walk.Segment) bool {
	syns := 0
	for _, s := range segs {
		switch {
		case s.Dir == walk.Out && s.Flags == craft.FlagSYN:
			syns++
			if syns > 1 {
				return true
			}
		case s.Dir == walk.In && syns > 0:
			return false
		}
	}
	return false
}
