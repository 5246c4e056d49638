package tcpconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// TestConformantSender runs one whole connection against the lab's Linux
// echo server for each set of options our SYN may offer (handshake with a
// retransmitted SYN, data and its retransmission, KA1, FIN both ways, the
// tidy RST) and then checks every segment the engine sent, byte by byte
// from the record, against the sender's rules of RFC 7323 and RFC 9293:
//   - TSopt on every non-RST segment once negotiated, none when not (§3.2);
//   - TSecr = TS.Recent as §4.3 keeps it, computed here again from the
//     record; 0 without ACK;
//   - TSval never goes back (§5.4: a monotonic clock);
//   - the SYN's window unscaled, every later one scaled by our shift once
//     negotiated (§2.2, §2.3);
//   - no data above the remote's MSS (RFC 9293 §3.7.1);
//   - a retransmission is the earlier segment again: only TSval (and the
//     checksum that covers it, and the IP ID) may differ.
func TestConformantSender(t *testing.T) {
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	defer p.Close()
	sets := []struct {
		name  string
		offer tcpconn.Offer
	}{
		{"no options", tcpconn.Offer{}},
		{"MSS only", tcpconn.Offer{MSS: 1460}},
		{"MSS and window scale", tcpconn.Offer{MSS: 1460, WindowScale: true, WindowShift: 7}},
		{"MSS and timestamps", tcpconn.Offer{MSS: 1460, Timestamps: true}},
		{"all: MSS, SACK-permitted, timestamps, window scale", tcpconn.LinuxOffer},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			c := connect(t, p, set.offer)
			if got, want := c.Neg.Timestamps, set.offer.Timestamps; got != want {
				t.Errorf("timestamps negotiated: %v, want %v (Linux echoes what we offer)", got, want)
			}
			if got, want := c.Neg.WindowScale, set.offer.WindowScale; got != want {
				t.Errorf("window scale negotiated: %v, want %v", got, want)
			}
			checkSent(t, c, set.offer)
		})
	}
}

