//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// The tests in this file run the real tcpwalk binary, send it SIGINT,
// SIGTERM or SIGKILL while its work is in flight, and then inspect the
// machine: exit status, partial results on stdout and in the report files,
// nftables tables, namespaces, processes, and the lab target's sockets.

// Bounds of the signal tests.
const (
	// stopWithin is how long a command may take to exit after SIGINT or
	// SIGTERM: it prints what it has and cleans up, it does not finish.
	stopWithin = 3 * time.Second
	// resetWithin is how long the target may keep a connection of ours
	// after tcpwalk exited. tcpwalk resets what it opened, so this is the
	// time for the RSTs to be taken, well under the target's first SYN,ACK
	// retransmission (1 s on Linux), which would otherwise draw a RST from
	// the prober's kernel once the guard is gone and hide a missing reset.
	resetWithin = 500 * time.Millisecond
	// goneWithin is how long the kernel may take to remove a guard table
	// after its owner was killed.
	goneWithin = 3 * time.Second
)

// binDir holds the tcpwalk binary built for this test run; TestMain
// removes it.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tcpwalkBinary builds tcpwalk once per test run and returns its path.
func tcpwalkBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if binDir, buildErr = os.MkdirTemp("", "tcpwalk-signals-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tcpwalk")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build tcpwalk: %v", buildErr)
	}
	return binPath
}

// proc is a running tcpwalk in a process group of its own, so that the
// test can tell whether it left any process behind.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line, as it comes
	done   chan struct{}
	mu     sync.Mutex
	stdout strings.Builder // every stdout line, also those read from lines
	stderr syncBuffer
	exited chan struct{} // closed when Wait returned
}

// startTcpwalk runs tcpwalk with args (60 s at most) and kills it at
// cleanup if the test has not ended it.
func startTcpwalk(t *testing.T, args ...string) *proc {
	t.Helper()
	bin := tcpwalkBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tcpwalk %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20) // conform --json is one long line
		for sc.Scan() {
			p.mu.Lock()
			p.stdout.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default: // nobody reads them any more
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		<-p.done // Wait closes the pipe: read it all first
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		cancel()
		if t.Failed() {
			t.Logf("tcpwalk %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.output(), p.stderr.String())
		}
	})
	return p
}

// output is everything tcpwalk wrote to stdout so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// waitLine waits up to d for a stdout line containing s.
func (p *proc) waitLine(t *testing.T, s string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, s) {
				return
			}
		case <-p.done:
			t.Fatalf("tcpwalk ended before printing %q", s)
		case <-timer.C:
			t.Fatalf("tcpwalk printed no %q within %v", s, d)
		}
	}
}

// running fails t if tcpwalk has exited already: the signal would come too
// late to test anything.
func (p *proc) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("tcpwalk finished before the signal (exit %d): make it run longer", p.cmd.ProcessState.ExitCode())
	default:
	}
}

// stop sends sig and waits (bounded) for tcpwalk to exit; it returns how
// long that took.
func (p *proc) stop(t *testing.T, sig syscall.Signal, within time.Duration) time.Duration {
	t.Helper()
	p.running(t)
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	select {
	case <-p.exited:
	case <-time.After(within + 5*time.Second):
		t.Fatalf("tcpwalk still running %v after %v", within+5*time.Second, sig)
	}
	return time.Since(start)
}

