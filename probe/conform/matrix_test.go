package conform

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

func TestChecksAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if seen[c.ID] {
			t.Errorf("%s: ID twice", c.ID)
		}
		seen[c.ID] = true
		if c.ID != c.State.String()+"/"+c.Event {
			t.Errorf("%s: ID is not STATE/event (%s, %s)", c.ID, c.State, c.Event)
		}
		if !strings.HasPrefix(c.Rule, "RFC ") || c.Summary == "" || c.run == nil {
			t.Errorf("%s: rule %q, summary %q, run set %v: every check names its RFC, says what it expects and runs", c.ID, c.Rule, c.Summary, c.run != nil)
		}
		if got, ok := Lookup(c.ID); !ok || got.ID != c.ID {
			t.Errorf("Lookup(%q) = %v, %v", c.ID, got.ID, ok)
		}
	}
	// The spec's matrix (../shared/spec/tcp-states.md §3) and the issue's
	// extra cells must all be there.
	for _, id := range []string{
		"SYN_RCVD/bad-ack", "SYN_RCVD/syn-retransmit", "CLOSE_WAIT/rst-rcv-nxt-minus-1",
		"TIME_WAIT/syn-higher-seq", "TIME_WAIT/syn-lower-seq", "LISTEN/options-offered", "LISTEN/options-not-offered",
	} {
		if !seen[id] {
			t.Errorf("no check %s", id)
		}
	}
	for _, st := range []string{"ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK"} {
		for _, ev := range []string{"rst-exact", "rst-in-window", "rst-out-of-window", "syn", "ack-above-snd-nxt", "ack-below-snd-una"} {
			if !seen[st+"/"+ev] {
				t.Errorf("no check %s/%s", st, ev)
			}
		}
	}
	for _, st := range []string{"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"} {
		for _, ev := range []string{"data-after-fin", "fin-retransmit"} {
			if !seen[st+"/"+ev] {
				t.Errorf("no check %s/%s", st, ev)
			}
		}
	}
	if _, ok := Lookup("NOSUCH/check"); ok {
		t.Error("Lookup found a check that does not exist")
	}
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		checks   int // -1: all
		meas     []string
		err      string
	}{
		{name: "all", checks: -1, meas: Measurements()},
		{name: "one state", patterns: []string{"TIME_WAIT/*"}, checks: 7, meas: []string{MeasureTWFingerprint}},
		{name: "one event everywhere", patterns: []string{"*/syn"}, checks: 6},
		{name: "two patterns", patterns: []string{"SYN_RCVD/bad-ack", "FIN_WAIT_1/*"}, checks: 7, meas: []string{MeasureFINBackoff}},
		{name: "a measurement only", patterns: []string{"LISTEN/syn-cookies"}, checks: 0, meas: []string{MeasureSynCookies}},
		{name: "nothing matches", patterns: []string{"NOSUCH/*"}, err: "no check matches"},
		{name: "malformed", patterns: []string{"["}, err: "syntax error in pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, meas, err := Select(tt.patterns)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.checks
			if want < 0 {
				want = len(Checks())
			}
			if len(checks) != want {
				t.Errorf("%d checks, want %d", len(checks), want)
			}
			if diff := cmp.Diff(tt.meas, meas); diff != "" {
				t.Errorf("measurements (-want +got):\n%s", diff)
			}
		})
	}
}

// seg makes a recorded remote segment for matching.
func seg(flags craft.Flags, seq, ack uint32) *walk.Reply {
	return &walk.Reply{Seg: &walk.Segment{Dir: walk.In, Flags: flags, Seq: tcpconn.Seq(seq), Ack: tcpconn.Seq(ack)}, Flags: flags}
}