// connect plays one connection to the echo server and tidies it.
func connect(t *testing.T, p *probe.Prober, offer tcpconn.Offer) *tcpconn.Conn {
	t.Helper()
	ctx := context.Background()
	f, err := p.NewFlow(lab.PortEcho, 0)
	if err != nil {
		t.Fatalf("NewFlow: %v", err)
	}
	t.Cleanup(f.Close)
	c := tcpconn.New(f, nil)
	c.Offer = offer
	c.AutoAckData = true
	defer c.Tidy()

	// The SYN, and at once its retransmission, as if the first were lost.
	must(t, c.SendSYN("SYN"))
	must(t, c.Retransmit(craft.FlagSYN, c.ISS, 0, nil))
	if _, err := await(ctx, c, func(r *tcpconn.Reply) bool {
		return r.Flags == craft.FlagSYN|craft.FlagACK && r.Seg.Ack == c.ISS+1
	}); err != nil {
		t.Fatalf("no SYN,ACK: %v", err)
	}
	must(t, c.SendNext(craft.FlagACK, nil, "ACK"))

	// Data: the echo comes back (and is acknowledged by AutoAckData);
	// our data, sent again, is a retransmission.
	data := []byte("hello, conformant receiver")
	start, ack := c.SndNxt, c.RcvNxt
	must(t, c.SendNext(craft.FlagPSH|craft.FlagACK, data, "data"))
	if _, err := await(ctx, c, func(*tcpconn.Reply) bool { return bytes.Equal(c.Received, data) }); err != nil {
		t.Fatalf("no echo of our data (got %q): %v", c.Received, err)
	}
	must(t, c.Retransmit(craft.FlagPSH|craft.FlagACK, start, ack, data))
	if _, err := await(ctx, c, func(r *tcpconn.Reply) bool { return r.Flags == craft.FlagACK && r.Seg.Ack == c.SndNxt }); err != nil {
		t.Fatalf("no ACK of our retransmitted data: %v", err)
	}

	// KA1 draws <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. Without timestamps
	// its answer is byte-identical to the last one: the recorder takes a
	// copy within DupWindow for the path's, so KA1 waits past it.
	time.Sleep(2 * tcpconn.DupWindow)
	must(t, c.KeepAlive())
	if _, err := await(ctx, c, func(r *tcpconn.Reply) bool {
		return r.Flags == craft.FlagACK && r.Seg.Seq == c.RcvNxt && r.Seg.Ack == c.SndNxt
	}); err != nil {
		t.Fatalf("no answer to KA1: %v", err)
	}

	// Our FIN; the echo server closes at EOF: its FIN comes, we ACK it.
	must(t, c.SendNext(craft.FlagFIN|craft.FlagACK, nil, "FIN"))
	if _, err := await(ctx, c, func(*tcpconn.Reply) bool { return c.RemoteFINSeen }); err != nil {
		t.Fatalf("no FIN from the echo server: %v", err)
	}
	c.RcvNxt = c.RemoteFIN + 1
	must(t, c.SendNext(craft.FlagACK, nil, "ACK of FIN"))
	if c.SndUna != c.SndNxt {
		t.Errorf("SND.UNA %d, SND.NXT %d: the remote did not acknowledge all we sent", c.SndUna, c.SndNxt)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// await reads until match accepts a reply, for at most 3 s.
func await(ctx context.Context, c *tcpconn.Conn, match func(*tcpconn.Reply) bool) (*tcpconn.Reply, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, err := c.Next(ctx, deadline)
		if err != nil {
			return nil, err
		}
		if r.Seg.ICMP != "" {
			return nil, errors.New(r.Seg.ICMP)
		}
		if match(r) {
			return r, nil
		}
	}
}

// wireSeg is one recorded segment read back from its bytes.
type wireSeg struct {
	rec          tcpconn.Segment
	tcp          craft.TCP
	flags        craft.Flags
	opts         craft.OptionSet
	tsVal, tsEcr uint32
	hasTS        bool
}

func parse(t *testing.T, s tcpconn.Segment) wireSeg {
	t.Helper()
	pk, err := craft.ParsePacket(s.Raw)
	if err != nil {
		t.Fatalf("recorded %s segment does not parse: %v", s.Dir, err)
	}
	w := wireSeg{rec: s, tcp: pk.TCP, flags: pk.TCP.Flags()}
	if err := pk.TCP.DecodeOptions(&w.opts); err != nil {
		t.Fatalf("recorded %s segment's options: %v", s.Dir, err)
	}
	if w.opts.Has(craft.OptTimestamps) {
		w.hasTS, w.tsVal, w.tsEcr = true, w.opts.TSVal, w.opts.TSEcr
	}
	return w
}

func checkSent(t *testing.T, c *tcpconn.Conn, offer tcpconn.Offer) {
	segs := c.Rec.Snapshot()
	var (
		tsRecent    uint32
		haveRecent  bool
		lastAckSent tcpconn.Seq
		lastTSVal   uint32
		sentTS      bool
		peerMSS     = 536
		ours        []wireSeg
		nOut, nTS   int
	)
	for i, s := range segs {
		if s.ICMP != "" {
			continue
		}
		w := parse(t, s)
		what := fmt.Sprintf("segment %d (%s %s seq %d, %s)", i, s.Dir, s.Flags, s.RelSeq, s.Note)
		if s.Dir == tcpconn.In {
			switch {
			case w.flags.Has(craft.FlagSYN):
				if w.opts.Has(craft.OptMSS) {
					peerMSS = int(w.opts.MSS)
				}
				if w.hasTS {
					tsRecent, haveRecent = w.tsVal, true
				}
			case w.hasTS && haveRecent && !s.Duplicate:
				// RFC 7323 §4.3 (2): not older, and at or before Last.ACK.sent.
				if tcpconn.Seq(tsRecent).LessEq(tcpconn.Seq(w.tsVal)) && s.Seq.LessEq(lastAckSent) {
					tsRecent = w.tsVal
				}
			}
			continue
		}
		nOut++
		negotiatedTS := c.Neg.Timestamps
		switch {
		case w.flags.Has(craft.FlagRST):
			if len(s.Options) != 0 {
				t.Errorf("%s: a RST carries options %v", what, s.Options)
			}
		case w.flags.Has(craft.FlagSYN):
			if w.hasTS != offer.Timestamps {
				t.Errorf("%s: TSopt on our SYN %v, offered %v", what, w.hasTS, offer.Timestamps)
			}
			if w.opts.Has(craft.OptWindowScale) != offer.WindowScale || w.opts.Has(craft.OptSACKPermitted) != offer.SACKPermitted ||
				w.opts.Has(craft.OptMSS) != (offer.MSS != 0) {
				t.Errorf("%s: options %v, not what we offer (%+v)", what, s.Options, offer)
			}
			if s.Win != tcpconn.DefaultWindow {
				t.Errorf("%s: SYN window %d, want %d unscaled (RFC 7323 §2.2)", what, s.Win, tcpconn.DefaultWindow)
			}
			if w.hasTS && w.tsEcr != 0 {
				t.Errorf("%s: TSecr %d without ACK, want 0 (RFC 7323 §3.2)", what, w.tsEcr)
			}
		default:
			if w.hasTS != negotiatedTS {
				t.Errorf("%s: TSopt %v, want %v (negotiated: %v; RFC 7323 §3.2)", what, w.hasTS, negotiatedTS, c.Neg.Timestamps)
			}
			want := uint16(tcpconn.DefaultWindow)
			if c.Neg.WindowScale {
				want = uint16(tcpconn.DefaultWindow >> c.Neg.RcvShift)
			}
			if s.Win != want {
				t.Errorf("%s: window %d, want %d (scaled: %v)", what, s.Win, want, c.Neg.WindowScale)
			}
			if w.hasTS {
				wantEcr := tsRecent
				if !w.flags.Has(craft.FlagACK) {
					wantEcr = 0
				}
				if w.tsEcr != wantEcr && s.Note != "retransmission" {
					t.Errorf("%s: TSecr %d, want TS.Recent %d (RFC 7323 §4.3)", what, w.tsEcr, wantEcr)
				}
			}
			if max := peerMSS - 12*btoi(w.hasTS); s.Len > max {
				t.Errorf("%s: %d bytes of data, above the remote's MSS less options (%d)", what, s.Len, max)
			}
		}
		if w.hasTS {
			nTS++
			if sentTS && tcpconn.Seq(w.tsVal).LessThan(tcpconn.Seq(lastTSVal)) {
				t.Errorf("%s: TSval %d went back from %d", what, w.tsVal, lastTSVal)
			}
			lastTSVal, sentTS = w.tsVal, true
		}
		if w.flags.Has(craft.FlagACK) && !w.flags.Has(craft.FlagRST) {
			lastAckSent = s.Ack
		}
		if s.Note == "retransmission" {
			checkRetransmission(t, what, w, ours)
		}
		ours = append(ours, w)
	}
	if nOut < 8 {
		t.Errorf("only %d segments of ours recorded", nOut)
	}
	if c.Neg.Timestamps && nTS != nOut-countRST(ours) {
		t.Errorf("%d of %d non-RST segments carried TSopt", nTS, nOut-countRST(ours))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func countRST(ws []wireSeg) int {
	n := 0
	for _, w := range ws {
		if w.flags.Has(craft.FlagRST) {
			n++
		}
	}
	return n
}

// checkRetransmission compares a retransmission with the latest earlier
// segment of ours with the same flags, numbers and length: the TCP bytes
// must be equal but for the checksum and TSval.
func checkRetransmission(t *testing.T, what string, re wireSeg, ours []wireSeg) {
	t.Helper()
	for i := len(ours) - 1; i >= 0; i-- {
		o := ours[i]
		if o.flags != re.flags || o.rec.Seq != re.rec.Seq || o.rec.Ack != re.rec.Ack || o.rec.Len != re.rec.Len {
			continue
		}
		a, b := bytes.Clone(o.tcp), bytes.Clone(re.tcp)
		for _, x := range [][]byte{a, b} {
			binary.BigEndian.PutUint16(x[16:], 0) // checksum
			if off := tsValOffset(x); off > 0 {
				binary.BigEndian.PutUint32(x[off:], 0)
			}
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: differs from the segment it repeats beyond TSval:\n first % x\n again % x", what, a, b)
		}
		if o.hasTS && re.tsVal == o.tsVal && re.rec.At.Sub(o.rec.At) > 2*time.Millisecond {
			t.Errorf("%s: TSval %d did not move in %v", what, re.tsVal, re.rec.At.Sub(o.rec.At))
		}
		return
	}
	t.Errorf("%s: no earlier segment of ours with its numbers", what)
}

// tsValOffset is where TSval sits in TCP header b, 0 if it has no TSopt.
func tsValOffset(b []byte) int {
	end := int(b[12]>>4) * 4
	for i := 20; i < end; {
		switch b[i] {
		case 0:
			return 0
		case 1:
			i++
			continue
		case 8:
			return i + 2
		}
		if i+1 >= end || b[i+1] < 2 {
			return 0
		}
		i += int(b[i+1])
	}
	return 0
}
