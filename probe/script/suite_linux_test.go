package script_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestFreeBSDSuiteAgainstLinux runs the 307 IPv4 scripts of FreeBSD's
// tcp-testsuite state-event-engine, written for packetdrill on FreeBSD,
// one-sided against the lab's Linux target with the oracle: every script
// ends pass, fail or skipped with a reason; at least 90 % reach pass or
// fail; and every fail is one of the FreeBSD-vs-Linux differences that
// scripts/freebsd-suite.md lists (knownLinuxFails), each with its line and
// RFC rule.
func TestFreeBSDSuiteAgainstLinux(t *testing.T) {
	cfg := labConfig(t)
	cfg.ClosedPort = lab.PortClosed
	counts, n, fails, _ := runSuite(t, cfg)
	if judged := counts[walk.Pass] + counts[walk.Fail]; judged*10 < n*9 {
		t.Errorf("%d of %d scripts reached pass or fail, want at least 90%%", judged, n)
	}
	// Every fail is a difference the docs explain, at its line.
	doc, err := os.ReadFile("../../scripts/freebsd-suite.md")
	if err != nil {
		t.Fatal(err)
	}
	linux, _, _ := strings.Cut(string(doc), "## gVisor")
	var unlisted []string
	for _, at := range fails {
		if !strings.Contains(linux, "| "+at+" |") {
			unlisted = append(unlisted, at)
		}
	}
	if len(unlisted) == 0 {
		return
	}
	// 24 scripts at once, beside the rest of the test suite, can make a
	// remote timer or our read late: a fail the docs do not list is run
	// again alone before it counts as a new difference.
	t.Logf("%d fails not in the docs, run again alone: %v", len(unlisted), unlisted)
	for _, at := range rerunFails(t, cfg, unlisted) {
		if !strings.Contains(linux, "| "+at+" |") {
			t.Errorf("%s fails (also when run again alone) but scripts/freebsd-suite.md does not list it for Linux: a new difference? Explain it there", at)
		}
	}
}

