package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

func someWalks() []walk.Result {
	inc := walk.Result{Scenario: "reset", Verdict: walk.Inconclusive, Duration: 300 * time.Millisecond,
		Reason: "probe: send RST to 198.18.0.2:7001: operation not permitted (needs CAP_NET_RAW; run as root)"}
	return []walk.Result{handshakeWalk(), closeWalk(), skippedWalk(), inc}
}

func TestWalkSummary(t *testing.T) {
	var b bytes.Buffer
	if err := WalkSummary(&b, someWalks(), false); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"scenario       verdict       checks    duration  disagree  note",
		"handshake      pass          2/2        0.012 s  0",
		"passive-close  fail          2/4        2.500 s  1",
		"syn-sent       skipped       0/0        0.000 s  -         the remote host must connect to us: only…",
		"reset          inconclusive  0/0        0.300 s  -         probe: send RST to 198.18.0.2:7001: oper…",
		"4 walks: 1 pass, 1 fail, 1 inconclusive, 1 skipped",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	for _, ln := range got {
		if n := runeLen(ln); n > 100 {
			t.Errorf("line of %d runes: %q", n, ln)
		}
	}

	var c bytes.Buffer
	if err := WalkSummary(&c, someWalks(), true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x1b[32mpass        \x1b[0m", "\x1b[31mfail        \x1b[0m",
		"\x1b[2mskipped     \x1b[0m", "\x1b[33minconclusive\x1b[0m"} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("coloured summary lacks %q:\n%q", want, c.String())
		}
	}
	if diff := cmp.Diff(b.String(), ansiRE.ReplaceAllString(c.String(), "")); diff != "" {
		t.Errorf("coloured summary differs from plain beyond colour (-plain +stripped):\n%s", diff)
	}

	var e bytes.Buffer
	if err := WalkSummary(&e, nil, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(e.String(), "0 walks: 0 pass, 0 fail, 0 inconclusive, 0 skipped\n") {
		t.Errorf("empty summary: %q", e.String())
	}
	if err := WalkSummary(&failWriter{}, someWalks(), false); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error not returned: %v", err)
	}
}

// jsonLines decodes every line of out into a map.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end in a newline: %q", out)
	}
	var ms []map[string]any
	for i, ln := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line %d is not one JSON object: %v\n%s", i, err, ln)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestWriteWalkJSON(t *testing.T) {
	walks := someWalks()
	var b bytes.Buffer
	if err := WriteWalkJSON(&b, walks); err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(t, b.String())
	if len(lines) != len(walks)+1 {
		t.Fatalf("%d lines for %d walks, want one per walk and a summary", len(lines), len(walks))
	}
	// The envelope comes first on every line.
	for i, ln := range strings.Split(b.String(), "\n")[:len(walks)] {
		if !strings.HasPrefix(ln, `{"event":"walk","scenario":`) {
			t.Errorf("line %d starts %.40q, want the event first", i, ln)
		}
	}
	if s := b.String(); !strings.Contains(s, `"expected":"<SEQ=*><ACK=1001><CTL=SYN,ACK>"`) {
		t.Errorf("< and > escaped or expected missing:\n%s", s)
	}

	pc := lines[1]
	for k, want := range map[string]any{
		"event": "walk", "scenario": "passive-close", "verdict": "fail", "target": "198.18.0.2:7001",
		"local": "198.18.0.1:40000", "duration_ns": float64(2500 * time.Millisecond), "oracle": true,
		"disagreements": float64(1), "start": "2025-03-01T12:00:00Z",
	} {
		if pc[k] != want {
			t.Errorf("%s = %#v, want %#v", k, pc[k], want)
		}
	}
	checks := pc["checks"].([]any)
	fail := checks[2].(map[string]any)
	for k, want := range map[string]any{
		"name": "LAST_ACK → CLOSED: no reply to the ACK of its FIN", "verdict": "fail", "expected": "nothing",
		"received": "<SEQ=2>(ICMP) port unreachable", "reason": "the remote sent a segment it must not send here",
		"wire_state": "CLOSED", "kernel_state": "LAST_ACK", "disagree": true,
		"rule": "RFC 9293 §3.10.7.4 (LAST-ACK: ACK of our FIN → CLOSED)",
	} {
		if fail[k] != want {
			t.Errorf("checks[2].%s = %#v, want %#v", k, fail[k], want)
		}
	}
	if _, ok := checks[0].(map[string]any)["disagree"]; ok {
		t.Errorf("disagree:false not omitted: %v", checks[0])
	}
	segs := pc["segments"].([]any)
	if len(segs) != 8 {
		t.Fatalf("%d segments, want 8", len(segs))
	}
	re := segs[3].(map[string]any)
	for k, want := range map[string]any{
		"dir": "in", "flags": "F.", "rel_seq": float64(1), "rel_ack": float64(2), "retransmission": true,
		"note": "retransmission", "local_state": "FIN_WAIT_2", "remote_state": "LAST_ACK", "len": float64(0),
	} {
		if re[k] != want {
			t.Errorf("segments[3].%s = %#v, want %#v", k, re[k], want)
		}
	}
	if icmp := segs[7].(map[string]any); icmp["icmp"] != "198.18.0.2 protocol 6 port 7001 unreachable" || icmp["dir"] != "in" {
		t.Errorf("ICMP entry: %v", icmp)
	}
	// A walk without checks or segments has empty arrays, not null.
	sk := lines[2]
	if c, ok := sk["checks"].([]any); !ok || len(c) != 0 {
		t.Errorf("skipped walk checks = %#v, want []", sk["checks"])
	}
	if s, ok := sk["segments"].([]any); !ok || len(s) != 0 {
		t.Errorf("skipped walk segments = %#v, want []", sk["segments"])
	}
	if sk["reason"] != "the remote host must connect to us: only the lab's client can be asked to" {
		t.Errorf("reason = %#v", sk["reason"])
	}

	want := map[string]any{"event": "summary", "walks": float64(4), "pass": float64(1), "deviation": float64(0), "fail": float64(1),
		"inconclusive": float64(1), "skipped": float64(1), "interrupted": float64(0)}
	if diff := cmp.Diff(want, lines[len(lines)-1]); diff != "" {
		t.Errorf("summary line (-want +got):\n%s", diff)
	}
	if last := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")[len(walks)]; !strings.HasPrefix(last, `{"event":"summary",`) {
		t.Errorf("summary line %q does not start with its event", last)
	}

	// Every line decodes back into the walk.Result it came from.
	for i, ln := range strings.Split(b.String(), "\n")[:len(walks)] {
		var back walk.Result
		if err := json.Unmarshal([]byte(ln), &back); err != nil {
			t.Fatal(err)
		}
		orig := walks[i]
		if orig.Checks == nil {
			orig.Checks = []walk.Check{}
		}
		if orig.Segments == nil {
			orig.Segments = []walk.Segment{}
		}
		if diff := cmp.Diff(orig, back, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
			t.Errorf("walk %d round trip (-want +got):\n%s", i, diff)
		}
	}
}

func TestWriteWalkJSONEmptyAndErrors(t *testing.T) {
	var b bytes.Buffer
	if err := WriteWalkJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `{"event":"summary","walks":0,"pass":0,"deviation":0,"fail":0,"inconclusive":0,"skipped":0,"interrupted":0}`+"\n"; got != want {
		t.Errorf("no walks: %q, want %q", got, want)
	}
	// An unknown verdict still counts, so the four numbers add up.
	var u bytes.Buffer
	if err := WriteWalkJSON(&u, []walk.Result{{Scenario: "x", Verdict: walk.Verdict(200)}}); err != nil {
		t.Fatal(err)
	}
	if s := jsonLines(t, u.String())[1]; s["inconclusive"] != float64(1) || s["walks"] != float64(1) {
		t.Errorf("unknown verdict summary: %v", s)
	}
	for _, n := range []int{0, 2} {
		err := WriteWalkJSON(&failWriter{n: n}, someWalks())
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("after %d writes: err = %v, want the write error", n, err)
		}
	}
}
