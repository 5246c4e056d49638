package script

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// lossRunner is a runner in ESTABLISHED after a handshake and 6 bytes of
// ours (our next sequence number 7, the remote's 1), our last ACK
// acknowledging 1.
func lossRunner() *runner {
	r := &runner{iss: 5000, irs: 9000, haveIRS: true, lastAck: 1, lastAckSent: true,
		m: &model{state: result.Established, ourNext: 7, ourSYN: true, remoteNext: 1, remoteSYN: true}}
	return r
}

// seg is a remote segment in relative numbers.
func (r *runner) seg(f craft.Flags, seq, ack uint32, n int) *in {
	return &in{flags: f, seq: r.irs + seq, ack: r.iss + ack, payload: make([]byte, n)}
}

// TestLossExplains: on a lossy path a different segment, or an ACK short of
// what we sent, may be loss's doing; the line's own segment acknowledging
// more than we sent, or (by the callers) with other options, is not.
func TestLossExplains(t *testing.T) {
	r := lossRunner()
	want := &Segment{Flags: craft.FlagACK, Start: 1, End: 1, Ack: 7, HasAck: true}
	tests := []struct {
		name string
		g    *in
		ok   bool
	}{
		{"other flags (a reset from a state a lost segment left)", r.seg(craft.FlagRST, 1, 0, 0), true},
		{"other sequence number", r.seg(craft.FlagACK, 2, 7, 0), true},
		{"ACK short of our data", r.seg(craft.FlagACK, 1, 1, 0), true},
		{"ACK above what we sent", r.seg(craft.FlagACK, 1, 1007, 0), false},
	}
	for _, tt := range tests {
		if _, ok := r.lossExplains(want, tt.g); ok != tt.ok {
			t.Errorf("%s: lossExplains %v, want %v", tt.name, ok, tt.ok)
		}
	}
	// An ACK short of the line's, when all we sent is acknowledged: the
	// line is wrong, not the path.
	want = &Segment{Flags: craft.FlagACK, Start: 1, End: 1, Ack: 8, HasAck: true}
	if _, ok := r.lossExplains(want, r.seg(craft.FlagACK, 1, 7, 0)); ok {
		t.Errorf("ack 7 of our 7 for a line wanting 8: loss explained it")
	}
}

// TestAcknowledgedAndAckOfOurs: a remote retransmission of what our ACK
// covered tells that our ACK was lost; a bare ACK of no more than we sent
// brings nothing a line waits for, one of more does.
func TestAcknowledgedAndAckOfOurs(t *testing.T) {
	r := lossRunner()
	if !r.acknowledged(r.seg(craft.FlagSYN|craft.FlagACK, 0, 1, 0)) {
		t.Errorf("a SYN,ACK our ACK 1 covers: not acknowledged")
	}
	if r.acknowledged(r.seg(craft.FlagFIN|craft.FlagACK, 1, 7, 0)) {
		t.Errorf("a FIN at 1, our ACK at 1: acknowledged")
	}
	if r.acknowledged(r.seg(craft.FlagACK, 1, 7, 0)) {
		t.Errorf("a bare ACK, which takes no sequence space: acknowledged")
	}
	if !r.ackOfOurs(r.seg(craft.FlagACK, 1, 7, 0)) || !r.ackOfOurs(r.seg(craft.FlagACK, 1, 1, 0)) {
		t.Errorf("a bare ACK of our data (or of less): not passed over")
	}
	if r.ackOfOurs(r.seg(craft.FlagACK, 1, 8, 0)) {
		t.Errorf("a bare ACK of more than we sent: passed over")
	}
	if r.ackOfOurs(r.seg(craft.FlagACK|craft.FlagFIN, 1, 7, 0)) || r.ackOfOurs(r.seg(craft.FlagACK, 1, 7, 3)) {
		t.Errorf("a FIN or data: passed over as a bare ACK")
	}
}

