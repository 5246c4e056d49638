package report

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

var (
	t0      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ours    = netip.MustParseAddrPort("198.18.0.1:40000")
	theirs  = netip.MustParseAddrPort("198.18.0.2:7001")
	synOpts = []string{"mss 1460", "sackOK", "TS val 3141592653 ecr 0", "nop", "wscale 7"}
	ansiRE  = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// ms is a time d milliseconds after t0.
func at(d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Millisecond))) }

// handshakeWalk is a passing three-way handshake confirmed by KA1, with an
// oracle that agrees.
func handshakeWalk() walk.Result {
	return walk.Result{
		Scenario: "handshake", Summary: "LISTEN → SYN_RCVD → ESTABLISHED: the three-way handshake (§3.5)",
		Target: theirs, Local: ours, Start: t0, Duration: 12345 * time.Microsecond, Verdict: walk.Pass, Oracle: true,
		Segments: []walk.Segment{
			{At: at(0.5), Dir: walk.Out, Flags: craft.FlagSYN, Seq: 1000, Options: synOpts, LocalState: result.SynSent, RemoteState: result.Listen},
			{At: at(0.9), Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK, Seq: 5000, Ack: 1001, RelAck: 1, Options: synOpts, LocalState: result.SynSent, RemoteState: result.SynRcvd},
			{At: at(1.2), Dir: walk.Out, Flags: craft.FlagACK, Seq: 1001, Ack: 5001, RelSeq: 1, RelAck: 1, LocalState: result.Established, RemoteState: result.SynRcvd},
			{At: at(1.3), Dir: walk.Out, Flags: craft.FlagACK, Seq: 1000, Ack: 5001, RelSeq: 0, RelAck: 1, Len: 1, Note: "KA1", LocalState: result.Established, RemoteState: result.SynRcvd},
			{At: at(1.4), Dir: walk.In, Flags: craft.FlagACK, Seq: 5001, Ack: 1001, RelSeq: 1, RelAck: 1, LocalState: result.Established, RemoteState: result.Established},
		},
		Checks: []walk.Check{
			{Name: "LISTEN → SYN_RCVD", Rule: "RFC 9293 §3.10.7.2 (LISTEN: SYN → SYN,ACK <SEQ=ISS><ACK=RCV.NXT>)", Verdict: walk.Pass,
				Expected: "<SEQ=*><ACK=1001><CTL=SYN,ACK>", Received: "<SEQ=5000><ACK=1001><CTL=SYN,ACK>", Wire: result.SynRcvd, Kernel: result.SynRcvd},
			{Name: "SYN_RCVD → ESTABLISHED", Rule: "RFC 9293 §3.10.7.4 (SYN-RECEIVED: acceptable ACK → ESTABLISHED)", Verdict: walk.Pass,
				Expected: "<SEQ=5001><ACK=1001><CTL=ACK>", Received: "<SEQ=5001><ACK=1001><CTL=ACK>", Wire: result.Established, Kernel: result.Established},
		},
	}
}

