package stacktest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// knownFails lists, per stack, the results that may fail because that stack
// really breaks an RFC rule: the ID, and the MUST or SHOULD it breaks. A
// fail not listed here fails the test; so does a listed one that passes
// (the list must stay true).
var knownFails = map[lab.Stack]map[string]string{}

// suiteScripts are the ready-to-run conformance scripts.
func suiteScripts(t *testing.T) []*script.Script {
	t.Helper()
	files, err := filepath.Glob("../../scripts/conformance/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance scripts: %v", err)
	}
	var out []*script.Script
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := script.Parse(filepath.Base(f), src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, s)
	}
	return out
}

// judge checks one result against the rule of the suite: pass, a named
// deviation, or (scripts only) skipped with a reason; never inconclusive on
// the lab's clean path, never a fail that knownFails does not name.
func judge(t *testing.T, stack lab.Stack, kind string, r walk.Result, skipOK bool) {
	t.Helper()
	known, isKnown := knownFails[stack][r.Scenario]
	switch r.Verdict {
	case walk.Pass:
		if isKnown {
			t.Errorf("%s %s %s passes, but knownFails says it breaks %s: update the list", stack, kind, r.Scenario, known)
		}
		return
	case walk.Deviation:
		// Named by behaviour, with the keyword it departs from and the
		// segment that showed it; a MUST broken is a fail, never this.
		named := false
		for _, c := range r.Checks {
			if c.Verdict == walk.Deviation && c.Deviation != "" && c.Received != "" && c.Level != "" && c.Level != "MUST" {
				named = true
				t.Logf("%s %s %s: deviation %s (%s): %s", stack, kind, r.Scenario, c.Deviation, c.Level, c.Received)
			}
		}
		if !named {
			t.Errorf("%s %s %s: a deviation without a name, a level or evidence", stack, kind, r.Scenario)
		}
		return
	case walk.Skipped:
		if skipOK && r.Reason != "" {
			return
		}
	case walk.Fail:
		if isKnown {
			t.Logf("%s %s %s fails as known: %s", stack, kind, r.Scenario, known)
			return
		}
	}
	t.Errorf("%s %s %s: %s (%s)", stack, kind, r.Scenario, r.Verdict, r.Reason)
	for _, c := range r.Checks {
		if c.Verdict != walk.Pass {
			t.Logf("    %s: %s: expected %s, received %s: %s", c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
		}
	}
}

// TestEveryStack runs walk all, conform and every script of
// scripts/conformance against each lab stack, on a clean path.
func TestEveryStack(t *testing.T) {
	scripts := suiteScripts(t)
	for _, stack := range lab.Stacks {
		// One stack at a time: gVisor's netstack runs in this process,
		// and a loaded machine makes its answers late enough to look lost.
		t.Run(string(stack), func(t *testing.T) {
			l := labtest.NewStack(t, stack)
			p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			labTarget := &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober}
			cfg := walk.Config{Prober: p, Port: lab.PortHold, Trigger: labTarget}
			if stack.HasOracle() {
				cfg.Oracle = walk.SockDiag{NS: l.Target}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for _, r := range walk.Run(ctx, cfg, walk.Scenarios()) {
				judge(t, stack, "walk", r, false)
			}
			// The lab's listeners take the kernel's backlog: as many
			// handshakes at once as the loss test uses.
			rep, err := conform.Run(ctx, conform.Config{Walk: cfg, Parallel: 64})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				judge(t, stack, "conform", r, false)
			}
			scfg := script.Config{Prober: p, Lab: labTarget, Oracle: cfg.Oracle}
			for _, r := range script.RunAll(ctx, scfg, scripts, 4) {
				judge(t, stack, "script", r, true)
			}
		})
	}
}
