package walk_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestWaitTriggerServerClosesAt50ms: a server that closes 50 ms after it
// accepts (socat running `sleep 0.05`) sends its FIN,ACK while the
// handshake may still be being confirmed. That FIN, with exactly the
// expected SEQ and ACK, shows the connection ESTABLISHED (an app holds no
// socket before), so the confirmation takes it as its answer, not as a
// wrong one (the old confirmation wanted a bare ACK and failed on it), and
// the walk passes whichever comes first.
func TestWaitTriggerServerClosesAt50ms(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("socat is not installed (.ci/run installs it): %v", err)
		}
		t.Skipf("socat: %v", err)
	}
	l := labtest.NewBare(t)
	cmd := exec.Command("nsenter", "--net="+l.Target.Path(), "--", "socat", "TCP-LISTEN:8002,fork,reuseaddr,backlog=5", "SYSTEM:sleep 0.05")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort(l.TargetAddr.String(), fmt.Sprint(8002))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := l.Prober.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat does not accept on %s: %v", addr, err)
		}
	}
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	trig, _ := walk.ParseTrigger("wait", nil)
	s, _ := walk.Lookup("active-close")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A few times: the FIN comes before, during or after the confirmation.
	for i := range 3 {
		r := walk.Run(ctx, walk.Config{Prober: p, Port: 8002, Trigger: trig}, []walk.Scenario{s})[0]
		for _, c := range r.Checks {
			t.Logf("%d %-44s %-12s exp=%s got=%s %s", i, c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
		}
		if r.Verdict != walk.Pass {
			t.Errorf("run %d: %s (%s), want pass", i, r.Verdict, r.Reason)
		}
	}
}
