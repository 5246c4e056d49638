package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// LadderOptions says how to draw a ladder.
type LadderOptions struct {
	// Color turns on ANSI colours (see ColorEnabled): verdicts green, red,
	// yellow or dim, our arrows and the remote's in two colours.
	Color bool
	// Width is the widest a line may be, in columns; zero means 100, and
	// more than 1000 means 1000. Below about 60 columns the diagram keeps
	// a minimum arrow length and its lines may be wider.
	Width int
}

// DefaultWidth is the line width of a ladder when LadderOptions.Width is 0.
const DefaultWidth = 100

// Layout limits. The arrow never shrinks below minArrow columns, so a
// segment stays readable on a narrow terminal; state names longer than
// maxState (never one of RFC 9293's eleven) are cut.
const (
	minArrow = 30
	maxWidth = 1000
	maxState = 12
	// arrowFrame is what an arrow adds around its label: "-- " + label +
	// " " + at least 3 dashes + ">" (or the mirror image).
	arrowFrame = 8
)

// ANSI SGR codes. Out and in are the two arrow colours; a walk's verdict
// colours follow the usual traffic lights.
const (
	sgrGreen   = "32"
	sgrRed     = "31"
	sgrYellow  = "33"
	sgrDim     = "2"
	sgrOut     = "36"   // cyan: what we sent
	sgrIn      = "35"   // magenta: what the remote sent
	sgrAlarm   = "1;31" // bold red: a wire/kernel disagreement
	sgrBold    = "1"
	ellipsis   = "…"
	checkPass  = "✓"
	checkFail  = "✗"
	checkInc   = "?"
	checkSkip  = "-"
	checkCut   = "‖"
	checkOther = "!"
)

// WriteLadder draws one walk as a ladder diagram, the way RFC 9293 §3.5 and
// textbooks draw the three-way handshake: our end ("tcpwalk" and its
// address) on the left, the target on the right, one arrow per recorded
// segment in time order, each labelled with its flags in tcpdump's form,
// sequence and acknowledgment numbers relative to each side's ISN, length,
// what it was for (KA1, retransmission, ...) and its options. Left of each
// line is the time since the walk started in milliseconds and our state
// after the segment; right of it the remote's state as the wire implies it.
// A state is printed only where it changed, so transitions stand out.
// (Our segments are stamped when sent, replies when the kernel received
// them: a reply that came just before our send is drawn above it.)
//
// Under the diagram come the checks, one line each (✓ pass, ✗ fail,
// ? inconclusive, - skipped) with the RFC rule, what was expected and
// received when a check did not pass, the kernel's own state when an oracle
// was used (a disagreement is flagged, never hidden), and the walk's verdict.
func WriteLadder(w io.Writer, r walk.Result, o LadderOptions) error {
	width := o.Width
	if width <= 0 {
		width = DefaultWidth
	}
	width = min(width, maxWidth)
	lw := &ladderWriter{w: w, p: painter(o.Color), width: width}
	lw.title(r)
	lw.diagram(r)
	lw.checks(r)
	lw.verdict(r)
	if lw.err != nil {
		return fmt.Errorf("report: write the ladder of walk %q: %w", r.Scenario, lw.err)
	}
	return nil
}

// painter wraps text in ANSI colour codes when true.
type painter bool

