package script

import (
	"context"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
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

// TestTriggerableLines: which app actions a close trigger can make. Only a
// close() or shutdown(SHUT_WR) in ESTABLISHED with no data either way and
// no FIN of ours yet; the others name why not.
func TestTriggerableLines(t *testing.T) {
	const head = "--ip_version=ipv4\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 32767 <mss 1460>\n+0 > S. 0:0(0) ack 1 <...>\n"
	est := model{state: result.Established, ourNext: 1, ourSYN: true, remoteNext: 1, remoteSYN: true}
	for _, c := range []struct {
		name, body string
		m          model
		want       string
	}{
		{"shutdown", "+0 shutdown(4, SHUT_WR) = 0\n+0 > F. 1:1(0) ack 1\n", est, ""},
		{"close", "+0 close(4) = 0\n+0 > F. 1:1(0) ack 1\n", est, ""},
		{"after our FIN", "+0 close(4) = 0\n+0 > F. 1:1(0) ack 2\n",
			model{state: result.CloseWait, ourNext: 2, ourSYN: true, ourFIN: true, ourFINSeq: 1, remoteNext: 1, remoteSYN: true}, ReasonTriggerAfterFIN},
		{"in SYN_RCVD", "+0 close(4) = 0\n+0 > F. 1:1(0) ack 1\n", model{state: result.SynRcvd, ourNext: 1, ourSYN: true, remoteNext: 1, remoteSYN: true}, ReasonTriggerState},
		{"after data", "+0 close(4) = 0\n+0 > F. 11:11(0) ack 1\n", model{state: result.Established, ourNext: 1, ourSYN: true, remoteNext: 11, remoteSYN: true}, ReasonTriggerData},
		{"write", "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n", est, ReasonTriggerOnly},
		{"shutdown, then our data", "+0 shutdown(4, SHUT_WR) = 0\n+0 > F. 1:1(0) ack 1\n+0 < P. 1:11(10) ack 2 win 32767\n+0 > . 2:2(0) ack 11\n", est, ReasonTriggerReadsOn},
	} {
		s, err := Parse(c.name+".pkt", []byte(head+c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		i := -1
		for j, e := range s.Events {
			if e.Kind == App {
				i = j
				break
			}
		}
		if i < 0 {
			t.Fatalf("%s: no app event", c.name)
		}
		m := c.m
		r := &runner{s: s, m: &m}
		if got := r.triggerable(i); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// appControl is an AppController that does nothing.
type appControl struct{}

func (appControl) App(context.Context, uint16, string) error { return nil }
func (appControl) Dial(context.Context, uint16) error        { return nil }

// TestHeldOpen: a FIN of ours after which the script has the remote app
// close, with checks after that, needs the app to wait in CLOSE_WAIT: only
// the lab's app control makes sure of it.
func TestHeldOpen(t *testing.T) {
	src := "--ip_version=ipv4\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 32767 <mss 1460>\n+0 > S. 0:0(0) ack 1 <...>\n" +
		"+0 < . 1:1(0) ack 1 win 32767\n+0 < F. 1:1(0) ack 1 win 32767\n+0 > . 1:1(0) ack 2\n+0 close(4) = 0\n+0 > F. 1:1(0) ack 2\n"
	s, err := Parse("held.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	fin := -1
	for j, e := range s.Events {
		if e.Kind == Packet && e.Segment.Dir == ToRemote && e.Segment.Flags.Has(craft.FlagFIN) {
			fin = j
		}
	}
	r := &runner{s: s, m: &model{state: result.Established}}
	if !r.heldOpen(fin) {
		t.Error("without app control: not held open, want the skip")
	}
	if r.heldOpen(fin - 1) {
		t.Error("the ACK before the FIN is held open")
	}
	r.cfg.Lab = appControl{}
	if r.heldOpen(fin) {
		t.Error("with app control: held open, want the script to run")
	}
	// The close() as the last line is clean-up: nothing waits for it.
	s2, err := Parse("cleanup.pkt", []byte(strings.TrimSuffix(src, "+0 > F. 1:1(0) ack 2\n")))
	if err != nil {
		t.Fatal(err)
	}
	r = &runner{s: s2, m: &model{state: result.Established}}
	if r.heldOpen(fin) {
		t.Error("a final close(): held open, want the script to run")
	}
}
