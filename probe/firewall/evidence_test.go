package firewall

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

func TestHopOf(t *testing.T) {
	for _, tt := range []struct {
		ttl  uint8
		want int
	}{{64, 1}, {63, 2}, {128, 1}, {120, 9}, {255, 1}, {250, 6}, {1, 64}} {
		if got := hopOf(tt.ttl); got != tt.want {
			t.Errorf("hopOf(%d) = %d, want %d", tt.ttl, got, tt.want)
		}
	}
}

// TestIsRetransmission: a segment that repeats one the target sent before
// the probe (same SEQ, flags, length and TTL), or data and FINs below
// RCV.NXT, are the target's retransmissions; pure ACKs and a prompt SYN-ACK
// to a repeated SYN are answers.
func TestIsRetransmission(t *testing.T) {
	t0 := time.Now()
	heard := []heardSeg{
		{seq: 1000, flags: craft.FlagSYN | craft.FlagACK, ttl: 63, at: t0},
		{seq: 2001, flags: craft.FlagACK, ttl: 63, at: t0},
	}
	rep := func(seq uint32, f craft.Flags, n int, ttl uint8, after time.Duration) Reply {
		return Reply{Seq: seq, Flags: f.String(), flags: f, Len: n, TTL: ttl, at: t0.Add(after)}
	}
	tests := []struct {
		name              string
		r                 Reply
		connected, probeS bool
		want              bool
		// sent is when our SYN copy went, after t0.
		sent time.Duration
	}{
		{"SYN-ACK again after 1 s", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 63, time.Second), true, false, true, 0},
		{"SYN-ACK again with another TTL (a proxy's, translated)", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 64, time.Second), true, false, true, 0},
		{"SYN-ACK at IRS not heard", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 63, time.Second), true, false, true, 0},
		{"SYN-ACK at once, answering our SYN", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 63, 5*time.Millisecond), true, true, false, 0},
		{"SYN-ACK after 1 s, our SYN at once", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 63, time.Second), true, true, true, 0},
		{"SYN-ACK at 1.3 s, our SYN copy at 1.2 s", rep(1000, craft.FlagSYN|craft.FlagACK, 0, 64, 1300*time.Millisecond), true, true, false, 1200 * time.Millisecond},
		{"pure ACK like an earlier one", rep(2001, craft.FlagACK, 0, 63, 0), true, false, false, 0},
		{"FIN below RCV.NXT", rep(2000, craft.FlagFIN|craft.FlagACK, 0, 63, 0), true, false, true, 0},
		{"data below RCV.NXT", rep(1990, craft.FlagPSH|craft.FlagACK, 10, 63, 0), true, false, true, 0},
		{"data at RCV.NXT", rep(2001, craft.FlagPSH|craft.FlagACK, 10, 63, 0), true, false, false, 0},
		{"RST", rep(2001, craft.FlagRST, 0, 63, 0), true, false, false, 0},
		{"a proxy's SYN-ACK with a new ISN below RCV.NXT", rep(500, craft.FlagSYN|craft.FlagACK, 0, 64, time.Second), true, false, false, 0},
		{"no connection", rep(1990, craft.FlagPSH|craft.FlagACK, 10, 63, 0), false, false, false, 0},
	}
	for _, tt := range tests {
		h := heard
		if tt.name == "SYN-ACK at IRS not heard" {
			h = heard[1:]
		}
		var synSent time.Time
		if tt.probeS {
			synSent = t0.Add(tt.sent)
		}
		if got := isRetransmission(&tt.r, h, 1000, 2001, tt.connected, synSent); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestClassifyRetransmissionNotReject: the case: the stateful path
// drops our ACK, and the target's retransmitted SYN-ACK comes back; with a
// capture or without, the row is never a reject.
func TestClassifyRetransmissionNotReject(t *testing.T) {
	synack := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 63, Flags: "S.", flags: craft.FlagSYN | craft.FlagACK, Retransmission: true}
	for _, capture := range []bool{true, false} {
		o := observation{capture: capture, targetTTL: 63, answers: true, replies: []Reply{synack}, copies: 3}
		var c Cell
		classify(&o, &c)
		if c.Outcome != Dropped || !strings.Contains(c.Detail, "retransmission") {
			t.Errorf("capture %v: %s (%s), want dropped, the retransmission named", capture, c.Outcome, c.Detail)
		}
	}
}

// TestClassifyUnprompted: with a capture, a FIN the target sent on its own
// while the probe never arrived (its app closed) is no answer: dropped.
func TestClassifyUnprompted(t *testing.T) {
	fin := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 63, Flags: "F.", flags: craft.FlagFIN | craft.FlagACK, Unprompted: true}
	o := observation{capture: true, targetTTL: 63, replies: []Reply{fin}, copies: 3}
	var c Cell
	classify(&o, &c)
	if c.Outcome != Dropped || !strings.Contains(c.Detail, "unprompted") {
		t.Errorf("%s (%s), want dropped, the FIN named unprompted", c.Outcome, c.Detail)
	}
}

