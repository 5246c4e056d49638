package walk_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

func TestParseDialTrigger(t *testing.T) {
	remote := netip.MustParseAddr("198.18.0.2")
	lab := &walk.LabTarget{Addr: remote}
	for _, tc := range []struct {
		in, name, err string
		port          uint16
		wait          time.Duration
	}{
		{in: "lab", name: "lab"},
		{in: "wait:8000", name: "wait:8000", port: 8000, wait: walk.DefaultDialWait},
		{in: "wait:8000:90s", name: "wait:8000", port: 8000, wait: 90 * time.Second},
		{in: "connect-back:21:PORT {ftp}\\r\\n", name: "connect-back:21", wait: 10 * time.Second},
		{in: "wait:", err: `want a port from 1 to 65535, got ""`},
		{in: "wait:0", err: "want a port from 1 to 65535"},
		{in: "wait:70000", err: "want a port from 1 to 65535"},
		{in: "wait:8000:90", err: "with a unit"},
		{in: "wait:8000:1h", err: "want a wait from 1s to 10m0s"},
		{in: "connect-back:21", err: "want connect-back:PORT:TEXT"},
		{in: "connect-back:21:", err: "want connect-back:PORT:TEXT"},
		{in: "lab:x", err: "lab takes nothing after it"},
		{in: "curl", err: "unknown --dial-trigger"},
	} {
		d, err := walk.ParseDialTrigger(tc.in, lab, remote, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: error %v, want one line with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d.Name() != tc.name || d.Port() != tc.port || (tc.wait != 0 && d.Wait() != tc.wait) {
			t.Errorf("%q: name %q port %d wait %v, want %q %d %v", tc.in, d.Name(), d.Port(), d.Wait(), tc.name, tc.port, tc.wait)
		}
	}
	if _, err := walk.ParseDialTrigger("lab", nil, remote, nil); err == nil {
		t.Error("lab without the lab's target: no error")
	}
}

// synSentOK checks a syn-sent walk that a dial trigger other than the lab's
// client made possible: it passed, and the kernel saw its client in
// SYN_SENT when the wire did.
func synSentOK(t *testing.T, r walk.Result) {
	t.Helper()
	for _, c := range r.Checks {
		t.Logf("%-45s %-12s wire=%-10s kernel=%-10s got=%s %s", c.Name, c.Verdict, c.Wire, c.Kernel, c.Received, c.Reason)
	}
	if r.Verdict != walk.Pass {
		t.Fatalf("syn-sent: %s (%s)", r.Verdict, r.Reason)
	}
	for _, c := range r.Checks {
		if c.Wire == result.SynSent && c.Kernel != result.SynSent {
			t.Errorf("%s: wire SYN_SENT, kernel %s", c.Name, c.Kernel)
		}
	}
}

// connectFromTarget connects from the target's namespace to addr after
// delay, as a user's client would, and gives up after 15 s; it returns once
// the attempt ended, which a test waits for before it ends.
func connectFromTarget(t *testing.T, target interface{ Do(func() error) error }, addr netip.AddrPort, delay time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(delay)
		_ = target.Do(func() error {
			d := net.Dialer{Timeout: 15 * time.Second}
			c, err := d.Dial("tcp4", addr.String())
			if err == nil {
				c.Close()
			}
			return nil
		})
	}()
	return done
}

// wait:PORT: the remote connects when the user makes it (here a kernel
// client in the target namespace, not the lab's dialer), to a fixed port
// outside tcpwalk's usual range.
func TestSynSentWaitTrigger(t *testing.T) {
	cfg, l := labWalk(t)
	const port = 40001
	dp, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, LocalLo: port, LocalHi: port,
		Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	cfg.Trigger = nil // not the lab: its client is not asked
	cfg.DialProber = dp
	if cfg.Dial, err = walk.ParseDialTrigger(fmt.Sprintf("wait:%d:10s", port), nil, l.TargetAddr, l.Prober); err != nil {
		t.Fatal(err)
	}
	s, _ := walk.Lookup("syn-sent")
	done := connectFromTarget(t, l.Target, netip.AddrPortFrom(l.ProberAddr, port), 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r := walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	<-done
	if r.Local.Port() != port {
		t.Errorf("the walk listened on %v, want port %d", r.Local, port)
	}
	synSentOK(t, r)
}

// Without a dial trigger (and not against the lab), syn-sent is skipped
// with the way to run it.
func TestSynSentNeedsDialTrigger(t *testing.T) {
	cfg, _ := labWalk(t)
	cfg.Trigger = nil
	s, _ := walk.Lookup("syn-sent")
	r := walk.Run(context.Background(), cfg, []walk.Scenario{s})[0]
	if r.Verdict != walk.Skipped || !strings.Contains(r.Reason, "--dial-trigger wait:PORT") {
		t.Errorf("syn-sent without a dial trigger: %s (%s), want skipped naming --dial-trigger", r.Verdict, r.Reason)
	}
}

// connect-back: a server that connects back to the address and port it is
// told (FTP's active mode: PORT h1,h2,h3,h4,p1,p2, RFC 959 §4.1.2).
func TestSynSentConnectBack(t *testing.T) {
	cfg, l := labWalk(t)
	const ctlPort = 2121
	var ln net.Listener
	if err := l.Target.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.TargetAddr, ctlPort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		var h [4]int
		var p1, p2 int
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "PORT %d,%d,%d,%d,%d,%d", &h[0], &h[1], &h[2], &h[3], &p1, &p2); err != nil {
			served <- fmt.Sprintf("bad line %q", line)
			return
		}
		served <- strings.TrimSpace(line)
		back := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(h[0]), byte(h[1]), byte(h[2]), byte(h[3])}), uint16(p1<<8|p2))
		<-connectFromTarget(t, l.Target, back, 0)
	}()
	cfg.Trigger = nil
	var err error
	if cfg.Dial, err = walk.ParseDialTrigger(fmt.Sprintf(`connect-back:%d:PORT {ftp}\r\n`, ctlPort), nil, l.TargetAddr, l.Prober); err != nil {
		t.Fatal(err)
	}
	s, _ := walk.Lookup("syn-sent")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r := walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	line := <-served
	a := l.ProberAddr.As4()
	want := fmt.Sprintf("PORT %d,%d,%d,%d,%d,%d", a[0], a[1], a[2], a[3], r.Local.Port()>>8, r.Local.Port()&0xff)
	if line != want {
		t.Errorf("the server got %q, want %q (our address and listening port)", line, want)
	}
	synSentOK(t, r)
}
