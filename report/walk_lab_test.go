package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

// TestRenderRealWalks runs every walk against Linux in a fresh lab (two
// namespaces, removed at cleanup) and renders the results: every ladder
// fits 100 columns, has one arrow per segment, and the JSON lines decode.
func TestRenderRealWalks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs all walks in a network-namespace lab")
	}
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	cfg := walk.Config{Prober: p, Port: lab.PortHold,
		Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober}, Oracle: walk.SockDiag{NS: l.Target}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := walk.Run(ctx, cfg, walk.Scenarios())

	arrow := regexp.MustCompile(`\|(-- .* -+->|<-- .* -+|<~~ .* ~+)\|`)
	for _, r := range results {
		var b bytes.Buffer
		if err := report.WriteLadder(&b, r, report.LadderOptions{Width: 100}); err != nil {
			t.Fatalf("%s: WriteLadder: %v", r.Scenario, err)
		}
		out := b.String()
		t.Logf("\n%s", out)
		n := 0
		for _, ln := range strings.Split(out, "\n") {
			if c := utf8.RuneCountInString(ln); c > 100 {
				t.Errorf("%s: line of %d columns: %q", r.Scenario, c, ln)
			}
			if arrow.MatchString(ln) {
				n++
			}
		}
		if n != len(r.Segments) {
			t.Errorf("%s: %d arrows for %d segments", r.Scenario, n, len(r.Segments))
		}
		if !strings.Contains(out, "verdict "+strings.ToUpper(r.Verdict.String())) {
			t.Errorf("%s: no verdict line", r.Scenario)
		}
	}
	var sum bytes.Buffer
	if err := report.WalkSummary(&sum, results, false); err != nil {
		t.Fatalf("WalkSummary: %v", err)
	}
	t.Logf("\n%s", sum.String())

	var js bytes.Buffer
	if err := report.WriteWalkJSON(&js, results); err != nil {
		t.Fatalf("WriteWalkJSON: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(js.String(), "\n"), "\n")
	if len(lines) != len(results)+1 {
		t.Fatalf("%d JSON lines for %d walks, want one each and a summary", len(lines), len(results))
	}
	for i, ln := range lines[:len(results)] {
		var back walk.Result
		if err := json.Unmarshal([]byte(ln), &back); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if back.Scenario != results[i].Scenario || len(back.Segments) != len(results[i].Segments) ||
			back.Duration != results[i].Duration || back.Target != results[i].Target {
			t.Errorf("line %d does not decode back to walk %s", i, results[i].Scenario)
		}
	}
}