// closeWalk is a four-way close seen from the passive side: the remote's
// FIN is retransmitted, KA1 confirms LAST_ACK, an ICMP error arrives, and
// the last check fails with the kernel disagreeing.
func closeWalk() walk.Result {
	return walk.Result{
		Scenario: "passive-close", Summary: "we FIN first: ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSED",
		Target: theirs, Local: ours, Start: t0, Duration: 2*time.Second + 500*time.Millisecond, Verdict: walk.Fail,
		Oracle: true, Disagreements: 1,
		Segments: []walk.Segment{
			{At: at(10), Dir: walk.Out, Flags: craft.FlagFIN | craft.FlagACK, RelSeq: 1, RelAck: 1, LocalState: result.FinWait1, RemoteState: result.Established},
			{At: at(10.2), Dir: walk.In, Flags: craft.FlagACK, RelSeq: 1, RelAck: 2, LocalState: result.FinWait2, RemoteState: result.CloseWait},
			{At: at(20), Dir: walk.In, Flags: craft.FlagFIN | craft.FlagACK, RelSeq: 1, RelAck: 2, LocalState: result.FinWait2, RemoteState: result.LastAck},
			{At: at(220), Dir: walk.In, Flags: craft.FlagFIN | craft.FlagACK, RelSeq: 1, RelAck: 2, Retransmission: true, Note: "retransmission", LocalState: result.FinWait2, RemoteState: result.LastAck},
			{At: at(230), Dir: walk.Out, Flags: craft.FlagACK, RelSeq: 1, RelAck: 1, Len: 1, Note: "KA1", LocalState: result.FinWait2, RemoteState: result.LastAck},
			{At: at(230.4), Dir: walk.In, Flags: craft.FlagACK, RelSeq: 2, RelAck: 2, LocalState: result.FinWait2, RemoteState: result.LastAck},
			{At: at(240), Dir: walk.Out, Flags: craft.FlagACK, RelSeq: 2, RelAck: 2, Note: "ACK of FIN", LocalState: result.TimeWait, RemoteState: result.Closed},
			{At: at(250), Dir: walk.In, ICMP: "198.18.0.2 protocol 6 port 7001 unreachable", LocalState: result.TimeWait, RemoteState: result.Closed},
		},
		Checks: []walk.Check{
			{Name: "ESTABLISHED → CLOSE_WAIT", Rule: "RFC 9293 §3.10.7.4 (eighth: FIN in ESTABLISHED → CLOSE-WAIT, ACK it)", Verdict: walk.Pass,
				Wire: result.CloseWait, Kernel: result.CloseWait},
			{Name: "LAST_ACK: FIN sent, ours acknowledged", Rule: "RFC 9293 §3.8.4 / §3.10.7.4 (unacceptable segment → <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>)",
				Verdict: walk.Pass, Wire: result.LastAck, Kernel: result.LastAck},
			{Name: "LAST_ACK → CLOSED: no reply to the ACK of its FIN", Rule: "RFC 9293 §3.10.7.4 (LAST-ACK: ACK of our FIN → CLOSED)",
				Expected: "nothing", Received: "<SEQ=2>(ICMP) port unreachable", Verdict: walk.Fail,
				Reason: "the remote sent a segment it must not send here", Wire: result.Closed, Kernel: result.LastAck, Disagree: true},
			{Name: "CLOSED: ACK → RST", Rule: "RFC 9293 §3.10.7.1 (CLOSED: ACK → <SEQ=SEG.ACK><CTL=RST>)", Expected: "<SEQ=2><CTL=RST>",
				Received: "nothing", Verdict: walk.Inconclusive, Reason: "no reply after 3 tries, 200ms apart"},
		},
	}
}

func skippedWalk() walk.Result {
	return walk.Result{Scenario: "syn-sent", Summary: "remote client: SYN_SENT", Target: theirs, Verdict: walk.Skipped,
		Reason: "the remote host must connect to us: only the lab's client can be asked to"}
}

func ladder(t *testing.T, r walk.Result, o LadderOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteLadder(&b, r, o); err != nil {
		t.Fatalf("WriteLadder: %v", err)
	}
	return b.String()
}

// arrows returns the diagram's arrow lines, each reduced to its direction
// and label: "> S seq 0 len 0 [...]" or "< S. seq 0 ack 1 ...", "~ ICMP ...".
func arrows(s string) []string {
	var out []string
	re := regexp.MustCompile(`\|(-- (.*?) -+->|<-- (.*?) -+|<~~ (.*?) ~+)\|`)
	for _, ln := range strings.Split(s, "\n") {
		m := re.FindStringSubmatch(ln)
		switch {
		case m == nil:
		case m[2] != "":
			out = append(out, "> "+m[2])
		case m[3] != "":
			out = append(out, "< "+m[3])
		default:
			out = append(out, "~ "+m[4])
		}
	}
	return out
}

