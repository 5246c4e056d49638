package conform

import (
	"encoding/binary"
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestLostSegmentFamilies: the remote's IPv4 IDs (RFC 791) tell a lost
// segment; an IPv6 header has no ID (RFC 8200 §3: bytes 4-5 are the
// payload length), so the same bytes there tell nothing.
func TestLostSegmentFamilies(t *testing.T) {
	segs := func(version byte, words ...uint16) []walk.Segment {
		var out []walk.Segment
		for _, w := range words {
			raw := make([]byte, 60)
			raw[0] = version << 4
			binary.BigEndian.PutUint16(raw[4:6], w)
			out = append(out, walk.Segment{Dir: walk.In, Flags: craft.FlagACK, Raw: raw})
		}
		return out
	}
	if lost, _ := lostSegment(segs(4, 10, 11, 13)); lost == "" {
		t.Errorf("IPv4 IDs 10, 11, 13: no lost segment told")
	}
	if _, counted := lostSegment(segs(4, 10, 11, 12)); !counted {
		t.Errorf("IPv4 IDs 10, 11, 12: not counted as complete")
	}
	if lost, counted := lostSegment(segs(6, 10, 11, 13)); lost != "" || counted {
		t.Errorf("IPv6 payload lengths 10, 11, 13 read as IDs: lost %q, counted %v", lost, counted)
	}
}
