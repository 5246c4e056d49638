package conform

import (
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestSynTimes: the handshake's round trip comes from the segments' times,
// not their record order; a SYN,ACK read late (recorded after a SYN sent
// after it) must not make it negative, or every answer to a retransmitted
// SYN would be taken for the remote's own timer.
func TestSynTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 8, 45, 35, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	out := func(ms int) walk.Segment { return walk.Segment{Dir: walk.Out, Flags: craft.FlagSYN, At: at(ms)} }
	in := func(ms int) walk.Segment {
		return walk.Segment{Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK, At: at(ms)}
	}
	tests := []struct {
		name string
		segs []walk.Segment
		last time.Time
		rtt  time.Duration
	}{
		{"in order", []walk.Segment{out(0), in(2), out(500)}, at(500), 2 * time.Millisecond},
		{"SYN,ACK read after our second SYN", []walk.Segment{out(0), out(401), in(1)}, at(401), time.Millisecond},
		{"no SYN,ACK yet", []walk.Segment{out(0), out(300)}, at(300), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last, rtt := synTimes(tt.segs)
			if !last.Equal(tt.last) || rtt != tt.rtt {
				t.Errorf("synTimes = %v, %v; want %v, %v", last.Sub(t0), rtt, tt.last.Sub(t0), tt.rtt)
			}
			if rtt < 0 {
				t.Errorf("negative round trip %v", rtt)
			}
		})
	}
}
