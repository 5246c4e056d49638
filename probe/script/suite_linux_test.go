package script_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestFreeBSDSuiteAgainstLinux runs the 307 IPv4 scripts of FreeBSD's
// tcp-testsuite state-event-engine, written for packetdrill on FreeBSD,
// one-sided against the lab's Linux target with the oracle: every script
// ends pass, fail or skipped with a reason; at least 90 % reach pass or
// fail; and every fail is one of the FreeBSD-vs-Linux differences that
// scripts/freebsd-suite.md lists (knownLinuxFails), each with its line and
// RFC rule.
func TestFreeBSDSuiteAgainstLinux(t *testing.T) {
	cfg := labConfig(t)
	cfg.ClosedPort = lab.PortClosed
	scripts := suiteScripts(t)
	if m := os.Getenv("TCPWALK_SUITE_MATCH"); m != "" {
		// A debugging aid: run only the scripts whose name holds m.
		var some []*script.Script
		for _, s := range scripts {
			if strings.Contains(s.Name, m) {
				some = append(some, s)
			}
		}
		scripts = some
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	results := script.RunAll(ctx, cfg, scripts, 24)
	t.Logf("%d scripts in %v", len(results), time.Since(start).Round(time.Millisecond))
	counts := map[walk.Verdict]int{}
	reasons := map[string]int{}
	var fails []string
	for _, r := range results {
		counts[r.Verdict]++
		switch r.Verdict {
		case walk.Pass:
		case walk.Fail:
			var line string
			for _, c := range r.Checks {
				if c.Verdict == walk.Fail {
					line = fmt.Sprintf("%s | %s | expected %s | received %s | %s", r.Scenario, strings.TrimPrefix(c.Rule, "script "), c.Expected, c.Received, c.Reason)
					break
				}
			}
			fails = append(fails, line)
			if testing.Verbose() {
				logResult(t, r)
			}
		case walk.Skipped:
			if r.Reason == "" {
				t.Errorf("%s: skipped without a reason", r.Scenario)
			}
			reasons[script.SkipReason(r.Reason)]++
		default:
			t.Errorf("%s: %s (%s): want pass, fail or skipped", r.Scenario, r.Verdict, r.Reason)
			if testing.Verbose() {
				logResult(t, r)
			}
		}
	}
	sort.Strings(fails)
	for _, f := range fails {
		t.Logf("FAIL %s", f)
	}
	for k, n := range reasons {
		t.Logf("SKIP %3d %s", n, k)
	}
	t.Logf("pass %d, fail %d, skipped %d, other %d", counts[walk.Pass], counts[walk.Fail], counts[walk.Skipped],
		len(results)-counts[walk.Pass]-counts[walk.Fail]-counts[walk.Skipped])
	if judged := counts[walk.Pass] + counts[walk.Fail]; judged*10 < len(results)*9 {
		t.Errorf("%d of %d scripts reached pass or fail, want at least 90%%", judged, len(results))
	}
}