// TestClassifyProxied: a SYN-ACK to our SYN from the proxy found by the
// baseline is proxied; the same SYN-ACK to a SYN-ACK probe is answered by a
// middlebox; the proxy's RST is a reject.
func TestClassifyProxied(t *testing.T) {
	mb := &Middlebox{Hop: 1, Addr: netip.MustParseAddr("198.18.0.254"), TTL: 64, Proxied: true}
	proxy := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 64, Flags: "S.", flags: craft.FlagSYN | craft.FlagACK}
	rst := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 64, Flags: "R", flags: craft.FlagRST}
	for _, tt := range []struct {
		probe craft.Flags
		r     Reply
		want  Outcome
	}{
		{craft.FlagSYN, proxy, Proxied},
		{craft.FlagSYN | craft.FlagACK, proxy, AnsweredByMiddlebox},
		{craft.FlagACK, rst, Rejected},
	} {
		for _, capture := range []bool{true, false} {
			o := observation{capture: capture, targetTTL: 63, answers: true, probeFlags: tt.probe, mb: mb, replies: []Reply{tt.r}}
			var c Cell
			classify(&o, &c)
			if c.Outcome != tt.want || c.HopsShort != 1 {
				t.Errorf("probe %s, reply %s, capture %v: %s %d hops short (%s), want %s 1 hop short", tt.probe, tt.r, capture, c.Outcome, c.HopsShort, c.Detail, tt.want)
			}
			if tt.want != Rejected && !strings.Contains(c.Detail, "hop 1 (198.18.0.254)") {
				t.Errorf("detail %q does not name the hop", c.Detail)
			}
		}
	}
}

// TestJudgeUndecided: a row whose state could not be reached, or whose
// silence decides nothing, makes --expect inconclusive (exit 1), never
// skipped; a row left out for want of a port does not decide the matrix.
func TestJudgeUndecided(t *testing.T) {
	mk := func(cells ...Cell) *Matrix {
		m := &Matrix{}
		for _, c := range cells {
			m.Cells = append(m.Cells, c)
		}
		return m
	}
	syn := Cell{State: StateNone, Probe: "SYN with options", Outcome: Delivered}
	notRun := Cell{State: StateEstablished, Probe: "data in window", Outcome: NotRun, Detail: "could not reach established: SYN → SYN,ACK: no answer after 3 tries"}
	noPort := Cell{State: StateTimeWait, Probe: "SYN to the TIME_WAIT 4-tuple", Outcome: NotRun, portMissing: true}
	und := Cell{State: StateNone, Probe: "ACK without a connection", Outcome: Undecided, Detail: "silence on a lossy path"}
	for _, tt := range []struct {
		m    *Matrix
		want walk.Verdict
	}{
		{mk(syn, notRun), walk.Inconclusive},
		{mk(syn, und), walk.Inconclusive},
		{mk(syn, noPort), walk.Pass},
		{mk(syn), walk.Pass},
	} {
		tt.m.Judge(PolicyStateful)
		if tt.m.Verdict != tt.want {
			t.Errorf("%+v: verdict %s, want %s", tt.m.Cells, tt.m.Verdict, tt.want)
		}
	}
}

// TestUndecideOnLoss: without a capture, a drop inferred from silence on a
// path that lost setup segments is undecided unless so many copies went
// unanswered that loss cannot explain it; on a clean path it stands.
func TestUndecideOnLoss(t *testing.T) {
	for _, tt := range []struct {
		lossy, exchanges, copies int
		want                     Outcome
	}{
		{0, 30, 3, Dropped},
		{2, 30, 3, Undecided},  // p ≈ 0.07: 3e-4
		{2, 30, 9, Dropped},    // 4e-11
		{12, 30, 9, Undecided}, // p = 0.4: 3e-4
	} {
		m := &Matrix{Lossy: tt.lossy, exchanges: tt.exchanges,
			Cells: []Cell{{State: StateNone, Probe: "ACK without a connection", Outcome: Dropped, copies: tt.copies}}}
		undecideOnLoss(m)
		if m.Cells[0].Outcome != tt.want {
			t.Errorf("%+v: %s, want %s", tt, m.Cells[0].Outcome, tt.want)
		}
	}
}

// TestExplain: the patterns are named only when the rest of the matrix
// shows the kind of path they belong to.
func TestExplain(t *testing.T) {
	cell := func(s State, p string, o Outcome) Cell { return Cell{State: s, Probe: p, Outcome: o} }
	loose := &Matrix{Cells: []Cell{
		cell(StateNone, "SYN to a blocked port", Dropped), cell(StateNone, "ACK without a connection", Delivered),
		cell(StateNone, "FIN scan", Dropped), cell(StateEstablished, "data out of window", Dropped),
	}}
	explain(loose)
	if e := loose.Cells[1].Explanation; e == nil || e != &loosePickup {
		t.Errorf("loose: ACK explanation %v, want loose pickup", e)
	}
	stateless := &Matrix{Cells: []Cell{
		cell(StateNone, "SYN to a blocked port", Dropped), cell(StateNone, "unsolicited SYN-ACK", Delivered),
		cell(StateNone, "ACK without a connection", Delivered), cell(StateNone, "FIN scan", Delivered),
	}}
	explain(stateless)
	if e := stateless.Cells[2].Explanation; e != &statelessAccept || stateless.Cells[1].Explanation != nil {
		t.Errorf("stateless: explanations %v, %v: want stateless accept once, on the ACK", stateless.Cells[1].Explanation, e)
	}
	noInvalid := &Matrix{Cells: []Cell{
		cell(StateNone, "FIN scan", Dropped), cell(StateEstablished, "ACK out of window", Delivered),
	}}
	explain(noInvalid)
	if e := noInvalid.Cells[1].Explanation; e != &missingInvalidDrop {
		t.Errorf("invalid: explanation %v, want missing ct state invalid drop", e)
	}
	open := &Matrix{Cells: []Cell{cell(StateNone, "ACK without a connection", Delivered), cell(StateNone, "FIN scan", Delivered)}}
	explain(open)
	for _, c := range open.Cells {
		if c.Explanation != nil {
			t.Errorf("open path: %s explained as %s", c.Probe, c.Explanation.Pattern)
		}
	}
}
