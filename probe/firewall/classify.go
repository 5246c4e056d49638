package firewall

import (
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
)

// observation is everything seen of one probe.
type observation struct {
	capture   bool
	delivered bool
	sent, got craft.IPv4 // what we sent; what the capture saw arrive
	// targetAnswer is the target's answer as the capture saw it leave.
	targetAnswer string
	replies      []Reply
	targetTTL    uint8
	answers      bool // every TCP answers this probe
}

// classify decides the outcome of one probe from what was seen.
func classify(o *observation, c *Cell) {
	c.Replies = o.replies
	var icmp *Reply
	var tcp []Reply
	for i := range o.replies {
		if o.replies[i].ICMP != "" {
			if icmp == nil {
				icmp = &o.replies[i]
			}
		} else {
			tcp = append(tcp, o.replies[i])
		}
	}
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
		} else {
			c.Outcome, c.Detail = Delivered, "arrived unchanged"
		}
		switch {
		case o.targetAnswer == "":
			c.Detail += "; the target did not answer"
		case len(tcp) == 0:
			c.Detail += "; the target answered " + o.targetAnswer + ", which did not come back"
		default:
			c.Detail += "; the target answered " + o.targetAnswer
		}
	case icmp != nil:
		c.Outcome, c.RejectedBy, c.Detail = Rejected, icmp.From, icmp.ICMP
	case o.capture && len(tcp) > 0:
		c.Outcome, c.RejectedBy = Rejected, tcp[0].From
		c.HopsShort = int(tcp[0].TTL) - int(o.targetTTL)
		c.Detail = "never reached the target; " + describeRejection(c, o.targetTTL)
	case o.capture:
		c.Outcome, c.Detail = Dropped, "never reached the target; nothing answered"
	case len(tcp) > 0 && o.targetTTL != 0 && tcp[0].TTL != o.targetTTL:
		c.Outcome, c.RejectedBy = Rejected, tcp[0].From
		c.HopsShort = int(tcp[0].TTL) - int(o.targetTTL)
		c.Detail = describeRejection(c, o.targetTTL)
	case len(tcp) > 0:
		c.Outcome, c.Detail = Delivered, "the target answered "+tcp[0].Flags
	case o.answers:
		c.Outcome, c.Detail = Dropped, "nothing answered a segment every TCP answers"
	default:
		c.Outcome, c.Detail = NoAnswer, "nothing answered: dropped on the path, or ignored by the target"
	}
}
