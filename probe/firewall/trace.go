package firewall

import (
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Hop is what one TTL-limited copy of the SYN found.
type Hop struct {
	TTL uint8 `json:"ttl"`
	// From is the router whose time-exceeded quoted our SYN, or the target
	// when it answered (Reached).
	From    netip.Addr `json:"from,omitzero"`
	Reached bool       `json:"reached,omitempty"`
	// Quoted is whether the quote held the whole TCP header, so that every
	// field could be compared.
	Quoted bool `json:"quoted,omitempty"`
	// Changes are the differences between our SYN and the quote; New those
	// that the hop before this one did not show yet.
	Changes []Change `json:"changes,omitempty"`
	New     []Change `json:"new,omitempty"`
	// AtTarget is, for the hop that was answered, what a capture at the
	// target saw: "arrived" (Changes then compare what arrived) or "never
	// arrived" (something before the target answered); "" without a
	// capture.
	AtTarget string `json:"at_target,omitempty"`
	// ReplyTTL is the TTL the answer of a reached hop arrived with; a
	// sender nearer than the TTL the copy needed (see hopOf) answered in
	// the target's name.
	ReplyTTL uint8 `json:"reply_ttl,omitempty"`
	// AnsweredFrom is that sender's hop when it is nearer than TTL: a
	// middlebox answered, not the target.
	AnsweredFrom int `json:"answered_from,omitempty"`

	// The copy that was sent, to find it in a capture.
	sent   craft.IPv4
	id     uint32
	seq    uint32
	local  uint16
	sentAt time.Time
}

// Rewrite names the router that changed the SYN: Hop is its distance (1 is
// the first router), By its address as it answered at that TTL.
type Rewrite struct {
	Hop     int        `json:"hop"`
	By      netip.Addr `json:"by,omitzero"`
	Changes []Change   `json:"changes"`
}

// Trace is the result of the ICMP-quote method.
type Trace struct {
	Target netip.AddrPort `json:"target"`
	Sent   string         `json:"sent"`
	Hops   []Hop          `json:"hops"`
	// Rewrites lists each router that changed what it forwarded.
	Rewrites []Rewrite `json:"rewrites"`
	// Note says what the method cannot see.
	Note string `json:"note,omitempty"`
}
