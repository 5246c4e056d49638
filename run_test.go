package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// TestRunCLI runs every shipped script with `tcpwalk run` against a fresh
// lab's Linux target, over IPv4 and over IPv6 (a bare address of either
// family): exit status 0, a PASS line per script, and one JUnit test case
// per script.
func TestRunCLI(t *testing.T) {
	l := labtest.New(t)
	scripts, err := filepath.Glob("scripts/conformance/*.pkt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in scripts/conformance (%v)", err)
	}
	for _, target := range []string{l.TargetAddr.String(), l.TargetAddr6.String()} {
		t.Run(target, func(t *testing.T) {
			dir := t.TempDir()
			junit, pcap := filepath.Join(dir, "run.xml"), filepath.Join(dir, "run.pcapng")
			// The slack: other tests share the machine's two cores.
			args := append([]string{"--netns", l.Prober.Name, "run", "--slack", "100ms", "--junit", junit, "--pcap", pcap,
				target}, scripts...)
			r := runApp(t, args...)
			if r.code != exitOK {
				t.Fatalf("exit status %d, want 0; stderr: %s", r.code, r.stderr)
			}
			for _, s := range scripts {
				if !strings.Contains(r.stdout, "PASS         "+s+"  (") {
					t.Errorf("no PASS line for %s", s)
				}
			}
			b, err := os.ReadFile(junit)
			if err != nil {
				t.Fatalf("--junit: %v", err)
			}
			var suites struct {
				Suites []struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal(b, &suites); err != nil || len(suites.Suites) != 1 {
				t.Fatalf("--junit does not parse as one suite: %v", err)
			}
			if s := suites.Suites[0]; s.Tests != len(scripts) || s.Failures != 0 {
				t.Errorf("JUnit: %d tests, %d failures; want %d, 0", s.Tests, s.Failures, len(scripts))
			}
			if fi, err := os.Stat(pcap); err != nil || fi.Size() == 0 {
				t.Errorf("--pcap: %v (size %v)", err, fi)
			}
		})
	}
}

// TestRunCLIIPVersion: against the dual-stack lab, packetdrill's
// --ip_version chooses the family: an ipv6 script runs against the lab's
// IPv6 address whatever address was given, an ipv4 one against the IPv4
// address, one without the option against the address given.
func TestRunCLIIPVersion(t *testing.T) {
	l := labtest.New(t)
	src, err := os.ReadFile("scripts/conformance/listen.pkt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := map[string]string{}
	var paths []string
	for _, f := range []struct{ name, opt, target string }{
		{"v6.pkt", "--ip_version=ipv6\n", "[" + l.TargetAddr6.String() + "]:7001"},
		{"v4.pkt", "--ip_version=ipv4\n", l.TargetAddr.String() + ":7001"},
		{"any.pkt", "", ""},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, append([]byte(f.opt), src...), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
		want[path] = f.target
	}
	for _, given := range []string{l.TargetAddr.String(), "[" + l.TargetAddr6.String() + "]"} {
		// The address given sets the one for the script without the
		// option.
		want[paths[2]] = given + ":7001"
		args := append([]string{"--netns", l.Prober.Name, "run", "--json", "--slack", "100ms", given + ":7001"}, paths...)
		r := runApp(t, args...)
		if r.code != exitOK {
			t.Fatalf("run %s: exit status %d, want 0; stdout: %s stderr: %s", given, r.code, r.stdout, r.stderr)
		}
		seen := 0
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		for sc.Scan() {
			var res struct {
				Scenario, Verdict, Target string
			}
			if json.Unmarshal(sc.Bytes(), &res) != nil || res.Scenario == "" {
				continue
			}
			seen++
			if res.Verdict != "pass" || res.Target != want[res.Scenario] {
				t.Errorf("run %s: %s: %s against %s, want pass against %s", given, res.Scenario, res.Verdict, res.Target, want[res.Scenario])
			}
		}
		if seen != len(paths) {
			t.Errorf("run %s: %d results, want %d: %s", given, seen, len(paths), r.stdout)
		}
	}
}

// TestRunCLIWrongExpectation: a script that expects the wrong ACK fails
// with exit status 1, and the output names the line, the expected and the
// received segment.
func TestRunCLIWrongExpectation(t *testing.T) {
	l := labtest.New(t)
	path := filepath.Join(t.TempDir(), "wrong.pkt")
	src := "%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 2 <mss 1460>\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runApp(t, "--netns", l.Prober.Name, "run", "--no-color", "--slack", "100ms", l.TargetAddr.String(), path)
	if r.code != exitNoReply {
		t.Fatalf("exit status %d, want 1", r.code)
	}
	for _, want := range []string{
		"FAIL         " + path,
		path + ":3: fail",
		"expected: +0 > S. 0:0(0) ack 2 <mss 1460>",
		"received: > S. 0:0(0) ack 1 win ",
		"why:      ack 1, want 2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
}

// TestRunCLIScriptErrors: mistakes in scripts are bad usage (2), shown at
// file:line:col before anything is sent (no lab needed).
func TestRunCLIScriptErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	syscall := write("syscall.pkt", "%port 80\n0 listen(3, 1 = 0\n")
	flags := write("flags.pkt", "%port 80\n0 < SQ 0:0(0)\n")
	noPort := write("noport.pkt", "0 < S 0:0(0)\n")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"syscall and bad flags, both shown", []string{"run", "198.18.0.2", syscall, flags},
			[]string{syscall + ":2:9: the argument list of listen( is not closed", flags + ":2:5: want TCP flags"}},
		{"no port anywhere", []string{"run", "198.18.0.2", noPort}, []string{noPort + ": no remote port"}},
		{"missing file", []string{"run", "198.18.0.2", filepath.Join(dir, "nope.pkt")}, []string{"nope.pkt: no such file"}},
		{"no script", []string{"run", "198.18.0.2"}, []string{"want HOST[:PORT] SCRIPT..."}},
		{"bad parallel", []string{"run", "--parallel", "0", "198.18.0.2", noPort}, []string{"--parallel 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want 2", r.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
		})
	}
}

