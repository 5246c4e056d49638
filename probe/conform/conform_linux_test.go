package conform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
	"github.com/tcpwalk/tcpwalk/result"
)

// labConfig opens a prober in a fresh lab: the hold port, the lab trigger
// and the sock_diag oracle.
func labConfig(t *testing.T) conform.Config {
	t.Helper()
	cfg, _ := labAndConfig(t)
	return cfg
}

// labAndConfig is labConfig that also returns the lab (to impair it).
func labAndConfig(t *testing.T) (conform.Config, *lab.Lab) {
	t.Helper()
	l := labtest.New(t)
	return configTo(t, l, l.TargetAddr), l
}

// configTo is the conform config towards target, the lab's IPv4 or IPv6
// address: prober, trigger and oracle all speak its family.
func configTo(t *testing.T, l *lab.Lab, target netip.Addr) conform.Config {
	t.Helper()
	p, err := probe.Open(probe.Config{Remote: target, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return conform.Config{Walk: walk.Config{
		Prober:  p,
		Port:    lab.PortHold,
		Trigger: &walk.LabTarget{Addr: target, NS: l.Prober},
		Oracle:  walk.SockDiag{NS: l.Target},
	}}
}

// TestConformSameOverIPv6: the lab's Linux gives the same verdict, with
// the same named deviations, to every check over IPv6 as over IPv4: TCP's
// rules do not depend on the family (RFC 9293 §3.1 only changes the
// pseudo-header, RFC 8200 §8.1), so neither may tcpwalk's judgement.
func TestConformSameOverIPv6(t *testing.T) {
	l := labtest.New(t)
	run := func(target netip.Addr) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		rep, err := conform.Run(ctx, configTo(t, l, target))
		if err != nil {
			t.Fatalf("conform %v: %v", target, err)
		}
		var out []string
		for _, r := range rep.Results {
			if r.Verdict != walk.Pass && r.Verdict != walk.Deviation {
				logResult(t, r)
			}
			out = append(out, fmt.Sprintf("%s %s %v", r.Scenario, r.Verdict, conform.Deviations(r)))
		}
		return out
	}
	v4 := run(l.TargetAddr)
	v6 := run(l.TargetAddr6)
	if len(v4) != len(conform.Checks()) {
		t.Fatalf("%d results over IPv4, want %d", len(v4), len(conform.Checks()))
	}
	if diff := cmp.Diff(v4, v6); diff != "" {
		t.Errorf("verdicts over IPv6 differ from IPv4's (-IPv4 +IPv6):\n%s", diff)
	}
}

// logResult writes a check's steps and, when it did not pass, its segments.
func logResult(t *testing.T, r walk.Result) {
	t.Helper()
	t.Logf("%-32s %-12s %v %s", r.Scenario, r.Verdict, conform.Deviations(r), r.Reason)
	for _, c := range r.Checks {
		t.Logf("    %-62s %-12s wire=%-12s kernel=%-12s exp=%s got=%s %s", c.Name, c.Verdict, c.Wire, c.Kernel, c.Expected, c.Received, c.Reason)
	}
	if r.Verdict != walk.Pass && r.Verdict != walk.Deviation {
		for _, s := range r.Segments {
			t.Logf("      %s %-3s %-4s seq=%d ack=%d len=%d %s %s", s.At.Format("05.000000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Len, s.Note, s.ICMP)
		}
	}
}

// TestConformAgainstLinux runs the whole matrix against the lab's Linux
// target: every check passes or shows a named deviation, the kernel agrees
// with the wire, every item is measured, the JSON parses, and the run takes
// at most twice its longest check.
func TestConformAgainstLinux(t *testing.T) {
	cfg := labConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := conform.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(conform.Checks()) {
		t.Fatalf("%d results, want one per check (%d)", len(rep.Results), len(conform.Checks()))
	}
	for i, r := range rep.Results {
		if want := conform.Checks()[i].ID; r.Scenario != want {
			t.Errorf("result %d is %s, want %s (the matrix's order)", i, r.Scenario, want)
		}
		switch {
		case r.Verdict == walk.Pass:
		case r.Verdict == walk.Deviation && len(conform.Deviations(r)) > 0:
		default:
			t.Errorf("%s: %s (%s): want pass or a named deviation", r.Scenario, r.Verdict, r.Reason)
			logResult(t, r)
		}
		for _, c := range r.Checks {
			if c.Disagree {
				t.Errorf("%s: %s: the wire says %s, the kernel says %s", r.Scenario, c.Name, c.Wire, c.Kernel)
			}
		}
		// The deciding check's claim about the connection (kept or
		// CLOSED) was checked against the kernel.
		if last := r.Checks[len(r.Checks)-1]; last.Wire != result.NoState && last.Kernel != last.Wire {
			t.Errorf("%s: wire %s, kernel %q: the oracle did not confirm the state", r.Scenario, last.Wire, last.Kernel)
		}
	}
	for _, m := range rep.Measurements {
		t.Logf("%-28s ok=%v %s (%v)", m.ID, m.OK, m.Value, m.Duration)
		if !m.OK {
			t.Errorf("%s: not measured: %s", m.ID, m.Value)
		}
		if m.ID == conform.MeasureSynAckSchedule && len(m.Intervals) != 2 {
			t.Errorf("%s: %d intervals, want the first 2", m.ID, len(m.Intervals))
		}
		if m.ID == conform.MeasureTWFingerprint && m.Value != "ISS = old SND.NXT + 65537 (Linux)" {
			t.Errorf("%s: %q, want Linux's +65537", m.ID, m.Value)
		}
	}
	id, longest := rep.Longest()
	t.Logf("%d checks in %v; the longest, %s, took %v", len(rep.Results), rep.Duration, id, longest)
	if rep.Duration > 2*longest {
		t.Errorf("the run took %v, over twice its longest check (%s, %v)", rep.Duration, id, longest)
	}
	var b bytes.Buffer
	if err := report.WriteConformJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict string            `json:"verdict"`
		Checks  []json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if got.Verdict != "deviation" || len(got.Checks) != len(rep.Results) {
		t.Errorf("JSON: verdict %q, %d checks; want deviation (Linux has some) and %d", got.Verdict, len(got.Checks), len(rep.Results))
	}
}

// TestConformSkipsWithoutTrigger: without a way to make the app close, the
// states that need it are skipped with the reason, the others still run.
func TestConformSkipsWithoutTrigger(t *testing.T) {
	cfg := labConfig(t)
	cfg.Walk.Trigger = nil
	cfg.Only = []string{"FIN_WAIT_2/syn", "ESTABLISHED/syn", "FIN_WAIT_1/fin-backoff"}
	rep, err := conform.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Trigger != "none" {
		t.Errorf("trigger %q, want none", rep.Trigger)
	}
	for _, r := range rep.Results {
		want := walk.Pass
		if r.Scenario == "FIN_WAIT_2/syn" {
			want = walk.Skipped
		}
		if r.Verdict != want || (want == walk.Skipped && r.Reason == "") {
			t.Errorf("%s: %s (%q), want %s with a reason when skipped", r.Scenario, r.Verdict, r.Reason, want)
			logResult(t, r)
		}
	}
	if len(rep.Measurements) != 1 || rep.Measurements[0].OK {
		t.Errorf("measurements %+v: want the FIN backoff, not measured", rep.Measurements)
	}
}

// TestConformCloseWaitNeedsAHoldingApp: against an app that closes as soon
// as it reads our FIN, CLOSE_WAIT cannot be held: skipped, not failed.
func TestConformCloseWaitNeedsAHoldingApp(t *testing.T) {
	cfg := labConfig(t)
	cfg.Walk.Port = lab.PortEcho // closes at EOF
	cfg.Only = []string{"CLOSE_WAIT/syn"}
	rep, err := conform.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Verdict != walk.Skipped {
		t.Errorf("%s: %s (%s), want skipped", r.Scenario, r.Verdict, r.Reason)
		logResult(t, r)
	}
}

func TestRunNeedsProberAndPort(t *testing.T) {
	if _, err := conform.Run(context.Background(), conform.Config{}); err == nil {
		t.Error("Run without a prober: no error")
	}
}