// stateColumns returns, per arrow line, the local and remote state printed
// next to it ("" when none).
func stateColumns(s string) [][2]string {
	var out [][2]string
	re := regexp.MustCompile(`^\s*[+-]\d+\.\d{3}\s+(\S*)\s*\|.*\|\s*(\S*)$`)
	for _, ln := range strings.Split(s, "\n") {
		if m := re.FindStringSubmatch(ln); m != nil {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

func TestLadderArrows(t *testing.T) {
	tests := []struct {
		name string
		r    walk.Result
		want []string
	}{
		// At 100 columns the SYN options are abbreviated, not cut.
		{"handshake", handshakeWalk(), []string{
			"> S seq 0 len 0 [mss 1460,sackOK,TS,wscale 7]",
			"< S. seq 0 ack 1 len 0 [mss 1460,sackOK,TS,wscale 7]",
			"> . seq 1 ack 1 len 0",
			"> . seq 0 ack 1 len 1 (KA1)",
			"< . seq 1 ack 1 len 0",
		}},
		{"close", closeWalk(), []string{
			"> F. seq 1 ack 1 len 0",
			"< . seq 1 ack 2 len 0",
			"< F. seq 1 ack 2 len 0",
			"< F. seq 1 ack 2 len 0 (retransmission)",
			"> . seq 1 ack 1 len 1 (KA1)",
			"< . seq 2 ack 2 len 0",
			"> . seq 2 ack 2 len 0 (ACK of FIN)",
			"~ ICMP 198.18.0.2 protocol 6 port 7001 unreachable",
		}},
		{"skipped", skippedWalk(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ladder(t, tt.r, LadderOptions{Width: 100})
			if diff := cmp.Diff(tt.want, arrows(got)); diff != "" {
				t.Errorf("arrows (-want +got):\n%s\n%s", diff, got)
			}
		})
	}
}

func TestLadderStatesOnlyWhenChanged(t *testing.T) {
	tests := []struct {
		name string
		r    walk.Result
		want [][2]string
	}{
		{"handshake", handshakeWalk(), [][2]string{
			{"SYN_SENT", "LISTEN"}, {"", "SYN_RCVD"}, {"ESTABLISHED", ""}, {"", ""}, {"", "ESTABLISHED"},
		}},
		{"close", closeWalk(), [][2]string{
			{"FIN_WAIT_1", "ESTABLISHED"}, {"FIN_WAIT_2", "CLOSE_WAIT"}, {"", "LAST_ACK"}, {"", ""},
			{"", ""}, {"", ""}, {"TIME_WAIT", "CLOSED"}, {"", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ladder(t, tt.r, LadderOptions{})
			if diff := cmp.Diff(tt.want, stateColumns(got)); diff != "" {
				t.Errorf("states (-want +got):\n%s\n%s", diff, got)
			}
		})
	}
}

func TestLadderLayout(t *testing.T) {
	got := ladder(t, closeWalk(), LadderOptions{})
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	// Heads: ours left of theirs, on one line.
	head := -1
	for i, ln := range lines {
		if strings.Contains(ln, "tcpwalk "+ours.String()) {
			head = i
			if l, r := strings.Index(ln, "tcpwalk"), strings.Index(ln, theirs.String()); r < l {
				t.Errorf("target head left of ours: %q", ln)
			}
		}
	}
	if head < 0 {
		t.Fatalf("no host heads in\n%s", got)
	}
	// Both host lines are straight: every arrow line has its bars in the
	// same two columns.
	var bars [2]int
	for _, ln := range lines {
		if !strings.Contains(ln, "|") {
			continue
		}
		rs := []rune(ln)
		l, r := -1, -1
		for i, c := range rs {
			if c == '|' {
				if l < 0 {
					l = i
				}
				r = i
			}
		}
		if bars == [2]int{} {
			bars = [2]int{l, r}
		} else if bars != [2]int{l, r} {
			t.Errorf("bars at %d,%d, want %d,%d: %q", l, r, bars[0], bars[1], ln)
		}
	}
	// Times are milliseconds since the walk began.
	for _, want := range []string{"+10.000", "+230.400", "+250.000"} {
		if !strings.Contains(got, want) {
			t.Errorf("no time %s in\n%s", want, got)
		}
	}
}

func TestLadderChecks(t *testing.T) {
	got := ladder(t, closeWalk(), LadderOptions{})
	for _, want := range []string{
		"checks (2/4 passed):",
		// Name and rule share a line when they fit, else the rule wraps.
		"  ✓ pass         ESTABLISHED → CLOSE_WAIT\n      RFC 9293 §3.10.7.4 (eighth: FIN in ESTABLISHED → CLOSE-WAIT, ACK it)\n",
		"  ✗ fail         LAST_ACK → CLOSED: no reply to the ACK of its FIN",
		"      RFC 9293 §3.10.7.4 (LAST-ACK: ACK of our FIN → CLOSED)",
		"      expected: nothing  received: <SEQ=2>(ICMP) port unreachable",
		"      reason: the remote sent a segment it must not send here",
		"      wire says CLOSED / kernel says LAST_ACK  !! DISAGREEMENT",
		"      wire says CLOSE_WAIT / kernel says CLOSE_WAIT\n",
		"  ? inconclusive CLOSED: ACK → RST  RFC 9293 §3.10.7.1 (CLOSED: ACK → <SEQ=SEG.ACK><CTL=RST>)",
		"      expected: <SEQ=2><CTL=RST>  received: nothing",
		"      reason: no reply after 3 tries, 200ms apart",
		"verdict FAIL: 2/4 checks passed in 2.500 s, 1 wire/kernel disagreement\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// Passing checks show no expected/received; the agreeing ones no flag.
	if n := strings.Count(got, "expected:"); n != 2 {
		t.Errorf("%d expected: lines, want 2 (fail and inconclusive only)", n)
	}
	if n := strings.Count(got, "DISAGREEMENT"); n != 1 {
		t.Errorf("%d disagreement flags, want 1", n)
	}
	// The checks come after the diagram, the verdict last.
	if strings.Index(got, "checks (") < strings.LastIndex(got, "|") {
		t.Errorf("checks before the end of the diagram:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "verdict FAIL") {
		t.Errorf("last line %q, want the verdict", lines[len(lines)-1])
	}

	sk := ladder(t, skippedWalk(), LadderOptions{})
	for _, want := range []string{"(no segments exchanged)", "verdict SKIPPED: 0/0 checks passed in 0.000 s\n  reason: the remote host must connect to us: only the lab's client can be asked to\n"} {
		if !strings.Contains(sk, want) {
			t.Errorf("skipped walk: missing %q in\n%s", want, sk)
		}
	}
}

func TestLadderColor(t *testing.T) {
	for _, r := range []walk.Result{handshakeWalk(), closeWalk(), skippedWalk()} {
		plain := ladder(t, r, LadderOptions{Color: false})
		if strings.Contains(plain, "\x1b") {
			t.Errorf("%s: ESC in plain output:\n%q", r.Scenario, plain)
		}
		col := ladder(t, r, LadderOptions{Color: true})
		if !ansiRE.MatchString(col) {
			t.Errorf("%s: no ANSI codes with Color:\n%q", r.Scenario, col)
		}
		// Colour only adds codes: without them the text is the same.
		if diff := cmp.Diff(plain, ansiRE.ReplaceAllString(col, "")); diff != "" {
			t.Errorf("%s: coloured text differs from plain (-plain +stripped):\n%s", r.Scenario, diff)
		}
	}
	col := ladder(t, closeWalk(), LadderOptions{Color: true})
	for _, want := range []string{
		"\x1b[32m✓ pass        \x1b[0m", "\x1b[31m✗ fail        \x1b[0m", "\x1b[33m? inconclusive\x1b[0m",
		"\x1b[1;31m!! DISAGREEMENT\x1b[0m", "|\x1b[36m-- F. seq 1", "|\x1b[35m<-- . seq 1", "verdict \x1b[31mFAIL\x1b[0m",
	} {
		if !strings.Contains(col, want) {
			t.Errorf("missing %q in\n%q", want, col)
		}
	}
	if sk := ladder(t, skippedWalk(), LadderOptions{Color: true}); !strings.Contains(sk, "verdict \x1b[2mSKIPPED\x1b[0m") {
		t.Errorf("skipped verdict not dim:\n%q", sk)
	}
}

func TestLadderWidth(t *testing.T) {
	long := closeWalk()
	long.Summary = strings.Repeat("a very long summary ", 10)
	long.Reason = strings.Repeat("a long reason ", 10)
	long.Segments[0].Note = strings.Repeat("long note ", 12)
	long.Segments[1].Options = append(synOpts, "sack 3 {1:2}{3:4}{5:6}", "unknown-kind-253 len 30")
	long.Checks[2].Expected = strings.Repeat("<SEQ=1>", 20)
	long.Checks[3].Reason = strings.Repeat("why ", 40)
	for _, width := range []int{0, 100, 80, 72} {
		for _, r := range []walk.Result{handshakeWalk(), closeWalk(), skippedWalk(), long} {
			got := ladder(t, r, LadderOptions{Width: width, Color: true})
			want := width
			if want == 0 {
				want = 100
			}
			for _, ln := range strings.Split(ansiRE.ReplaceAllString(got, ""), "\n") {
				if n := utf8.RuneCountInString(ln); n > want {
					t.Errorf("%s width %d: line of %d runes: %q", r.Scenario, width, n, ln)
				}
			}
		}
	}
	got := ladder(t, long, LadderOptions{Width: 80})
	for _, want := range []string{"|-- F. seq 1 ack 1 len 0 (long note long… --->|", "…", "reason: why why"} {
		if !strings.Contains(got, want) {
			t.Errorf("width 80: missing %q in\n%s", want, got)
		}
	}
	// Reasons wrap instead of being cut: every word is there.
	if n := strings.Count(got, "why"); n != 40 {
		t.Errorf("%d of 40 words of the reason printed:\n%s", n, got)
	}
	// With room, options are printed in full.
	wide := arrows(ladder(t, handshakeWalk(), LadderOptions{Width: 160}))
	if want := "< S. seq 0 ack 1 len 0 [mss 1460,sackOK,TS val 3141592653 ecr 0,nop,wscale 7]"; len(wide) < 2 || wide[1] != want {
		t.Errorf("width 160: arrows %q, want the SYN-ACK's options in full: %q", wide, want)
	}
}

func TestLadderOnlyASCIIOrChosenRunes(t *testing.T) {
	// Everything the ladder adds is ASCII except the marks and the
	// ellipsis; non-ASCII in names and rules comes from the walk itself.
	r := closeWalk()
	r.Summary = "plain"
	for i := range r.Checks {
		r.Checks[i].Name = "check"
		r.Checks[i].Rule = "RFC 9293"
	}
	got := ladder(t, r, LadderOptions{Width: 100})
	for _, c := range got {
		if c > 127 && !strings.ContainsRune("✓✗…", c) {
			t.Errorf("unexpected rune %q in\n%s", c, got)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestLadderWriteError(t *testing.T) {
	for _, n := range []int{0, 3} {
		err := WriteLadder(&failWriter{n: n}, closeWalk(), LadderOptions{})
		if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "passive-close") {
			t.Errorf("after %d writes: err = %v, want the write error naming the walk", n, err)
		}
	}
}

func TestLadderNoPanicOnOddInput(t *testing.T) {
	odd := []walk.Result{
		{},
		{Segments: []walk.Segment{{}}, Checks: []walk.Check{{}}},
		{Start: t0, Segments: []walk.Segment{{At: t0.Add(-time.Second), Dir: "sideways", Flags: 0xff,
			LocalState: result.State(200), RemoteState: result.State(255)}}}, // no states: "State(N)"
	}
	for i, r := range odd {
		for _, w := range []int{-5, 1, 10, 100} {
			if err := WriteLadder(&bytes.Buffer{}, r, LadderOptions{Width: w, Color: true}); err != nil {
				t.Errorf("case %d width %d: %v", i, w, err)
			}
		}
	}
}

func TestLadderVerdictReason(t *testing.T) {
	r := handshakeWalk()
	r.Verdict, r.Reason = walk.Inconclusive, "no check ran"
	got := ladder(t, r, LadderOptions{})
	if want := "verdict INCONCLUSIVE: 2/2 checks passed in 0.012 s, 0 wire/kernel disagreements (no check ran)\n"; !strings.HasSuffix(got, want) {
		t.Errorf("short reason not on the verdict line: want suffix %q in\n%s", want, got)
	}
}

// FuzzWriteLadder feeds the ladder arbitrary segment and check text and
// widths: it must never panic, and lines stay within the width whenever
// the width leaves room for the minimum arrow.
func FuzzWriteLadder(f *testing.F) {
	// Seeds: a plain SYN, an empty segment, multi-byte text, a huge option.
	f.Add("S", "CLOSED", "LISTEN", "", "mss 1460", "LISTEN → SYN_RCVD", "expected", 100, int64(5))
	f.Add("", "", "", "", "", "", "", 0, int64(0))
	f.Add("F.", "FIN_WAIT_1ééé", "→→→", "KA1", "TS val 1 ecr 2", "ü", "<SEQ=1>", 72, int64(-3))
	f.Add("R.", strings.Repeat("X", 80), "Y", strings.Repeat("n ", 60), strings.Repeat("o", 200), "c", "e", 1, int64(1<<40))
	f.Fuzz(func(t *testing.T, flagText, ls, rs, note, opt, name, exp string, width int, us int64) {
		flags, _ := craft.ParseFlags(flagText) // any byte: a bad text is no flags
		// A state's name is a state; any other text a number that is no
		// state (written "State(N)"), or none.
		state := func(s string) result.State {
			if st, err := result.ParseState(s); err == nil {
				return st
			}
			return result.State(len(s))
		}
		lst, rst := state(ls), state(rs)
		r := walk.Result{Scenario: name, Summary: note, Start: t0, Verdict: walk.Fail, Reason: exp, Oracle: true,
			Segments: []walk.Segment{
				{At: t0.Add(time.Duration(us) * time.Microsecond), Dir: walk.Out, Flags: flags, LocalState: lst, RemoteState: rst, Note: note, Options: []string{opt, "nop"}},
				{At: t0, Dir: walk.In, ICMP: note, LocalState: rst, RemoteState: lst},
				{Dir: walk.In, Flags: flags, Retransmission: true},
			},
			Checks: []walk.Check{{Name: name, Rule: opt, Expected: exp, Received: note, Verdict: walk.Fail, Reason: note,
				Wire: lst, Kernel: rst, Disagree: true}},
		}
		var b bytes.Buffer
		if err := WriteLadder(&b, r, LadderOptions{Width: width, Color: width%2 == 0}); err != nil {
			t.Fatal(err)
		}
		if width < 80 || width > 1000 || strings.ContainsAny(flagText+ls+rs+note+opt+name+exp, "\n\r\t\x1b") ||
			!utf8.ValidString(flagText+ls+rs+note+opt+name+exp) {
			return
		}
		for _, ln := range strings.Split(ansiRE.ReplaceAllString(b.String(), ""), "\n") {
			if n := utf8.RuneCountInString(ln); n > width {
				t.Fatalf("line of %d runes at width %d: %q", n, width, ln)
			}
		}
	})
}

// A kernel already in the next state the wire shows is said so, not
// flagged as a disagreement.
func TestLadderKernelAhead(t *testing.T) {
	r := closeWalk()
	r.Checks[0].Kernel, r.Checks[0].Disagree, r.Checks[0].KernelAhead = result.LastAck, false, true
	got := ladder(t, r, LadderOptions{Width: 120})
	want := "wire says " + r.Checks[0].Wire.String() + " / kernel says LAST_ACK (already: the remote moved on before the kernel was read)"
	if !strings.Contains(got, want) {
		t.Errorf("missing %q in\n%s", want, got)
	}
	if n := strings.Count(got, "DISAGREEMENT"); n != 1 { // the walk's other, real one
		t.Errorf("%d disagreement flags, want 1", n)
	}
}

// TestLadderRowsInTimeOrder: a reply the kernel stamped before our segment
// that was recorded first (it came while we were sending) is drawn above
// it, so times never go backwards down the ladder.
func TestLadderRowsInTimeOrder(t *testing.T) {
	r := handshakeWalk()
	// The remote's ACK arrived before our KA1 went out, but was read after.
	r.Segments[3].At, r.Segments[4].At = at(1.4), at(1.3)
	got := ladder(t, r, LadderOptions{Width: 100})
	re := regexp.MustCompile(`^\s*\+(\d+\.\d{3})\s`)
	var times []string
	for _, ln := range strings.Split(got, "\n") {
		if m := re.FindStringSubmatch(ln); m != nil {
			times = append(times, m[1])
		}
	}
	if want := []string{"0.500", "0.900", "1.200", "1.300", "1.400"}; !cmp.Equal(times, want) {
		t.Errorf("row times %v, want %v:\n%s", times, want, got)
	}
	if a := arrows(got); len(a) != 5 || !strings.HasPrefix(a[3], "< .") || !strings.Contains(a[4], "KA1") {
		t.Errorf("arrows %q: want the remote's ACK above our KA1", a)
	}
}
