package script

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
)

// TestTriggerShiftMapsNumbers: after a close trigger of N = 39 request
// bytes and M = 22 answer bytes, the script's relative numbers map to the
// wire through both offsets: its "< . 2:2(0) ack 2" goes out at ISS+2+39,
// acknowledging IRS+2+22 (and a SACK block likewise), and the remote's
// FIN at IRS+1+22 acknowledging ISS+2+39 reads as the script's
// "> F. 1:1(0) ack 2"; numbers wrap modulo 2^32 (RFC 9293 §3.4).
func TestTriggerShiftMapsNumbers(t *testing.T) {
	for _, base := range []struct{ iss, irs uint32 }{{1000, 5000}, {0xffffffe0, 0xfffffff0}} {
		r := &runner{iss: base.iss, irs: base.irs, haveIRS: true, m: newModel(false), ts: map[uint32]uint32{}}
		r.shift(39, 0)
		r.shift(0, 22)
		if r.ourOff != 39 || r.remoteOff != 22 {
			t.Fatalf("offsets %d/%d, want 39/22", r.ourOff, r.remoteOff)
		}
		seg := r.outgoing(&Segment{Dir: ToRemote, Flags: craft.FlagACK, Start: 2, End: 2, Ack: 2, HasAck: true,
			Options: []Option{{Kind: craft.OptSACK, Blocks: []craft.SACKBlock{{Left: 3, Right: 5}}}}})
		if want := base.iss + 2 + 39; seg.Seq != want {
			t.Errorf("seq %d, want %d (ISS+2+39)", seg.Seq, want)
		}
		if want := base.irs + 2 + 22; seg.Ack != want {
			t.Errorf("ack %d, want %d (IRS+2+22)", seg.Ack, want)
		}
		if b := seg.Options[0].SACKBlocks(nil); len(b) != 1 || b[0].Left != base.irs+3+22 || b[0].Right != base.irs+5+22 {
			t.Errorf("SACK %v, want [%d %d]", b, base.irs+3+22, base.irs+5+22)
		}
		w := r.rel(&in{flags: craft.FlagFIN | craft.FlagACK, seq: base.irs + 1 + 22, ack: base.iss + 2 + 39})
		if w.Seq != 1 || w.Ack != 2 {
			t.Errorf("the remote's FIN reads seq %d ack %d, want 1 and 2", w.Seq, w.Ack)
		}
	}
}
