package walk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/hostilepeer"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// rfcStackPort is where the RFCStack peer answers: nothing listens there.
const rfcStackPort = 7078

// startRFCStack starts a hostilepeer.RFCStack on a fresh lab's target (no
// RFC 5961, MSS only, a 3 s RTO, the ACK of our FIN on its own FIN) and
// returns a walk config for it. There is no oracle: the peer is not the
// target's kernel.
func startRFCStack(t *testing.T, rto time.Duration) (walk.Config, *lab.Lab) {
	t.Helper()
	l := labtest.New(t)
	peer, err := hostilepeer.Start(hostilepeer.Config{NS: l.Target, Ifname: l.TargetIf, Addr: l.TargetAddr, Port: rfcStackPort,
		Behaviour: hostilepeer.RFCStack, Interval: rto})
	if err != nil {
		t.Fatalf("hostilepeer.Start: %v", err)
	}
	t.Cleanup(func() { peer.Close() })
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return walk.Config{Prober: p, Port: rfcStackPort, ClosedPort: lab.PortClosed}, l
}

// TestWalksAgainstAnRFCStack walks a stack that makes the RFC's other
// choices. Each of these walks was judged from a Linux habit before, and
// came out inconclusive or failed on this stack:
//   - handshake: ESTABLISHED was confirmed by RFC 5961's challenge ACK to an
//     ACK 2^30 old (optional; this stack ignores it, as RFC 9293 allows);
//   - syn-rcvd: its SYN,ACK comes again after 3 s (RFC 1122), not 1 s;
//   - passive-close: the ACK of our FIN rides on its FIN.
func TestWalksAgainstAnRFCStack(t *testing.T) {
	cfg, _ := startRFCStack(t, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var scen []walk.Scenario
	for _, name := range []string{"closed-port", "handshake", "syn-rcvd", "passive-close", "reset"} {
		s, _ := walk.Lookup(name)
		scen = append(scen, s)
	}
	results := walk.Run(ctx, cfg, scen)
	if len(results) != len(scen) {
		t.Fatalf("%d results for %d walks", len(results), len(scen))
	}
	for _, r := range results {
		t.Logf("%s: %s %s", r.Scenario, r.Verdict, r.Reason)
		for _, c := range r.Checks {
			t.Logf("%-14s %-50s %-12s wire=%-12s exp=%s got=%s %s", r.Scenario, c.Name, c.Verdict, c.Wire, c.Expected, c.Received, c.Reason)
		}
		if r.Verdict != walk.Pass {
			t.Errorf("%s: verdict %s (%s), want pass: the stack follows RFC 9293", r.Scenario, r.Verdict, r.Reason)
			for _, s := range r.Segments {
				t.Logf("   %s %s %-3s seq=%d ack=%d len=%d %s", s.At.Format("15:04:05.000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Len, s.Note)
			}
		}
	}
}

// TestClosedPortNeverJudgesAnOpenPort: without --closed-port and outside
// the lab, closed-port finds a port that answers RST (the walked port is
// open); given an open port as --closed-port, it says so, judges nothing
// and resets the connection it opened.
func TestClosedPortNeverJudgesAnOpenPort(t *testing.T) {
	cfg, _ := startRFCStack(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := walk.Lookup("closed-port")
	cfg.ClosedPort = 0
	r := walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	if r.Verdict != walk.Pass || r.Target.Port() != rfcStackPort+1 {
		t.Errorf("found port %d: %s (%s), want a pass on %d, after the open %d", r.Target.Port(), r.Verdict, r.Reason, rfcStackPort+1, rfcStackPort)
	}
	cfg.ClosedPort = rfcStackPort
	r = walk.Run(ctx, cfg, []walk.Scenario{s})[0]
	if r.Verdict != walk.Inconclusive || len(r.Checks) == 0 || !strings.Contains(r.Checks[0].Reason, "open, not closed") {
		t.Fatalf("open port as closed: %s (%+v), want inconclusive, the port named open", r.Verdict, r.Checks)
	}
	var reset bool
	for _, seg := range r.Segments {
		reset = reset || seg.Dir == walk.Out && seg.Flags == craft.FlagRST
	}
	if !reset {
		t.Errorf("the half-open connection was not reset: %+v", r.Segments)
	}
}
