package conform_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// lossLevels are the impairments the matrix is run through: loss percent
// each way, duplication percent each way (the same levels as walk's
// TestWalksUnderLoss).
var lossLevels = []struct {
	name      string
	loss, dup int
}{
	{"loss5", 5, 0},
	{"loss10", 10, 0},
	{"loss20", 20, 0},
	{"loss5+dup20", 5, 20},
}

const (
	lossRuns = 20 // conform.Run of the whole matrix per level
	lossLabs = 5  // labs per level, each running lossRuns/lossLabs runs in turn
	// lateOracle: a kernel reading this late after the remote's last
	// segment may have seen the lab's apps move on (see walk's
	// TestWalksUnderLoss); only a machine loaded far beyond this test
	// makes a check that late.
	lateOracle = 500 * time.Millisecond
)

// baseline is what the matrix gives on a clean path: per check its verdict
// and deviations, and the measurements.
type baseline struct {
	verdict map[string]walk.Verdict
	devs    map[string][]string
	meas    map[string]conform.Measurement
}

// TestConformUnderLoss runs the whole matrix against the lab's Linux target
// through random loss (and duplication) made by nftables on both veth
// ends, with the sock_diag oracle, lossRuns times per level. Each check
// must end as on a clean path (the same pass, fail or named deviation) or
// inconclusive with a reason; a different verdict, or a pass the kernel
// contradicts, is wrong. Each measurement must give the clean path's value
// or say that it could not measure: a lost retransmission must never
// become a longer interval, a lost SYN,ACK never a sign of SYN cookies.
func TestConformUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the matrix 80 times through lossy labs (about 2 min); skipped with -short")
	}
	base := cleanBaseline(t)
	// The levels run one after the other, as walk's do: a machine
	// overloaded with hundreds of sessions on two cores would make the
	// oracle's readings late, not the checks wrong.
	for _, lv := range lossLevels {
		t.Run(lv.name, func(t *testing.T) {
			var cfgs []conform.Config
			for range lossLabs {
				cfg, l := labAndConfig(t)
				// The lab's listeners have the kernel's backlog (Go listens
				// with somaxconn): the gate, for small servers, would only
				// queue lossy handshakes behind each other here.
				cfg.Parallel = 64
				if err := l.Impair(lv.loss, lv.dup); err != nil {
					t.Fatalf("impair the lab: %v", err)
				}
				cfgs = append(cfgs, cfg)
			}
			tally := newLossTally()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			for i, cfg := range cfgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range lossRuns / lossLabs {
						rep, err := conform.Run(ctx, cfg)
						if err != nil {
							t.Errorf("lab %d: %v", i, err)
							return
						}
						tally.add(base, rep)
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Errorf("the runs took longer than their 2 min deadline")
			}
			tally.log(t, lv.loss, lv.dup)
		})
	}
}

// cleanBaseline runs the matrix once on a clean path: every check passes or
// shows a named deviation and every item is measured (as
// TestConformAgainstLinux requires).
func cleanBaseline(t *testing.T) baseline {
	t.Helper()
	cfg := labConfig(t)
	b := baseline{verdict: map[string]walk.Verdict{}, devs: map[string][]string{}, meas: map[string]conform.Measurement{}}
	// A measurement with a caveat (our ACKs late on a loaded machine), or
	// none, is not what an idle prober sees, so it is no reference: the
	// clean run is repeated, up to baselineRuns times, until each
	// measurement has a value without one.
	const baselineRuns = 3
	for run := range baselineRuns {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := conform.Run(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			for _, r := range rep.Results {
				if r.Verdict != walk.Pass && r.Verdict != walk.Deviation {
					logResult(t, r)
					t.Fatalf("clean path: %s: %s (%s): no baseline to compare with", r.Scenario, r.Verdict, r.Reason)
				}
				b.verdict[r.Scenario], b.devs[r.Scenario] = r.Verdict, conform.Deviations(r)
			}
		}
		settled := true
		for _, m := range rep.Measurements {
			if old, ok := b.meas[m.ID]; !ok || !old.OK && m.OK || old.OK && m.OK && old.Caveat != "" && m.Caveat == "" {
				b.meas[m.ID] = m
			}
			settled = settled && b.meas[m.ID].OK && b.meas[m.ID].Caveat == ""
		}
		if settled {
			break
		}
	}
	// "Not measured" is an honest answer on a loaded machine (late ACKs
	// stretch the remote's timers until no two connections agree), so a
	// measurement gets the same runs as one with a caveat to find a value.
	for _, m := range b.meas {
		if !m.OK {
			t.Fatalf("clean path: %s not measured in %d runs: %s", m.ID, baselineRuns, m.Value)
		}
	}
	for _, m := range b.meas {
		t.Logf("clean path: %-26s %s", m.ID, m.Value)
	}
	return b
}

