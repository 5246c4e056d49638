package walk_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// lossLevels are the impairments the walks are run through: loss percent
// each way, duplication percent each way.
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
	lossRuns        = 20 // walk.Run of all scenarios per level
	lossConcurrency = 10 // of those at once on one lab
)

// lossTally is what one level's runs came to.
type lossTally struct {
	mu           sync.Mutex
	walks        int
	pass         int
	inconclusive map[string]int // "scenario: check: reason" → count
	incCount     int
	wrong        []string // one line per wrong verdict, with its segments
	duplicates   int      // path duplicates recognised
	late         []string // disagreements with a kernel read too late to compare
}

// lateOracle is how late after the remote's last segment a kernel reading
// may no longer show the state the wire showed: the lab's close-after-fin
// server leaves CLOSE_WAIT by itself after 1 s, so half of that. Only a
// machine loaded far beyond these walks makes a walker that late.
const lateOracle = 500 * time.Millisecond

// TestWalksUnderLoss runs every walk against the lab's Linux target through
// random loss (and duplication) made by nftables on the target's veth, with
// the sock_diag oracle, lossRuns times per level. A walk may end
// inconclusive, with a reason, when the loss outlasts its retries; it must
// never end with a wrong verdict: a fail, a deviation, or a pass whose check
// the kernel contradicts (on a clean path every walk passes, see
// TestAllScenariosAgainstLinux). Segments the remote sends again, by its
// retransmission timer or because the path duplicated them, must be marked
// as such and never be taken for a new transition.
func TestWalksUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the walks 80 times through a lossy lab (about 50 s); skipped with -short")
	}
	// The levels run one after the other: the walks time the remote (the
	// lab's close-after-fin server leaves CLOSE_WAIT after 1 s) and read
	// the oracle as they go, so a machine overloaded with hundreds of
	// walks on two cores would make the oracle's reading late, not the
	// walk wrong.
	for _, lv := range lossLevels {
		t.Run(lv.name, func(t *testing.T) {
			cfg, l := labWalk(t)
			if err := l.Impair(lv.loss, lv.dup); err != nil {
				t.Fatalf("impair the lab: %v", err)
			}
			tally := &lossTally{inconclusive: map[string]int{}}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			sem := make(chan struct{}, lossConcurrency)
			var wg sync.WaitGroup
			for range lossRuns {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					for _, r := range walk.Run(ctx, cfg, walk.Scenarios()) {
						tally.add(r, lv.dup > 0)
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Errorf("the runs took longer than their 3 min deadline")
			}
			t.Logf("%d%% loss, %d%% dup: %d walks, %d pass, %d inconclusive (%.1f%%), %d wrong, %d path duplicates recognised",
				lv.loss, lv.dup, tally.walks, tally.pass, tally.incCount,
				100*float64(tally.incCount)/float64(tally.walks), len(tally.wrong), tally.duplicates)
			if lv.dup > 0 && tally.duplicates == 0 {
				t.Errorf("%d%% duplication, but no segment was recognised as a path duplicate", lv.dup)
			}
			keys := make([]string, 0, len(tally.inconclusive))
			for k := range tally.inconclusive {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("  inconclusive ×%d  %s", tally.inconclusive[k], k)
			}
			for _, l := range tally.late {
				t.Logf("  not compared (machine overloaded, the kernel was read late): %s", l)
			}
			if len(tally.late) > tally.walks/20 {
				t.Errorf("%d of %d walks read the kernel too late to compare: the machine is too loaded for this test", len(tally.late), tally.walks)
			}
			for _, w := range tally.wrong {
				t.Errorf("wrong verdict: %s", w)
			}
		})
	}
}