// TestRunCLINoListener: scripts whose first SYN meets RST,ACK (HOST:PORT
// names a port with no listener) end with one "NO LISTENER" line each and
// exit status 3, not a list of FAILs; a run of scripts that all need the
// lab, against a port that is not the lab's, sends nothing and says
// nothing of the target being down.
func TestRunCLINoListener(t *testing.T) {
	l := labtest.New(t)
	r := runApp(t, "--netns", l.Prober.Name, "run", "--no-color", l.TargetAddr.String()+":7009",
		"scripts/conformance/established.pkt", "scripts/conformance/rst_exact.pkt")
	if r.code != exitEnv {
		t.Fatalf("exit status %d, want 3; stdout %s stderr %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "FAIL") || strings.Count(r.stdout, "NO LISTENER  ") != 2 || !strings.Contains(r.stdout, "no listener at 7009") {
		t.Errorf("stdout %q: want two NO LISTENER lines and no FAIL", r.stdout)
	}
	if !strings.Contains(r.stderr, "no listener") || strings.Contains(r.stderr, "answered none") {
		t.Errorf("stderr %q: want the no-listener error, not \"answered none\"", r.stderr)
	}
}

// TestRunCLIOnALossyLab: against a lab made lossy (lab up --loss), `run`
// takes the path for lossy by itself: no script FAILs (on a clean path all
// pass), some may end INCONCLUSIVE with the reason (exit status 1).
func TestRunCLIOnALossyLab(t *testing.T) {
	l := labtest.New(t)
	if err := l.Impair(20, 5); err != nil {
		t.Fatalf("impair the lab: %v", err)
	}
	scripts, err := filepath.Glob("scripts/conformance/*.pkt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in scripts/conformance (%v)", err)
	}
	args := append([]string{"--netns", l.Prober.Name, "run", "--slack", "100ms", l.TargetAddr.String()}, scripts...)
	r := runApp(t, args...)
	if r.code != exitOK && r.code != exitNoReply {
		t.Fatalf("exit status %d, want 0 or 1; stderr: %s", r.code, r.stderr)
	}
	pass := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "FAIL"):
			t.Errorf("on a lossy path: %s", line)
		case strings.HasPrefix(line, "PASS"):
			pass++
		}
	}
	if pass == 0 {
		t.Errorf("no script passed through 20%% loss:\n%s", r.stdout)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", r.stdout)
	}
}

