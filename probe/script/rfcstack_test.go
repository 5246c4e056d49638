package script_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/hostilepeer"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

const rfcStackPort = 7078

// TestConformanceScriptsAgainstAnRFCStack runs the shipped scripts against
// a stack that makes the RFC's other choices (hostilepeer.RFCStack: MSS
// only, no RFC 5961, a 3 s RTO, RSTs with a window), as against a host that
// is not the lab: no oracle, no lab client. Before the scripts said where
// stacks may differ, Linux's values failed here: RSTs with window 0
// (rst_exact, listen, syn_rcvd), wscale 10 and timestamps (established),
// the SYN,ACK again at +1 s (syn_rcvd), RFC 5961's challenge ACKs
// (rst_in_window, syn_in_established, ack_too_old), and the lab's scripts
// read as FAILs. Now each passes, or is skipped with its reason: it needs
// the lab, or expects an optional behaviour this stack does not have.
func TestConformanceScriptsAgainstAnRFCStack(t *testing.T) {
	l := labtest.New(t)
	peer, err := hostilepeer.Start(hostilepeer.Config{NS: l.Target, Ifname: l.TargetIf, Addr: l.TargetAddr, Port: rfcStackPort,
		Behaviour: hostilepeer.RFCStack})
	if err != nil {
		t.Fatalf("hostilepeer.Start: %v", err)
	}
	t.Cleanup(func() { peer.Close() })
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var scripts, closed []*script.Script
	for _, s := range conformanceScripts(t) {
		if s.Name == "closed.pkt" {
			closed = append(closed, s) // its own port: nothing listens on 7009
		} else {
			scripts = append(scripts, s)
		}
	}
	cfg := script.Config{Prober: p, Port: rfcStackPort, Slack: 100 * time.Millisecond}
	results := script.RunAll(ctx, cfg, scripts, 4)
	cfg.Port = 0
	results = append(results, script.RunAll(ctx, cfg, closed, 1)...)
	for _, r := range results {
		t.Logf("%-24s %s %s", r.Scenario, r.Verdict, r.Reason)
		switch r.Verdict {
		case walk.Pass:
		case walk.Skipped:
			if !strings.Contains(r.Reason, "needs the lab") && !strings.HasPrefix(r.Reason, "not implemented (optional)") {
				t.Errorf("%s: skipped for another reason: %s", r.Scenario, r.Reason)
			}
		default:
			t.Errorf("%s: %s (%s)", r.Scenario, r.Verdict, r.Reason)
			logResult(t, r)
		}
	}
}

// TestScriptsRunAnywhere: a script whose first SYN meets RST,ACK ends "no
// listener at PORT" with no list of failed checks; %expect-state with
// nothing to tell it is noted and the rest of the script runs.
func TestScriptsRunAnywhere(t *testing.T) {
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	byName := map[string]*script.Script{}
	for _, s := range conformanceScripts(t) {
		byName[s.Name] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := script.Run(ctx, script.Config{Prober: p, Port: lab.PortClosed}, byName["established.pkt"])
	if !strings.HasPrefix(r.Reason, script.ReasonNoListener+" 7009") || len(r.Checks) != 0 {
		t.Errorf("against a closed port: %s %q, %d checks; want %q and none", r.Verdict, r.Reason, len(r.Checks), script.ReasonNoListener+" 7009")
	}
	r = script.Run(ctx, script.Config{Prober: p}, byName["listen.pkt"])
	if r.Verdict != walk.Pass {
		t.Errorf("listen.pkt without an oracle: %s (%s), want pass", r.Verdict, r.Reason)
		logResult(t, r)
	}
	skipped := 0
	for _, c := range r.Checks {
		if c.Verdict == walk.Skipped {
			skipped++
		}
	}
	if skipped == 0 || len(r.Checks) <= skipped {
		t.Errorf("listen.pkt: %d of %d checks skipped; want the first %%expect-state noted and the rest run", skipped, len(r.Checks))
	}
	r = script.Run(ctx, script.Config{Prober: p}, byName["fin_wait_1.pkt"])
	if r.Verdict != walk.Skipped || !strings.Contains(r.Reason, "needs the lab") {
		t.Errorf("fin_wait_1.pkt outside the lab: %s (%s), want skipped: it needs the lab", r.Verdict, r.Reason)
	}
}
