package firewall

import (
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// heardSeg is one segment the target's side sent on a connection before the
// probe: enough to know a retransmission of it when it comes again.
type heardSeg struct {
	seq   uint32
	flags craft.Flags
	len   int
	ttl   uint8
	at    time.Time
}

// synAnswerWindow is how soon after a copy of our SYN a repeat of the
// SYN-ACK counts as its answer: one round trip on any path tcpwalk is meant
// for, and far from the target's own retransmission timer, which waits the
// initial RTO of 1 s and then doubles (RFC 6298 §2.1 and §5.5; RFC 9293
// §3.8.1).
const synAnswerWindow = 250 * time.Millisecond

// isRetransmission says whether r, a segment that came back after the
// probe, repeats one the target had already sent on this connection: same
// sequence number, flags and length; or a SYN, data or a FIN that lies
// wholly in [IRS, RCV.NXT) (acknowledged already). Such a segment was
// sent by the target's retransmission timer (RFC 9293 §3.8.1; or copied by
// the path), not in answer to the probe, so it is never taken as the
// probe's answer. Only segments that occupy sequence space (SYN, FIN,
// data) are retransmitted; a pure ACK that looks like an earlier one is a
// new answer (RFC 5961 challenge ACKs and RFC 9293 §3.10.7.4 ACKs of
// unacceptable segments look just like that). A probe that is itself a SYN
// (sent at synSent; zero for other probes) is answered by a copy of the
// SYN-ACK, which counts as an answer when it comes within a round trip of
// that copy (RFC 9293 §3.10.7.4: a duplicate SYN in SYN-RECEIVED is
// answered with the SYN-ACK again).
func isRetransmission(r *Reply, heard []heardSeg, irs, rcvNxt uint32, connected bool, synSent time.Time) bool {
	if r.ICMP != "" || r.TTL == 0 {
		return false
	}
	f := r.flags
	if !(f.Has(craft.FlagSYN) || f.Has(craft.FlagFIN) || r.Len > 0) {
		return false
	}
	if f.Has(craft.FlagSYN) && !synSent.IsZero() && !r.at.IsZero() {
		if d := r.at.Sub(synSent); d >= 0 && d < synAnswerWindow {
			return false
		}
	}
	for _, h := range heard {
		// A proxied connection's translated retransmission carries the
		// target's TTL where the proxy's original had its own: the
		// TTL does not tell a repeat from an answer.
		if h.seq == r.Seq && h.flags == f && h.len == r.Len {
			return true
		}
	}
	if connected {
		end := r.Seq + uint32(r.Len)
		if f.Has(craft.FlagSYN) {
			end++
		}
		if f.Has(craft.FlagFIN) {
			end++
		}
		// RFC 9293 §3.4: from IRS on and ending at or before RCV.NXT,
		// modulo 2^32: what the target sent on this connection. A
		// number outside that span (a middlebox's new ISN) is not old.
		if int32(r.Seq-irs) >= 0 && int32(end-rcvNxt) <= 0 {
			return true
		}
	}
	return false
}
