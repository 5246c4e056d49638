package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

func sampleMatrix() *firewall.Matrix {
	yes, no := true, false
	return &firewall.Matrix{
		Target: netip.MustParseAddrPort("198.18.2.2:7001"), Local: netip.MustParseAddr("198.18.0.1"),
		Capture: true, TargetTTL: 63,
		Cells: []firewall.Cell{
			{State: firewall.StateNone, Probe: "SYN with options", Outcome: firewall.Rewritten, Delivered: &yes,
				Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: "1000"}}, Detail: "arrived changed: mss 1460 → 1000"},
			{State: firewall.StateNone, Probe: "FIN scan", Outcome: firewall.Dropped, Delivered: &no, Detail: "never reached the target"},
			{State: firewall.StateNone, Probe: "ACK without a connection", Outcome: firewall.Rejected, Delivered: &no,
				RejectedBy: netip.MustParseAddr("198.18.2.2"), HopsShort: 1, Detail: "R in the name of 198.18.2.2"},
			{State: firewall.StateEstablished, Probe: "data in window", Outcome: firewall.Delivered, Delivered: &yes, Detail: "arrived unchanged"},
		},
	}
}

func TestWriteFirewall(t *testing.T) {
	m := sampleMatrix()
	var b bytes.Buffer
	if err := WriteFirewall(&b, m); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"capture at the target", "rejected by 198.18.2.2", "mss 1460 → 1000",
		"4 probes: 1 delivered, 1 rewritten, 1 dropped, 1 rejected\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "VERDICT") {
		t.Errorf("unjudged matrix shows verdicts:\n%s", out)
	}
	// Each state is named once, on its first row.
	if n := strings.Count(out, "\nnone "); n != 1 {
		t.Errorf("state none named %d times:\n%s", n, out)
	}
	m.Judge(firewall.PolicyStateful)
	b.Reset()
	if err := WriteFirewall(&b, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "VERDICT") || !strings.Contains(b.String(), "--expect stateful: pass") {
		t.Errorf("judged output:\n%s", b.String())
	}
}

func TestWriteFirewallJSONRoundTrip(t *testing.T) {
	m := sampleMatrix()
	m.Judge(firewall.PolicyStateless)
	tr := &firewall.Trace{Target: m.Target, Rewrites: []firewall.Rewrite{{Hop: 1, By: netip.MustParseAddr("198.18.0.254"),
		Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: "1000"}}}}}
	var b bytes.Buffer
	if err := WriteFirewallJSON(&b, m, tr); err != nil {
		t.Fatal(err)
	}
	var got FirewallJSON
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(got.Matrix.Cells) != 4 || got.Matrix.Cells[2].RejectedBy != m.Cells[2].RejectedBy || *got.Matrix.Cells[1].Delivered {
		t.Errorf("round trip: %+v", got.Matrix.Cells)
	}
	if got.Matrix.Verdict != walk.Fail || got.Trace.Rewrites[0].Hop != 1 {
		t.Errorf("verdict %s, trace %+v", got.Matrix.Verdict, got.Trace)
	}
}

func TestWriteTrace(t *testing.T) {
	fw := netip.MustParseAddr("198.18.0.254")
	tr := &firewall.Trace{Target: netip.MustParseAddrPort("198.18.2.2:7001"),
		Hops: []firewall.Hop{{TTL: 1, From: fw, Quoted: true}, {TTL: 2, From: netip.MustParseAddr("198.18.1.2"), Quoted: true,
			Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: "1000"}}}, {TTL: 3, Reached: true, From: netip.MustParseAddr("198.18.2.2")}},
		Rewrites: []firewall.Rewrite{{Hop: 1, By: fw, Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: "1000"}}}}}
	var b bytes.Buffer
	if err := WriteTrace(&b, tr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "rewritten by hop 1 (198.18.0.254): mss 1460 → 1000") {
		t.Errorf("trace output:\n%s", b.String())
	}
}

// TestFirewallJUnit: the matrix's results feed WriteJUnit.
func TestFirewallJUnit(t *testing.T) {
	m := sampleMatrix()
	m.Judge(firewall.PolicyStateful)
	var b bytes.Buffer
	if err := WriteJUnit(&b, "tcpwalk firewall", m.Results()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "firewall none") || !strings.Contains(b.String(), "FIN scan") {
		t.Errorf("junit:\n%s", b.String())
	}
}

// TestFirewallJSONLikeOtherCommands: one line, "event":"firewall", no
// \u003c escapes, an empty list of rewrites rather than null.
func TestFirewallJSONLikeOtherCommands(t *testing.T) {
	m := sampleMatrix()
	m.Judge(firewall.PolicyStateless)
	m.Cells[0].Detail = "answered <SEQ=1><CTL=RST>"
	tr := &firewall.Trace{Target: m.Target}
	var b bytes.Buffer
	if err := WriteFirewallJSON(&b, m, tr); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "}\n") {
		t.Errorf("%d lines, want one JSON object on one line:\n%s", n, out)
	}
	if !strings.HasPrefix(out, `{"event":"firewall",`) {
		t.Errorf("does not start with \"event\":\"firewall\": %.80s", out)
	}
	for _, bad := range []string{`\u003c`, `\u003e`, `"rewrites":null`} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %s: %s", bad, out)
		}
	}
	if !strings.Contains(out, "<SEQ=1><CTL=RST>") {
		t.Errorf("the cell's detail is not there as written: %s", out)
	}
	if !strings.Contains(out, `"rewrites":[]`) {
		t.Errorf("no empty rewrites list: %s", out)
	}
}
