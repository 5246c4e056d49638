package conform_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// startServer runs argv in l's target namespace (nsenter) and waits until
// port accepts a connection from the prober's namespace; the process is
// killed at cleanup. Without the program (socat, python3) the test skips
// locally and fails under CI=true (.ci/run installs them).
func startServer(t *testing.T, l *lab.Lab, port uint16, argv ...string) {
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", argv[0], err)
		}
		t.Skipf("%s is not installed: %v", argv[0], err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + l.Target.Path(), "--"}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort(l.TargetAddr.String(), fmt.Sprint(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		var c net.Conn
		err := l.Prober.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp", addr, 200*time.Millisecond)
			return err
		})
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v does not accept on %s: %v (stderr: %s)", argv, addr, err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConformAgainstSmallServers runs conform against Python's http.server
// and a socat echo server, both with a listen backlog of 5, as a user
// would: no oracle, no lab trigger. With at most --parallel (4) connections
// in the handshake, neither listener overflows, so no SYN cookie makes a
// connection and nothing is judged on one: no check fails and none is
// inconclusive (those whose state the app cannot be held in are skipped).
func TestConformAgainstSmallServers(t *testing.T) {
	l := labtest.NewBare(t)
	startServer(t, l, 8000, "python3", "-m", "http.server", "8000", "--bind", l.TargetAddr.String())
	startServer(t, l, 8001, "socat", "TCP-LISTEN:8001,backlog=5,reuseaddr,fork", "EXEC:cat")
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	for _, tc := range []struct {
		name    string
		port    uint16
		trigger string
	}{
		{"python http.server", 8000, "http"},
		{"socat echo", 8001, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trig, err := walk.ParseTrigger(tc.trigger, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rep, err := conform.Run(ctx, conform.Config{Walk: walk.Config{Prober: p, Port: tc.port, Trigger: trig}})
			if err != nil {
				t.Fatal(err)
			}
			n := rep.Counts()
			t.Logf("%s: %d pass, %d deviation, %d fail, %d inconclusive, %d skipped in %v; notes %q",
				tc.name, n.Pass, n.Deviation, n.Fail, n.Inconclusive, n.Skipped, rep.Duration, rep.Notes)
			for _, r := range rep.Results {
				if r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive {
					t.Errorf("%s: %s (%s)", r.Scenario, r.Verdict, r.Reason)
					logResult(t, r)
				}
			}
			for _, m := range rep.Measurements {
				t.Logf("%-28s ok=%v %s", m.ID, m.OK, m.Value)
			}
			// The gate keeps the backlog from overflowing: no SYN went
			// unanswered (the kernel's TcpExtListenOverflows stayed 0
			// when this was written), and no cookie was sent.
			for _, n := range rep.Notes {
				t.Errorf("noticed: %s", n)
			}
		})
	}
}
