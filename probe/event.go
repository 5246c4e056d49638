package probe

import (
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// MaxPacket is the largest packet a Prober reads. Replies larger than the
// buffer are truncated by the kernel and then fail to parse.
const MaxPacket = 2048

// EventKind tells what an Event carries.
type EventKind uint8

const (
	_ EventKind = iota // zero is invalid on purpose
	// EventSegment is a TCP segment from the remote.
	EventSegment
	// EventICMP is an ICMP error quoting one of our segments.
	EventICMP
)

// Event is one thing that came back for a flow. Seg, IP6, ICMP and ICMP6 view
// Event's own buffer: keep the *Event (not a copy) while using them, and
// Release it when done so the buffer is reused.
//
// Seg.TCP is the segment on both families. The network header is Seg.IP on
// IPv4 and IP6 on IPv6 (the other is nil); an ICMP error is ICMP on IPv4 and
// ICMP6 on IPv6. Source, Destination, HopLimit and ICMPText answer for either
// family.
type Event struct {
	Kind EventKind
	// At is the kernel's receive timestamp (SO_TIMESTAMPNS).
	At    time.Time
	Seg   craft.Packet
	IP6   craft.IPv6
	ICMP  craft.ICMPError
	ICMP6 craft.ICMPv6Error

	buf [MaxPacket]byte
	n   int
}

// Source is the segment's source address, or the ICMP error's sender.
func (e *Event) Source() netip.Addr {
	switch {
	case e.Kind == EventICMP && e.ICMP6.Quoted != nil:
		return e.ICMP6.From
	case e.Kind == EventICMP:
		return e.ICMP.From
	case e.IP6 != nil:
		return e.IP6.Source()
	case e.Seg.IP != nil:
		return e.Seg.IP.Source()
	}
	return netip.Addr{}
}

// Destination is the segment's destination address (ours); invalid for an
// ICMP event.
func (e *Event) Destination() netip.Addr {
	switch {
	case e.Kind != EventSegment:
	case e.IP6 != nil:
		return e.IP6.Destination()
	case e.Seg.IP != nil:
		return e.Seg.IP.Destination()
	}
	return netip.Addr{}
}

// HopLimit is the segment's IPv4 TTL or IPv6 hop limit; 0 for an ICMP event.
func (e *Event) HopLimit() uint8 {
	switch {
	case e.Kind != EventSegment:
	case e.IP6 != nil:
		return e.IP6.HopLimit()
	case e.Seg.IP != nil:
		return e.Seg.IP.TTL()
	}
	return 0
}

// ICMPTypeCode is the ICMP or ICMPv6 type and code of an ICMP event. The
// numbers are the family's own (RFC 792, RFC 4443): compare them with
// craft's ICMP... or ICMPv6... constants as IsIPv6 says.
func (e *Event) ICMPTypeCode() (typ, code uint8) {
	if e.ICMP6.Quoted != nil {
		return e.ICMP6.Type, e.ICMP6.Code
	}
	return e.ICMP.Type, e.ICMP.Code
}

// ICMPText describes an ICMP event ("ICMP 3/13 (...) from 198.18.0.9" or
// "ICMPv6 1/1 (...) from 2001:2::9"); "" for a segment.
func (e *Event) ICMPText() string {
	switch {
	case e.Kind != EventICMP:
		return ""
	case e.ICMP6.Quoted != nil:
		return e.ICMP6.String()
	}
	return e.ICMP.String()
}

// IsIPv6 reports whether the event came over IPv6.
func (e *Event) IsIPv6() bool { return e.IP6 != nil || e.ICMP6.Quoted != nil }

// Bytes is the raw packet as received.
func (e *Event) Bytes() []byte { return e.buf[:e.n] }

// Clone returns an independent copy whose views point at its own buffer.
func (e *Event) Clone() *Event {
	c := new(Event)
	c.Kind, c.At, c.n = e.Kind, e.At, e.n
	copy(c.buf[:], e.buf[:e.n])
	c.reparse()
	return c
}

// reparse points the views at e.buf after a copy.
func (e *Event) reparse() {
	v6 := e.n > 0 && e.buf[0]>>4 == craft.IPv6Version
	switch {
	case e.Kind == EventSegment && v6:
		if p, err := craft.ParseIPv6Packet(e.buf[:e.n]); err == nil {
			e.IP6, e.Seg = p.IP, craft.Packet{TCP: p.TCP}
		}
	case e.Kind == EventSegment:
		e.Seg, _ = craft.ParsePacket(e.buf[:e.n])
	case e.Kind == EventICMP && v6:
		e.ICMP6, _ = craft.ParseICMPv6Error(e.buf[:e.n])
	case e.Kind == EventICMP:
		e.ICMP, _ = craft.ParseICMPError(e.buf[:e.n])
	}
}