// TestRunFreeBSDSuiteCLI runs FreeBSD's tcp-testsuite state-event-engine
// scripts (307, beside the checkout) with `tcpwalk run --json` against a
// fresh lab, as the README's example does: at least 90 % reach pass or
// fail, the rest are skipped each with a reason, each result carries its
// assumptions, and the JUnit file has one test case per script.
func TestRunFreeBSDSuiteCLI(t *testing.T) {
	scripts := freeBSDSuite(t)
	l := labtest.New(t)
	junit := filepath.Join(t.TempDir(), "suite.xml")
	args := append([]string{"--netns", l.Prober.Name, "run", "--json", "--parallel", "16", "--slack", "100ms", "--junit", junit,
		l.TargetAddr.String()}, scripts...)
	r := runApp(t, args...)
	if r.code != exitNoReply { // some scripts fail: FreeBSD is not Linux
		t.Errorf("exit status %d, want %d; stderr: %s", r.code, exitNoReply, r.stderr)
	}
	var sum struct{ Walks, Pass, Fail, Skipped, Inconclusive int }
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Event       string
			Scenario    string
			Verdict     string
			Reason      string
			Assumptions []string
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("JSON line: %v", err)
		}
		switch line.Event {
		case "summary":
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				t.Fatal(err)
			}
		default:
			if len(line.Assumptions) == 0 {
				t.Errorf("%s: no assumptions in the JSON", line.Scenario)
			}
			if line.Verdict == "skipped" && line.Reason == "" {
				t.Errorf("%s: skipped without a reason", line.Scenario)
			}
		}
	}
	if sum.Walks != 307 || (sum.Pass+sum.Fail)*10 < 307*9 || sum.Inconclusive != 0 {
		t.Errorf("summary %+v: want 307 scripts, at least 90%% pass or fail, none inconclusive", sum)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("assumes (not checked):")) {
		t.Errorf("the JUnit file shows no assumptions")
	}
	if n := bytes.Count(b, []byte("<testcase ")); n != 307 {
		t.Errorf("JUnit has %d test cases, want 307", n)
	}
	t.Logf("summary %+v", sum)
}

// freeBSDSuite returns the 307 scripts of FreeBSD's state-event-engine at
// ../shared/suites beside the checkout (a worktree may sit a level deeper).
func freeBSDSuite(t *testing.T) []string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for !exists(filepath.Join(dir, "..", "shared", "suites")) && filepath.Dir(dir) != dir {
		dir = filepath.Dir(dir)
	}
	scripts, err := filepath.Glob(filepath.Join(dir, "..", "shared", "suites", "freebsd-tcp-testsuite-state-event-engine", "*.pkt"))
	if err != nil || len(scripts) != 307 {
		t.Fatalf("want the 307 scripts at ../shared/suites/freebsd-tcp-testsuite-state-event-engine beside the checkout, got %d (%v)", len(scripts), err)
	}
	return scripts
}

// TestRunFreeBSDSuiteCLIHTTPOnly runs the README's HTTP-only example: the
// suite against the lab's HTTP server as against any host (--lab=false)
// with --close-trigger http. The close() and shutdown() scripts the
// trigger can make run, their results carrying the offsets as an
// assumption; the rest are skipped with a reason; none is inconclusive.
func TestRunFreeBSDSuiteCLIHTTPOnly(t *testing.T) {
	scripts := freeBSDSuite(t)
	l := labtest.New(t)
	args := append([]string{"--netns", l.Prober.Name, "run", "--json", "--lab=false", "--close-trigger", "http", "--parallel", "16",
		"--slack", "100ms", l.TargetAddr.String() + ":80"}, scripts...)
	r := runApp(t, args...)
	if r.code != exitNoReply { // some scripts fail: FreeBSD is not Linux
		t.Errorf("exit status %d, want %d; stderr: %s", r.code, exitNoReply, r.stderr)
	}
	var sum struct{ Walks, Pass, Fail, Skipped, Inconclusive int }
	triggered := 0
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Event, Scenario, Verdict, Reason string
			Assumptions                      []string
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("JSON line: %v", err)
		}
		if line.Event == "summary" {
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if line.Verdict == "skipped" && line.Reason == "" {
			t.Errorf("%s: skipped without a reason", line.Scenario)
		}
		for _, a := range line.Assumptions {
			if strings.Contains(a, "with an HTTP close trigger") && strings.Contains(a, "sequence numbers offset by ") {
				triggered++
				if line.Verdict != "pass" && line.Verdict != "fail" {
					t.Errorf("%s: %s with the close trigger (%s), want pass or fail", line.Scenario, line.Verdict, line.Reason)
				}
				break
			}
		}
	}
	// Without the trigger 61 reach pass or fail (33 + 28), none through a
	// close() or shutdown() mid-script.
	if sum.Walks != 307 || sum.Pass+sum.Fail <= 61 || sum.Inconclusive != 0 || triggered == 0 {
		t.Errorf("summary %+v, %d with the trigger: want 307 scripts, more than 61 pass or fail, none inconclusive, some through the trigger", sum, triggered)
	}
	t.Logf("summary %+v, %d with the close trigger", sum, triggered)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
