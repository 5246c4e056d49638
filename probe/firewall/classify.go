package firewall

import (
	"fmt"
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
)

// observation is everything seen of one probe.
type observation struct {
	capture   bool
	delivered bool
	sent, got []byte // what we sent; what the capture saw arrive (IPv4 or IPv6)
	// targetAnswer is the target's answer as the capture saw it leave.
	targetAnswer string
	replies      []Reply
	targetTTL    uint8
	answers      bool // every TCP answers this probe
	// probeFlags are the probe's flags; copies how often it was sent.
	probeFlags craft.Flags
	copies     int
	// mb is what answered the baseline handshake in the target's name.
	mb *Middlebox
}

// classify decides the outcome of one probe from what was seen. Replies
// marked as the target's retransmissions are kept in the cell but never
// decide it: they answer nothing we sent.
func classify(o *observation, c *Cell) {
	c.Replies = o.replies
	var icmp *Reply
	var fromTarget, fromPath []Reply
	for i := range o.replies {
		r := &o.replies[i]
		switch {
		case r.Retransmission, r.Unprompted:
		case r.ICMP != "":
			if icmp == nil {
				icmp = r
			}
		case o.targetTTL != 0 && r.TTL != o.targetTTL:
			fromPath = append(fromPath, *r)
		default:
			fromTarget = append(fromTarget, *r)
		}
	}
	tcp := append(append([]Reply(nil), fromTarget...), fromPath...)
	if o.capture {
		d := o.delivered
		c.Delivered = &d
		c.TargetAnswer = o.targetAnswer
	}
	switch {
	case o.capture && o.delivered:
		c.Changes, _ = Compare(o.sent, o.got)
		if len(c.Changes) > 0 {
			c.Outcome = Rewritten
			parts := make([]string, len(c.Changes))
			for i, ch := range c.Changes {
				parts[i] = ch.String()
			}
			c.Detail = "arrived changed: " + strings.Join(parts, ", ")
			if o.mb != nil && o.mb.Proxied && onlySeqChanges(c.Changes) {
				c.Detail += " (sequence numbers translated by the SYN proxy at " + o.mb.Where() + ")"
			}
		} else {
			c.Outcome, c.Detail = Delivered, "arrived unchanged"
		}
		switch {
		case o.targetAnswer == "":
			c.Detail += "; the target did not answer"
		case len(fromTarget) == 0:
			c.Detail += "; the target answered " + o.targetAnswer + ", which did not come back"
		default:
			c.Detail += "; the target answered " + o.targetAnswer
		}
	case icmp != nil:
		c.Outcome, c.RejectedBy, c.Detail = Rejected, icmp.From, icmp.ICMP
	case len(fromPath) > 0:
		classifyPathAnswer(o, c, fromPath[0])
		if o.capture {
			c.Detail = "never reached the target; " + c.Detail
		}
	case o.capture && len(tcp) > 0:
		// The target's TTL, but the capture saw nothing arrive: a box
		// at the same distance, or one that sets its TTL to match.
		c.Outcome, c.RejectedBy = Rejected, tcp[0].From
		if tcp[0].flags.Has(craft.FlagRST) {
			c.Detail = "never reached the target; " + describeRejection(c, o.targetTTL)
		} else {
			c.Outcome = AnsweredByMiddlebox
			c.Detail = fmt.Sprintf("never reached the target; %s came back in its name with its TTL", tcp[0].Flags)
		}
	case o.capture:
		c.Outcome, c.Detail = Dropped, "never reached the target; nothing answered"
		if o.copies > 1 {
			c.Detail = fmt.Sprintf("none of %d copies reached the target; nothing answered", o.copies)
		}
	case len(fromTarget) > 0:
		c.Outcome, c.Detail = Delivered, fmt.Sprintf("the target answered %s (ttl %d, the target's own)", fromTarget[0].Flags, fromTarget[0].TTL)
	case o.answers:
		c.Outcome, c.Detail = Dropped, "nothing answered a segment every TCP answers"
		if o.copies > 1 {
			c.Detail = fmt.Sprintf("nothing answered %d copies of a segment every TCP answers", o.copies)
		}
	default:
		c.Outcome, c.Detail = NoAnswer, "nothing answered: dropped on the path, or ignored by the target"
	}
	if n := retransmissions(o.replies); n > 0 {
		c.Detail += fmt.Sprintf(" (%d retransmission(s) of the target's earlier segments came back too: not answers)", n)
	}
	if n := unprompted(o.replies); n > 0 {
		c.Detail += fmt.Sprintf(" (%d segment(s) the target sent unprompted came back too: the probe never arrived)", n)
	}
}

// classifyPathAnswer judges a TCP answer whose TTL is not the target's: a
// RST in its name is a rejection; a SYN-ACK to a SYN from the box that
// answered the baseline handshake, which then let that connection reach the
// target, is a proxied handshake; anything else was answered by a
// middlebox.
func classifyPathAnswer(o *observation, c *Cell, r Reply) {
	hop := hopOf(r.TTL)
	c.RejectedBy = r.From
	c.HopsShort = int(r.TTL) - int(o.targetTTL)
	where := fmt.Sprintf("hop %d", hop)
	if o.mb != nil && o.mb.Hop == hop {
		where = o.mb.Where()
	}
	switch {
	case r.flags.Has(craft.FlagRST):
		c.Outcome = Rejected
		c.Detail = describeRejection(c, o.targetTTL)
	case o.mb != nil && o.mb.Proxied && o.mb.Hop == hop && o.probeFlags&(craft.FlagSYN|craft.FlagACK) == craft.FlagSYN &&
		r.flags.Has(craft.FlagSYN|craft.FlagACK):
		c.Outcome = Proxied
		c.Detail = fmt.Sprintf("the handshake is completed by a SYN proxy at %s (%s in the name of %s, ttl %d; the target's arrive with %d); the target is reached once our ACK proves the handshake, with its sequence numbers translated",
			where, r.Flags, r.From, r.TTL, o.targetTTL)
	default:
		c.Outcome = AnsweredByMiddlebox
		c.Detail = fmt.Sprintf("answered by a middlebox at %s: %s in the name of %s, ttl %d (the target's arrive with %d)",
			where, r.Flags, r.From, r.TTL, o.targetTTL)
	}
}

// onlySeqChanges: every change is to a sequence or acknowledgment number.
func onlySeqChanges(cs []Change) bool {
	for _, c := range cs {
		if c.Field != "seq" && c.Field != "ack" {
			return false
		}
	}
	return len(cs) > 0
}

func retransmissions(rs []Reply) int {
	n := 0
	for _, r := range rs {
		if r.Retransmission {
			n++
		}
	}
	return n
}

func unprompted(rs []Reply) int {
	n := 0
	for _, r := range rs {
		if r.Unprompted {
			n++
		}
	}
	return n
}
