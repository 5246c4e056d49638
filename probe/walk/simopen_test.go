package walk_test

import (
	"context"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestSimultaneousOpenSynAckLost: the remote's SYN,ACK of a simultaneous
// open is lost, and so are its next two copies. Our SYN sent again draws a
// challenge ACK (RFC 5961 §4): the remote is in SYN_RCVD already, and its
// SYN,ACK comes again by its retransmission timer; the copy that gets
// through comes about 2 s after our SYN on Linux, just past our tries'
// 2 s. The walk waits for it (Want.RetryWait) instead of ending
// inconclusive, as it did under loss.
func TestSimultaneousOpenSynAckLost(t *testing.T) {
	l := labtest.New(t)
	const port = 62224
	p := portProber(t, l, port)
	cfg := walk.Config{Prober: p, Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober}, Oracle: walk.SockDiag{NS: l.Target}}
	labtest.DropFirst(t, l, port, 0x12, 3) // the simultaneous open's SYN,ACK, twice again
	sc, _ := walk.Lookup("syn-sent")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := walk.Run(ctx, cfg, []walk.Scenario{sc})
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	r := res[0]
	challenged := false
	for _, s := range r.Segments {
		t.Logf("%s %s %s seq %d ack %d %s", s.At.Format("15:04:05.000"), s.Dir, s.Flags, s.RelSeq, s.RelAck, s.Note)
		challenged = challenged || s.Dir == walk.In && s.Flags == craft.FlagACK && s.RelSeq == 1 && s.RelAck == 1
	}
	for _, c := range r.Checks {
		t.Logf("%s: %s (%s) got %s", c.Name, c.Verdict, c.Reason, c.Received)
	}
	if r.Verdict != walk.Pass {
		t.Errorf("syn-sent with its first SYN,ACK lost: %s (%s), want pass", r.Verdict, r.Reason)
	}
	if !challenged {
		t.Errorf("no challenge ACK <SEQ=ISS+1><ACK=x+1> came: the SYN,ACK was not lost as the test meant")
	}
}
