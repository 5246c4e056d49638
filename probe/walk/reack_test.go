package walk_test

import (
	"context"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestDataAckedAgain: with AutoAckData, a retransmission of data we have
// (our ACK of it was lost) draws our ACK of RCV.NXT again (RFC 9293
// §3.10.7.4), and the remote stops retransmitting. Unacknowledged, Linux
// keeps retransmitting with cwnd 1 and holds back its FIN behind the data,
// which ended passive and active closes under loss inconclusive.
//
// The lost ACK is made by not acknowledging the lab echo server's answer
// at first (AutoAckData off), so that the kernel retransmits it.
func TestDataAckedAgain(t *testing.T) {
	cfg, _ := labWalk(t)
	s, res := walk.NewSession(cfg, "reack", 0, lab.PortEcho)
	if s == nil {
		t.Fatalf("session: %s", res.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	defer func() { s.Finish(err) }()
	if err = s.Open(ctx); err != nil {
		t.Fatalf("handshake with the echo server: %v", err)
	}
	c := s.Conn()
	if err = c.SendNext(craft.FlagPSH|craft.FlagACK, []byte("hello\n"), "data"); err != nil {
		t.Fatal(err)
	}
	// nextData waits for the echo's data, new or retransmitted.
	nextData := func(retransmission bool, wait time.Duration) *walk.Reply {
		deadline := time.Now().Add(wait)
		for {
			r, err := c.Next(ctx, deadline)
			if err != nil {
				return nil
			}
			if r.Seg != nil && r.Seg.Dir == walk.In && r.Seg.Len > 0 && r.Seg.Retransmission == retransmission {
				return r
			}
		}
	}
	if nextData(false, 2*time.Second) == nil {
		t.Fatal("the echo server did not answer")
	}
	if nextData(true, 3*time.Second) == nil {
		t.Fatal("the unacknowledged echo was not retransmitted")
	}
	c.AutoAckData = true
	rx := nextData(true, 5*time.Second)
	if rx == nil {
		t.Fatal("no retransmission after the first")
	}
	acked := false
	for _, seg := range s.Segments() {
		if seg.Dir == walk.Out && !seg.At.Before(rx.Seg.At) && seg.Flags == craft.FlagACK && seg.Ack == c.RcvNxt && seg.Note == "ack data again" {
			acked = true
		}
	}
	if !acked {
		t.Fatalf("no ACK of RCV.NXT %d after the retransmission at %s: %+v", c.RcvNxt, rx.Seg.At.Format("15:04:05.000"), s.Segments())
	}
	// Its next retransmission would come one backed-off RTO (≥ 400 ms on
	// the lab) later; acknowledged, none comes.
	if again := nextData(true, 2*time.Second); again != nil {
		t.Errorf("retransmitted again at %s after our ACK", again.Seg.At.Format("15:04:05.000"))
	}
}
