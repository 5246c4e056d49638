package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// RunTrace sends copies of a SYN with options (MSS 1460, SACK permitted,
// timestamps, window scale 7) to port with TTL 1, 2, ... maxHops, one
// at a time, each on its own 4-tuple. A router where the TTL runs out sends
// ICMP time exceeded quoting the SYN as it arrived there (it drops the
// datagram before its forward hook, RFC 1812 §5.3.1, so the quote shows
// what the routers before it did, not what it would do). A change that
// first shows at hop k was made by hop k-1. The last router's own changes
// never show in a quote: only a capture at the target sees them.
func RunTrace(ctx context.Context, p *probe.Prober, port uint16, maxHops int, tm Timing) (*Trace, error) {
	return RunTraceCapture(ctx, p, port, maxHops, tm, nil)
}

// RunTraceCapture is RunTrace with a capture in the target's namespace ns
// (nil: none). The capture sees the copy that reached the target as it
// arrived, so a change that no quote showed was made by the last router
// (whose own changes no router quotes), and a copy that was answered
// without arriving was answered by a middlebox.
func RunTraceCapture(ctx context.Context, p *probe.Prober, port uint16, maxHops int, tm Timing, ns *netns.NS) (*Trace, error) {
	var cp *capture
	if ns != nil {
		var err error
		if cp, err = startCapture(ns, p.Local()); err != nil {
			return nil, err
		}
		defer cp.Close()
	}
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
			if hop := hopOf(h.ReplyTTL); h.ReplyTTL != 0 && hop < int(h.TTL) {
				h.AnsweredFrom = hop
			}
			if cp != nil {
				traceAtTarget(cp, tr, &h, prev, prevFrom)
			}
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
	if cp == nil {
		tr.Note = "a change by the last router before the target is not quoted by anyone; use a capture at the target (--oracle-netns)"
	}
	if n := len(tr.Hops); n > 0 && tr.Hops[n-1].AnsweredFrom > 0 && tr.Hops[n-1].AtTarget == "" {
		h := tr.Hops[n-1]
		tr.Note = fmt.Sprintf("the copy with TTL %d was answered with TTL %d, from hop %d: something before the target answers in its name; ", h.TTL, h.ReplyTTL, h.AnsweredFrom) + tr.Note
	}
	return tr, nil
}

// traceAtTarget compares the copy that was answered with what the capture
// saw arrive: changes no quote showed were made by the last router (hop
// ttl-1, whose address its own quote gave); a copy that never arrived was
// answered by something on the path.
func traceAtTarget(cp *capture, tr *Trace, h *Hop, prev []Change, prevFrom netip.Addr) {
	// The capture reads in its own goroutine: give it a moment.
	time.Sleep(20 * time.Millisecond)
	got, _, ok := cp.findProbe(probeKey{local: h.local, id: h.id, seq: h.seq, flags: craft.FlagSYN}, h.sentAt)
	if !ok {
		h.AtTarget = "never arrived"
		tr.Note = fmt.Sprintf("the copy with TTL %d was answered but never reached the target: a middlebox before it answered in its name", h.TTL)
		return
	}
	h.AtTarget = "arrived"
	h.Changes, h.Quoted = Compare(h.sent, got)
	h.New = newChanges(prev, h.Changes)
	if len(h.New) > 0 {
		tr.Rewrites = append(tr.Rewrites, Rewrite{Hop: int(h.TTL) - 1, By: prevFrom, Changes: h.New})
	}
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

// timeExceeded says whether the ICMP event is a time exceeded in transit:
// ICMP type 11 (RFC 792) or ICMPv6 type 3 code 0 (RFC 4443 §3.3).
func timeExceeded(e *probe.Event) bool {
	typ, code := e.ICMPTypeCode()
	if e.IsIPv6() {
		return typ == craft.ICMPv6TimeExceeded && code == 0
	}
	return typ == craft.ICMPTimeExceeded
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
	// One IP ID (IPv6: flow label) for every copy: the capture finds the
	// copy by it.
	seg := craft.Segment{Seq: uint32(c.ISS), Flags: craft.FlagSYN, Window: tcpconn.DefaultWindow, TTL: ttl,
		Options: craft.DefaultSYNOptions(c.TSVal())}
	id := markProbe(&seg, p.Remote().Is6())
	for try := 0; try < tm.Tries; try++ {
		if err := c.SendVerbatim(&seg, fmt.Sprintf("SYN, TTL %d", ttl)); err != nil {
			return h, err
		}
		at := c.LastSend
		sent := append([]byte(nil), f.LastSent()...)
		h.sent, h.id, h.seq, h.local, h.sentAt = sent, id, seg.Seq, f.Local.Port(), at
		deadline := time.Now().Add(tm.Reply)
		for {
			e, err := f.Next(ctx, deadline)
			if err != nil {
				break
			}
			switch {
			case e.Kind == probe.EventICMP && timeExceeded(e):
				h.From = e.Source()
				quoted := []byte(e.ICMP.Quoted)
				if e.IsIPv6() {
					quoted = e.ICMP6.Quoted
				}
				h.Changes, h.Quoted = Compare(sent, quoted)
				c.Take(e)
				c.Forget() // the SYN died at this hop: nothing to reset

				f.Release(e)
				return h, nil
			case e.Kind == probe.EventSegment:
				h.From, h.Reached, h.ReplyTTL = e.Source(), true, e.HopLimit()
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
