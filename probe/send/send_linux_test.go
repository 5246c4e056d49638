package send_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// TestFixedPortTidy: with --sport fixed, every probe is a SYN on the same
// 4-tuple with its own random ISN. The SYN,ACK answers one of them, the
// engine takes it as the connection's, and its tidy resets that
// half-open connection: the target holds no socket for us afterwards.
func TestFixedPortTidy(t *testing.T) {
	l := labtest.New(t)
	const port = 61234
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, LocalLo: port, LocalHi: port,
		Warn: func(m string) { t.Logf("warning: %s", m) }})
	labtest.SkipUnlessPermitted(t, err)
	defer p.Close()
	var (
		mu      sync.Mutex
		replies []send.Reply
	)
	spec := send.Spec{Target: netip.AddrPortFrom(l.TargetAddr, lab.PortHold), Flags: craft.FlagSYN, SrcPort: port,
		Count: 2, Interval: 50 * time.Millisecond, Wait: 300 * time.Millisecond}
	res, err := send.Run(context.Background(), p, spec, send.Observer{
		Reply: func(r send.Reply) { mu.Lock(); replies = append(replies, r); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	synAcks := 0
	for _, r := range replies {
		if r.Flags == craft.FlagSYN|craft.FlagACK {
			synAcks++
		}
	}
	mu.Unlock()
	if res.Sent != 2 || synAcks == 0 {
		t.Fatalf("sent %d, %d SYN,ACKs among %+v; want 2 and at least one", res.Sent, synAcks, replies)
	}
	local := netip.AddrPortFrom(l.ProberAddr, port)
	remote := netip.AddrPortFrom(l.TargetAddr, lab.PortHold)
	deadline := time.Now().Add(time.Second)
	for {
		s, ok, err := sockdiag.Lookup(l.Target, remote, local)
		if err != nil {
			t.Fatalf("sockdiag: %v", err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target still holds %s for %s after the run: the tidy did not reset it", s.State, local)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
