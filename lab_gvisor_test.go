package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// runBinary runs the built tcpwalk with args, bounded to 30 s.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tcpwalkBinary(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run tcpwalk %v: %v", args, err)
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("tcpwalk %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// TestLabUpGVisor: `lab up --stack gvisor` starts a server process whose
// netstack serves the control protocol to a kernel client in the prober
// namespace; `lab status` names the stack; after the server process is
// killed, `lab down` still removes everything: namespaces, TUN device,
// pid file.
func TestLabUpGVisor(t *testing.T) {
	skipUnlessRoot(t)
	prefix := labtest.Prefix(t)
	t.Cleanup(func() {
		if pid, alive := lab.ServerPID(prefix); alive {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.Remove(lab.PIDFile(prefix))
		os.Remove(lab.LogFile(prefix))
		lab.Destroy(prefix)
	})
	if r := runBinary(t, "lab", "up", "--prefix", prefix, "--stack", "gvisor"); r.code != exitOK || !strings.Contains(r.stdout, "stack gVisor netstack") {
		t.Fatalf("lab up --stack gvisor: exit %d, stdout %q; want 0 and the stack named", r.code, r.stdout)
	}
	pid, alive := lab.ServerPID(prefix)
	if !alive {
		t.Fatalf("no server process after lab up (pid file: %d)", pid)
	}
	r := runBinary(t, "lab", "status", "--prefix", prefix)
	for _, want := range []string{"stack   gvisor", lab.TUNName(prefix) + " (netstack)", "servers pid " + strconv.Itoa(pid), "not visible"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lab status lacks %q", want)
		}
	}

	l, err := lab.Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	// The served lab is dual-stack: the control port answers on both
	// target addresses.
	for _, a := range []netip.Addr{l.TargetAddr, l.TargetAddr6} {
		var c net.Conn
		err = l.Prober.Do(func() error {
			var err error
			// A first IPv6 packet may wait for a lost neighbour
			// solicitation's retransmission (1 s, RFC 4861 §10).
			d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1}
			c, err = d.Dial("tcp", netip.AddrPortFrom(a, lab.PortControl).String())
			return err
		})
		if err != nil {
			l.Release()
			t.Fatalf("dial the control port at %s from the prober: %v", a, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("echo hi\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != "hi\n" {
			t.Errorf("control port at %s answered %q, %v; want %q", a, line, err, "hi\n")
		}
	}
	l.Release()
	if !strings.Contains(r.stdout, lab.DefaultTargetAddr6.Addr().String()) {
		t.Errorf("lab status does not show the IPv6 target address: %s", r.stdout)
	}

	// A killed server leaves the persistent TUN device and the namespaces.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if r := runBinary(t, "lab", "down", "--prefix", prefix); r.code != exitOK {
		t.Fatalf("lab down after a killed server: exit %d", r.code)
	}
	pns, tns, _, _ := lab.Names(prefix)
	for _, n := range []string{pns, tns} {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); !os.IsNotExist(err) {
			t.Errorf("after lab down, %s: %v", n, err)
		}
	}
	if _, err := os.Stat(lab.PIDFile(prefix)); !os.IsNotExist(err) {
		t.Errorf("after lab down, pid file: %v", err)
	}
	if left := lab.Leftovers(prefix); len(left) > 0 {
		t.Errorf("after lab down, left: %v", left)
	}
}

// TestGVisorLabHasNoOracle: against a gvisor lab, walks read no kernel
// states (sock_diag cannot see netstack's sockets, and the empty kernel
// would say CLOSED), say so, and refuse --oracle-netns on its target.
func TestGVisorLabHasNoOracle(t *testing.T) {
	l := labtest.NewStack(t, lab.StackGVisor)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortClosed).String()
	r := runApp(t, "--netns", l.Prober.Name, "walk", "closed-port", "--json", target)
	if r.code != exitOK {
		t.Fatalf("walk closed-port against netstack: exit %d, want 0", r.code)
	}
	if !strings.Contains(r.stderr, "no kernel-state oracle") {
		t.Errorf("stderr does not say there is no oracle: %q", r.stderr)
	}
	walks := 0
	for _, line := range lines(r.stdout) {
		var ev struct {
			Event   string `json:"event"`
			Verdict string `json:"verdict"`
			Oracle  *bool  `json:"oracle"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Event != "walk" {
			continue
		}
		walks++
		if ev.Oracle == nil || *ev.Oracle {
			t.Errorf("walk result oracle = %v, want false", ev.Oracle)
		}
		if ev.Verdict != "pass" {
			t.Errorf("closed-port against netstack: %s, want pass", ev.Verdict)
		}
	}
	if walks != 1 {
		t.Errorf("%d walk results, want 1", walks)
	}
	r = runApp(t, "--netns", l.Prober.Name, "walk", "closed-port", "--oracle-netns", l.Target.Name, target)
	if r.code != exitUsage || !strings.Contains(r.stderr, "netstack") {
		t.Errorf("--oracle-netns on a gvisor target: exit %d, stderr %q; want %d saying why", r.code, r.stderr, exitUsage)
	}
}
