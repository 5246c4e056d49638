package probe

import (
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

// Event is one thing that came back for a flow. Seg and ICMP view Event's own
// buffer: keep the *Event (not a copy) while using them, and Release it when
// done so the buffer is reused.
type Event struct {
	Kind EventKind
	// At is the kernel's receive timestamp (SO_TIMESTAMPNS).
	At   time.Time
	Seg  craft.Packet
	ICMP craft.ICMPError

	buf [MaxPacket]byte
	n   int
}

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
	switch e.Kind {
	case EventSegment:
		e.Seg, _ = craft.ParsePacket(e.buf[:e.n])
	case EventICMP:
		e.ICMP, _ = craft.ParseICMPError(e.buf[:e.n])
	}
}
