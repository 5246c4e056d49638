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

// TestWriteFirewallMiddlebox: the header gives the target's own TTL and the
// middlebox's apart, with the hop and the evidence; a TTL taken from a
// SYN-ACK alone is never called the target's own.
func TestWriteFirewallMiddlebox(t *testing.T) {
	m := sampleMatrix()
	m.TargetTTL = 63
	m.Middlebox = &firewall.Middlebox{Hop: 1, Addr: netip.MustParseAddr("198.18.0.254"), TTL: 64, Proxied: true,
		Evidence: []string{"TTL: the SYN-ACK arrives with 64"}}
	var b strings.Builder
	if err := WriteFirewall(&b, m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the target's own segments arrive with TTL 63",
		"a middlebox at hop 1 (198.18.0.254), whose segments arrive with TTL 64", "the connection is proxied", "  - TTL: the SYN-ACK arrives with 64"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	m.Middlebox, m.TTLFromSYNACK = nil, true
	b.Reset()
	if err := WriteFirewall(&b, m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "target's own") || !strings.Contains(b.String(), "who sent it is not known") {
		t.Errorf("a SYN-ACK's TTL called the target's own:\n%s", b.String())
	}
}

// TestFirewallJSONCarriesEvidence: the one JSON line carries what tells who
// answered and why: the middlebox and its evidence, the loss seen, a cell's
// explanation, a reply read as a retransmission, and the trace's reply TTL.
func TestFirewallJSONCarriesEvidence(t *testing.T) {
	m := sampleMatrix()
	m.Lossy = 3
	m.Middlebox = &firewall.Middlebox{Hop: 1, Addr: netip.MustParseAddr("198.18.0.254"), TTL: 64, Proxied: true,
		Evidence: []string{"TTL: the SYN-ACK arrives with 64"}}
	m.Cells[2].Outcome = firewall.Delivered
	m.Cells[2].Explanation = &firewall.Explanation{Pattern: "loose conntrack pickup", Why: "w", Nftables: "n", Iptables: "i"}
	m.Cells[3].Replies = []firewall.Reply{{From: netip.MustParseAddr("198.18.2.2"), TTL: 63, Flags: "FA", Seq: 9, Len: 1, Retransmission: true}}
	tr := &firewall.Trace{Target: m.Target, Hops: []firewall.Hop{{TTL: 2, From: netip.MustParseAddr("198.18.2.2"), Reached: true, ReplyTTL: 64, AnsweredFrom: 1}}}
	var b bytes.Buffer
	if err := WriteFirewallJSON(&b, m, tr); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 1 {
		t.Fatalf("%d lines, want one:\n%s", n, b.String())
	}
	var got FirewallJSON
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	gm := got.Matrix
	if gm == nil || gm.Middlebox == nil || !gm.Middlebox.Proxied || gm.Middlebox.Addr != m.Middlebox.Addr || len(gm.Middlebox.Evidence) != 1 {
		t.Errorf("middlebox lost: %s", b.String())
	}
	if gm != nil && (gm.Lossy != 3 || gm.Cells[2].Explanation == nil || gm.Cells[2].Explanation.Pattern != "loose conntrack pickup") {
		t.Errorf("loss or explanation lost: %s", b.String())
	}
	if gm != nil && (len(gm.Cells[3].Replies) != 1 || !gm.Cells[3].Replies[0].Retransmission || gm.Cells[3].Replies[0].Len != 1) {
		t.Errorf("reply lost: %s", b.String())
	}
	if got.Trace == nil || len(got.Trace.Hops) != 1 || got.Trace.Hops[0].ReplyTTL != 64 || got.Trace.Hops[0].AnsweredFrom != 1 {
		t.Errorf("trace hop lost: %s", b.String())
	}
}