func (p painter) paint(code, s string) string {
	if !p || code == "" || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// ladderWriter keeps the first write error so the drawing code stays linear.
type ladderWriter struct {
	w     io.Writer
	p     painter
	width int
	err   error
}

func (l *ladderWriter) line(s string) {
	if l.err != nil {
		return
	}
	_, l.err = io.WriteString(l.w, s+"\n")
}

// fit cuts s to the line width.
func (l *ladderWriter) fit(s string) string { return truncate(s, l.width) }

func (l *ladderWriter) title(r walk.Result) {
	t := "walk " + r.Scenario
	if r.Summary != "" {
		t += ": " + r.Summary
	}
	l.line(l.p.paint(sgrBold, l.fit(t)))
}

// columns is the horizontal layout of the diagram. Columns count runes:
// every rune the ladder writes is one column wide.
type columns struct {
	time, local, arrow, remote int
}

// leftBar and rightBar are the positions of the two host lines.
func (c columns) leftBar() int  { return c.time + 2 + c.local + 1 }
func (c columns) rightBar() int { return c.leftBar() + 1 + c.arrow }
func (c columns) total() int    { return c.rightBar() + 2 + c.remote }

// row is one arrow of the diagram before layout.
type row struct {
	time          string
	local, remote string // empty: unchanged
	label         string // full label
	short         string // label with abbreviated options
	dir           walk.Dir
	icmp          bool
}

func (l *ladderWriter) diagram(r walk.Result) {
	if len(r.Segments) == 0 {
		l.line("  (no segments exchanged)")
		return
	}
	// Rows go in time order: our segments are stamped just before they go
	// to the kernel, replies when the kernel received them, so a reply read
	// after a send may have come first; the record order would print a
	// later time above an earlier one.
	segs := slices.Clone(r.Segments)
	slices.SortStableFunc(segs, func(a, b walk.Segment) int { return a.At.Compare(b.At) })
	r.Segments = segs
	base := r.Start
	if base.IsZero() {
		base = r.Segments[0].At
	}
	rows := make([]row, len(r.Segments))
	c := columns{time: len("ms"), local: len("local"), remote: len("remote")}
	longest := 0
	var prevL, prevR result.State
	for i, s := range r.Segments {
		rw := row{time: elapsed(s.At.Sub(base)), dir: s.Dir}
		if i == 0 || s.LocalState != prevL {
			rw.local = s.LocalState.String()
		}
		if i == 0 || s.RemoteState != prevR {
			rw.remote = s.RemoteState.String()
		}
		prevL, prevR = s.LocalState, s.RemoteState
		if s.ICMP != "" {
			rw.icmp, rw.dir = true, walk.In
			rw.label = "ICMP " + s.ICMP
			rw.short = rw.label
		} else {
			rw.label, rw.short = segmentLabel(s, false), segmentLabel(s, true)
		}
		c.time = max(c.time, utf8.RuneCountInString(rw.time))
		c.local = max(c.local, min(maxState, utf8.RuneCountInString(rw.local)))
		c.remote = max(c.remote, min(maxState, utf8.RuneCountInString(rw.remote)))
		longest = max(longest, utf8.RuneCountInString(rw.label))
		rows[i] = rw
	}
	// The arrow takes what the columns leave of the width, but no more than
	// the longest label needs (and no less than minArrow).
	c.arrow = max(minArrow, min(l.width-(c.total()-c.arrow), max(longest+arrowFrame, 40)))

	l.hosts(r, c)
	l.line(l.p.paint(sgrDim, padLeft("ms", c.time)+"  "+padLeft("local", c.local)) +
		" |" + strings.Repeat(" ", c.arrow) + "| " + l.p.paint(sgrDim, "remote"))
	for _, rw := range rows {
		l.line(l.arrowLine(rw, c))
	}
}

// hosts writes the two column heads, each centred on its host line when
// there is room, else pushed inwards from the margins.
func (l *ladderWriter) hosts(r walk.Result, c columns) {
	left := "tcpwalk"
	if r.Local.IsValid() {
		left += " " + r.Local.String()
	}
	right := "target"
	if r.Target.IsValid() {
		right = r.Target.String()
	}
	width := max(l.width, c.total())
	buf := []rune(strings.Repeat(" ", width))
	ln, rn := utf8.RuneCountInString(left), utf8.RuneCountInString(right)
	ls := max(0, c.leftBar()-ln/2)
	re := min(width, c.rightBar()-rn/2+rn) // one past the right head's end
	if ls+ln+2 > re-rn {
		// The heads would touch: half the room each.
		half := width / 2
		left, right = truncate(left, half-1), truncate(right, width-half-1)
		ln, rn = utf8.RuneCountInString(left), utf8.RuneCountInString(right)
		ls, re = 0, width
	}
	copy(buf[ls:], []rune(left))
	copy(buf[re-rn:], []rune(right))
	l.line(strings.TrimRight(string(buf), " "))
}

// arrowLine lays out one row: time, our state, the arrow, their state.
func (l *ladderWriter) arrowLine(rw row, c columns) string {
	room := c.arrow - arrowFrame
	label := rw.label
	if utf8.RuneCountInString(label) > room {
		label = rw.short
	}
	label = truncate(label, room)
	// Every arrow is c.arrow runes: 6 of frame, the label, the fill.
	fill := strings.Repeat("-", c.arrow-6-utf8.RuneCountInString(label))
	var arrow, code string
	switch {
	case rw.icmp:
		arrow, code = "<~~ "+label+" "+strings.Repeat("~", len(fill)+1), sgrIn
	case rw.dir == walk.Out:
		arrow, code = "-- "+label+" "+fill+"->", sgrOut
	default:
		arrow, code = "<-- "+label+" "+fill+"-", sgrIn
	}
	var b strings.Builder
	b.WriteString(padLeft(rw.time, c.time))
	b.WriteString("  ")
	b.WriteString(padLeft(truncate(rw.local, c.local), c.local))
	b.WriteString(" |")
	b.WriteString(l.p.paint(code, arrow))
	b.WriteString("|")
	if rw.remote != "" {
		b.WriteString(" ")
		b.WriteString(truncate(rw.remote, c.remote))
	}
	return b.String()
}

// segmentLabel writes a segment the way tcpdump -S would, with relative
// numbers: "S. seq 0 ack 1 len 0 (KA1) [mss 1460,sackOK,TS val 1 ecr 2]".
// The note comes before the options, so a cut hits the options first. With
// short, options lose their values except MSS and window scale (the ones a
// reader compares between SYN and SYN-ACK), and NOPs are left out.
func segmentLabel(s walk.Segment, short bool) string {
	var b strings.Builder
	b.WriteString(flagText(s))
	fmt.Fprintf(&b, " seq %d", s.RelSeq)
	if s.Flags.Has(craft.FlagACK) {
		fmt.Fprintf(&b, " ack %d", s.RelAck)
	}
	fmt.Fprintf(&b, " len %d", s.Len)
	note := s.Note
	if note == "" && s.Retransmission {
		note = "retransmission"
	}
	if note != "" {
		b.WriteString(" (" + note + ")")
	}
	if len(s.Options) > 0 {
		b.WriteString(" [")
		n := 0
		for _, o := range s.Options {
			if short {
				if o == "nop" || o == "eol" {
					continue
				}
				o = shortOption(o)
			}
			if n > 0 {
				b.WriteByte(',')
			}
			b.WriteString(o)
			n++
		}
		b.WriteByte(']')
	}
	return b.String()
}

// shortOption keeps an option's name, and its value for MSS and window
// scale only.
func shortOption(o string) string {
	name, _, _ := strings.Cut(o, " ")
	if name == "mss" || name == "wscale" {
		return o
	}
	return name
}

func (l *ladderWriter) checks(r walk.Result) {
	if len(r.Checks) == 0 {
		return
	}
	l.line("")
	l.line(fmt.Sprintf("checks (%d/%d passed):", passed(r.Checks), len(r.Checks)))
	const indent = "      "
	for _, c := range r.Checks {
		mark, code := verdictMark(c.Verdict)
		head := fmt.Sprintf("  %s %-12s %s", mark, c.Verdict, c.Name)
		markEnd := 2 + runeLen(mark) + 1 + 12
		if c.Rule != "" && runeLen(head)+2+runeLen(c.Rule) <= l.width {
			l.line(l.paintHead(head, markEnd, code) + "  " + l.p.paint(sgrDim, c.Rule))
		} else {
			l.line(l.paintHead(l.fit(head), markEnd, code))
			l.wrapped(indent, "", c.Rule, sgrDim)
		}
		if c.Verdict != walk.Pass && c.Verdict != walk.Skipped {
			l.pair(indent, "expected: "+orNothing(c.Expected), "received: "+orNothing(c.Received))
			l.wrapped(indent, "reason: ", c.Reason, "")
		}
		if kernel := kernelText(c); kernel != "" {
			wire := c.Wire.String()
			if wire == "" {
				wire = "-"
			}
			const flag = "!! DISAGREEMENT"
			s := truncate("wire says "+wire+" / kernel says "+kernel, l.width-len(indent)-2-len(flag))
			switch {
			case c.Disagree:
				s += "  " + l.p.paint(sgrAlarm, flag)
			case c.KernelAhead:
				s = truncate(s+" (already: the remote moved on before the kernel was read)", l.width-len(indent)-2)
			}
			l.line(indent + s)
		}
	}
}

// passed counts the passing checks.
func passed(cs []walk.Check) int {
	n := 0
	for _, c := range cs {
		if c.Verdict == walk.Pass {
			n++
		}
	}
	return n
}

// paintHead colours the mark and verdict of a check line: the runes from
// the indent of 2 up to n.
func (l *ladderWriter) paintHead(head string, n int, code string) string {
	rs := []rune(head)
	n = min(n, len(rs))
	if n < 2 {
		return head
	}
	return string(rs[:2]) + l.p.paint(code, string(rs[2:n])) + string(rs[n:])
}

// pair writes a and b on one line when they fit, else on two.
func (l *ladderWriter) pair(indent, a, b string) {
	if runeLen(indent)+runeLen(a)+2+runeLen(b) <= l.width {
		l.line(indent + a + "  " + b)
		return
	}
	l.line(indent + truncate(a, l.width-runeLen(indent)))
	l.line(indent + truncate(b, l.width-runeLen(indent)))
}

// wrapped writes prefix+text from indent on, wrapped at spaces to the line
// width; continuation lines align under the text. Rules and reasons wrap
// rather than being cut: they are what a reader acts on.
func (l *ladderWriter) wrapped(indent, prefix, text, code string) {
	if text == "" {
		return
	}
	cont := strings.Repeat(" ", runeLen(indent)+runeLen(prefix))
	for i, ln := range wrap(text, l.width-len(cont)) {
		if i == 0 {
			l.line(indent + prefix + l.p.paint(code, ln))
		} else {
			l.line(cont + l.p.paint(code, ln))
		}
	}
}

// wrap breaks s at spaces into lines of at most n runes; a word longer
// than a line is cut with "…".
func wrap(s string, n int) []string {
	n = max(n, 10)
	var out []string
	cur := ""
	for _, w := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = truncate(w, n)
		case runeLen(cur)+1+runeLen(w) <= n:
			cur += " " + w
		default:
			out = append(out, cur)
			cur = truncate(w, n)
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func (l *ladderWriter) verdict(r walk.Result) {
	_, code := verdictMark(r.Verdict)
	v := strings.ToUpper(r.Verdict.String())
	if v == "" {
		v = "NONE"
	}
	tail := fmt.Sprintf(": %d/%d checks passed in %s", passed(r.Checks), len(r.Checks), seconds(r.Duration))
	if r.Oracle {
		tail += ", " + plural(r.Disagreements, "wire/kernel disagreement")
	}
	head := "verdict " + l.p.paint(code, v)
	plain := "verdict " + v + tail
	if r.Reason != "" && runeLen(plain)+3+runeLen(r.Reason) <= l.width {
		l.line(head + tail + " (" + r.Reason + ")")
		return
	}
	l.line(head + truncate(tail, l.width-runeLen("verdict "+v)))
	l.wrapped("  ", "reason: ", r.Reason, "")
}

// plural writes "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// verdictMark is a verdict's mark and colour.
func verdictMark(v walk.Verdict) (mark, code string) {
	switch v {
	case walk.Pass:
		return checkPass, sgrGreen
	case walk.Fail:
		return checkFail, sgrRed
	case walk.Inconclusive:
		return checkInc, sgrYellow
	case walk.Skipped:
		return checkSkip, sgrDim
	case walk.Interrupted:
		return checkCut, sgrYellow
	}
	return checkOther, sgrRed
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// elapsed writes d in milliseconds with a sign: "+12.345".
func elapsed(d time.Duration) string {
	return fmt.Sprintf("%+.3f", float64(d.Microseconds())/1000)
}

// seconds writes d as "1.234 s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f s", d.Seconds())
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// truncate cuts s to n runes, ending in "…" when it cut.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + ellipsis
}

// padLeft right-aligns s in n runes.
func padLeft(s string, n int) string {
	if k := n - utf8.RuneCountInString(s); k > 0 {
		return strings.Repeat(" ", k) + s
	}
	return s
}

// flagText is a segment's flags as tcpdump prints them ("S.", "F."), and ""
// for an ICMP error, which carries no TCP flags of its own.
func flagText(s walk.Segment) string {
	if s.ICMP != "" {
		return ""
	}
	return s.Flags.String()
}

// kernelText is what the kernel (the oracle) said of a check: its state,
// "error: " and why it could not be read, or "" when it was not asked.
func kernelText(c walk.Check) string {
	if c.KernelErr != nil {
		return "error: " + c.KernelErr.Error()
	}
	return c.Kernel.String()
}
