package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// someConform is a run with one check of each verdict and two measurements.
func someConform() conform.Report {
	reach := walk.Check{Name: "LISTEN → SYN_RCVD", Rule: "RFC 9293 §3.10.7.2 (LISTEN: SYN → SYN,ACK)", Verdict: walk.Pass, Wire: result.SynRcvd}
	local := netip.MustParseAddrPort("198.18.0.1:61001")
	return conform.Report{
		Target: netip.MustParseAddrPort("198.18.0.2:7001"), Trigger: "lab", Oracle: true,
		Start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 3100 * time.Millisecond,
		Results: []walk.Result{
			{Scenario: "ESTABLISHED/rst-in-window", Summary: "ESTABLISHED: RST in window → challenge ACK", Verdict: walk.Pass,
				Local: local, Duration: 20 * time.Millisecond,
				Checks: []walk.Check{reach, {Name: "ESTABLISHED: RSTin", Rule: "RFC 5961 §3.2 (RST in the window → challenge ACK)",
					Verdict: walk.Pass, Expected: "<SEQ=1><ACK=2><CTL=ACK>", Received: "<SEQ=1><ACK=2><CTL=ACK>", Wire: result.Established, Kernel: result.Established}}},
			{Scenario: "SYN_RCVD/syn-retransmit", Verdict: walk.Deviation, Local: local, Duration: 40 * time.Millisecond,
				Checks: []walk.Check{reach, {Name: "SYN_RCVD: SYN again", Rule: "RFC 9293 §3.10.7.4 (first: ...)", Verdict: walk.Deviation,
					Deviation: "synack-on-retransmitted-syn", Reason: "tcp_check_req"}}},
			{Scenario: "CLOSE_WAIT/syn", Verdict: walk.Fail, Duration: 50 * time.Millisecond,
				Checks: []walk.Check{reach, {Name: "CLOSE_WAIT: SYN", Rule: "RFC 5961 §4.2 (SYN → challenge ACK)", Verdict: walk.Fail,
					Probe: "<SEQ=5><CTL=SYN>", Expected: "<SEQ=1><ACK=2><CTL=ACK>", Received: "<SEQ=0><ACK=6><CTL=RST,ACK>", Reason: "the answer differs from the RFC's"}}},
			{Scenario: "FIN_WAIT_1/syn", Verdict: walk.Skipped, Reason: "the remote app must close first: pass --close-trigger"},
			{Scenario: "TIME_WAIT/syn-lower-seq", Verdict: walk.Inconclusive, Duration: 1200 * time.Millisecond,
				Checks: []walk.Check{reach, {Name: "TIME_WAIT: SYN below", Rule: "RFC 9293 §3.10.7.4 (first: ...)", Verdict: walk.Inconclusive,
					Reason: "no answer to KA1"}}},
		},
		Measurements: []conform.Measurement{
			{ID: conform.MeasureSynAckSchedule, Name: "SYN,ACK retransmission schedule", OK: true, Value: "1.01s, 2.02s",
				Intervals: []time.Duration{1010 * time.Millisecond, 2020 * time.Millisecond}, Duration: 3050 * time.Millisecond},
			{ID: conform.MeasureTWFingerprint, Name: "TIME_WAIT fingerprint", Value: "not measured: no answer"},
		},
	}
}

func TestWriteConformTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConformTable(&b, someConform(), false); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"Conformance of 198.18.0.2:7001 (trigger lab, kernel states read with sock_diag)",
		"",
		"check                      verdict       rule                note",
		"ESTABLISHED/rst-in-window  pass          RFC 9293 §3.10.7.4",
		"SYN_RCVD/syn-retransmit    deviation     RFC 9293 §3.10.7.4  synack-on-retransmitted-syn",
		"CLOSE_WAIT/syn             fail          RFC 9293 §3.10.7.4  the answer differs from the RFC's",
		"    check     CLOSE_WAIT: SYN",
		"    probe     <SEQ=5><CTL=SYN>",
		"    expected  <SEQ=1><ACK=2><CTL=ACK>",
		"    received  <SEQ=0><ACK=6><CTL=RST,ACK>",
		"FIN_WAIT_1/syn             skipped       RFC 9293 §3.10.7.4",
		"      the remote app must close first: pass --close-trigger",
		"TIME_WAIT/syn-lower-seq    inconclusive  RFC 9293 §3.10.7.4  no answer to KA1",
		"    check     TIME_WAIT: SYN below",
		"    probe",
		"    expected",
		"    received",
		"",
		"Measured (not judged):",
		"  SYN_RCVD/synack-schedule  1.01s, 2.02s",
		"  TIME_WAIT/fingerprint     not measured: no answer",
		"",
		"5 checks: 1 pass, 1 deviation, 1 fail, 1 inconclusive, 1 skipped",
		"3.100 s in all; the longest check, SYN_RCVD/synack-schedule, took 3.050 s",
	}
	if diff := cmp.Diff(want, trimRight(got)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	for _, ln := range got {
		if n := runeLen(ln); n > conformWidth {
			t.Errorf("line of %d columns, over %d: %q", n, conformWidth, ln)
		}
	}
}

func trimRight(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(l, " ")
	}
	return out
}

