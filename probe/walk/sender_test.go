package walk_test

import (
	"context"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestWalksSendConformantSegments: every walk's segments go through the
// engine's sender, whatever numbers a step chose. Once a SYN,ACK that
// answers our timestamped SYN echoed TSopt and window scale, every segment
// of ours but a RST carries TSopt (RFC 7323 §3.2) and, but a SYN, a window
// scaled by our shift (§2.3); a RST carries no options.
func TestWalksSendConformantSegments(t *testing.T) {
	cfg, _ := labWalk(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checked := 0
	for _, r := range walk.Run(ctx, cfg, walk.Scenarios()) {
		var negotiated bool
		var iss uint32
		for i, s := range r.Segments {
			p, err := craft.ParsePacket(s.Raw)
			if err != nil || s.ICMP != "" {
				continue
			}
			f := p.TCP.Flags()
			var o craft.OptionSet
			if err := p.TCP.DecodeOptions(&o); err != nil {
				t.Fatalf("%s: segment %d: %v", r.Scenario, i, err)
			}
			switch {
			case s.Dir == walk.Out && f == craft.FlagSYN && o.Has(craft.OptTimestamps) && o.Has(craft.OptWindowScale):
				iss = uint32(s.Seq)
			case s.Dir == walk.In && f == craft.FlagSYN|craft.FlagACK && uint32(s.Ack) == iss+1:
				negotiated = o.Has(craft.OptTimestamps) && o.Has(craft.OptWindowScale)
			case s.Dir == walk.Out && negotiated:
				checked++
				switch {
				case f.Has(craft.FlagRST):
					if len(s.Options) != 0 {
						t.Errorf("%s: segment %d (%s %s): a RST with options %v", r.Scenario, i, s.Flags, s.Note, s.Options)
					}
				case !o.Has(craft.OptTimestamps):
					t.Errorf("%s: segment %d (%s %s): no TSopt after timestamps were negotiated", r.Scenario, i, s.Flags, s.Note)
				case !f.Has(craft.FlagSYN) && s.Win != tcpconn.DefaultWindow>>7:
					t.Errorf("%s: segment %d (%s %s): window %d, want %d>>7", r.Scenario, i, s.Flags, s.Note, s.Win, tcpconn.DefaultWindow)
				}
			}
		}
	}
	t.Logf("%d segments of ours checked after negotiation", checked)
	if checked < 20 {
		t.Errorf("only %d segments of ours checked after negotiation", checked)
	}
}
