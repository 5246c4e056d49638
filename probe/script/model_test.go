package script

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

// step is one segment for the model: ours (we) or the remote's, in relative
// numbers.
type step struct {
	we       bool
	flags    string
	seq, ack uint32
	n        uint32
	want     result.State // the state after it
}

// TestModel walks the model through the transitions of RFC 9293 §3.3.2
// that scripts produce, and through segments that must not move it.
func TestModel(t *testing.T) {
	const (
		S  = "S"
		SA = "S."
		A  = "."
		FA = "F."
		R  = "R"
		RA = "R."
		PA = "P."
	)
	handshake := []step{
		{we: true, flags: S, want: result.NoState},
		{flags: SA, ack: 1, want: result.SynRcvd},
		{we: true, flags: A, seq: 1, ack: 1, want: result.Established},
	}
	tests := []struct {
		name  string
		dials bool
		steps []step
	}{
		{"closed port", false, []step{{we: true, flags: S, want: result.NoState}, {flags: RA, ack: 1, want: result.Closed}}},
		{"listener resets an ACK: still unknown", false, []step{{we: true, flags: A, ack: 1000, want: result.NoState}, {flags: R, seq: 1000, want: result.NoState}}},
		{"bad ACK in SYN_RCVD keeps the state", false, []step{
			{we: true, flags: S}, {flags: SA, ack: 1, want: result.SynRcvd},
			{we: true, flags: A, seq: 1, ack: 5, want: result.SynRcvd}, {flags: R, seq: 5, want: result.SynRcvd}}},
		{"passive close", false, append(append([]step{}, handshake...),
			step{we: true, flags: FA, seq: 1, ack: 1, want: result.CloseWait},
			step{flags: A, seq: 1, ack: 2, want: result.CloseWait},
			step{flags: FA, seq: 1, ack: 2, want: result.LastAck},
			step{we: true, flags: A, seq: 2, ack: 2, want: result.Closed})},
		{"active close", false, append(append([]step{}, handshake...),
			step{we: true, flags: PA, seq: 1, ack: 1, n: 6, want: result.Established},
			step{flags: FA, seq: 1, ack: 7, want: result.FinWait1},
			step{we: true, flags: A, seq: 7, ack: 1, want: result.FinWait1}, // does not cover its FIN
			step{we: true, flags: A, seq: 7, ack: 2, want: result.FinWait2},
			step{we: true, flags: FA, seq: 7, ack: 2, want: result.TimeWait},
			step{we: true, flags: FA, seq: 7, ack: 2, want: result.TimeWait})}, // retransmitted
		{"simultaneous close", false, append(append([]step{}, handshake...),
			step{flags: FA, seq: 1, ack: 1, want: result.FinWait1},
			step{we: true, flags: FA, seq: 1, ack: 1, want: result.Closing},
			step{we: true, flags: A, seq: 2, ack: 2, want: result.TimeWait})},
		{"FIN,ACK covering its FIN from FIN_WAIT_1", false, append(append([]step{}, handshake...),
			step{flags: FA, seq: 1, ack: 1, want: result.FinWait1},
			step{we: true, flags: FA, seq: 1, ack: 2, want: result.TimeWait})},
		{"exact RST closes, others do not", false, append(append([]step{}, handshake...),
			step{we: true, flags: R, seq: 1001, want: result.Established},
			step{we: true, flags: A, seq: 1, ack: 1000, want: result.Established}, // above SND.NXT
			step{we: true, flags: S, seq: 5000, want: result.Established},
			step{we: true, flags: R, seq: 1, want: result.Closed})},
		{"out-of-order FIN is not taken", false, append(append([]step{}, handshake...),
			step{we: true, flags: FA, seq: 100, ack: 1, want: result.Established})},
		{"TIME_WAIT, then a new SYN", false, append(append([]step{}, handshake...),
			step{flags: FA, seq: 1, ack: 1, want: result.FinWait1},
			step{we: true, flags: FA, seq: 1, ack: 2, want: result.TimeWait},
			step{we: true, flags: S, seq: 100000, want: result.TimeWait},
			step{flags: SA, seq: 65539, ack: 100001, want: result.SynRcvd},
			step{we: true, flags: A, seq: 100001, ack: 65540, want: result.Established})},
		{"remote connects", true, []step{
			{flags: S, want: result.SynSent},
			{we: true, flags: SA, ack: 1, want: result.Established}}},
		{"simultaneous open", true, []step{
			{flags: S, want: result.SynSent},
			{we: true, flags: S, want: result.SynSent},
			{flags: SA, ack: 1, want: result.SynRcvd},
			{we: true, flags: A, seq: 1, ack: 1, want: result.Established}}},
		{"reset of a SYN_SENT", true, []step{
			{flags: S, want: result.SynSent},
			{we: true, flags: RA, ack: 7, want: result.SynSent},
			{we: true, flags: RA, ack: 1, want: result.Closed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(tt.dials)
			for i, s := range tt.steps {
				f, err := craft.ParseFlags(s.flags)
				if s.flags == "." {
					f, err = craft.FlagACK, nil
				}
				if err != nil {
					t.Fatalf("flags %q: %v", s.flags, err)
				}
				if s.we {
					m.weSent(f, s.seq, s.ack, s.n, f.Has(craft.FlagACK) || s.ack != 0)
				} else {
					m.remoteSent(f, s.seq, s.ack, s.n)
				}
				if m.state != s.want {
					t.Fatalf("step %d (%+v): state %q, want %q", i, s, m.state, s.want)
				}
			}
		})
	}
}
