package tcpconn

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
)

// These tests drive the engine without a socket: segments we would send
// are built and noted as sent, the remote's are fed to Take as events.

var (
	local  = netip.MustParseAddrPort("198.18.0.1:40000")
	remote = netip.MustParseAddrPort("198.18.0.2:7001")
)

// out builds and notes one segment of ours as SendRaw would send it.
func out(t *testing.T, c *Conn, flags craft.Flags, seq, ack Seq, payload []byte) craft.Segment {
	t.Helper()
	seg, err := c.build(flags, seq, ack, payload, nil)
	if err != nil {
		t.Fatalf("build %s: %v", flags, err)
	}
	seg.Options = append([]craft.Option(nil), seg.Options...) // the buffer is reused
	for i, o := range seg.Options {
		seg.Options[i].Data = append([]byte(nil), o.Data...)
	}
	c.sentSeg(time.Now(), &seg, nil, "")
	if flags.Has(craft.FlagSYN) && seq == c.ISS {
		c.SndNxt = c.ISS + 1
	}
	return seg
}

// in feeds one segment of the remote's to c.
func in(t *testing.T, c *Conn, s craft.Segment) {
	t.Helper()
	s.Src, s.Dst, s.SrcPort, s.DstPort = remote.Addr(), local.Addr(), remote.Port(), local.Port()
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := craft.ParsePacket(b[:n])
	if err != nil {
		t.Fatal(err)
	}
	c.Take(&probe.Event{Kind: probe.EventSegment, At: time.Now(), Seg: p})
}

func newTestConn(offer Offer) *Conn {
	c := New(nil, nil)
	c.Offer = offer
	return c
}

func ts(o []craft.Option) (val, ecr uint32, ok bool) {
	for _, x := range o {
		if x.Kind == craft.OptTimestamps {
			val, ecr = x.Timestamps()
			return val, ecr, true
		}
	}
	return 0, 0, false
}

func TestNegotiation(t *testing.T) {
	peerAll := []craft.Option{craft.MSS(1400), craft.SACKPermitted(), craft.Timestamps(777, 0), craft.NOP(), craft.WindowScale(9)}
	tests := []struct {
		name  string
		offer Offer
		peer  []craft.Option
		want  Negotiated
	}{
		{"nothing offered, all answered", Offer{}, peerAll, Negotiated{Done: true, SendMSS: 1400}},
		{"all offered, nothing answered", LinuxOffer, nil, Negotiated{Done: true, SendMSS: 536}},
		{"all offered, all answered", LinuxOffer, peerAll,
			Negotiated{Done: true, SendMSS: 1400, Timestamps: true, WindowScale: true, SndShift: 9, RcvShift: 7, SACK: true}},
		{"a shift above 14 is taken as 14 (RFC 7323 §2.3)", Offer{WindowScale: true, WindowShift: 2},
			[]craft.Option{craft.WindowScale(20)}, Negotiated{Done: true, SendMSS: 536, WindowScale: true, SndShift: 14, RcvShift: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConn(tt.offer)
			out(t, c, craft.FlagSYN, c.ISS, 0, nil)
			in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 1000, Options: tt.peer})
			if c.Neg != tt.want {
				t.Errorf("negotiated %+v, want %+v", c.Neg, tt.want)
			}
			if !c.HaveIRS || c.IRS != 5000 || c.RcvNxt != 5001 {
				t.Errorf("IRS %d (known %v), RCV.NXT %d; want 5000, 5001", c.IRS, c.HaveIRS, c.RcvNxt)
			}
		})
	}
}

// TestStaleSYNACKNegotiatesNothing: a SYN,ACK that acknowledges something
// else than our SYN is an earlier connection's (RFC 9293 §3.10.7.3): its
// options and ISS are not this connection's.
func TestStaleSYNACKNegotiatesNothing(t *testing.T) {
	c := newTestConn(LinuxOffer)
	out(t, c, craft.FlagSYN, c.ISS, 0, nil)
	in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 99), Flags: craft.FlagSYN | craft.FlagACK, Window: 1000,
		Options: []craft.Option{craft.Timestamps(1, 2)}})
	if c.HaveIRS || c.Neg.Done {
		t.Errorf("a stale SYN,ACK set IRS (%v) or negotiated (%+v)", c.HaveIRS, c.Neg)
	}
}

