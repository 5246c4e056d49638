//go:build linux

package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// TestTwoProbersSeeOnlyTheirReplies: two Probers on one namespace (as two
// processes have) both filter the whole port range 61000-65535, so each
// socket gets a copy of the other's replies. Each delivers only its own;
// the other's are counted as Unmatched and never handed to a flow.
func TestTwoProbersSeeOnlyTheirReplies(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	a, _ := openProber(t, l, false)
	b, _ := openProber(t, l, false)
	fa := newFlow(t, a, lab.PortHold)
	fb := newFlow(t, b, lab.PortHold)
	if fa.Local == fb.Local {
		t.Fatalf("both probers got local port %v", fa.Local)
	}
	const x = 1000
	send(t, fa, craft.Segment{Seq: x, Flags: craft.FlagSYN})
	got, _ := expect(t, fa, 2*time.Second)
	if got.Flags != craft.FlagSYN|craft.FlagACK || got.Ack != x+1 {
		t.Fatalf("prober A got %+v, want its SYN-ACK", got)
	}
	expectNothing(t, fb, 300*time.Millisecond)
	if st := b.Stats(); st.Received != 0 || st.Unmatched == 0 {
		t.Errorf("prober B stats %+v: A's reply must be unmatched there, not received", st)
	}
	send(t, fa, craft.Segment{Seq: x + 1, Flags: craft.FlagRST}) // tidy
}

// TestTwoProbersSameSourcePort: a source port held by one Prober (one
// tcpwalk process) is refused to another, which says why.
func TestTwoProbersSameSourcePort(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	a, _ := openProber(t, l, false)
	b, _ := openProber(t, l, false)
	const port = 62001
	f, err := a.NewFlow(lab.PortHold, port)
	if err != nil {
		t.Fatalf("A: NewFlow on %d: %v", port, err)
	}
	_, err = b.NewFlow(lab.PortHold, port)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("B: NewFlow on the port A holds: %v, want refused as in use", err)
	}
	f.Close()
	g, err := b.NewFlow(lab.PortHold, port)
	if err != nil {
		t.Errorf("B: NewFlow after A let the port go: %v", err)
	} else {
		g.Close()
	}
}

// run is a finished tcpwalk process.
type run struct {
	code           int
	stdout, stderr string
}

// startTcpwalk starts the tcpwalk binary with args (bounded by 60 s) and
// returns a channel with its outcome; the process is killed at cleanup if
// it still runs.
func startTcpwalk(t *testing.T, args ...string) (*exec.Cmd, <-chan run) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, tcpwalkBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tcpwalk %v: %v", args, err)
	}
	out := make(chan run, 1)
	var once sync.Once
	wait := func() {
		once.Do(func() {
			cmd.Wait()
			out <- run{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
			cancel()
		})
	}
	go wait()
	t.Cleanup(func() {
		cmd.Process.Kill()
		wait()
	})
	return cmd, out
}

// walkVerdicts reads the walk lines of `walk all --json`: scenario →
// verdict.
func walkVerdicts(t *testing.T, r run) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		var w struct{ Event, Scenario, Verdict, Reason string }
		if json.Unmarshal([]byte(line), &w) == nil && w.Event == "walk" {
			out[w.Scenario] = w.Verdict
		}
	}
	if len(out) == 0 {
		t.Fatalf("no walk lines (exit %d); stderr:\n%s", r.code, r.stderr)
	}
	return out
}

// mustPass are the walks whose verdict does not hang on the server's
// timing: any reply of another process taken for ours would fail them.
// (passive-close and active-close race the lab server's own close after
// the http trigger and may end inconclusive; that is not a wrong verdict.)
var mustPass = []string{"closed-port", "handshake", "syn-rcvd", "reset", "half-close"}

// checkWalks fails t on any failed walk and on a must-pass walk that did
// not pass.
func checkWalks(t *testing.T, who string, r run) {
	t.Helper()
	v := walkVerdicts(t, r)
	t.Logf("%s: exit %d, verdicts %v", who, r.code, v)
	if r.code != 0 && r.code != 1 {
		t.Errorf("%s: exit status %d; stderr:\n%s", who, r.code, r.stderr)
	}
	for name, verdict := range v {
		if verdict == "fail" {
			t.Errorf("%s: walk %s failed", who, name)
		}
	}
	for _, name := range mustPass {
		if v[name] != "pass" {
			t.Errorf("%s: walk %s: %q, want pass", who, name, v[name])
		}
	}
}

func waitRun(t *testing.T, ch <-chan run, d time.Duration) run {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("tcpwalk still running after %v", d)
		return run{}
	}
}