// TestSentIn: a kernel still in a state the wire model left gets our
// segments again from the last one sent in that state; the record keeps
// the latest maxOurs.
func TestSentIn(t *testing.T) {
	r := lossRunner()
	for i, st := range []result.State{result.NoState, result.SynRcvd, result.Established, result.SynRcvd, result.Established} {
		r.keep(&craft.Segment{Seq: r.iss + uint32(i), Flags: craft.FlagACK}, 10+i, st)
	}
	if i := r.sentIn(result.SynRcvd); i != 3 || r.ours[i].line != 13 || r.ours[i].n != 4 {
		t.Errorf("sentIn(SYN_RCVD) = %d, want 3 (line 13, the 4th segment)", i)
	}
	if i := r.sentIn(result.CloseWait); i != -1 {
		t.Errorf("sentIn(CLOSE_WAIT) = %d, want -1", i)
	}
	for i := range 2 * maxOurs {
		r.keep(&craft.Segment{Seq: r.iss + uint32(i), Flags: craft.FlagACK}, 100+i, result.Established)
	}
	if len(r.ours) != maxOurs || len(r.unconfirmed) != maxUnconfirmed || r.ours[maxOurs-1].line != 100+2*maxOurs-1 {
		t.Errorf("after %d more: %d kept, %d unconfirmed, last line %d; want %d, %d, %d", 2*maxOurs, len(r.ours), len(r.unconfirmed),
			r.ours[len(r.ours)-1].line, maxOurs, maxUnconfirmed, 100+2*maxOurs-1)
	}
	r.noteState()
	r.m.state = result.CloseWait
	r.noteState()
	if !r.wasState(result.Established) || !r.wasState(result.CloseWait) || r.wasState(result.LastAck) {
		t.Errorf("history %v: want ESTABLISHED and CLOSE_WAIT in it, LAST_ACK not", r.history)
	}
}

// TestUnseen: a FIN the remote's later segments are past, that never came,
// is waited for (its retransmission), not answered with ours again; one
// that came, or a SYN, a bare ACK or a FIN not yet sent, is not.
func TestUnseen(t *testing.T) {
	r := lossRunner()
	r.seen = map[[2]uint32]bool{}
	fin := &Segment{Flags: craft.FlagFIN | craft.FlagACK, Start: 1, End: 1, Ack: 7, HasAck: true}
	if r.unseen(fin) {
		t.Errorf("a FIN at the remote's next sequence number (not sent yet): unseen")
	}
	r.m.remoteNext = 2 // an ACK at 2 came: the FIN at 1 was sent
	if !r.unseen(fin) {
		t.Errorf("a FIN the remote's next sequence number is past, never seen: not unseen")
	}
	r.seen[[2]uint32{uint32(fin.Flags), 1}] = true
	if r.unseen(fin) {
		t.Errorf("a FIN that came: unseen")
	}
	if r.unseen(&Segment{Flags: craft.FlagACK, Start: 1, End: 1}) || r.unseen(&Segment{Flags: craft.FlagSYN | craft.FlagACK}) {
		t.Errorf("a bare ACK or a SYN: unseen")
	}
}

// TestSYNAgainKeepsTheModel: a retransmitted SYN,ACK that comes after our
// data and FIN does not put the model back to a new connection (our next
// sequence number 1), which made a later ACK of our FIN look like an ACK
// of more than we sent.
func TestSYNAgainKeepsTheModel(t *testing.T) {
	r := lossRunner()
	r.c = nil
	r.seen = map[[2]uint32]bool{}
	r.m.ourNext, r.m.ourFIN, r.m.ourFINSeq, r.m.state = 8, true, 7, result.CloseWait
	g := r.seg(craft.FlagSYN|craft.FlagACK, 0, 1, 0)
	g.retrans, g.seg = true, &walk.Segment{}
	r.observeModel(g)
	if r.m.ourNext != 8 || r.m.state != result.CloseWait || !r.m.ourFIN {
		t.Errorf("after a SYN,ACK again: ourNext %d, state %s, ourFIN %v; want 8, CLOSE_WAIT, true", r.m.ourNext, r.m.state, r.m.ourFIN)
	}
}