func TestTimestampsAndWindows(t *testing.T) {
	c := newTestConn(LinuxOffer)
	syn := out(t, c, craft.FlagSYN, c.ISS, 0, nil)
	if _, ecr, ok := ts(syn.Options); !ok || ecr != 0 {
		t.Fatalf("our SYN: TSopt %v, TSecr %d; want TSopt with TSecr 0 (RFC 7323 §3.2)", ok, ecr)
	}
	if syn.Window != DefaultWindow {
		t.Errorf("SYN window %d, want %d unscaled", syn.Window, DefaultWindow)
	}
	in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 65535,
		Options: []craft.Option{craft.MSS(1460), craft.SACKPermitted(), craft.Timestamps(100, 1), craft.NOP(), craft.WindowScale(4)}})
	ack := out(t, c, craft.FlagACK, c.SndNxt, c.RcvNxt, nil)
	val1, ecr, ok := ts(ack.Options)
	if !ok || ecr != 100 {
		t.Fatalf("the ACK: TSopt %v, TSecr %d; want TSecr 100 (the SYN,ACK's TSval)", ok, ecr)
	}
	if want := uint16(DefaultWindow >> 7); ack.Window != want {
		t.Errorf("ACK window %d, want %d (%d scaled by 7)", ack.Window, want, DefaultWindow)
	}
	// The remote's window: scaled by its shift, the SYN,ACK's not.
	in(t, c, craft.Segment{Seq: 5001, Ack: uint32(c.SndNxt), Flags: craft.FlagACK, Window: 100, Options: []craft.Option{craft.Timestamps(150, val1)}})
	if c.SndWnd != 1600 {
		t.Errorf("SND.WND %d, want 1600 (100 << 4)", c.SndWnd)
	}
	if c.TSRecent != 150 {
		t.Errorf("TS.Recent %d, want 150 (newer, at Last.ACK.sent)", c.TSRecent)
	}
	// RFC 7323 §4.3: an older TSval, or a segment beyond Last.ACK.sent,
	// leaves TS.Recent.
	in(t, c, craft.Segment{Seq: 5001, Ack: uint32(c.SndNxt), Flags: craft.FlagACK, Window: 100, Options: []craft.Option{craft.Timestamps(120, val1)}})
	in(t, c, craft.Segment{Seq: 5101, Ack: uint32(c.SndNxt), Flags: craft.FlagACK, Window: 100, Payload: make([]byte, 10),
		Options: []craft.Option{craft.Timestamps(200, val1)}})
	if c.TSRecent != 150 {
		t.Errorf("TS.Recent %d, want 150 still", c.TSRecent)
	}
	// Data: no more than the remote's MSS less TSopt's 12 bytes.
	if got := c.EffSndMSS(); got != 1448 {
		t.Errorf("Eff.snd.MSS %d, want 1448", got)
	}
	if _, err := c.build(craft.FlagACK, c.SndNxt, c.RcvNxt, make([]byte, 1449), nil); err == nil {
		t.Error("1449 bytes went into one segment")
	}
	data := out(t, c, craft.FlagPSH|craft.FlagACK, c.SndNxt, c.RcvNxt, []byte("x"))
	_, dataEcr, _ := ts(data.Options)
	// TS.Recent moves; a retransmission still repeats the first TSecr.
	in(t, c, craft.Segment{Seq: 5001, Ack: uint32(c.SndNxt), Flags: craft.FlagACK, Window: 100, Options: []craft.Option{craft.Timestamps(300, val1)}})
	if c.TSRecent != 300 {
		t.Fatalf("TS.Recent %d, want 300", c.TSRecent)
	}
	var prev *sentSeg
	for i := range c.sent {
		if s := &c.sent[i]; s.flags == data.Flags && s.seq == Seq(data.Seq) && s.n == 1 {
			prev = s
		}
	}
	re, err := c.build(data.Flags, Seq(data.Seq), Seq(data.Ack), []byte("x"), prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, ecr, _ := ts(re.Options); ecr != dataEcr || re.Window != data.Window {
		t.Errorf("retransmission: TSecr %d window %d; the first had %d and %d", ecr, re.Window, dataEcr, data.Window)
	}
	// A RST carries nothing.
	rst := out(t, c, craft.FlagRST, c.SndNxt, 0, nil)
	if len(rst.Options) != 0 || rst.Window != 0 {
		t.Errorf("RST: options %v, window %d", rst.Options, rst.Window)
	}
}

func TestNoTimestampsWhenNotEchoed(t *testing.T) {
	c := newTestConn(LinuxOffer)
	out(t, c, craft.FlagSYN, c.ISS, 0, nil)
	in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 65535,
		Options: []craft.Option{craft.MSS(1460)}})
	if ack := out(t, c, craft.FlagACK, c.SndNxt, c.RcvNxt, nil); len(ack.Options) != 0 || ack.Window != DefaultWindow {
		t.Errorf("ACK after a SYN,ACK without TSopt or WS: options %v, window %d", ack.Options, ack.Window)
	}
}