// rerunFails runs the scripts of the "script:line" places at again, two at
// a time, and returns where those that fail now fail.
func rerunFails(t *testing.T, cfg script.Config, at []string) []string {
	t.Helper()
	want := map[string]bool{}
	for _, a := range at {
		name, _, _ := strings.Cut(a, ":")
		want[name] = true
	}
	var some []*script.Script
	for _, s := range suiteScripts(t) {
		if want[s.Name] {
			some = append(some, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []string
	for _, r := range script.RunAll(ctx, cfg, some, 2) {
		for _, c := range r.Checks {
			if c.Verdict == walk.Fail {
				out = append(out, strings.TrimPrefix(c.Rule, "script "))
				break
			}
		}
		if r.Verdict != walk.Pass && r.Verdict != walk.Fail {
			t.Errorf("%s run again: %s (%s)", r.Scenario, r.Verdict, r.Reason)
		}
	}
	return out
}

// TestFreeBSDSuiteAgainstGVisor runs the same scripts against gVisor's
// netstack, which serves the lab's servers and app control too (no
// oracle: states come from the wire): every script ends pass, fail or
// skipped with a reason (scripts/freebsd-suite.md has its table).
func TestFreeBSDSuiteAgainstGVisor(t *testing.T) {
	l := labtest.NewStack(t, lab.StackGVisor)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	cfg := script.Config{Prober: p, Lab: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober}, ClosedPort: lab.PortClosed,
		Slack: 100 * time.Millisecond}
	counts, n, _, _ := runSuite(t, cfg)
	if counts[walk.Pass]+counts[walk.Fail] == 0 {
		t.Errorf("none of %d scripts reached pass or fail against netstack", n)
	}
}

// runSuite runs the suite with cfg and checks that every script ends
// pass, fail or skipped with a reason; it logs each fail (the line,
// expected and received: the docs' table is made from them) and the skips
// by reason, and returns the counts by verdict and each fail's
// "script:line".
func runSuite(t *testing.T, cfg script.Config) (map[walk.Verdict]int, int, []string, []walk.Result) {
	t.Helper()
	scripts := suiteScripts(t)
	if m := os.Getenv("TCPWALK_SUITE_MATCH"); m != "" {
		// A debugging aid: run only the scripts whose name holds m.
		var some []*script.Script
		for _, s := range scripts {
			if strings.Contains(s.Name, m) {
				some = append(some, s)
			}
		}
		scripts = some
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	results := script.RunAll(ctx, cfg, scripts, 24)
	t.Logf("%d scripts in %v", len(results), time.Since(start).Round(time.Millisecond))
	counts := map[walk.Verdict]int{}
	reasons := map[string]int{}
	var fails, failAt []string
	for _, r := range results {
		counts[r.Verdict]++
		switch r.Verdict {
		case walk.Pass:
		case walk.Fail:
			var line string
			for _, c := range r.Checks {
				if c.Verdict == walk.Fail {
					line = fmt.Sprintf("%s | %s | expected %s | received %s | %s", r.Scenario, strings.TrimPrefix(c.Rule, "script "), c.Expected, c.Received, c.Reason)
					failAt = append(failAt, strings.TrimPrefix(c.Rule, "script "))
					break
				}
			}
			fails = append(fails, line)
			if testing.Verbose() {
				logResult(t, r)
			}
		case walk.Skipped:
			if r.Reason == "" {
				t.Errorf("%s: skipped without a reason", r.Scenario)
			}
			reasons[script.SkipReason(r.Reason)]++
			if testing.Verbose() {
				t.Logf("SKIPPED %s: %s", r.Scenario, r.Reason)
			}
			if !knownSkip(script.SkipReason(r.Reason)) {
				t.Errorf("%s: skipped for an unnamed reason: %s", r.Scenario, r.Reason)
			}
		default:
			t.Errorf("%s: %s (%s): want pass, fail or skipped", r.Scenario, r.Verdict, r.Reason)
			if testing.Verbose() {
				logResult(t, r)
			}
		}
	}
	sort.Strings(fails)
	for _, f := range fails {
		t.Logf("FAIL %s", f)
	}
	for k, n := range reasons {
		t.Logf("SKIP %3d %s", n, k)
	}
	t.Logf("pass %d, fail %d, skipped %d, other %d", counts[walk.Pass], counts[walk.Fail], counts[walk.Skipped],
		len(results)-counts[walk.Pass]-counts[walk.Fail]-counts[walk.Skipped])
	return counts, len(results), failAt, results
}

// TestFreeBSDSuiteWithoutLabControl runs the suite as against a host with
// only an HTTP server: no lab client to dial us, no app control, no closed
// port known, no oracle; --close-trigger http. A close() or
// shutdown(SHUT_WR) of the remote app in ESTABLISHED is made by the HTTP
// request (the script's numbers offset past it and the answer, an
// assumption of the result); the scripts that need nothing else run to
// pass or fail, each fail one that scripts/freebsd-suite.md lists in its
// HTTP-only table; the others are skipped, each for one of the named
// reasons.
func TestFreeBSDSuiteWithoutLabControl(t *testing.T) {
	cfg := labConfig(t)
	cfg.Lab, cfg.Oracle, cfg.Port = nil, nil, lab.PortHTTP
	trig, err := walk.ParseTrigger("http", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CloseTrigger = trig
	counts, n, fails, results := runSuite(t, cfg)
	if counts[walk.Pass]+counts[walk.Fail] == 0 || counts[walk.Skipped] == 0 {
		t.Errorf("%d scripts: %v; want some judged and some skipped", n, counts)
	}
	triggered := map[walk.Verdict]int{}
	for _, r := range results {
		if r.Verdict == walk.Skipped && script.SkipReason(r.Reason) == script.ReasonNoAppControl {
			t.Errorf("%s: %s; with a close trigger, want the trigger or a reason of its own", r.Scenario, r.Reason)
		}
		for _, a := range r.Assumptions {
			if strings.Contains(a, "with an HTTP close trigger") && strings.Contains(a, "sequence numbers offset by ") {
				triggered[r.Verdict]++
				break
			}
		}
	}
	t.Logf("with the close trigger: %v", triggered)
	if triggered[walk.Pass] == 0 {
		t.Errorf("no script passed with the close trigger: %v", triggered)
	}
	doc, err := os.ReadFile("../../scripts/freebsd-suite.md")
	if err != nil {
		t.Fatal(err)
	}
	_, httpOnly, _ := strings.Cut(string(doc), "## HTTP only")
	var unlisted []string
	for _, at := range fails {
		if !strings.Contains(httpOnly, "| "+at+" |") {
			unlisted = append(unlisted, at)
		}
	}
	if len(unlisted) == 0 {
		return
	}
	t.Logf("%d fails not in the docs, run again alone: %v", len(unlisted), unlisted)
	for _, at := range rerunFails(t, cfg, unlisted) {
		if !strings.Contains(httpOnly, "| "+at+" |") {
			t.Errorf("%s fails (also when run again alone) but the HTTP-only table of scripts/freebsd-suite.md does not list it: explain it there", at)
		}
	}
}

// knownSkip tells the named skip reasons from anything else.
func knownSkip(reason string) bool {
	switch reason {
	case script.ReasonNoAppControl, script.ReasonNoClosedPort, script.ReasonListenerGone, script.ReasonNoDialer,
		script.ReasonCloseWaitHeld, script.ReasonTriggerAfterFIN, script.ReasonTriggerData, script.ReasonTriggerState,
		script.ReasonTriggerOnly, script.ReasonTriggerReadsOn:
		return true
	}
	return strings.HasPrefix(reason, "no listener at ")
}

// TestConnectWithDialTrigger: a packetdrill connect() on a host that is no
// lab: the dial trigger wait:PORT waits for the remote to connect to our
// PORT (here a client the test starts in the target namespace, 300 ms
// later), and the script goes on from its SYN.
func TestConnectWithDialTrigger(t *testing.T) {
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	const port = 61234 // in tcpwalk's port range
	trig, err := walk.ParseDialTrigger(fmt.Sprintf("wait:%d:5s", port), nil, l.TargetAddr, l.Prober)
	if err != nil {
		t.Fatal(err)
	}
	src := "--ip_version=ipv4\n" +
		"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" +
		"+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n" +
		"+0 > S 0:0(0) <...>\n" +
		"+0 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n" +
		"+0 > . 1:1(0) ack 1 <...>\n"
	s, err := script.Parse("connect.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		l.Target.Do(func() error {
			c, err := (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp4", netip.AddrPortFrom(l.ProberAddr, port).String())
			if err == nil {
				time.Sleep(500 * time.Millisecond)
				c.Close()
			}
			return err
		})
	}()
	r := script.Run(context.Background(), script.Config{Prober: p, DialTrigger: trig, Slack: 100 * time.Millisecond}, s)
	<-done
	if r.Verdict != walk.Pass {
		logResult(t, r)
		t.Errorf("verdict %s (%s), want pass", r.Verdict, r.Reason)
	}
}