// TestTwoProcessesWalkAtOnce: two tcpwalk processes walk every scenario
// against the same target at the same time. Each has its own guard table
// while it runs, both get every verdict right, and no table is left.
func TestTwoProcessesWalkAtOnce(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	// The server on PortClose answers a request and closes: with the http
	// trigger every walk that needs the remote app to act can run.
	closeTarget := netip.AddrPortFrom(l.TargetAddr, lab.PortClose).String()
	args := []string{"--netns", l.Prober.Name, "walk", "all", "--json", "--oracle-netns", l.Target.Name,
		"--close-trigger", "http", "--closed-port", strconv.Itoa(lab.PortClosed), closeTarget}
	_, a := startTcpwalk(t, args...)
	_, b := startTcpwalk(t, args...)
	if !poll(10*time.Second, func() bool { return len(tables(t, l)) == 2 }) {
		t.Errorf("guard tables while both run: %v, want one per process", tables(t, l))
	}
	for i, ch := range []<-chan run{a, b} {
		checkWalks(t, "process "+strconv.Itoa(i+1), waitRun(t, ch, 60*time.Second))
	}
	if names := tables(t, l); len(names) != 0 {
		t.Errorf("guard tables left after both exited: %v", names)
	}
}

// TestKilledProcessLeavesOthersGuard: while a walk runs, a second tcpwalk
// (a send) is killed with SIGKILL. Its guard table goes with it; the walk's
// stays, and the walk gets every verdict right.
func TestKilledProcessLeavesOthersGuard(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	victim, _ := startTcpwalk(t, "--netns", l.Prober.Name, "send", "--flags", "S", "-c", "200", "--interval", "50ms", target)
	if !poll(10*time.Second, func() bool { return len(tables(t, l)) == 1 }) {
		t.Fatalf("the send made no guard table: %v", tables(t, l))
	}
	closeTarget := netip.AddrPortFrom(l.TargetAddr, lab.PortClose).String()
	_, w := startTcpwalk(t, "--netns", l.Prober.Name, "walk", "all", "--json", "--oracle-netns", l.Target.Name,
		"--close-trigger", "http", "--closed-port", strconv.Itoa(lab.PortClosed), closeTarget)
	if !poll(10*time.Second, func() bool { return len(tables(t, l)) == 2 }) {
		t.Fatalf("guard tables with both running: %v, want 2", tables(t, l))
	}
	before := tables(t, l)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !poll(5*time.Second, func() bool { return len(tables(t, l)) == 1 }) {
		t.Fatalf("guard tables after SIGKILL of the send: %v, want only the walk's", tables(t, l))
	}
	if left := tables(t, l)[0]; !slices.Contains(before, left) {
		t.Errorf("table %s after the kill was not there before (%v)", left, before)
	}
	checkWalks(t, "walk beside a killed send", waitRun(t, w, 60*time.Second))
	if names := tables(t, l); len(names) != 0 {
		t.Errorf("guard tables left: %v", names)
	}
}

// TestTwoProcessesSameSourcePort: a second tcpwalk asking for the source
// port a running one holds is refused with exit status 3 and a message
// that says the port is in use; the first is not disturbed.
func TestTwoProcessesSameSourcePort(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	_, a := startTcpwalk(t, "--netns", l.Prober.Name, "send", "--flags", "S", "--sport", "62002", "-c", "20", "--interval", "100ms", target)
	if !poll(10*time.Second, func() bool { return len(tables(t, l)) == 1 }) {
		t.Fatalf("the first send made no guard table: %v", tables(t, l))
	}
	time.Sleep(200 * time.Millisecond) // its first flow holds the port
	_, b := startTcpwalk(t, "--netns", l.Prober.Name, "send", "--flags", "S", "--sport", "62002", target)
	rb := waitRun(t, b, 20*time.Second)
	if rb.code != 3 || !strings.Contains(rb.stderr, "62002 is in use") || strings.Count(strings.TrimSpace(rb.stderr), "\n") != 0 {
		t.Errorf("second send on a held port: exit %d, stderr %q; want 3 and one line saying the port is in use", rb.code, rb.stderr)
	}
	ra := waitRun(t, a, 20*time.Second)
	// Every probe reuses the 4-tuple with a fresh ISN, so the target
	// answers the later ones with challenge ACKs or not at all: the first
	// send is judged by finishing, not by its answers.
	if ra.code != 0 || !strings.Contains(ra.stdout, "20 probes sent") || strings.Contains(ra.stderr, "in use") {
		t.Errorf("first send: exit %d; stderr:\n%s", ra.code, ra.stderr)
	}
}
