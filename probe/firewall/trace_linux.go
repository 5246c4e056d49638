package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
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

// RunTrace sends copies of a SYN with options (MSS 1460, SACK permitted,
// timestamps, window scale 7) to port with TTL 1, 2, ... maxHops, one
// at a time, each on its own 4-tuple. A router where the TTL runs out sends
// ICMP time exceeded quoting the SYN as it arrived there (it drops the
// datagram before its forward hook, RFC 1812 §5.3.1, so the quote shows
// what the routers before it did, not what it would do). A change that
// first shows at hop k was made by hop k-1. The last router's own changes
// never show in a quote: only a capture at the target sees them.
func RunTrace(ctx context.Context, p *probe.Prober, port uint16, maxHops int, tm Timing) (*Trace, error) {
	if tm == (Timing{}) {
		tm = DefaultTiming
	}
	if maxHops < 1 || maxHops > 64 {
		return nil, fmt.Errorf("firewall: trace to %s: %d hops: want 1 to 64", p.Remote(), maxHops)
	}
	tr := &Trace{Target: netip.AddrPortFrom(p.Remote(), port), Sent: "<SEQ=x><CTL=SYN> mss 1460,sackOK,TS,nop,wscale 7"}
	var prev []Change
	var prevFrom netip.Addr
	for ttl := 1; ttl <= maxHops; ttl++ {
		h, err := traceHop(ctx, p, port, uint8(ttl), tm)
		if err != nil {
			return tr, err
		}
		if h.Reached {
			tr.Hops = append(tr.Hops, h)
			break
		}
		if h.From.IsValid() && h.Quoted {
			h.New = newChanges(prev, h.Changes)
			if len(h.New) > 0 {
				tr.Rewrites = append(tr.Rewrites, Rewrite{Hop: ttl - 1, By: prevFrom, Changes: h.New})
			}
			prev, prevFrom = h.Changes, h.From
		}
		tr.Hops = append(tr.Hops, h)
	}
	tr.Note = "a change by the last router before the target is not quoted by anyone; use a capture at the target (--oracle-netns)"
	return tr, nil
}

// newChanges returns the changes in cur that prev does not have.
func newChanges(prev, cur []Change) []Change {
	var out []Change
	for _, c := range cur {
		seen := false
		for _, p := range prev {
			if p == c {
				seen = true
			}
		}
		if !seen {
			out = append(out, c)
		}
	}
	return out
}

func traceHop(ctx context.Context, p *probe.Prober, port uint16, ttl uint8, tm Timing) (Hop, error) {
	h := Hop{TTL: ttl}
	f, err := p.NewFlow(port, 0)
	if err != nil {
		return h, err
	}
	defer f.Close()
	// The engine resets what a SYN that reached the target opened, also
	// when its SYN,ACK was not read (RFC 9293 §3.10.7.4).
	c := tcpconn.New(f, nil)
	defer c.Tidy()
	seg := craft.Segment{Seq: uint32(c.ISS), Flags: craft.FlagSYN, Window: tcpconn.DefaultWindow, TTL: ttl,
		Options: craft.DefaultSYNOptions(c.TSVal())}
	for try := 0; try < tm.Tries; try++ {
		if err := c.SendVerbatim(&seg, fmt.Sprintf("SYN, TTL %d", ttl)); err != nil {
			return h, err
		}
		sent := craft.IPv4(append([]byte(nil), f.LastSent()...))
		deadline := time.Now().Add(tm.Reply)
		for {
			e, err := f.Next(ctx, deadline)
			if err != nil {
				break
			}
			switch {
			case e.Kind == probe.EventICMP && e.ICMP.Type == craft.ICMPTimeExceeded:
				h.From = e.ICMP.From
				h.Changes, h.Quoted = Compare(sent, e.ICMP.Quoted)
				c.Take(e)
				c.Forget() // the SYN died at this hop: nothing to reset

				f.Release(e)
				return h, nil
			case e.Kind == probe.EventSegment:
				h.From, h.Reached = e.Source(), true
				c.Take(e)
				f.Release(e)
				return h, nil
			}
			f.Release(e)
		}
		if ctx.Err() != nil {
			return h, ctx.Err()
		}
	}
	return h, nil // silent hop: a router that sends no ICMP
}
