package probe

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// flowQueue is how many unread events a flow holds before new ones are
// dropped (and counted in Stats.Overflow).
const flowQueue = 256

// Flow is one 4-tuple between us and the remote. A Flow is used by one
// goroutine at a time; the Prober's receive loops feed it.
type Flow struct {
	Local, Remote netip.AddrPort

	p    *Prober
	in   chan *Event
	buf  [MaxPacket]byte
	last int             // length of the last packet sent, in buf
	frag [MaxPacket]byte // one fragment at a time, see SendFragments

	guarded netip.AddrPort // what the RST guard covers for this flow (Prober.cover), or zero

	malformed atomic.Uint64 // see Malformed
}

// Malformed counts the packets to this flow's 4-tuple that the Prober
// dropped as malformed (unparsable, truncated, or a bad TCP checksum). They
// never reach Next; [Prober.LastMalformed] says what was wrong with the
// last one. A walk that saw no reply uses it to say why.
func (f *Flow) Malformed() uint64 { return f.malformed.Load() }

// Send fills in the addresses and ports of s from the flow and writes it. It
// returns the time just before the packet went to the kernel, the reference
// for round-trip times. s is not modified.
func (f *Flow) Send(s *craft.Segment) (time.Time, error) {
	if f.p.closed() {
		return time.Time{}, ErrClosed
	}
	seg := *s
	seg.Src, seg.Dst = f.Local.Addr(), f.Remote.Addr()
	seg.SrcPort, seg.DstPort = f.Local.Port(), f.Remote.Port()
	n, err := seg.Encode(f.buf[:])
	if err != nil {
		return time.Time{}, usagef(fmt.Errorf("probe: build %s segment: %w", seg.Flags, err))
	}
	f.last = n
	at := time.Now()
	if err := f.p.send(f.buf[:n]); err != nil {
		return time.Time{}, fmt.Errorf("probe: send %s to %s: %w", seg.Flags, f.Remote, err)
	}
	return at, nil
}

// SendFragments is Send with the IP datagram cut into fragments of at most
// size payload bytes (a multiple of 8, see craft.FragmentIPv4), sent in
// order; the remote's kernel reassembles them before TCP sees the segment.
// It returns the send time of the first fragment and how many were sent.
// s.DF must be false.
func (f *Flow) SendFragments(s *craft.Segment, size int) (time.Time, int, error) {
	if f.p.closed() {
		return time.Time{}, 0, ErrClosed
	}
	seg := *s
	seg.Src, seg.Dst = f.Local.Addr(), f.Remote.Addr()
	seg.SrcPort, seg.DstPort = f.Local.Port(), f.Remote.Port()
	n, err := seg.Encode(f.buf[:])
	if err != nil {
		return time.Time{}, 0, usagef(fmt.Errorf("probe: build %s segment: %w", seg.Flags, err))
	}
	f.last = n
	var at time.Time
	count := 0
	for off := 0; ; {
		fn, next, err := craft.FragmentIPv4(f.frag[:], f.buf[:n], off, size)
		if err != nil {
			return at, count, usagef(fmt.Errorf("probe: fragment %s segment: %w", seg.Flags, err))
		}
		if count == 0 {
			at = time.Now()
		}
		if err := f.p.send(f.frag[:fn]); err != nil {
			return at, count, fmt.Errorf("probe: send fragment %d of %s to %s: %w", count+1, seg.Flags, f.Remote, err)
		}
		count++
		if next == 0 {
			return at, count, nil
		}
		off = next
	}
}

// LastSent is the packet Send wrote last, as it went to the kernel (before
// the kernel's IP_HDRINCL rewrites). It is overwritten by the next Send.
func (f *Flow) LastSent() []byte { return f.buf[:f.last] }

// Next returns the next event of the flow, or ErrTimeout when deadline passes
// first, or ctx's error. Release the event when done with it.
func (f *Flow) Next(ctx context.Context, deadline time.Time) (*Event, error) {
	wait := time.Until(deadline)
	if wait <= 0 {
		select {
		case e := <-f.in:
			return e, nil
		default:
			return nil, ErrTimeout
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case e := <-f.in:
		return e, nil
	case <-t.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.p.done:
		return nil, ErrClosed
	}
}

// Expect reads events until match accepts one or the deadline passes. Events
// that do not match go to skipped (if not nil) and are released; none is lost
// silently if the caller wants to see them.
func (f *Flow) Expect(ctx context.Context, deadline time.Time, match func(*Event) bool, skipped func(*Event)) (*Event, error) {
	for {
		e, err := f.Next(ctx, deadline)
		if err != nil {
			return nil, err
		}
		if match(e) {
			return e, nil
		}
		if skipped != nil {
			skipped(e)
		}
		f.Release(e)
	}
}

// Release returns e's buffer for reuse. e must not be used afterwards.
func (f *Flow) Release(e *Event) {
	if e != nil {
		f.p.putEvent(e)
	}
}

// Close unregisters the flow; later replies to its 4-tuple are not delivered.
func (f *Flow) Close() {
	f.p.removeFlow(f)
	for {
		select {
		case e := <-f.in:
			f.p.putEvent(e)
		default:
			return
		}
	}
}
