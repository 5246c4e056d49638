package script_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/hostilepeer"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

const hostilePort = 7077

// TestHostilePeersNeverPass: what the runner does for a lossy path (our
// segment again, a remote's retransmission passed over) must not let a
// wrong peer pass, on a clean path or on one said to be lossy. A SYN,ACK
// acknowledging more than our SYN fails on both; a peer that retransmits
// its SYN,ACK however often we acknowledge it (it ignores our ACKs) is
// answered a few times, then fails on a clean path and is inconclusive on
// a lossy one.
func TestHostilePeersNeverPass(t *testing.T) {
	const hs = "%port 7077\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <...>\n"
	tests := []struct {
		name      string
		behaviour hostilepeer.Behaviour
		src       string
		clean     walk.Verdict // on a clean path
		lossy     walk.Verdict // told the path is lossy
		reason    string       // a part of the clean path's Reason
	}{
		{"wrong ack", hostilepeer.WrongAck, hs, walk.Fail, walk.Fail, "ack 1001, want 1"},
		{"ignores our ACK", hostilepeer.Retransmit, hs + "+0 < . 1:1(0) ack 1 win 65535\n%wait 3\n", walk.Fail, walk.Inconclusive, "unexpected segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := labtest.New(t)
			peer, err := hostilepeer.Start(hostilepeer.Config{NS: l.Target, Ifname: l.TargetIf, Addr: l.TargetAddr, Port: hostilePort,
				Behaviour: tt.behaviour, Count: 12, Interval: 200 * time.Millisecond})
			if err != nil {
				t.Fatalf("hostilepeer.Start: %v", err)
			}
			t.Cleanup(func() { peer.Close() })
			p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober})
			if err != nil {
				t.Fatalf("probe.Open: %v", err)
			}
			t.Cleanup(func() { p.Close() })
			s, err := script.Parse(tt.name, []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, lossy := range []bool{false, true} {
				r := script.Run(ctx, script.Config{Prober: p, Slack: 100 * time.Millisecond, Lossy: lossy}, s)
				want := tt.clean
				if lossy {
					want = tt.lossy
				}
				if r.Verdict != want || !lossy && !strings.Contains(r.Reason, tt.reason) {
					logResult(t, r)
					t.Errorf("lossy=%v: %s (%s), want %s", lossy, r.Verdict, r.Reason, want)
				}
			}
		})
	}
}
