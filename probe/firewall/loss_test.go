package firewall_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// fwLossLevels are the impairments the matrix is run through: loss percent
// each way, duplication percent each way.
var fwLossLevels = []struct {
	name      string
	loss, dup int
}{
	{"loss5", 5, 0},
	{"loss10", 10, 0},
	{"loss20", 20, 0},
	{"loss5+dup5", 5, 5},
}

// fwLossRuns is how many matrices each ruleset runs per level with the
// capture at the target; one more runs without it. Undecided cells are
// counted against the 5 % bar only with a capture: without one, silence
// on a lossy path decides nothing by design.
const fwLossRuns = 3

// lossRulesets are the rulesets whose verdicts loss could turn: every one
// that refuses something or answers in the target's name.
var lossRulesets = []lab.Firewall{lab.FirewallStateful, lab.FirewallReject, lab.FirewallSynproxy, lab.FirewallLoose}

// fwTally is what one level's matrices came to.
type fwTally struct {
	mu        sync.Mutex
	cells     int            // of runs with a capture
	undecided map[string]int // "ruleset: state / probe: detail" → count
	nUndec    int            // of runs with a capture
	// Without a capture: cells, and those undecided or without an answer.
	cellsNoCap, undecNoCap int
	wrong                  []string
	failedRun              []string // Run returned an error (no baseline)
}

// TestFirewallUnderLoss runs the matrix through random loss and duplication
// (nftables on the prober's and the target's veth, see lab.Impair) against
// every ruleset that refuses or answers in the target's name. A cell may end
// undecided (or not run, its state unreachable), with a reason; it must
// never be wrong: a probe the ruleset refuses reported as reaching the
// target or the other way round, a SYN proxy's handshake not reported as
// proxied, or a segment with the target's own TTL read as a reject (its
// retransmission). At 10 % loss fewer than 5 % of the cells may be
// undecided.
func TestFirewallUnderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the matrix 64 times through lossy labs (about 100 s); skipped with -short")
	}
	labs := map[lab.Firewall]*lab.Routed{}
	for _, fw := range lossRulesets {
		labs[fw] = labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
	}
	for _, lv := range fwLossLevels {
		t.Run(lv.name, func(t *testing.T) {
			tally := &fwTally{undecided: map[string]int{}}
			var wg sync.WaitGroup
			for _, fw := range lossRulesets {
				r := labs[fw]
				if err := r.Impair(lv.loss, lv.dup); err != nil {
					t.Fatalf("impair %s: %v", fw, err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range fwLossRuns + 1 {
						tally.run(t, fw, r, i < fwLossRuns)
					}
				}()
			}
			wg.Wait()
			t.Logf("%d%% loss, %d%% dup: with a capture %d cells, %d undecided (%.1f%%); without %d cells, %d undecided or unanswered; %d wrong, %d runs without a baseline",
				lv.loss, lv.dup, tally.cells, tally.nUndec, 100*float64(tally.nUndec)/float64(max(tally.cells, 1)),
				tally.cellsNoCap, tally.undecNoCap, len(tally.wrong), len(tally.failedRun))
			for k, n := range tally.undecided {
				t.Logf("  undecided ×%d  %s", n, k)
			}
			for _, f := range tally.failedRun {
				t.Logf("  no baseline: %s", f)
			}
			for _, w := range tally.wrong {
				t.Errorf("wrong: %s", w)
			}
			if lv.loss == 10 && lv.dup == 0 && tally.nUndec*20 >= tally.cells {
				t.Errorf("%d of %d cells undecided at 10%% loss: want fewer than 5%%", tally.nUndec, tally.cells)
			}
		})
	}
}

// run runs one matrix through r and judges every cell against the outcome
// the ruleset implies.
func (tl *fwTally) run(t *testing.T, fw lab.Firewall, r *lab.Routed, capture bool) {
	p, err := probe.Open(probe.Config{Remote: r.TargetAddr, NetNS: r.Prober})
	if err != nil {
		tl.mu.Lock()
		tl.wrong = append(tl.wrong, fmt.Sprintf("%s: open prober: %v", fw, err))
		tl.mu.Unlock()
		return
	}
	defer p.Close()
	cfg := firewall.Config{Prober: p, Port: lab.PortHold, BlockedPort: lab.PortBlocked,
		ClosePort: lab.PortClose, CloseRequest: []byte("GET / HTTP/1.0\r\n\r\n")}
	if capture {
		cfg.Capture = r.Target
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := firewall.Run(ctx, cfg)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if err != nil {
		tl.failedRun = append(tl.failedRun, fmt.Sprintf("%s (capture %v): %v", fw, capture, err))
		return
	}
	exp := implied(fw)
	for _, c := range m.Cells {
		name := fmt.Sprintf("%s (capture %v): %s / %s", fw, capture, c.State, c.Probe)
		undecided := c.Outcome == firewall.Undecided || c.Outcome == firewall.NotRun || c.Outcome == firewall.NoAnswer
		if capture {
			tl.cells++
			if undecided {
				tl.nUndec++
				tl.undecided[name+": "+c.Detail]++
			}
		} else {
			tl.cellsNoCap++
			if undecided {
				tl.undecNoCap++
				if c.Outcome == firewall.Undecided && testing.Verbose() {
					t.Logf("  undecided without a capture: %s: %s", name, c.Detail)
				}
			}
		}
		if undecided {
			continue
		}
		w, ok := exp[key{c.State, c.Probe}]
		if !ok {
			w = want{outcome: firewall.Delivered}
		}
		wrong := false
		switch {
		case w.outcome == firewall.Proxied:
			wrong = c.Outcome != firewall.Proxied
		case w.outcome.Reached():
			wrong = !c.Outcome.Reached()
		case w.outcome.Refused():
			wrong = !c.Outcome.Refused()
		}
		for _, rep := range c.Replies {
			if (c.Outcome == firewall.Rejected || c.Outcome == firewall.AnsweredByMiddlebox) && rep.ICMP == "" &&
				!rep.Retransmission && rep.TTL == m.TargetTTL {
				wrong = true
			}
		}
		if fw == lab.FirewallSynproxy && (m.Middlebox == nil || !m.Middlebox.Proxied || m.Middlebox.Hop != 1) {
			wrong = true
		}
		if wrong {
			tl.wrong = append(tl.wrong, fmt.Sprintf("%s: %s (%s), want %s; replies %v", name, c.Outcome, c.Detail, w.outcome, c.Replies))
		}
	}
}
