package tcpconn

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

// receive hands the recorder one remote segment as the wire would carry it.
func receive(t *testing.T, r *Recorder, s craft.Segment) *Segment {
	t.Helper()
	s.Src, s.Dst = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")
	s.SrcPort, s.DstPort = 7010, 61000
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := craft.ParsePacket(b[:n])
	if err != nil {
		t.Fatal(err)
	}
	return r.Received(time.Now(), &p, b[:n])
}

// TestRecorderSimultaneousOpen: in a simultaneous open the remote's SYN,ACK
// repeats its SYN's ISN but brings the ACK of ours (RFC 9293 §3.5 figure 8):
// a transition, not a retransmission; the same SYN,ACK again is one. A
// segment without ACK gets no rel_ack: its acknowledgment field means
// nothing (RFC 9293 §3.1).
func TestRecorderSimultaneousOpen(t *testing.T) {
	r := NewRecorder(result.SynSent, result.SynSent)
	r.conn = &Conn{TCB: TCB{ISS: 1000, IRS: 5000, HaveIRS: true}}
	const irs = 5000
	syn := receive(t, r, craft.Segment{Seq: irs, Ack: 4242, Flags: craft.FlagSYN})
	if syn.Retransmission {
		t.Error("the remote's first SYN marked a retransmission")
	}
	if syn.RelAck != 0 {
		t.Errorf("SYN without ACK: rel_ack %d, want 0", syn.RelAck)
	}
	sa := receive(t, r, craft.Segment{Seq: irs, Ack: 1001, Flags: craft.FlagSYN | craft.FlagACK})
	if sa.Retransmission || sa.Note != "" {
		t.Errorf("the first SYN,ACK after the SYN: retransmission %v, note %q; want neither", sa.Retransmission, sa.Note)
	}
	if sa.RelAck != 1 {
		t.Errorf("SYN,ACK rel_ack %d, want 1", sa.RelAck)
	}
	if again := receive(t, r, craft.Segment{Seq: irs, Ack: 1001, Flags: craft.FlagSYN | craft.FlagACK, Window: 1}); !again.Retransmission {
		t.Error("the second SYN,ACK is not marked a retransmission")
	}
	if rst := receive(t, r, craft.Segment{Seq: irs + 1, Ack: 99, Flags: craft.FlagRST}); rst.RelAck != 0 {
		t.Errorf("RST without ACK: rel_ack %d, want 0", rst.RelAck)
	}
}
