package probe_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// tcpwalkProc is a tcpwalk subprocess whose stdout lines arrive on lines.
type tcpwalkProc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{} // closed when stdout ends
}

// startSend runs `tcpwalk --netns <prober> send --flags S -c 200 --interval
// 50ms <target>:7001` (about 10 s of probing) to the lab target's IPv4
// address, and kills it at cleanup if the test has not.
func startSend(t *testing.T, l *lab.Lab) *tcpwalkProc {
	t.Helper()
	return startSendTo(t, l, l.TargetAddr)
}

// startSendTo is startSend to the target address addr (IPv4 or IPv6).
func startSendTo(t *testing.T, l *lab.Lab, addr netip.Addr) *tcpwalkProc {
	t.Helper()
	bin := tcpwalkBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	target := netip.AddrPortFrom(addr, lab.PortHold).String()
	cmd := exec.CommandContext(ctx, bin, "--netns", l.Prober.Name, "send", "--flags", "S", "-c", "200", "--interval", "50ms", target)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &tcpwalkProc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads any more
			}
		}
		io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		cmd.Wait()
		cancel()
		if s := stderr.String(); s != "" {
			t.Logf("tcpwalk stderr:\n%s", s)
		}
	})
	return p
}

// waitLine returns the first stdout line containing s, or fails t after d.
func (p *tcpwalkProc) waitLine(t *testing.T, s string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, s) {
				return line
			}
		case <-p.done:
			t.Fatalf("tcpwalk ended before printing %q", s)
		case <-timer.C:
			t.Fatalf("tcpwalk printed no %q within %v", s, d)
		}
	}
}

// rest waits for stdout to end (at most d) and returns the lines not yet read.
func (p *tcpwalkProc) rest(t *testing.T, d time.Duration) []string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("tcpwalk still running %v after the signal", d)
	}
	var out []string
	for {
		select {
		case l := <-p.lines:
			out = append(out, l)
		default:
			return out
		}
	}
}

// tables lists the tcpwalk guard tables in the lab's prober namespace.
func tables(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	names, err := guard.Tables(l.Prober.Fd())
	if err != nil {
		privileged(t, "guard.Tables", err)
	}
	return names
}

// TestSIGKILLLeavesNoTable: the kernel deletes the guard's table when a
// tcpwalk process dies by SIGKILL, since the table is owned by the process's
// netlink socket (NFT_TABLE_F_OWNER); so for a tcpwalk probing over IPv6,
// whose table holds the ip6 rules.
func TestSIGKILLLeavesNoTable(t *testing.T) {
	t.Parallel()
	eachFamily(t, testSIGKILLLeavesNoTable)
}

func testSIGKILLLeavesNoTable(t *testing.T, fam labFamily) {
	l := labtest.New(t)
	p := startSendTo(t, l, fam.target(l))
	if !poll(5*time.Second, func() bool { return len(tables(t, l)) > 0 }) {
		t.Fatal("tcpwalk send made no guard table in the prober namespace within 5 s")
	}
	p.waitLine(t, "Flags [S.]", 5*time.Second) // it is probing, not just starting
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.rest(t, 5*time.Second)
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("tcpwalk ended with %v, want killed by SIGKILL", err)
	}
	if !poll(3*time.Second, func() bool { return len(tables(t, l)) == 0 }) {
		t.Errorf("guard tables left in %s 3 s after SIGKILL: %v", l.Prober.Name, tables(t, l))
	}
}

// TestSIGINTPrintsPartialSummary: SIGINT stops a running send, which prints
// its summary marked partial, removes its guard, and exits with 130.
func TestSIGINTPrintsPartialSummary(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	p := startSend(t, l)
	p.waitLine(t, "Flags [S.]", 5*time.Second)
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	lines := p.rest(t, 5*time.Second)
	p.cmd.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("tcpwalk took %v to stop after SIGINT", d)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit status %d after SIGINT, want 130", code)
	}
	out := strings.Join(lines, "\n")
	var sent, answered int
	found := false
	for _, line := range lines {
		if _, err := fmt.Sscanf(strings.Replace(line, "1 probe sent", "1 probes sent", 1), "%d probes sent, %d answered", &sent, &answered); err == nil {
			found = true
		}
	}
	if !found || !strings.Contains(out, "tcpwalk statistics") {
		t.Fatalf("no summary after SIGINT; the last lines were:\n%s", out)
	}
	if sent < 1 || sent >= 200 || answered < 1 {
		t.Errorf("summary says %d sent, %d answered; want a partial run (1 to 199 sent) with replies", sent, answered)
	}
	if !strings.Contains(out, "interrupted: results above are partial") {
		t.Errorf("summary does not say it is partial:\n%s", out)
	}
	if names := tables(t, l); len(names) != 0 {
		t.Errorf("guard tables left after an interrupted send: %v", names)
	}
}