func TestOutcomeMatches(t *testing.T) {
	tc := tcb{state: result.Established, sndNxt: 1000, rcvNxt: 5000}
	ack := seg(craft.FlagACK, 1000, 5000)
	wrongAck := seg(craft.FlagACK, 1000, 5001)
	rst := seg(craft.FlagRST, 5000, 0)
	tests := []struct {
		name  string
		o     outcome
		reply *walk.Reply
		end   endState
		want  bool
	}{
		{"challenge ACK, kept", ackKept, ack, endKept, true},
		{"challenge ACK with a wrong ACK field", ackKept, wrongAck, endKept, false},
		{"challenge ACK, but then closed", ackKept, ack, endClosed, false},
		{"nothing where an ACK is due", ackKept, nil, endKept, false},
		{"silence, closed", silentClosed, nil, endClosed, true},
		{"silence wanted, an ACK came", silentClosed, ack, endClosed, false},
		{"silence, but kept", silentClosed, nil, endKept, false},
		{"silence, kept", silentKept, nil, endKept, true},
		{"ACK or nothing: nothing", ackOrNothing, nil, endKept, true},
		{"ACK or nothing: the ACK", ackOrNothing, ack, endKept, true},
		{"ACK or nothing: a RST", ackOrNothing, rst, endKept, false},
		{"fate unknown", silentKept, nil, endNone, false},
		{"variables moved", silentKept, nil, endChanged, false},
		{"PSH is ignored", ackKept, seg(craft.FlagACK|craft.FlagPSH, 1000, 5000), endKept, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.matches(tc, tt.reply, tt.end); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOutcomeDescribe(t *testing.T) {
	tc := tcb{sndNxt: 1000, rcvNxt: 5000}
	for _, tt := range []struct {
		o    outcome
		want string
	}{
		{ackKept, "<SEQ=1000><ACK=5000><CTL=ACK>, then connection kept"},
		{silentClosed, "no reply, then CLOSED"},
		{ackOrNothing, "<SEQ=1000><ACK=5000><CTL=ACK> or no reply, then connection kept"},
	} {
		if got := tt.o.describe(tc); got != tt.want {
			t.Errorf("describe = %q, want %q", got, tt.want)
		}
	}
}

// TestDeviations: the named Linux behaviours the spec lists are known, in
// the states where they apply, and no deviation is also what the RFC
// expects (it would never be reported).
func TestDeviations(t *testing.T) {
	want := map[string]string{
		"SYN_RCVD/syn-retransmit":        "synack-on-retransmitted-syn",
		"CLOSE_WAIT/rst-rcv-nxt-minus-1": "rst-at-rcv-nxt-minus-1-accepted",
		"FIN_WAIT_2/rst-out-of-window":   "acks-out-of-window-rst",
	}
	tc := tcb{sndNxt: 1000, rcvNxt: 5000}
	for _, st := range rows() {
		for _, ev := range st.events {
			id := st.name.String() + "/" + ev.name
			var names []string
			for _, d := range ev.deviations(st.name) {
				names = append(names, d.name)
				if d.why == "" {
					t.Errorf("%s: deviation %s does not say where it comes from", id, d.name)
				}
				if d.level != levelMUST && d.level != levelSHOULD {
					t.Errorf("%s: deviation %s departs from %q, want MUST or SHOULD", id, d.name, d.level)
				}
				if len(d.seenOn) == 0 {
					t.Errorf("%s: deviation %s lists no stack it was seen on", id, d.name)
				}
				if strings.Contains(d.name, "linux") {
					t.Errorf("%s: deviation %s is named by a stack, not by its behaviour", id, d.name)
				}
				for _, c := range ev.choices(st.name) {
					if c.outcome.describe(tc) == d.outcome.describe(tc) {
						t.Errorf("%s: deviation %s is an outcome the RFC allows (%s)", id, d.name, c.note)
					}
				}
				if d.outcome.silence == ev.rfc.silence && d.outcome.closed == ev.rfc.closed && len(d.outcome.replies) == len(ev.rfc.replies) &&
					d.outcome.describe(tc) == ev.rfc.describe(tc) {
					t.Errorf("%s: deviation %s is what the RFC expects", id, d.name)
				}
			}
			if w, ok := want[id]; ok && !strings.Contains(strings.Join(names, " "), w) {
				t.Errorf("%s: deviations %v, want %s among them", id, names, w)
			}
		}
	}
}

func TestReportTallies(t *testing.T) {
	m := &walk.Result{Scenario: MeasureSynAckSchedule}
	rep := Report{
		Results: []walk.Result{
			{Scenario: "a", Verdict: walk.Pass, Duration: time.Second},
			{Scenario: "b", Verdict: walk.Deviation, Duration: 2 * time.Second,
				Checks: []walk.Check{{Verdict: walk.Pass}, {Verdict: walk.Deviation, Deviation: "some-deviation"}}},
			{Scenario: "c", Verdict: walk.Fail},
			{Scenario: "d", Verdict: walk.Skipped},
			{Scenario: "e", Verdict: walk.Inconclusive},
			{Scenario: "f", Verdict: walk.Verdict(200)},
		},
		Measurements: []Measurement{{ID: MeasureSynAckSchedule, Duration: 3 * time.Second, Result: m}, {ID: MeasureTWFingerprint},
			{ID: MeasureFINBackoff, Result: m, Sessions: []walk.Result{*m, {Scenario: MeasureFINBackoff}, {Scenario: MeasureFINBackoff}}}},
	}
	if diff := cmp.Diff(Counts{Pass: 1, Deviation: 1, Fail: 1, Inconclusive: 2, Skipped: 1}, rep.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if id, d := rep.Longest(); id != MeasureSynAckSchedule || d != 3*time.Second {
		t.Errorf("longest %s %v, want %s 3s", id, d, MeasureSynAckSchedule)
	}
	if got := rep.AllResults(); len(got) != 10 || got[6].Scenario != MeasureSynAckSchedule || got[9].Scenario != MeasureFINBackoff {
		t.Errorf("AllResults: %d results, want the 6 checks, the schedule's session and the 3 of the FIN backoff", len(got))
	}
	if diff := cmp.Diff([]string{"some-deviation"}, Deviations(rep.Results[1])); diff != "" {
		t.Errorf("deviations (-want +got):\n%s", diff)
	}
	if d := Deviations(rep.Results[0]); d != nil {
		t.Errorf("deviations of a pass: %v", d)
	}
}

func TestMeasurementTexts(t *testing.T) {
	at := time.Unix(100, 0)
	g := gaps([]time.Time{at, at.Add(time.Second), at.Add(3 * time.Second)})
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, g); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
	if got := intervalsText(g); got != "1.00s, 2.00s" {
		t.Errorf("intervalsText = %q", got)
	}
	if g := gaps([]time.Time{at}); g != nil {
		t.Errorf("gaps of one time: %v, want none", g)
	}

	for _, tt := range []struct {
		name      string
		off       uint32
		seen      bool
		ok        bool
		substring string
	}{
		{"linux", linuxTWOffset, true, true, "+ 65537 (Linux)"},
		{"other", 1 << 20, true, true, "not Linux's"},
		{"challenge ACK", 0, true, true, "does not reopen"},
		{"not run", 0, false, false, "not measured"},
	} {
		sh := &shared{twOffset: tt.off, twSeen: tt.seen}
		m := twFingerprint(sh)
		if m.OK != tt.ok || !strings.Contains(m.Value, tt.substring) {
			t.Errorf("%s: fingerprint %v %q, want %v and %q", tt.name, m.OK, m.Value, tt.ok, tt.substring)
		}
	}

	for _, tt := range []struct {
		name         string
		sack, ws     bool
		err          error
		retransmit   int
		offered      int // options-offered's SYN,ACK (optBit…), -1 unknown
		ok           bool
		valuePrefix  string
		valueContain string
	}{
		{"no cookies", true, true, nil, 1, optBitSACK | optBitWS, true, "not in use", "retransmitted"},
		{"options dropped, sent otherwise, no retransmission", false, false, nil, 0, optBitSACK | optBitWS | optBitTS, true, "in use", "dropped"},
		// A stack that implements neither SACK nor window scale drops
		// them always: that is no cookie (the old rule said "in use").
		{"a stack without SACK and window scale", false, false, nil, 0, 0, true, "no sign of them", "always sends"},
		// A retransmitted SYN,ACK comes from state a cookie does not keep
		// (the old rule said "in use" while printing it).
		{"options dropped, but retransmitted", false, false, nil, 1, optBitSACK | optBitWS, true, "not in use", "retransmitted"},
		{"no retransmission alone", true, true, nil, 0, optBitSACK | optBitWS, true, "no sign of them", "not retransmitted"},
		{"nothing known", false, false, errProbe, -1, -1, false, "not measured", "option probe failed"},
		{"probe failed, schedule known", false, false, errProbe, 1, -1, true, "not in use", "retransmitted"},
	} {
		sh := &shared{synAckRetransmitted: tt.retransmit, synAckOptions: tt.offered}
		m := synCookies(tt.sack, tt.ws, tt.err, sh, time.Millisecond)
		if m.OK != tt.ok || !strings.HasPrefix(m.Value, tt.valuePrefix) || !strings.Contains(m.Value, tt.valueContain) {
			t.Errorf("%s: %v %q, want %v, %q…%q", tt.name, m.OK, m.Value, tt.ok, tt.valuePrefix, tt.valueContain)
		}
	}
}

var errProbe = errors.New("no SYN,ACK")

// TestGuardCookies: with SYN cookies in use no SYN_RCVD check is judged
// (its SYN,ACK may be a cookie's), and SYNs sent again are noticed.
func TestGuardCookies(t *testing.T) {
	resent := []walk.Segment{{Dir: walk.Out, Flags: craft.FlagSYN}, {Dir: walk.Out, Flags: craft.FlagSYN}, {Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK}}
	once := []walk.Segment{{Dir: walk.Out, Flags: craft.FlagSYN}, {Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK}, {Dir: walk.Out, Flags: craft.FlagSYN}}
	rep := Report{
		Results: []walk.Result{
			{Scenario: "SYN_RCVD/bad-ack", Verdict: walk.Pass, Segments: once},
			{Scenario: "ESTABLISHED/syn", Verdict: walk.Pass, Segments: resent},
		},
		Measurements: []Measurement{{ID: MeasureSynCookies, OK: true, Value: "in use: options dropped"}},
	}
	notes := guardCookies(&rep, 4)
	if len(notes) != 2 || !strings.Contains(notes[0], "1 of 2 checks sent their SYN again") || !strings.Contains(notes[1], "SYN cookies are in use") {
		t.Errorf("notes %q", notes)
	}
	if v := rep.Results[0].Verdict; v != walk.Inconclusive {
		t.Errorf("SYN_RCVD check with cookies in use: %s, want inconclusive", v)
	}
	if v := rep.Results[1].Verdict; v != walk.Pass {
		t.Errorf("ESTABLISHED check: %s, want its own verdict kept", v)
	}
	rep.Measurements[0].Value = "not in use: retransmitted"
	rep.Results[0].Verdict = walk.Pass
	if notes := guardCookies(&rep, 4); len(notes) != 1 || rep.Results[0].Verdict != walk.Pass {
		t.Errorf("without cookies: notes %q, verdict %s", notes, rep.Results[0].Verdict)
	}
}

// TestTailLoss: a first interval the second does not double is a probe
// before the RTO; a doubling schedule from the first shows none.
func TestTailLoss(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tt := range []struct {
		gaps []time.Duration
		want string
	}{
		{ms(210, 210, 420), "seen"},        // Linux: TLP, then RTOs 0.2, 0.4
		{ms(20, 200, 400), "seen"},         // a probe after 2·SRTT
		{ms(1000, 2000, 4000), "not seen"}, // RTOs only
		{ms(1000), "not measured"},
	} {
		if got := tailLoss(Measurement{OK: true, Intervals: tt.gaps}); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%v: %q, want %s", tt.gaps, got, tt.want)
		}
	}
}

// TestRFCAlternatives: where the RFC allows more than one answer, the
// answer of a stack without the optional mechanism passes, though the old,
// Linux-written outcome (ev.rfc alone) does not match it.
func TestRFCAlternatives(t *testing.T) {
	tc := tcb{state: result.Established, sndNxt: 1000, rcvNxt: 5000}
	rstACK := seg(craft.FlagRST|craft.FlagACK, 0, 5101)
	for _, tt := range []struct {
		ev       event
		reply    *walk.Reply
		end      endState
		optional string
	}{
		{evRSTIn, nil, endClosed, OptRFC5961RST},  // a valid reset without RFC 5961
		{evSYN, rstACK, endClosed, OptRFC5961SYN}, // RFC 793's reset
		{evACKBelow, nil, endKept, OptRFC5961ACK}, // a duplicate ACK ignored
	} {
		if tt.ev.rfc.matches(tc, tt.reply, tt.end) {
			t.Errorf("%s: the old outcome matches; the test shows nothing", tt.ev.name)
		}
		var chk walk.Check
		if !judgeChoice(&chk, tt.ev.choices(tc.state), tc, tt.reply, tt.end) || chk.Verdict != walk.Pass {
			t.Errorf("%s: the RFC's alternative does not pass", tt.ev.name)
		}
		if chk.Optional != tt.optional || chk.Has || !strings.HasPrefix(chk.Reason, "not implemented (optional)") {
			t.Errorf("%s: optional %q has %v reason %q; want %q not implemented", tt.ev.name, chk.Optional, chk.Has, chk.Reason, tt.optional)
		}
	}
}

// TestDoubling: a SYN,ACK schedule is believed only when its RTO doubles
// (RFC 6298 §5.5): a 3 s stack's 3, 6 passes; a 1 s stack whose first
// retransmission was lost reads 3, 4 and does not (the adaptive wait that
// lets a 3 s stack be measured would otherwise take it for one).
func TestDoubling(t *testing.T) {
	s := func(v ...float64) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x*float64(time.Second)))
		}
		return out
	}
	for _, tt := range []struct {
		gaps []time.Duration
		want bool
	}{
		{s(1.01, 2.02), true}, {s(3.03, 6.04), true}, {s(1, 2, 4, 8, 16), true}, {s(1), true}, {nil, true},
		{s(3.03, 4.10), false}, {s(1.02, 6.1), false}, {s(1, 1), false},
	} {
		if got := doubling(tt.gaps); got != tt.want {
			t.Errorf("doubling(%v) = %v, want %v", tt.gaps, got, tt.want)
		}
	}
}
