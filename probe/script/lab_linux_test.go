package script_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// labConfig opens a prober in a fresh lab: the lab's client for %dial and
// sock_diag in the target as the oracle.
func labConfig(t *testing.T) script.Config {
	t.Helper()
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return script.Config{
		Prober: p,
		Lab:    &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober},
		Oracle: walk.SockDiag{NS: l.Target},
		// Other tests share the machine's two cores: allow the remote's
		// answers some scheduling delay.
		Slack: 100 * time.Millisecond,
	}
}

// conformanceScripts parses every script shipped in scripts/conformance.
func conformanceScripts(t *testing.T) []*script.Script {
	t.Helper()
	files, err := filepath.Glob("../../scripts/conformance/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in ../../scripts/conformance (%v)", err)
	}
	sort.Strings(files)
	var out []*script.Script
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := script.Parse(filepath.Base(f), src)
		if err != nil {
			t.Fatalf("%v", err)
		}
		out = append(out, s)
	}
	return out
}

func logResult(t *testing.T, r walk.Result) {
	t.Helper()
	for _, c := range r.Checks {
		t.Logf("%s %-40s %-5s wire=%-11s kernel=%-11s exp=%q got=%q %s", r.Scenario, c.Name, c.Verdict, c.Wire, c.Kernel, c.Expected, c.Received, c.Reason)
	}
	for _, s := range r.Segments {
		t.Logf("   %s %-3s %-4s seq=%d ack=%d win=%d len=%d %v %s %s remote=%s", s.At.Format("05.000000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Win, s.Len, s.Options, s.Note, s.ICMP, s.RemoteState)
	}
}

// TestConformanceScriptsAgainstLinux runs every shipped script against the
// lab's Linux target: all must pass, and the kernel must agree with the
// wire inference at every check.
func TestConformanceScriptsAgainstLinux(t *testing.T) {
	cfg := labConfig(t)
	scripts := conformanceScripts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, r := range script.RunAll(ctx, cfg, scripts, 4) {
		if r.Verdict != walk.Pass || r.Disagreements > 0 || testing.Verbose() {
			logResult(t, r)
		}
		if r.Verdict != walk.Pass {
			t.Errorf("%s: %s (%s)", r.Scenario, r.Verdict, r.Reason)
		}
		for _, c := range r.Checks {
			if c.Disagree {
				t.Errorf("%s: %s: wire says %s, kernel says %s", r.Scenario, c.Name, c.Wire, c.Kernel)
			}
		}
	}
}

// TestWrongExpectationsFail runs scripts that expect what Linux does not do:
// each must fail at the right line and show the expected and the received
// segment in the script's notation.
func TestWrongExpectationsFail(t *testing.T) {
	wrongExpectations(t, false)
}

// TestWrongAnswersFailOnALossyPath: told the path is lossy, the runner
// still fails what loss cannot explain, on the line's own segment: an ACK
// of more than we sent, other options, a kernel in the state the wire
// shows, an answer before its time; a missing or unexpected segment, which
// loss can explain, is inconclusive with the reason, never a pass.
func TestWrongAnswersFailOnALossyPath(t *testing.T) {
	wrongExpectations(t, true)
}

func wrongExpectations(t *testing.T, lossy bool) {
	cfg := labConfig(t)
	cfg.Slack = 100 * time.Millisecond
	cfg.Lossy = lossy
	const hs = "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1460>\n+0 < . 1:1(0) ack 1 win 65535\n"
	tests := []struct {
		name     string
		src      string
		verdict  walk.Verdict
		rule     string // "script NAME:LINE"
		expected string
		received string // a part of Received
		reason   string // a part of Reason
		tidy     bool   // a connection remains: the tidy RST must go out
		lossy    bool   // on a lossy path: inconclusive, loss may explain it
	}{
		{
			name:     "wrong ack",
			src:      "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 2 <mss 1460>\n",
			verdict:  walk.Fail,
			rule:     "script wrong ack:3",
			expected: "+0 > S. 0:0(0) ack 2 <mss 1460>",
			received: "> S. 0:0(0) ack 1 win 64240 <mss 1460>",
			reason:   "ack 1, want 2",
			tidy:     true,
		},
		{
			name:     "wrong options",
			src:      "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1400>\n",
			verdict:  walk.Fail,
			rule:     "script wrong options:3",
			expected: "+0 > S. 0:0(0) ack 1 <mss 1400>",
			received: "<mss 1460>",
			reason:   "options <mss 1460>, want <mss 1400>",
			tidy:     true,
		},
		{
			name:     "expects a reply that never comes",
			src:      hs + "+0 < R 1:1(0) win 0\n+0 > . 1:1(0) ack 1\n",
			verdict:  walk.Fail,
			rule:     "script expects a reply that never comes:6",
			expected: "+0 > . 1:1(0) ack 1",
			received: "nothing",
			reason:   "nothing came by",
			lossy:    true,
		},
		{
			name:     "an unexpected segment",
			src:      hs + "+0 < R 1001:1001(0) win 0\n%wait 0.3\n",
			verdict:  walk.Fail,
			rule:     "script an unexpected segment:6",
			expected: "nothing from the remote before %wait 0.3",
			received: "> . 1:1(0) ack 1 win 64240",
			reason:   "unexpected segment",
			tidy:     true,
			lossy:    true,
		},
		{
			name:     "wrong state",
			src:      hs + "+0 %expect-state CLOSE_WAIT\n",
			verdict:  walk.Fail,
			rule:     "script wrong state:5",
			expected: "CLOSE_WAIT",
			received: "kernel: ESTABLISHED, wire: ESTABLISHED",
			reason:   "the remote kernel says ESTABLISHED",
			tidy:     true,
		},
		{
			name:     "too early",
			src:      "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0.5 > S. 0:0(0) ack 1 <mss 1460>\n",
			verdict:  walk.Fail,
			rule:     "script too early:3",
			expected: "+0.5 > S. 0:0(0) ack 1 <mss 1460>",
			received: "> S. 0:0(0) ack 1",
			reason:   "before the line's time",
			tidy:     true,
		},
	}
	var scripts []*script.Script
	for _, tt := range tests {
		s, err := script.Parse(tt.name, []byte(tt.src))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		scripts = append(scripts, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, r := range script.RunAll(ctx, cfg, scripts, len(scripts)) {
		tt := tests[i]
		if lossy && tt.lossy {
			tt.verdict, tt.reason = walk.Inconclusive, "the path is lossy"
			if tt.received == "nothing" {
				tt.reason = "after 3 retransmissions of line 5"
			}
		}
		if r.Verdict != tt.verdict || len(r.Checks) == 0 {
			logResult(t, r)
			t.Errorf("%s: verdict %s with %d checks, want %s", tt.name, r.Verdict, len(r.Checks), tt.verdict)
			continue
		}
		c := r.Checks[len(r.Checks)-1]
		if c.Rule != tt.rule || c.Expected != tt.expected || !strings.Contains(c.Received, tt.received) || !strings.Contains(c.Reason, tt.reason) {
			logResult(t, r)
			t.Errorf("%s: last check rule %q expected %q received %q reason %q;\nwant rule %q expected %q received ~%q reason ~%q",
				tt.name, c.Rule, c.Expected, c.Received, c.Reason, tt.rule, tt.expected, tt.received, tt.reason)
		}
		// Nothing stays on the remote after a failed script either: a
		// connection the wire model still holds ends with the tidy RST.
		if n := len(r.Segments); tt.tidy && (n == 0 || r.Segments[n-1].Note != "tidy: reset") {
			logResult(t, r)
			t.Errorf("%s: the last segment is not the tidy RST", tt.name)
		}
	}
}

// lateConfirm is a lab whose confirmation of a %dial comes after the
// client's SYN could already be on the wire.
type lateConfirm struct {
	script.Dialer
	delay time.Duration
}

func (l lateConfirm) Dial(ctx context.Context, port uint16) error {
	err := l.Dialer.Dial(ctx, port)
	time.Sleep(l.delay)
	return err
}

// TestDialTimedFromTheRequest: a %dial line happens when we ask, as a
// packetdrill call line happens when the call starts. The client's SYN may
// come before the lab confirms the request; it is not "too early" for a
// "+0" line after the %dial.
func TestDialTimedFromTheRequest(t *testing.T) {
	cfg := labConfig(t)
	cfg.Lab = lateConfirm{Dialer: cfg.Lab, delay: 200 * time.Millisecond}
	s, err := script.Parse("late confirm", []byte("0 %dial\n+0~+1 > S 0:0(0) <...>\n+0 %expect-state SYN_SENT\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := script.RunAll(ctx, cfg, []*script.Script{s}, 1)[0]
	if r.Verdict != walk.Pass {
		logResult(t, r)
		t.Fatalf("verdict %s (%s), want pass", r.Verdict, r.Reason)
	}
}

// TestRunOtherFamilySkipped: a script whose --ip_version names the other
// family than the target address's is skipped, saying which address to
// give; one that names the target's family runs (and passes).
func TestRunOtherFamilySkipped(t *testing.T) {
	cfg := labConfig(t) // an IPv4 target
	body := "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss *>\n+0 < R 1:1(0) win 0\n"
	for _, tc := range []struct {
		opt     string
		verdict walk.Verdict
		reason  string
	}{
		{"--ip_version=ipv6\n", walk.Skipped, "the script is for IPv6 (--ip_version=ipv6) and the target 198.18.0.2 is IPv4: give the target's IPv6 address"},
		{"--ip_version=ipv4-mapped-ipv6\n", walk.Pass, ""},
		{"--ip_version=ipv4\n", walk.Pass, ""},
	} {
		s, err := script.Parse("fam.pkt", []byte(tc.opt+body))
		if err != nil {
			t.Fatal(err)
		}
		r := script.Run(context.Background(), cfg, s)
		if r.Verdict != tc.verdict || r.Reason != tc.reason {
			t.Errorf("%q: %s (%s), want %s (%s)", tc.opt, r.Verdict, r.Reason, tc.verdict, tc.reason)
		}
	}
}
