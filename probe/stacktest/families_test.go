package stacktest_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// outcome is what must not depend on the IP version of one result: its
// verdict, and for a deviation the deviations it names (RFC 9293's TCP
// rules are the same over IPv4 and IPv6: RFC 8200 §8 changes only the
// pseudo-header and the MSS, RFC 9293 §3.7.1).
func outcome(r walk.Result) string {
	var devs []string
	for _, c := range r.Checks {
		if c.Verdict == walk.Deviation && c.Deviation != "" {
			devs = append(devs, c.Deviation)
		}
	}
	sort.Strings(devs)
	if len(devs) == 0 {
		return r.Verdict.String()
	}
	return fmt.Sprintf("%s (%s)", r.Verdict, strings.Join(devs, ", "))
}

// family is one IP version of a dual-stack lab: a prober for its target
// address and the lab client that dials back over it.
type family struct {
	name   string
	target netip.Addr
	p      *probe.Prober
	lab    *walk.LabTarget
}

// families opens a prober for each of l's target addresses.
func families(t *testing.T, l *lab.Lab) []family {
	t.Helper()
	if !l.TargetAddr6.IsValid() {
		t.Fatalf("%s lab %s has no IPv6 target address", l.Stack, l.Prefix)
	}
	var out []family
	for _, f := range []struct {
		name string
		a    netip.Addr
	}{{"IPv4", l.TargetAddr}, {"IPv6", l.TargetAddr6}} {
		p, err := probe.Open(probe.Config{Remote: f.a, NetNS: l.Prober, Warn: func(m string) { t.Logf("%s prober: %s", f.name, m) }})
		if err != nil {
			t.Fatalf("%s prober for %s: %v", f.name, f.a, err)
		}
		t.Cleanup(func() { p.Close() })
		out = append(out, family{name: f.name, target: f.a, p: p, lab: &walk.LabTarget{Addr: f.a, NS: l.Prober}})
	}
	return out
}

// compare fails the test for every scenario whose outcome over IPv6 is not
// the one over IPv4, and for any that ran on one family only.
func compare(t *testing.T, stack lab.Stack, kind string, v4, v6 []walk.Result) {
	t.Helper()
	got6 := map[string]walk.Result{}
	for _, r := range v6 {
		got6[r.Scenario] = r
	}
	if len(v4) != len(v6) {
		t.Errorf("%s %s: %d results over IPv4, %d over IPv6", stack, kind, len(v4), len(v6))
	}
	tally := map[walk.Verdict]int{}
	for _, r := range v6 {
		tally[r.Verdict]++
	}
	t.Logf("%s %s over IPv6: %v", stack, kind, tally)
	for _, r4 := range v4 {
		r6, ok := got6[r4.Scenario]
		if !ok {
			t.Errorf("%s %s %s: no result over IPv6", stack, kind, r4.Scenario)
			continue
		}
		if o4, o6 := outcome(r4), outcome(r6); o4 != o6 {
			t.Errorf("%s %s %s: IPv4 %s (%s), IPv6 %s (%s): the verdict must not depend on the IP version", stack, kind, r4.Scenario, o4, r4.Reason, o6, r6.Reason)
			for _, r := range []walk.Result{r4, r6} {
				for _, c := range r.Checks {
					if c.Verdict != walk.Pass {
						t.Logf("    %s %s: %s: expected %s, received %s: %s", r.Target, c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
					}
				}
			}
		}
		if r6.Target.Addr().Is4() {
			t.Errorf("%s %s %s: the IPv6 run's target is %s", stack, kind, r4.Scenario, r6.Target)
		}
	}
}

// TestFamiliesAgree runs every script of scripts/conformance over IPv4 and
// over IPv6 against each lab stack, and conform on both families against
// gVisor's netstack, and wants each verdict the same on both families: a
// TCP rule does not change with the IP version. (conform on Linux over
// both families is probe/conform's own test.) Each result also meets
// TestEveryStack's rule, so that two equal wrong verdicts do not pass.
func TestFamiliesAgree(t *testing.T) {
	scripts := suiteScripts(t)
	for _, stack := range lab.Stacks {
		// One stack at a time, as TestEveryStack.
		t.Run(string(stack), func(t *testing.T) {
			l := labtest.NewStack(t, stack)
			fams := families(t, l)
			var oracle walk.Oracle
			if stack.HasOracle() {
				oracle = walk.SockDiag{NS: l.Target}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var runs [2][]walk.Result
			for i, f := range fams {
				// The slack: other tests share the machine's two
				// cores, and what is compared is the verdict, not
				// a few milliseconds of scheduling.
				scfg := script.Config{Prober: f.p, Lab: f.lab, Oracle: oracle, Slack: 100 * time.Millisecond}
				runs[i] = script.RunAll(ctx, scfg, scripts, 4)
				for _, r := range runs[i] {
					judge(t, stack, f.name+" script", r, true)
				}
			}
			compare(t, stack, "script", runs[0], runs[1])
			if stack != lab.StackGVisor {
				return
			}
			for i, f := range fams {
				cfg := walk.Config{Prober: f.p, Port: lab.PortHold, Trigger: f.lab, Oracle: oracle}
				rep, err := conform.Run(ctx, conform.Config{Walk: cfg, Parallel: 64})
				if err != nil {
					t.Fatalf("conform over %s: %v", f.name, err)
				}
				runs[i] = rep.Results
				for _, r := range rep.Results {
					judge(t, stack, f.name+" conform", r, false)
				}
			}
			compare(t, stack, "conform", runs[0], runs[1])
		})
	}
}
