package script_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// lossLevels are the impairments the shipped scripts are run through: loss
// percent each way, duplication percent each way.
var lossLevels = []struct {
	name      string
	loss, dup int
	// maxInconclusive is the share of scripts that may end inconclusive.
	maxInconclusive float64
}{
	{"loss5", 5, 0, 0.05},
	{"loss10", 10, 0, 0.05},
	{"loss20", 20, 0, 0.25},
	{"loss5+dup5", 5, 5, 0.05},
}

const (
	lossRuns = 10 // runs of all shipped scripts per level
	lossLabs = 2  // labs per level, each running lossRuns/lossLabs runs in turn
)

// TestScriptsUnderLoss runs every shipped script against the lab's Linux
// target through random loss (and duplication) made by nftables on both
// veth ends, with the sock_diag oracle and Config.Lossy (as `run` sets it
// against an impaired lab), lossRuns times per level. A script must end as
// on a clean path (pass, or skipped) or inconclusive with a reason; a FAIL
// is wrong: on a clean path every script passes.
func TestScriptsUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shipped scripts 40 times through lossy labs (about 80 s); skipped with -short")
	}
	base := scriptBaseline(t)
	scripts := conformanceScripts(t)
	for _, lv := range lossLevels {
		t.Run(lv.name, func(t *testing.T) {
			var cfgs []script.Config
			for range lossLabs {
				l := labtest.New(t)
				if err := l.Impair(lv.loss, lv.dup); err != nil {
					t.Fatalf("impair the lab: %v", err)
				}
				p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
				if err != nil {
					t.Fatalf("probe.Open: %v", err)
				}
				t.Cleanup(func() { p.Close() })
				cfgs = append(cfgs, script.Config{Prober: p, Lab: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober},
					Oracle: walk.SockDiag{NS: l.Target}, Slack: 100 * time.Millisecond, Lossy: true})
			}
			tally := &scriptTally{inconclusive: map[string]int{}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			for _, cfg := range cfgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range lossRuns / lossLabs {
						tally.add(base, script.RunAll(ctx, cfg, scripts, 4))
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Errorf("the runs took longer than their 2 min deadline")
			}
			tally.log(t, lv.loss, lv.dup, lv.maxInconclusive)
		})
	}
}

// scriptBaseline runs the shipped scripts once on a clean path: each must
// pass or be skipped (as TestConformanceScriptsAgainstLinux requires).
func scriptBaseline(t *testing.T) map[string]walk.Verdict {
	t.Helper()
	cfg := labConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := map[string]walk.Verdict{}
	for _, r := range script.RunAll(ctx, cfg, conformanceScripts(t), 4) {
		if r.Verdict != walk.Pass && r.Verdict != walk.Skipped {
			logResult(t, r)
			t.Fatalf("clean path: %s: %s (%s): no baseline to compare with", r.Scenario, r.Verdict, r.Reason)
		}
		base[r.Scenario], baseReasons[r.Scenario] = r.Verdict, r.Reason
	}
	return base
}

// scriptTally is what one level's runs came to.
type scriptTally struct {
	mu                   sync.Mutex
	scripts, same        int
	incCount             int
	inconclusive         map[string]int // "script: line: reason" → count
	wrong                []string
	resent, disagreement int
	dumps                []string // inconclusive results of TCPWALK_LOSS_DUMP's scripts
	optional             int      // pass against skipped (optional) or back: not compared
}

// baseReasons holds the clean path's reasons, by script.
var baseReasons = map[string]string{}

// optionalVaries reports whether got is a pass where the clean path (base)
// skipped the script as "not implemented (optional)": the stack showed the
// optional behaviour this time. The other way round is wrong: a skip says
// the stack lacks what it showed on the clean path.
func optionalVaries(got, base walk.Verdict, _, baseReason string) bool {
	return got == walk.Pass && base == walk.Skipped && strings.HasPrefix(baseReason, "not implemented (optional)")
}

// lineNumbers and numbers group reasons that differ only in numbers.
var numbers = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

func (tl *scriptTally) add(base map[string]walk.Verdict, results []walk.Result) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, r := range results {
		tl.scripts++
		for _, s := range r.Segments {
			if s.Dir == walk.Out && strings.Contains(s.Note, " again: ") {
				tl.resent++
			}
		}
		for _, c := range r.Checks {
			if c.Disagree {
				tl.disagreement++
			}
		}
		b := base[r.Scenario]
		switch {
		case r.Verdict == b:
			tl.same++
		case optionalVaries(r.Verdict, b, r.Reason, baseReasons[r.Scenario]):
			// An %optional behaviour (a MAY, such as TIME_WAIT reopened
			// by a new SYN) that the stack did not show on the clean
			// path but did now: the clean path's own variation.
			tl.optional++
		case r.Verdict == walk.Inconclusive && r.Reason != "":
			tl.incCount++
			if d := os.Getenv("TCPWALK_LOSS_DUMP"); d != "" && strings.Contains(r.Scenario, d) {
				tl.dumps = append(tl.dumps, dumpScript(r, "inconclusive"))
			}
			rule, why, _ := strings.Cut(r.Reason, ": ")
			tl.inconclusive[rule+": "+numbers.ReplaceAllString(why, "N")]++
		default:
			tl.wrong = append(tl.wrong, dumpScript(r, fmt.Sprintf("%s (%s), on a clean path %s", r.Verdict, r.Reason, base[r.Scenario])))
		}
	}
}

// dumpScript writes a result with why it is wrong, its checks and segments.
func dumpScript(r walk.Result, why string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Scenario, why)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "\n     %-44s %-12s wire=%-11s kernel=%-11s got=%s %s", c.Name, c.Verdict, c.Wire, c.Kernel, c.Received, c.Reason)
	}
	for _, s := range r.Segments {
		fmt.Fprintf(&b, "\n     %s %-3s %-4s seq=%d ack=%d len=%d %s %s rexmit=%v repeat=%v", s.At.Format("15:04:05.000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Len, s.Note, s.ICMP, s.Retransmission, s.Repeat)
	}
	return b.String()
}

func (tl *scriptTally) log(t *testing.T, loss, dup int, maxInc float64) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	share := float64(tl.incCount) / float64(max(tl.scripts, 1))
	t.Logf("%d%% loss, %d%% dup: %d scripts, %d as on a clean path, %d inconclusive (%.1f%%), %d wrong; %d optional behaviours shown where the clean path skipped them (not compared); %d segments sent again, %d wire/kernel disagreements",
		loss, dup, tl.scripts, tl.same, tl.incCount, 100*share, len(tl.wrong), tl.optional, tl.resent, tl.disagreement)
	keys := make([]string, 0, len(tl.inconclusive))
	for k := range tl.inconclusive {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  inconclusive ×%-3d %s", tl.inconclusive[k], k)
	}
	for _, d := range tl.dumps {
		t.Logf("  %s", d)
	}
	for _, w := range tl.wrong {
		t.Errorf("wrong: %s", w)
	}
	if share > maxInc {
		t.Errorf("%.1f%% of the scripts inconclusive, want at most %.0f%%", 100*share, 100*maxInc)
	}
}