// lossTally is what one level's runs came to.
type lossTally struct {
	mu           sync.Mutex
	checks, pass int
	incCount     int
	inconclusive map[string]int // "check: step: reason" → count
	wrong        []string
	late         []string
	// aheadUnconfirmed counts disagreements of aheadUnconfirmed, by check.
	aheadUnconfirmed map[string]int
	measured         map[string]int // measurement ID → runs that measured it
	unmeasured       map[string]int // "ID: why" → count
	caveats          map[string]int // "ID: caveat" → count, not compared
}

func newLossTally() *lossTally {
	return &lossTally{inconclusive: map[string]int{}, measured: map[string]int{}, unmeasured: map[string]int{},
		caveats: map[string]int{}, aheadUnconfirmed: map[string]int{}}
}

// aheadUnconfirmed: the kernel behind checks[i] is in the state the next
// step was to show ("X → KERNEL"), and that step ended inconclusive. It is
// walk's kernel-ahead case (the remote app acted before the oracle read;
// see walk.Check.KernelAhead) that the wire could not confirm: under loss
// an app can act on an earlier copy of our segment whose answer was lost
// (the lab's close-after-fin timer starts at the first FIN that arrives),
// and its FIN can then wait behind its own lost data until the walk gives
// up. The walk says "disagreement" and ends inconclusive: no wrong claim.
func aheadUnconfirmed(checks []walk.Check, i int) bool {
	if i+1 >= len(checks) || checks[i+1].Verdict != walk.Inconclusive {
		return false
	}
	_, next, ok := strings.Cut(checks[i+1].Name, " → ")
	return ok && next == checks[i].Kernel.String()
}

// numbers matches the numbers in a reason, so that reasons group.
var numbers = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// add judges one run against the clean path's.
func (tl *lossTally) add(b baseline, rep conform.Report) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, r := range rep.Results {
		tl.checks++
		var wrong []string
		switch {
		case r.Verdict == walk.Inconclusive:
			tl.incCount++
			key, ok := inconclusiveKey(r)
			if !ok {
				wrong = append(wrong, "inconclusive without a reason")
			}
			tl.inconclusive[key]++
		case r.Verdict != b.verdict[r.Scenario] || !slices.Equal(conform.Deviations(r), b.devs[r.Scenario]):
			wrong = append(wrong, fmt.Sprintf("%s %v (%s), on a clean path %s %v", r.Verdict, conform.Deviations(r), r.Reason,
				b.verdict[r.Scenario], b.devs[r.Scenario]))
		default:
			tl.pass++
		}
		for i, c := range r.Checks {
			if !c.Disagree || c.Verdict != walk.Pass {
				continue // a disagreement that made the check inconclusive is counted there
			}
			if c.KernelLag >= lateOracle {
				tl.late = append(tl.late, fmt.Sprintf("%s: %s: wire %s, kernel %s read %v after the last segment",
					r.Scenario, c.Name, c.Wire, c.Kernel, c.KernelLag.Round(time.Millisecond)))
				continue
			}
			if r.Verdict == walk.Inconclusive && aheadUnconfirmed(r.Checks, i) {
				tl.aheadUnconfirmed[r.Scenario+": "+c.Name+": wire "+c.Wire.String()+", kernel "+c.Kernel.String()]++
				continue
			}
			wrong = append(wrong, fmt.Sprintf("step %q passed with wire state %s, but the kernel says %s", c.Name, c.Wire, c.Kernel))
		}
		if r.Verdict == walk.Pass || r.Verdict == walk.Deviation {
			if last := r.Checks[len(r.Checks)-1]; last.Wire != result.NoState && last.Kernel != last.Wire {
				wrong = append(wrong, fmt.Sprintf("deciding check: wire %s, kernel %q", last.Wire, last.Kernel))
			}
		}
		if len(wrong) > 0 {
			if r.Verdict == walk.Inconclusive {
				tl.incCount--
			}
			tl.wrong = append(tl.wrong, dumpResult(r, wrong))
		}
	}
	for _, m := range rep.Measurements {
		if !m.OK {
			tl.unmeasured[m.ID+": "+numbers.ReplaceAllString(m.Value, "N")]++
			continue
		}
		tl.measured[m.ID]++
		if m.Caveat != "" {
			tl.caveats[m.ID+": "+numbers.ReplaceAllString(m.Caveat, "N")]++
			continue // measured right, but not what an idle prober sees
		}
		if c := b.meas[m.ID].Caveat; c != "" {
			tl.caveats[m.ID+": the clean path's own value had a caveat: "+numbers.ReplaceAllString(c, "N")]++
			continue
		}
		if why := sameMeasurement(b.meas[m.ID], m); why != "" {
			w := fmt.Sprintf("measurement %s: %q, on a clean path %q: %s", m.ID, m.Value, b.meas[m.ID].Value, why)
			if m.Result != nil {
				w = dumpResult(*m.Result, []string{w})
			}
			tl.wrong = append(tl.wrong, w)
		}
	}
}