func TestWriteConformTableColor(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConformTable(&b, someConform(), true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x1b[32mpass", "\x1b[33mdeviation", "\x1b[31mfail", "\x1b[2mskipped", "\x1b[31minconclusive"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in the coloured table:\n%s", want, b.String())
		}
	}
}

func TestWriteConformJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConformJSON(&b, someConform()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want one JSON object on one line", n)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b.String())
	}
	for k, want := range map[string]any{
		"event": "conform", "target": "198.18.0.2:7001", "trigger": "lab", "oracle": true, "verdict": "fail",
		"longest": "SYN_RCVD/synack-schedule", "longest_ns": float64(3050 * time.Millisecond), "duration_ns": float64(3100 * time.Millisecond),
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if diff := cmp.Diff(map[string]any{"pass": 1.0, "deviation": 1.0, "fail": 1.0, "inconclusive": 1.0, "skipped": 1.0, "interrupted": 0.0}, got["counts"]); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	checks := got["checks"].([]any)
	if len(checks) != 5 {
		t.Fatalf("%d checks, want 5", len(checks))
	}
	dev := checks[1].(map[string]any)
	for k, want := range map[string]any{"id": "SYN_RCVD/syn-retransmit", "state": "SYN_RCVD", "event": "syn-retransmit",
		"verdict": "deviation", "reason": "tcp_check_req", "local": "198.18.0.1:61001"} {
		if dev[k] != want {
			t.Errorf("checks[1].%s = %v, want %v", k, dev[k], want)
		}
	}
	if diff := cmp.Diff([]any{"synack-on-retransmitted-syn"}, dev["deviations"]); diff != "" {
		t.Errorf("deviations (-want +got):\n%s", diff)
	}
	skipped := checks[3].(map[string]any)
	if d, ok := skipped["deviations"].([]any); !ok || len(d) != 0 {
		t.Errorf("skipped check: deviations = %#v, want []", skipped["deviations"])
	}
	if s, ok := skipped["steps"].([]any); !ok || len(s) != 0 {
		t.Errorf("skipped check: steps = %#v, want []", skipped["steps"])
	}
	if skipped["local"] != "" {
		t.Errorf("skipped check: local = %v, want empty", skipped["local"])
	}
	ms := got["measurements"].([]any)
	m0 := ms[0].(map[string]any)
	if diff := cmp.Diff([]any{float64(1010 * time.Millisecond), float64(2020 * time.Millisecond)}, m0["intervals_ns"]); diff != "" {
		t.Errorf("intervals (-want +got):\n%s", diff)
	}
	if iv, ok := ms[1].(map[string]any)["intervals_ns"].([]any); !ok || len(iv) != 0 {
		t.Errorf("measurement without intervals: %#v, want []", ms[1])
	}
	if strings.Contains(b.String(), `\u003c`) {
		t.Error("< is escaped; want it as is")
	}
}

func TestWriteConformJSONAllPass(t *testing.T) {
	rep := someConform()
	rep.Results = rep.Results[:2]
	var b bytes.Buffer
	if err := WriteConformJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Verdict != "deviation" {
		t.Errorf("verdict %q, want deviation (pass and deviation only)", got.Verdict)
	}
}

// TestConformProfile: the stack profile ends the table, is the JSON's
// "profile" array, and JUnit's <properties>.
func TestConformProfile(t *testing.T) {
	rep := conform.Report{Target: netip.MustParseAddrPort("198.18.0.2:7001"), Trigger: "lab",
		Results: []walk.Result{{Scenario: "ESTABLISHED/rst-in-window", Verdict: walk.Pass}},
		Profile: conform.Profile{Items: []conform.ProfileItem{
			{Key: conform.ProfRFC5961RST, Name: "RFC 5961 §3.2 challenge ACK to an in-window RST", Value: "not implemented (optional)",
				Evidence: []string{"ESTABLISHED/rst-in-window"}},
			{Key: conform.ProfInitialRTO, Name: "initial RTO", Value: "3.02s: within RFC 6298 §2.1 (1 s) to RFC 1122 (3 s)", Evidence: []string{}},
		}}}
	var text bytes.Buffer
	if err := WriteConformTable(&text, rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Stack profile (described, not judged):", "  rfc5961.rst  not implemented (optional)", "  rto.initial  3.02s"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := WriteConformJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Profile []conform.ProfileItem `json:"profile"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Profile.Items, got.Profile); diff != "" {
		t.Errorf("JSON profile (-want +got):\n%s", diff)
	}
	var x bytes.Buffer
	if err := WriteJUnitProperties(&x, "suite", rep.Results, ProfileProperties(rep.Profile)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x.String(), `<property name="profile.rfc5961.rst" value="not implemented (optional)"></property>`) {
		t.Errorf("JUnit lacks the profile property:\n%s", x.String())
	}
}

// TestWriteConformTableWidth: at 80 columns (a terminal's) no line of the
// table is wider; a note that does not fit goes under its row, whole.
func TestWriteConformTableWidth(t *testing.T) {
	rep := someConform()
	rep.Results[1].Scenario = "CLOSE_WAIT/rst-rcv-nxt-minus-1"
	var b bytes.Buffer
	if err := WriteConformTableWidth(&b, rep, false, 80); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if n := runeLen(l); n > 80 {
			t.Errorf("line of %d columns at width 80: %q", n, l)
		}
	}
	if !strings.Contains(b.String(), "synack-on-retransmitted-syn") {
		t.Errorf("the deviation's name is lost:\n%s", b.String())
	}
}
