package walk_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestDialTriggerWait: with --dial-trigger wait:PORT, syn-sent waits for
// the remote to connect to our PORT by the user's doing (here a kernel
// socket in the target namespace, as curl or nc would), then walks SYN_SENT
// as with the lab's client.
func TestDialTriggerWait(t *testing.T) {
	cfg, l := labWalk(t)
	cfg.Trigger, cfg.Oracle = nil, nil // not the lab's: the user acts
	const port = 61777
	notified := make(chan netip.AddrPort, 1)
	cfg.Dialer = &walk.WaitDialer{Port: port, Timeout: 10 * time.Second, Notify: func(local netip.AddrPort, _ time.Duration) { notified <- local }}
	go func() {
		local := <-notified
		_ = l.Target.Do(func() error {
			c, err := net.DialTimeout("tcp4", local.String(), 8*time.Second)
			if err == nil {
				c.Close()
			}
			return nil
		})
	}()
	s, _ := walk.Lookup("syn-sent")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	for _, c := range r.Checks {
		t.Logf("%-44s %-12s exp=%s got=%s %s", c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
	}
	if r.Verdict != walk.Pass || r.Local.Port() != port {
		t.Errorf("syn-sent with wait:%d: %s (%s) from %v, want pass on our port %d", port, r.Verdict, r.Reason, r.Local, port)
	}
}

// TestDialTriggerSend: --dial-trigger send:RPORT:PORT:TEXT sends TEXT to a
// server that connects back to the port it names (as an FTP server does
// after PORT), and syn-sent walks that connection.
func TestDialTriggerSend(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("socat is not installed (.ci/run installs it): %v", err)
		}
		t.Skipf("socat: %v", err)
	}
	cfg, l := labWalk(t)
	cfg.Trigger, cfg.Oracle = nil, nil
	// Reads a port, connects back to it from the target (a script: socat
	// takes commas and colons in an address as its own).
	sh := filepath.Join(t.TempDir(), "back.sh")
	src := fmt.Sprintf("read p\nexec socat -u /dev/null TCP4:%s:$p,connect-timeout=8\n", l.ProberAddr)
	if err := os.WriteFile(sh, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+l.Target.Path(), "--", "socat", "TCP-LISTEN:8021,reuseaddr,fork,backlog=5", "EXEC:/bin/sh "+sh)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(300 * time.Millisecond) // socat listening
	const port = 61778
	d, err := walk.ParseDialTrigger(fmt.Sprintf(`send:8021:%d:%d\n`, port, port), nil, l.TargetAddr, l.Prober)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dialer = d
	s, _ := walk.Lookup("syn-sent")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	for _, c := range r.Checks {
		t.Logf("%-44s %-12s exp=%s got=%s %s", c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
	}
	if r.Verdict != walk.Pass {
		t.Errorf("syn-sent with send: %s (%s), want pass", r.Verdict, r.Reason)
	}
}

func TestParseDialTrigger(t *testing.T) {
	for _, bad := range []string{"wait:", "wait:0", "wait:70000", "wait:61000:-1", "send:21:61000", "send:x:61000:T", "dial", "lab"} {
		if _, err := walk.ParseDialTrigger(bad, nil, netip.MustParseAddr("198.18.0.2"), nil); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
	d, err := walk.ParseDialTrigger("wait:61001:5", nil, netip.Addr{}, nil)
	if err != nil || d.LocalPort() != 61001 || d.Wait() != 5*time.Second {
		t.Errorf("wait:61001:5: %v %v", d, err)
	}
}
