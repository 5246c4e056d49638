package script

import (
	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/result"
)

// model infers the remote's state from the segments of one script, the way
// RFC 9293 §3.10.7 moves a TCP that receives them. It is the "wire" half of
// %expect-state: without an oracle it is all we know; with one, the two are
// compared and a disagreement is reported.
//
// All numbers are relative: ours to our ISS, the remote's to its ISS. A
// segment of ours only moves the model when the remote would accept it: in
// order (its sequence number is our next one) and, for an ACK, not
// acknowledging more than the remote sent. What we send is taken as
// received: on a lossy path the runner checks that against the oracle, or
// calls what a lost segment explains inconclusive (loss.go).
type model struct {
	state result.State // NoState until something tells

	ourNext    uint32 // our next sequence number (SYN and FIN count one)
	ourSYN     bool
	ourFIN     bool
	ourFINSeq  uint32
	remoteNext uint32 // the remote's next sequence number
	remoteSYN  bool
	remoteFIN  bool
	remoteFINq uint32 // the remote FIN's sequence number
}

func newModel(dials bool) *model {
	m := &model{}
	if dials {
		m.state = result.Closed
	}
	return m
}

// synchronized states: a TCB that an exact RST destroys (RFC 9293 §3.10.7.4).
func synchronized(s result.State) bool {
	switch s {
	case result.SynRcvd, result.Established, result.FinWait1, result.FinWait2, result.CloseWait, result.Closing, result.LastAck, result.TimeWait:
		return true
	}
	return false
}

// remoteSent moves the model for a segment the remote sent (relative seq
// and ack, data length).
func (m *model) remoteSent(f craft.Flags, seq, ack, n uint32) {
	if f.Has(craft.FlagRST) {
		switch m.state {
		case result.NoState:
			// A closed port and a listener both reset an ACK; only a
			// reset of our SYN says CLOSED (RFC 9293 §3.10.7.1-2).
			if m.ourSYN && !m.remoteSYN && f.Has(craft.FlagACK) {
				m.state = result.Closed
			}
		case result.SynRcvd:
			// The reset of an unacceptable ACK: the state is kept
			// (§3.10.7.4, SYN-RECEIVED).
		default:
			m.state = result.Closed
		}
		return
	}
	end := seq + n
	if f.Has(craft.FlagSYN) {
		// A SYN starts a connection (again, after TIME_WAIT): its
		// numbers are the new ones.
		end++
		m.remoteSYN, m.remoteNext = true, end
		m.remoteFIN, m.ourFIN = false, false
		if f.Has(craft.FlagACK) {
			m.state = result.SynRcvd // LISTEN or SYN_SENT got our SYN
			m.ourNext = ack
		} else if m.state == result.NoState || m.state == result.Closed {
			m.state = result.SynSent
		}
	}
	if f.Has(craft.FlagFIN) {
		if !m.remoteFIN {
			m.remoteFIN, m.remoteFINq = true, end
			switch m.state {
			case result.Established, result.SynRcvd:
				m.state = result.FinWait1
			case result.CloseWait:
				// Its FIN's ACK field tells: covering our FIN, the remote
				// took it first and closed after (LAST_ACK); not, it
				// closed before our FIN came, which then crossed its own
				// (FIN_WAIT_1 → CLOSING, RFC 9293 §3.6).
				if f.Has(craft.FlagACK) && seqGT(ack, m.ourFINSeq) {
					m.state = result.LastAck
				} else {
					m.state = result.Closing
				}
			}
		}
		end++
	}
	if seqGT(end, m.remoteNext) {
		m.remoteNext = end
	}
}

// weSent moves the model for a segment we sent (relative numbers; ack is
// relative to the remote's ISS, meaningful once its SYN was seen).
func (m *model) weSent(f craft.Flags, seq, ack, n uint32, hasAck bool) {
	inOrder := seq == m.ourNext || !m.ourSYN && f.Has(craft.FlagSYN)
	if f.Has(craft.FlagRST) {
		switch {
		case synchronized(m.state) && seq == m.ourNext:
			m.state = result.Closed
		case m.state == result.SynSent && hasAck && ack == m.remoteNext:
			m.state = result.Closed // RFC 9293 §3.10.7.3: acceptable ACK
		}
		return
	}
	if f.Has(craft.FlagSYN) {
		if !m.ourSYN {
			m.ourSYN, m.ourNext = true, seq+1
		}
		if f.Has(craft.FlagACK) && m.state == result.SynSent && hasAck && ack == m.remoteNext {
			m.state = result.Established // RFC 9293 §3.10.7.3
		}
		return
	}
	if !inOrder {
		return // unacceptable: the remote only answers with an ACK
	}
	// ACK processing first (RFC 9293 §3.10.7.4, fifth), then the text,
	// then the FIN (eighth).
	acceptable := hasAck && f.Has(craft.FlagACK) && m.remoteSYN && !seqGT(ack, m.remoteNext)
	if acceptable {
		if m.state == result.SynRcvd && !seqGT(1, ack) {
			m.state = result.Established
		}
		if m.remoteFIN && seqGT(ack, m.remoteFINq) {
			switch m.state {
			case result.FinWait1:
				m.state = result.FinWait2
			case result.Closing:
				m.state = result.TimeWait
			case result.LastAck:
				m.state = result.Closed
			}
		}
	}
	m.ourNext = seq + n
	if f.Has(craft.FlagFIN) {
		if !m.ourFIN {
			m.ourFIN, m.ourFINSeq = true, m.ourNext
			switch m.state {
			case result.Established:
				m.state = result.CloseWait
			case result.FinWait1:
				m.state = result.Closing
			case result.FinWait2:
				m.state = result.TimeWait
			}
		}
		m.ourNext++
	}
}

// seqGT is a > b in sequence space (the engine's modular comparison).
func seqGT(a, b uint32) bool { return tcpconn.Seq(b).LessThan(tcpconn.Seq(a)) }