func TestTidy(t *testing.T) {
	t.Run("synchronized: an exact RST", func(t *testing.T) {
		c := newTestConn(LinuxOffer)
		out(t, c, craft.FlagSYN, c.ISS, 0, nil)
		in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 100})
		got := tidySegments(c)
		if len(got) != 1 || got[0].flags != craft.FlagRST || got[0].seq != c.ISS+1 {
			t.Errorf("tidy %+v, want one RST at ISS+1", got)
		}
	})
	t.Run("SYN unanswered: RST at SYN+1", func(t *testing.T) {
		c := newTestConn(LinuxOffer)
		out(t, c, craft.FlagSYN, c.ISS, 0, nil)
		got := tidySegments(c)
		if len(got) != 1 || got[0].flags != craft.FlagRST || got[0].seq != c.ISS+1 {
			t.Errorf("tidy %+v, want one RST at ISS+1", got)
		}
	})
	t.Run("the remote in SYN_SENT: RST,ACK of its SYN", func(t *testing.T) {
		c := newTestConn(LinuxOffer)
		in(t, c, craft.Segment{Seq: 9000, Flags: craft.FlagSYN, Window: 100})
		got := tidySegments(c)
		if len(got) != 1 || got[0].flags != craft.FlagRST|craft.FlagACK || got[0].ack != 9001 {
			t.Errorf("tidy %+v, want one RST,ACK acknowledging 9001 (RFC 9293 §3.10.7.3)", got)
		}
	})
	t.Run("nothing open: nothing sent", func(t *testing.T) {
		c := newTestConn(LinuxOffer)
		if got := tidySegments(c); len(got) != 0 {
			t.Errorf("tidy %+v, want nothing", got)
		}
	})
}

// TestBuildAllocatesNothing: the segment builder is on every send.
func TestBuildAllocatesNothing(t *testing.T) {
	c := newTestConn(LinuxOffer)
	out(t, c, craft.FlagSYN, c.ISS, 0, nil)
	in(t, c, craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 100,
		Options: []craft.Option{craft.Timestamps(1, 0), craft.NOP(), craft.WindowScale(7)}})
	payload := []byte("data")
	for _, f := range []craft.Flags{craft.FlagSYN, craft.FlagACK, craft.FlagPSH | craft.FlagACK, craft.FlagRST} {
		n := testing.AllocsPerRun(100, func() {
			if _, err := c.build(f, c.SndNxt, c.RcvNxt, payload, nil); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("build %s: %v allocations, want 0", f, n)
		}
	}
	data := out(t, c, craft.FlagPSH|craft.FlagACK, c.SndNxt, c.RcvNxt, payload)
	prev := &c.sent[(c.sentNext-1)%len(c.sent)]
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.build(data.Flags, Seq(data.Seq), Seq(data.Ack), payload, prev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("build a retransmission: %v allocations, want 0", n)
	}
}

func tidySegments(c *Conn) []tidySeg { return c.tidyPlan() }

// TestRetransmittedSYNACKChangesNothing: a SYN,ACK again (its
// retransmission, or a late copy) after data moved RCV.NXT leaves the TCB.
func TestRetransmittedSYNACKChangesNothing(t *testing.T) {
	c := newTestConn(LinuxOffer)
	out(t, c, craft.FlagSYN, c.ISS, 0, nil)
	synack := craft.Segment{Seq: 5000, Ack: uint32(c.ISS + 1), Flags: craft.FlagSYN | craft.FlagACK, Window: 100,
		Options: []craft.Option{craft.Timestamps(10, 0)}}
	in(t, c, synack)
	out(t, c, craft.FlagACK, c.SndNxt, c.RcvNxt, nil)
	in(t, c, craft.Segment{Seq: 5001, Ack: uint32(c.ISS + 1), Flags: craft.FlagPSH | craft.FlagACK, Window: 100, Payload: []byte("abc"),
		Options: []craft.Option{craft.Timestamps(20, 0)}})
	if c.RcvNxt != 5004 {
		t.Fatalf("RCV.NXT %d after 3 bytes, want 5004", c.RcvNxt)
	}
	synack.Options = []craft.Option{craft.Timestamps(30, 0)}
	in(t, c, synack)
	if c.RcvNxt != 5004 || c.IRS != 5000 || c.TSRecent != 20 {
		t.Errorf("after the SYN,ACK again: RCV.NXT %d, IRS %d, TS.Recent %d; want 5004, 5000, 20", c.RcvNxt, c.IRS, c.TSRecent)
	}
}
