package firewall

import (
	"fmt"
	"net/netip"
)

// Middlebox is something on the path that answers in the target's name: it
// sends segments with the target's address but from fewer hops away. The
// baseline connection finds it: its SYN-ACK arrives with another TTL than
// the ACK of the data that reached the target.
type Middlebox struct {
	// Hop is its place on the path, counted from us: 1 is the first
	// router. It is read from the TTL its segments arrive with (see
	// hopOf).
	Hop int `json:"hop"`
	// Addr is its address as it answers a TTL-limited copy of a SYN
	// (ICMP time exceeded), when it does.
	Addr netip.Addr `json:"addr,omitzero"`
	// TTL is what its segments arrive with.
	TTL uint8 `json:"ttl"`
	// Proxied: it completed the handshake, and the connection reached the
	// target afterwards (a SYN proxy).
	Proxied bool `json:"proxied"`
	// Evidence lists what the conclusion rests on, one finding per line.
	Evidence []string `json:"evidence"`
}

// Where names the middlebox: "hop 1 (198.18.0.254)".
func (mb *Middlebox) Where() string {
	if mb.Addr.IsValid() {
		return fmt.Sprintf("hop %d (%s)", mb.Hop, mb.Addr)
	}
	return fmt.Sprintf("hop %d", mb.Hop)
}

// hopOf returns the place on the path of a sender whose segments arrive with
// ttl, 1 being the first router: senders start at 64, 128 or 255 (the
// initial TTLs of Linux and the BSDs, Windows, and network gear; RFC 1700's
// default is 64), each router on the way takes one (RFC 791, RFC 1812
// §5.3.1), so a sender whose segment lost n arrives from n routers
// beyond the first: at hop n+1.
func hopOf(ttl uint8) int {
	initial := 255
	switch {
	case ttl <= 64:
		initial = 64
	case ttl <= 128:
		initial = 128
	}
	return initial - int(ttl) + 1
}

// AddTrace adds what a trace found to the middlebox's evidence: the
// TTL-limited copy that was answered, and from which hop the answer came.
func (m *Matrix) AddTrace(tr *Trace) {
	if m.Middlebox == nil || tr == nil || len(tr.Hops) == 0 {
		return
	}
	h := tr.Hops[len(tr.Hops)-1]
	if h.Reached && h.AnsweredFrom > 0 {
		m.Middlebox.Evidence = append(m.Middlebox.Evidence, fmt.Sprintf(
			"trace: the SYN with TTL %d, which needs %d router(s) to pass, was answered with TTL %d, from hop %d", h.TTL, h.TTL-1, h.ReplyTTL, h.AnsweredFrom))
	}
}
