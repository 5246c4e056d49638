package firewall

import (
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestCompareFamilies: rows differ by outcome, or as rewritten with other
// changes (the same field clamped to the same value from another sent one
// is no difference); rejected is rejected on both families whoever sent it; rows not
// run or undecided on either side are not compared; a difference fails the
// parity, whose JUnit-style result fails that row only.
func TestCompareFamilies(t *testing.T) {
	mss := []Change{{Field: "mss", Sent: "1460", Got: "1000"}}
	v4 := &Matrix{Cells: []Cell{
		{State: StateNone, Probe: "SYN to a blocked port", Outcome: Dropped},
		{State: StateNone, Probe: "SYN with options", Outcome: Rewritten, Changes: mss},
		{State: StateNone, Probe: "FIN scan", Outcome: Rejected, Detail: "ICMP 3/13"},
		{State: StateEstablished, Probe: "data in window", Outcome: Delivered},
		{State: StateTimeWait, Probe: "SYN to the TIME_WAIT 4-tuple", Outcome: NotRun, Detail: "needs a port"},
		{State: StateClosing, Probe: "keep-alive", Outcome: Rewritten, Changes: mss},
	}}
	v6 := &Matrix{Cells: []Cell{
		{State: StateNone, Probe: "SYN to a blocked port", Outcome: Delivered},
		{State: StateNone, Probe: "SYN with options", Outcome: Rewritten, Changes: []Change{{Field: "mss", Sent: "1440", Got: "1000"}}},
		{State: StateNone, Probe: "FIN scan", Outcome: Rejected, Detail: "ICMPv6 1/1"},
		{State: StateEstablished, Probe: "data in window", Outcome: Undecided, Detail: "silence on a lossy path"},
		{State: StateTimeWait, Probe: "SYN to the TIME_WAIT 4-tuple", Outcome: NotRun, Detail: "needs a port"},
		{State: StateClosing, Probe: "keep-alive", Outcome: Rewritten, Changes: []Change{{Field: "win", Sent: "64240", Got: "1"}}},
	}}
	p := CompareFamilies(v4, v6)
	var diffs []string
	for _, d := range p.Differences {
		diffs = append(diffs, d.String())
	}
	want := []string{"none / SYN to a blocked port: IPv4 dropped, IPv6 delivered", "closing / keep-alive: IPv4 rewritten, IPv6 rewritten"}
	if strings.Join(diffs, "\n") != strings.Join(want, "\n") {
		t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(want, "\n"))
	}
	if len(p.Uncompared) != 2 || p.Uncompared[0].Probe != "data in window" || !strings.Contains(p.Uncompared[0].Reason, "IPv6: undecided") {
		t.Errorf("uncompared %+v, want data in window (IPv6 undecided) and the TIME_WAIT row", p.Uncompared)
	}
	if p.Verdict != walk.Fail {
		t.Errorf("verdict %s, want fail", p.Verdict)
	}
	var parity *walk.Result
	for _, r := range p.Results() {
		if r.Scenario == "firewall parity" {
			parity = &r
		}
	}
	if parity == nil || len(parity.Checks) != len(v4.Cells) || parity.Verdict != walk.Fail {
		t.Fatalf("parity result %+v, want one check per row, failed", parity)
	}
	fails := 0
	for _, c := range parity.Checks {
		if c.Verdict == walk.Fail {
			fails++
			if c.Rule != ParityRule || !strings.Contains(c.Reason, "the families differ") {
				t.Errorf("failed check %+v: want the parity rule and the difference", c)
			}
		}
	}
	if fails != 2 {
		t.Errorf("%d failed checks, want 2", fails)
	}
	// The same matrices on both sides: no difference, pass.
	if same := CompareFamilies(v4, v4); len(same.Differences) != 0 || same.Verdict != walk.Pass {
		t.Errorf("a matrix against itself: %v, %s", same.Differences, same.Verdict)
	}
}