// add judges one walk's result.
func (tl *lossTally) add(r walk.Result, dup bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.walks++
	var wrong []string
	switch r.Verdict {
	case walk.Pass:
		tl.pass++
	case walk.Inconclusive:
		tl.incCount++
		key := r.Scenario + ": " + r.Reason
		for _, c := range r.Checks {
			if c.Verdict == walk.Inconclusive {
				key = fmt.Sprintf("%s: %s: %s", r.Scenario, c.Name, c.Reason)
				if c.Reason == "" {
					wrong = append(wrong, fmt.Sprintf("check %q is inconclusive without a reason", c.Name))
				}
				break
			}
		}
		tl.inconclusive[key]++
		if os.Getenv("TCPWALK_LOSS_DUMP") == r.Scenario {
			wrong = append(wrong, "(dumped: TCPWALK_LOSS_DUMP) inconclusive: "+key)
		}
	default:
		wrong = append(wrong, fmt.Sprintf("verdict %s (%s)", r.Verdict, r.Reason))
	}
	for _, c := range r.Checks {
		if c.Verdict != walk.Pass && c.Verdict != walk.Inconclusive {
			wrong = append(wrong, fmt.Sprintf("check %q: %s: expected %s, received %s (%s)", c.Name, c.Verdict, c.Expected, c.Received, c.Reason))
		}
		if c.Disagree && c.KernelLag >= lateOracle {
			tl.late = append(tl.late, fmt.Sprintf("%s: %s: wire %s, kernel %s read %v after the last segment", r.Scenario, c.Name, c.Wire, c.Kernel, c.KernelLag.Round(time.Millisecond)))
		} else if c.Disagree {
			wrong = append(wrong, fmt.Sprintf("check %q passed with wire state %s, but the kernel says %s (read %v after the last segment)", c.Name, c.Wire, c.Kernel, c.KernelLag.Round(time.Millisecond)))
		}
	}
	wrong = append(wrong, repeatsMarked(r.Segments, r.Checks)...)
	for _, s := range r.Segments {
		if s.Duplicate {
			tl.duplicates++
		}
	}
	if len(wrong) > 0 && r.Verdict == walk.Inconclusive {
		tl.incCount--
	}
	if len(wrong) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s (dup %v): %s", r.Scenario, dup, strings.Join(wrong, "; "))
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "\n     check %-50s %-12s wire=%-11s kernel=%-11s exp=%s got=%s %s", c.Name, c.Verdict, c.Wire, c.Kernel, c.Expected, c.Received, c.Reason)
		}
		for _, s := range r.Segments {
			fmt.Fprintf(&b, "\n     %s %-3s %-3s seq=%d ack=%d len=%d %s %s rexmit=%v local=%s remote=%s", s.At.Format("15:04:05.000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Len, s.Note, s.ICMP, s.Retransmission, s.LocalState, s.RemoteState)
		}
		tl.wrong = append(tl.wrong, b.String())
	}
}

// repeatsMarked checks what the walk took from the remote's segments: a
// segment marked as the path's duplicate has an identical original (flags,
// numbers, length) moments before it, a retransmission repeats sequence
// space that came before, and a check that saw a retransmission by the
// remote's timer was not satisfied by a path duplicate alone.
func repeatsMarked(segs []walk.Segment, checks []walk.Check) []string {
	type key struct {
		flags    string
		seq, ack tcpconn.Seq
		len      int
	}
	last := map[key]time.Time{}
	var out []string
	sawTimer := false // a retransmission that is no duplicate
	var lastIn key
	for _, s := range segs {
		if s.Dir == walk.Out && s.Flags == craft.FlagRST && strings.HasPrefix(s.Note, "reset a stale connection") {
			// The walk reset the connection the remote's last segment
			// belonged to and forgot that segment (Recorder.Forget): the
			// same segment again, our RST having been lost, is no repeat.
			delete(last, lastIn)
			continue
		}
		if s.Dir != walk.In || s.ICMP != "" {
			continue
		}
		k := key{s.Flags.String(), s.Seq, s.Ack, s.Len}
		lastIn = k
		prev, seen := last[k]
		if s.Duplicate && (!seen || s.At.Sub(prev) > 100*time.Millisecond || !s.Retransmission) {
			out = append(out, fmt.Sprintf("%s seq=%d len=%d is marked as a duplicate without an original just before", s.Flags, s.RelSeq, s.Len))
		}
		if s.Repeat != seen {
			out = append(out, fmt.Sprintf("%s seq=%d ack=%d len=%d: repeat=%v, but seen before=%v", s.Flags, s.RelSeq, s.RelAck, s.Len, s.Repeat, seen))
		}
		f := s.Flags
		if s.Retransmission && !s.Duplicate && !f.Has(craft.FlagSYN) && !f.Has(craft.FlagFIN) && s.Len == 0 {
			out = append(out, fmt.Sprintf("a pure %s is marked as a retransmission", s.Flags))
		}
		if s.Retransmission && !s.Duplicate {
			sawTimer = true
		}
		last[k] = s.At
	}
	for _, c := range checks {
		if c.Verdict == walk.Pass && strings.Contains(c.Name, "retransmitted") && !strings.Contains(c.Name, "re-acknowledged") && !sawTimer {
			out = append(out, fmt.Sprintf("check %q passed, but no segment is a retransmission by the remote", c.Name))
		}
	}
	return out
}