// inconclusiveKey groups an inconclusive result by its first inconclusive
// step and reason; ok is false when no reason is given.
func inconclusiveKey(r walk.Result) (key string, ok bool) {
	for _, c := range r.Checks {
		if c.Verdict == walk.Inconclusive {
			return fmt.Sprintf("%s: %s: %s", r.Scenario, c.Name, numbers.ReplaceAllString(c.Reason, "N")), c.Reason != ""
		}
	}
	return r.Scenario + ": " + numbers.ReplaceAllString(r.Reason, "N"), r.Reason != ""
}

// intervalSlack is how far a retransmission interval may stray from the
// clean path's: timers fire late on a loaded machine, never by a whole
// interval of a doubling schedule.
func intervalSlack(d time.Duration) time.Duration { return 100*time.Millisecond + d/5 }

// sameMeasurement says how got differs from the clean path's want ("" when
// it does not).
func sameMeasurement(want, got conform.Measurement) string {
	switch got.ID {
	case conform.MeasureSynAckSchedule, conform.MeasureFINBackoff:
		if len(got.Intervals) != len(want.Intervals) {
			return fmt.Sprintf("%d intervals, want %d", len(got.Intervals), len(want.Intervals))
		}
		for i, g := range got.Intervals {
			if w := want.Intervals[i]; g < w-intervalSlack(w) || g > w+intervalSlack(w) {
				return fmt.Sprintf("interval %d is %v, want %v", i+1, g, w)
			}
		}
		return ""
	case conform.MeasureSynCookies:
		// "in use" and "not in use" contradict each other; "no sign of
		// them" (what the option probe alone shows, when the lost
		// segments left the SYN,ACK schedule unmeasured) contradicts
		// only "in use".
		inUse := func(v string) bool { return strings.SplitN(v, ":", 2)[0] == "in use" }
		if inUse(got.Value) != inUse(want.Value) {
			return "a different conclusion"
		}
		return ""
	}
	if got.Value != want.Value {
		return "a different value"
	}
	return ""
}

// dumpResult writes a result with why it is wrong, its steps and segments.
func dumpResult(r walk.Result, why []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Scenario, strings.Join(why, "; "))
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "\n     step %-58s %-12s wire=%-11s kernel=%-11s exp=%s got=%s %s", c.Name, c.Verdict, c.Wire, c.Kernel, c.Expected, c.Received, c.Reason)
	}
	for _, s := range r.Segments {
		fmt.Fprintf(&b, "\n     %s %-3s %-4s seq=%d ack=%d len=%d %s %s rexmit=%v dup=%v", s.At.Format("15:04:05.000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Len, s.Note, s.ICMP, s.Retransmission, s.Duplicate)
	}
	return b.String()
}

// log reports the level: counts, inconclusive reasons grouped, what was not
// measured and why, and every wrong verdict as an error.
func (tl *lossTally) log(t *testing.T, loss, dup int) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	t.Logf("%d%% loss, %d%% dup: %d checks, %d as on a clean path, %d inconclusive (%.1f%%), %d wrong",
		loss, dup, tl.checks, tl.pass, tl.incCount, 100*float64(tl.incCount)/float64(max(tl.checks, 1)), len(tl.wrong))
	for _, k := range sortedKeys(tl.inconclusive) {
		t.Logf("  inconclusive ×%-3d %s", tl.inconclusive[k], k)
	}
	for _, id := range conform.Measurements() {
		t.Logf("  measured ×%-3d     %s", tl.measured[id], id)
	}
	for _, k := range sortedKeys(tl.unmeasured) {
		t.Logf("  not measured ×%-3d %s", tl.unmeasured[k], k)
	}
	for _, k := range sortedKeys(tl.caveats) {
		t.Logf("  not compared ×%-3d %s", tl.caveats[k], k)
	}
	for _, l := range tl.late {
		t.Logf("  not compared (machine overloaded, the kernel was read late): %s", l)
	}
	for _, k := range sortedKeys(tl.aheadUnconfirmed) {
		t.Logf("  not compared ×%-3d kernel one step ahead, the next step inconclusive: %s", tl.aheadUnconfirmed[k], k)
	}
	n := 0
	for _, k := range tl.aheadUnconfirmed {
		n += k
	}
	if n > tl.checks/100 {
		t.Errorf("%d of %d checks had the kernel one step ahead, unconfirmed: more than loss explains", n, tl.checks)
	}
	if len(tl.late) > tl.checks/20 {
		t.Errorf("%d of %d checks read the kernel too late to compare: the machine is too loaded for this test", len(tl.late), tl.checks)
	}
	for _, w := range tl.wrong {
		t.Errorf("wrong: %s", w)
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