// leftProcesses lists processes still in tcpwalk's process group after it
// exited: anything it started and did not end.
func (p *proc) leftProcesses() []string {
	pgid := p.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	var left []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			left = append(left, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return left
}

// poll calls cond every 10 ms until it is true or d has passed.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ourSockets lists the sockets in target's namespace whose peer is from,
// in the states a prober must not leave behind: SYN_RCVD (request sockets
// too) and ESTABLISHED, and CLOSE_WAIT, which the target keeps as long as
// its app does not close.
func ourSockets(t *testing.T, target *netns.NS, from netip.Addr) []string {
	t.Helper()
	socks, err := sockdiag.Dump(target)
	if err != nil {
		t.Fatalf("read the target's sockets: %v", err)
	}
	var out []string
	for _, s := range socks {
		switch s.State {
		case sockdiag.Established, sockdiag.SynRecv, sockdiag.NewSynRecv, sockdiag.CloseWait:
			if s.Remote.Addr() == from {
				out = append(out, fmt.Sprintf("%v %v<-%v", s.State, s.Local, s.Remote))
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitConnected waits until the target holds a connection of ours: a walk
// is then in flight, with something on the remote for tcpwalk to reset.
func waitConnected(t *testing.T, p *proc, target *netns.NS, from netip.Addr) {
	t.Helper()
	if !poll(10*time.Second, func() bool {
		select {
		case <-p.exited:
			return true
		default:
		}
		return len(ourSockets(t, target, from)) > 0
	}) {
		t.Fatalf("the target held no connection from %v within 10 s", from)
	}
}

// guardTables lists tcpwalk's nftables tables in ns.
func guardTables(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	names, err := guard.Tables(ns.Fd())
	if err != nil {
		t.Fatalf("list nftables tables in %s: %v", ns.Name, err)
	}
	return names
}

// jsonLines parses every line of out as a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line is not JSON (%v): %.200q", err, line)
		}
		objs = append(objs, m)
	}
	if len(objs) == 0 {
		t.Fatal("nothing on stdout")
	}
	return objs
}

// events returns the objects of jsonLines whose "event" is ev.
func events(objs []map[string]any, ev string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["event"] == ev {
			out = append(out, o)
		}
	}
	return out
}

// checkJUnit parses path with encoding/xml and returns its test cases and
// how many of them are an <error type="interrupted">.
func checkJUnit(t *testing.T, path string) (cases, interrupted int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--junit file: %v", err)
	}
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Errors  int      `xml:"errors,attr"`
		Suites  []struct {
			Cases []struct {
				Name  string `xml:"name,attr"`
				Error *struct {
					Type string `xml:"type,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("--junit %s does not parse: %v", path, err)
	}
	errs := 0
	for _, s := range doc.Suites {
		cases += len(s.Cases)
		for _, c := range s.Cases {
			if c.Error != nil {
				errs++
				if c.Error.Type == "interrupted" {
					interrupted++
				}
			}
		}
	}
	if cases == 0 {
		t.Errorf("--junit %s has no test case", path)
	}
	if doc.Errors != errs {
		t.Errorf("--junit %s: errors=%d on the root, %d <error> elements", path, doc.Errors, errs)
	}
	return cases, interrupted
}

// checkPcap reads path with tcpdump and returns the packets it printed.
func checkPcap(t *testing.T, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tcpdump", "-nn", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", path, err, out)
	}
	n := 0
	for _, l := range lines(string(out)) {
		if strings.Contains(l, " IP ") {
			n++
		}
	}
	if n == 0 {
		t.Errorf("tcpdump read no packet from %s:\n%s", path, out)
	}
	return n
}

// quietStderr checks that an interrupted tcpwalk reported no error: being
// stopped is not the target's fault (e.g. "answered none of the checks").
func quietStderr(t *testing.T, p *proc) {
	t.Helper()
	for _, l := range lines(p.stderr.String()) {
		if !strings.HasPrefix(l, "tcpwalk: warning: ") {
			t.Errorf("stderr after the signal: %q, want no error", l)
		}
	}
}

// logFlows logs what the pcap holds of the connections in socks (as
// ourSockets writes them), to show which step left them.
func logFlows(t *testing.T, pcap string, socks []string) {
	t.Helper()
	for _, s := range socks {
		_, peer, ok := strings.Cut(s, "<-")
		ap, err := netip.ParseAddrPort(peer)
		if !ok || err != nil {
			continue
		}
		out, _ := exec.Command("tcpdump", "-nn", "-r", pcap, "tcp port "+strconv.Itoa(int(ap.Port()))).CombinedOutput()
		t.Logf("%s in %s:\n%s", s, pcap, out)
	}
}

// interruptedWalks checks walk results cut by the signal: none failed
// (an interruption is not the remote's fault), the cut ones have the verdict
// "interrupted" with a reason, and nothing the signal cut short claims
// anything else: no pass, deviation, skip or inconclusive whose reason, or
// whose step's, is the interruption. It returns how many were cut.
func interruptedWalks(t *testing.T, walks []map[string]any, want int) int {
	t.Helper()
	if len(walks) != want {
		t.Errorf("%d walk results, want %d (every walk, finished or cut)", len(walks), want)
	}
	cut := 0
	for _, w := range walks {
		why := walkReason(w)
		switch w["verdict"] {
		case "fail":
			t.Errorf("walk %v failed after the signal: %v", w["scenario"], w["reason"])
		case "interrupted":
			if why == "" {
				t.Errorf("walk %v is interrupted with no reason", w["scenario"])
			}
			cut++
		default:
			if strings.Contains(why, "interrupted") || strings.Contains(why, "context canceled") {
				t.Errorf("walk %v cut by the signal (%q) has verdict %v, want interrupted", w["scenario"], why, w["verdict"])
			}
		}
	}
	if cut == 0 {
		t.Errorf("no walk was cut by the signal: the test signalled too late")
	}
	return cut
}

// walkReason is why a walk (or a conformance check) did not pass: its own
// reason, or that of its first step that did not pass.
func walkReason(w map[string]any) string {
	if r, _ := w["reason"].(string); r != "" {
		return r
	}
	for _, key := range []string{"checks", "steps"} {
		steps, _ := w[key].([]any)
		for _, st := range steps {
			m, _ := st.(map[string]any)
			if r, _ := m["reason"].(string); r != "" && m["verdict"] != "pass" {
				return r
			}
		}
	}
	return ""
}

// signalCase is one command run and interrupted against a lab.
type signalCase struct {
	name string
	// files: the command writes --junit and --pcap files.
	files bool
	args  func(l *lab.Lab, junit, pcap string) []string
	// ready waits until work is in flight.
	ready func(t *testing.T, p *proc, l *lab.Lab)
	// check judges the partial results on stdout.
	check func(t *testing.T, l *lab.Lab, stdout string)
}

func signalCases() []signalCase {
	connected := func(t *testing.T, p *proc, l *lab.Lab) { waitConnected(t, p, l.Target, l.ProberAddr) }
	target := func(l *lab.Lab, port uint16) string { return netip.AddrPortFrom(l.TargetAddr, port).String() }
	return []signalCase{{
		name: "send",
		args: func(l *lab.Lab, _, _ string) []string {
			return []string{"--netns", l.Prober.Name, "send", "--flags", "S", "-c", "200", "--interval", "50ms", "--json", target(l, lab.PortHold)}
		},
		ready: func(t *testing.T, p *proc, _ *lab.Lab) { p.waitLine(t, `"event":"reply"`, 10*time.Second) },
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			objs := jsonLines(t, stdout)
			sum := events(objs, "summary")
			if len(sum) != 1 || objs[len(objs)-1]["event"] != "summary" {
				t.Fatalf("want one summary line, last: %d summaries", len(sum))
			}
			sent, _ := sum[0]["sent"].(float64)
			if sum[0]["interrupted"] != true || sent < 1 || sent >= 200 || sum[0]["replies"].(float64) < 1 {
				t.Errorf("summary %v: want interrupted, 1 to 199 sent, replies", sum[0])
			}
			if n := len(events(objs, "sent")); float64(n) != sent {
				t.Errorf("%d sent lines, summary says %v", n, sent)
			}
		},
	}, {
		// The wait trigger waits for an idle close that the hold port never
		// does: the walks that need it hold ESTABLISHED connections.
		name:  "walk",
		files: true,
		args: func(l *lab.Lab, junit, pcap string) []string {
			return []string{"--netns", l.Prober.Name, "walk", "all", "--close-trigger", "wait", "--closed-port", strconv.Itoa(lab.PortClosed),
				"--json", "--junit", junit, "--pcap", pcap, target(l, lab.PortHold)}
		},
		ready: connected,
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			objs := jsonLines(t, stdout)
			cut := interruptedWalks(t, events(objs, "walk"), 9)
			sum := events(objs, "summary")
			if len(sum) != 1 {
				t.Fatal("no summary line")
			}
			if n, _ := sum[0]["interrupted"].(float64); int(n) != cut {
				t.Errorf("summary %v counts %v interrupted, want %d", sum[0], sum[0]["interrupted"], cut)
			}
		},
	}, {
		name:  "conform",
		files: true,
		args: func(l *lab.Lab, junit, pcap string) []string {
			return []string{"--netns", l.Prober.Name, "conform", "--json", "--junit", junit, "--pcap", pcap, target(l, lab.PortHold)}
		},
		ready: connected,
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			objs := jsonLines(t, stdout)
			if len(objs) != 1 || objs[0]["event"] != "conform" {
				t.Fatalf("want one conform object, got %d lines", len(objs))
			}
			checks, _ := objs[0]["checks"].([]any)
			var walks []map[string]any
			for _, c := range checks {
				m, _ := c.(map[string]any)
				m["scenario"] = m["id"]
				walks = append(walks, m)
			}
			if len(walks) == 0 {
				t.Fatal("no checks in the partial run")
			}
			cut := interruptedWalks(t, walks, len(walks))
			counts, _ := objs[0]["counts"].(map[string]any)
			if n, _ := counts["interrupted"].(float64); int(n) != cut || objs[0]["interrupted"] != true {
				t.Errorf("counts %v, interrupted %v: want %d interrupted and interrupted true", counts, objs[0]["interrupted"], cut)
			}
			if objs[0]["verdict"] == "pass" || objs[0]["verdict"] == "deviation" {
				t.Errorf("an interrupted run's verdict is %v", objs[0]["verdict"])
			}
		},
	}, {
		// The firewall matrix's rows hold connections in each state; text
		// output, as a user reads it.
		name:  "firewall",
		files: true,
		args: func(l *lab.Lab, junit, pcap string) []string {
			return []string{"--netns", l.Prober.Name, "firewall", "--expect", "open", "--junit", junit, target(l, lab.PortHold)}
		},
		ready: connected,
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			if !strings.Contains(stdout, "interrupted: the matrix is partial") {
				t.Errorf("the partial matrix does not say it was interrupted:\n%s", stdout)
			}
			if strings.Contains(stdout, "--expect open: pass") {
				t.Errorf("an interrupted matrix passes its --expect:\n%s", stdout)
			}
		},
	}, {
		// Both families (the lab is dual-stack): cut during the IPv4
		// matrix, the IPv6 one is never started and the comparison says
		// it is partial, never "no difference".
		name:  "firewall-parity",
		files: true,
		args: func(l *lab.Lab, junit, pcap string) []string {
			return []string{"--netns", l.Prober.Name, "firewall", "--expect", "open", "--junit", junit,
				target(l, lab.PortHold), netip.AddrPortFrom(l.TargetAddr6, lab.PortHold).String()}
		},
		ready: connected,
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			if !strings.Contains(stdout, "interrupted") || strings.Contains(stdout, "no difference:") || !strings.Contains(stdout, "verdict interrupted") {
				t.Errorf("the partial parity does not say it was interrupted:\n%s", stdout)
			}
		},
	}, {
		name: "scan",
		args: func(l *lab.Lab, _, _ string) []string {
			return []string{"--netns", l.Prober.Name, "scan", "-p", "1-65535", "--rate", "2000", "--json", "--no-progress", l.TargetAddr.String()}
		},
		// The scan prints at the end: in flight once its guard is up and
		// it has sent for a while.
		ready: func(t *testing.T, p *proc, l *lab.Lab) {
			if !poll(10*time.Second, func() bool { return len(guardTables(t, l.Prober)) > 0 }) {
				t.Fatal("tcpwalk scan made no guard table within 10 s")
			}
			time.Sleep(500 * time.Millisecond)
		},
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			objs := jsonLines(t, stdout)
			sum := events(objs, "summary")
			if len(sum) != 1 {
				t.Fatalf("%d summary lines, want 1", len(sum))
			}
			probed, _ := sum[0]["probed"].(float64)
			if sum[0]["interrupted"] != true || probed < 1 || probed >= 65535 {
				t.Errorf("summary %v: want interrupted, 1 to 65534 probed", sum[0])
			}
			// Every port of the lab's target answers (SYN,ACK or RST):
			// a probe cut short by the signal is not a filtered port.
			for _, o := range objs {
				if o["state"] == "filtered" {
					t.Errorf("%v:%v reported filtered (%v), but nothing filters in the lab", o["host"], o["port"], o["reason"])
				}
			}
		},
	}, {
		name:  "run",
		files: true,
		args: func(l *lab.Lab, junit, pcap string) []string {
			scripts, _ := filepath.Glob("scripts/conformance/*.pkt")
			return append([]string{"--netns", l.Prober.Name, "run", "--json", "--junit", junit, "--pcap", pcap, l.TargetAddr.String()}, scripts...)
		},
		ready: connected,
		check: func(t *testing.T, _ *lab.Lab, stdout string) {
			objs := jsonLines(t, stdout)
			scripts, _ := filepath.Glob("scripts/conformance/*.pkt")
			interruptedWalks(t, events(objs, "walk"), len(scripts))
		},
	}}
}

// TestSignalsLeaveNothing: SIGINT or SIGTERM while a command works stops it
// within stopWithin with exit status 130 or 143; its partial results are on
// stdout (every JSON line parses) and in the --junit and --pcap files
// (encoding/xml and tcpdump read them); and it leaves nothing behind: no
// guard table, no process, no connection on the target.
func TestSignalsLeaveNothing(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	for _, tc := range signalCases() {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(tc.name+"/"+sig.String(), func(t *testing.T) {
				t.Parallel()
				l := labtest.New(t)
				dir := t.TempDir()
				junit, pcap := filepath.Join(dir, "out.xml"), filepath.Join(dir, "out.pcapng")
				p := startTcpwalk(t, tc.args(l, junit, pcap)...)
				tc.ready(t, p, l)
				took := p.stop(t, sig, stopWithin)
				if took > stopWithin {
					t.Errorf("tcpwalk took %v to stop after %v, want at most %v", took, sig, stopWithin)
				}
				want := map[syscall.Signal]int{syscall.SIGINT: exitInterrupt, syscall.SIGTERM: exitTerminated}[sig]
				if code := p.cmd.ProcessState.ExitCode(); code != want {
					t.Errorf("exit status %d after %v, want %d", code, sig, want)
				}
				tc.check(t, l, p.output())
				quietStderr(t, p)
				if tc.files {
					if _, cut := checkJUnit(t, junit); cut == 0 {
						t.Errorf("--junit %s has no <error type=\"interrupted\">: the cut work reads as finished", junit)
					}
					if !strings.HasPrefix(tc.name, "firewall") { // it writes no pcap
						checkPcap(t, pcap)
					}
				}
				if left := guardTables(t, l.Prober); len(left) > 0 {
					t.Errorf("guard tables left in %s: %v", l.Prober.Name, left)
				}
				if left := p.leftProcesses(); len(left) > 0 {
					t.Errorf("processes left: %v", left)
				}
				var left []string
				if !poll(resetWithin, func() bool { left = ourSockets(t, l.Target, l.ProberAddr); return len(left) == 0 }) {
					t.Errorf("the target still holds connections of ours %v after tcpwalk exited: %v", resetWithin, left)
					if tc.files {
						logFlows(t, pcap, left)
					}
				}
			})
		}
	}
}

// TestSIGKILLRemovesGuard: a tcpwalk killed with SIGKILL cannot clean up,
// and its RST guard goes anyway: the kernel deletes a table owned by the
// netlink socket that made it (NFT_TABLE_F_OWNER) when the socket closes.
func TestSIGKILLRemovesGuard(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	for _, tc := range signalCases() {
		if tc.name == "send" {
			continue // probe's TestSIGKILLLeavesNoTable
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := labtest.New(t)
			dir := t.TempDir()
			p := startTcpwalk(t, tc.args(l, filepath.Join(dir, "out.xml"), filepath.Join(dir, "out.pcapng"))...)
			tc.ready(t, p, l)
			if len(guardTables(t, l.Prober)) == 0 {
				t.Fatalf("tcpwalk %s works without a guard table in %s", tc.name, l.Prober.Name)
			}
			p.stop(t, syscall.SIGKILL, time.Second)
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("tcpwalk ended with %v, want killed by SIGKILL", p.cmd.ProcessState)
			}
			var left []string
			if !poll(goneWithin, func() bool { left = guardTables(t, l.Prober); return len(left) == 0 }) {
				t.Errorf("guard tables left in %s %v after SIGKILL: %v", l.Prober.Name, goneWithin, left)
			}
		})
	}
}

// demoNamespaces lists the namespaces of the demo run by pid.
func demoNamespaces(t *testing.T, pid int) []string {
	t.Helper()
	names, err := netns.List(fmt.Sprintf("%s%d-", lab.DemoPrefix, pid))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("list namespaces: %v", err)
	}
	return names
}

// startDemo runs `tcpwalk demo args...` and waits until its walks hold
// connections on its target. The demo's lab is destroyed at cleanup in
// case the test leaves it.
func startDemo(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startTcpwalk(t, append([]string{"demo"}, args...)...)
	prefix := fmt.Sprintf("%s%d", lab.DemoPrefix, p.cmd.Process.Pid)
	t.Cleanup(func() { lab.Destroy(prefix) })
	_, tns, _, _ := lab.Names(prefix)
	var target *netns.NS
	if !poll(10*time.Second, func() bool {
		var err error
		target, err = netns.Open(tns)
		return err == nil
	}) {
		t.Fatalf("the demo made no namespace %s within 10 s", tns)
	}
	defer target.Close()
	waitConnected(t, p, target, lab.DefaultProberAddr.Addr())
	return p
}

// TestSignalsDemo: SIGINT or SIGTERM during the demo stops it with 130 or
// 143 and the partial walks on stdout and in the report files, and the
// demo removes its lab: no namespace, no table, no process.
func TestSignalsDemo(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			junit, pcap := filepath.Join(dir, "demo.xml"), filepath.Join(dir, "demo.pcapng")
			p := startDemo(t, "--json", "--junit", junit, "--pcap", pcap)
			took := p.stop(t, sig, stopWithin)
			if took > stopWithin {
				t.Errorf("the demo took %v to stop after %v, want at most %v", took, sig, stopWithin)
			}
			want := map[syscall.Signal]int{syscall.SIGINT: exitInterrupt, syscall.SIGTERM: exitTerminated}[sig]
			if code := p.cmd.ProcessState.ExitCode(); code != want {
				t.Errorf("exit status %d after %v, want %d", code, sig, want)
			}
			objs := jsonLines(t, p.output())
			interruptedWalks(t, events(objs, "walk"), 9)
			quietStderr(t, p)
			if _, cut := checkJUnit(t, junit); cut == 0 {
				t.Errorf("--junit %s has no <error type=\"interrupted\">: the cut walks read as finished", junit)
			}
			checkPcap(t, pcap)
			if left := demoNamespaces(t, p.cmd.Process.Pid); len(left) > 0 {
				t.Errorf("the interrupted demo left namespaces: %v", left)
			}
			tables, err := guard.Tables(0)
			if err != nil {
				t.Fatal(err)
			}
			for _, tb := range tables {
				if strings.HasPrefix(tb, fmt.Sprintf("%s%d_", guard.TablePrefix, p.cmd.Process.Pid)) {
					t.Errorf("the interrupted demo left table %s here", tb)
				}
			}
			if left := p.leftProcesses(); len(left) > 0 {
				t.Errorf("processes left: %v", left)
			}
		})
	}
}

// TestLabDownAfterKilledDemo: a demo killed with SIGKILL leaves its lab,
// and `tcpwalk lab down` removes it, while the lab of a demo whose process
// still runs stays, whatever that process's command line (a demo run
// in-process by go test has none that says demo). lab down is asked for an
// absent lab of its own, so that no other lab on the machine is touched.
func TestLabDownAfterKilledDemo(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	killed := startDemo(t)
	killed.stop(t, syscall.SIGKILL, time.Second)
	pid := killed.cmd.Process.Pid
	if left := demoNamespaces(t, pid); len(left) != 2 {
		t.Fatalf("a killed demo left namespaces %v, want its two (else this test proves nothing)", left)
	}

	// A live process, started before the lab named after it was made.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := exec.CommandContext(ctx, "sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	live, err := lab.Create(&lab.Config{Prefix: fmt.Sprintf("%s%d", lab.DemoPrefix, owner.Process.Pid)})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { live.Close() })

	out, err := exec.CommandContext(ctx, tcpwalkBinary(t), "lab", "down", "--prefix", labtest.Prefix(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpwalk lab down: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "lab(s) of killed demos") {
		t.Errorf("lab down does not say it removed a killed demo's lab:\n%s", out)
	}
	if left := demoNamespaces(t, pid); len(left) > 0 {
		t.Errorf("lab down left the killed demo's namespaces: %v", left)
	}
	if left := demoNamespaces(t, owner.Process.Pid); len(left) != 2 {
		t.Errorf("lab down removed the lab of a running process (%d): namespaces %v left of 2", owner.Process.Pid, left)
	}
}
