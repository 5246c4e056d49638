package script

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// Error is one mistake in a script, at file:line:col, saying what was
// expected there.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every mistake found in one script, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// maxErrors stops a parse that finds too many mistakes: the rest is noise.
const maxErrors = 20

// Limits that keep every number a script can hold meaningful.
const (
	maxTime    = time.Hour
	maxPayload = craft.IPv4MaximumTotalLength - craft.IPv4MinimumSize - craft.TCPMinimumSize
)

// Parse reads a script. name is used in messages (file:line:col). On
// mistakes it returns an ErrorList; it never panics, whatever src holds.
func Parse(name string, src []byte) (*Script, error) {
	s := &Script{Name: name, Tolerance: DefaultTolerance, TolerancePercent: DefaultTolerancePercent}
	p := &parser{file: name, s: s}
	src, dropped := preprocess(src)
	s.Assumptions = append(s.Assumptions, dropped...)
	clean := stripComments(src)
	origLines := strings.Split(string(src), "\n")
	for i, line := range strings.Split(clean, "\n") {
		if len(p.errs) >= maxErrors {
			break
		}
		orig := line
		if i < len(origLines) {
			orig = origLines[i]
		}
		p.line(i+1, line, orig)
	}
	if len(p.errs) == 0 && len(s.Events) == 0 {
		p.errs = append(p.errs, &Error{File: name, Pos: Pos{1, 1}, Msg: "no events: a script needs at least one timed line, e.g. `0 < S 0:0(0) win 65535 <mss 1460>`"})
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return s, nil
}

// stripComments replaces /* */, // and # comments by spaces (newlines
// kept), leaving string literals alone, so positions stay where they were.
func stripComments(src []byte) string {
	b := []byte(string(src))
	const (
		code = iota
		str
		line
		block
	)
	st := code
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch st {
		case code:
			switch {
			case c == '"':
				st = str
			case c == '#':
				st = line
				b[i] = ' '
			case c == '/' && i+1 < len(b) && b[i+1] == '/':
				st = line
				b[i], b[i+1] = ' ', ' '
				i++
			case c == '/' && i+1 < len(b) && b[i+1] == '*':
				st = block
				b[i], b[i+1] = ' ', ' '
				i++
			}
		case str:
			switch c {
			case '\\':
				if i+1 < len(b) && b[i+1] != '\n' {
					i++
				}
			case '"', '\n':
				st = code
			}
		case line:
			if c == '\n' {
				st = code
			} else {
				b[i] = ' '
			}
		case block:
			switch {
			case c == '*' && i+1 < len(b) && b[i+1] == '/':
				b[i], b[i+1] = ' ', ' '
				i++
				st = code
			case c != '\n':
				b[i] = ' '
			}
		}
	}
	return string(b)
}

type parser struct {
	file string
	s    *Script
	errs ErrorList
	port Pos // where %port was set, for a duplicate
	sum  bool
	fds  map[string]string // packetdrill's file descriptors: "listener", "conn"

	// The current line.
	ln   int
	src  string // comments blanked
	orig string
	i    int
}

// errLine is how one line's parse stops at its first mistake.
var errLine = errors.New("line error")

// fail records a mistake at byte offset at of the current line.
func (p *parser) fail(at int, format string, args ...any) error {
	at = min(max(at, 0), len(p.orig))
	col := utf8.RuneCountInString(p.orig[:at]) + 1
	if !utf8.ValidString(p.orig[:at]) {
		col = at + 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Pos: Pos{p.ln, col}, Msg: fmt.Sprintf(format, args...)})
	return errLine
}

func (p *parser) line(n int, src, orig string) {
	p.ln, p.src, p.orig, p.i = n, src, orig, 0
	p.space()
	if p.eol() {
		return
	}
	_ = p.statement()
}

func (p *parser) eol() bool { return p.i >= len(p.src) }

func (p *parser) space() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t' || p.src[p.i] == '\r') {
		p.i++
	}
}

func (p *parser) peek() byte {
	if p.eol() {
		return 0
	}
	return p.src[p.i]
}

// word reads letters, digits, '_', '-' and '.'.
func (p *parser) word() string {
	start := p.i
	for p.i < len(p.src) {
		c := p.src[p.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			p.i++
			continue
		}
		break
	}
	return p.src[start:p.i]
}

// rest is what is left on the line, for messages.
func (p *parser) rest() string {
	r := strings.TrimSpace(p.src[p.i:])
	if r == "" {
		return "end of line"
	}
	if f := strings.Fields(r); len(f) > 0 {
		r = f[0]
	}
	if len(r) > 24 {
		r = r[:24] + "..."
	}
	return strconv.Quote(r)
}

func (p *parser) text() string { return strings.TrimSpace(p.src) }

func (p *parser) statement() error {
	start := p.i
	switch {
	case strings.HasPrefix(p.src[p.i:], "--"):
		return p.option()
	case p.peek() == '%':
		if d := p.directiveName(); isHeader(d) {
			return p.header(d)
		}
	}
	var t Time
	timed := false
	if c := p.peek(); c == '+' || c == '*' || c == '.' || c >= '0' && c <= '9' {
		var err error
		if t, err = p.time(); err != nil {
			return err
		}
		timed = true
		p.space()
	}
	if !timed {
		t = Time{Kind: Relative}
	}
	ev := Event{Pos: p.pos(start), Time: t}
	switch c := p.peek(); {
	case c == '<' || c == '>':
		if !timed {
			return p.fail(p.i, "want the time before %q, e.g. `+0 %c ...` (packetdrill's packet lines start with a time)", c, c)
		}
		seg, err := p.segment()
		if err != nil {
			return err
		}
		ev.Kind, ev.Segment = Packet, seg
	case c == '%' && strings.HasPrefix(p.src[p.i:], "%{"):
		if err := p.inline(&ev); err != nil {
			return err
		}
	case c == '%':
		if err := p.directive(&ev, timed); err != nil {
			return err
		}
	case c == '`':
		if event, err := p.shell(&ev); err != nil || !event {
			return err
		}
	case strings.HasPrefix(p.src[p.i:], "..."):
		// A blocking call, "T...T2 call(...)": it returns by T2; the
		// remote's app acts when it does, which is what we can ask for.
		p.i += 3
		if _, err := p.seconds(); err != nil {
			return err
		}
		p.space()
		if err := p.call(&ev); err != nil {
			if errors.Is(err, errNoEvent) {
				return nil
			}
			return err
		}
		ev.Time.Range = false
	case isIdentStart(c):
		if err := p.call(&ev); err != nil {
			if errors.Is(err, errNoEvent) {
				return nil
			}
			return err
		}
	case p.eol():
		return p.fail(p.i, "want `<`, `>` or a %%directive after the time, got end of line")
	default:
		return p.fail(p.i, "want `<` (we send), `>` (the remote must send) or a %%directive, got %s", p.rest())
	}
	if err := p.validTime(&ev, start); err != nil {
		return err
	}
	ev.Text = p.text()
	p.s.Events = append(p.s.Events, ev)
	return nil
}

func (p *parser) pos(at int) Pos {
	at = min(max(at, 0), len(p.orig))
	return Pos{p.ln, utf8.RuneCountInString(p.orig[:at]) + 1}
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// validTime applies packetdrill's rule: "*" and ranges only on expected
// segments.
func (p *parser) validTime(ev *Event, at int) error {
	out := ev.Kind == Packet && ev.Segment.Dir == FromRemote
	if ev.Time.Kind == Any && !out {
		return p.fail(at, "event time * can only be used with expected (>) segments: we send at a time of our choosing")
	}
	if ev.Time.Range && !out {
		return p.fail(at, "an event time range (~) can only be used with expected (>) segments")
	}
	return nil
}

// time reads "*", "T", "+T", "T~T" or "+T~+T" (packetdrill's event_time).
func (p *parser) time() (Time, error) {
	if p.peek() == '*' {
		p.i++
		return Time{Kind: Any}, nil
	}
	kind := Absolute
	if p.peek() == '+' {
		p.i++
		kind = Relative
	}
	a, err := p.seconds()
	if err != nil {
		return Time{}, err
	}
	t := Time{Kind: kind, Start: a, End: a}
	if p.peek() != '~' {
		return t, nil
	}
	p.i++
	at := p.i
	if kind == Relative {
		if p.peek() != '+' {
			return Time{}, p.fail(at, "want `+T` after `~` in a relative range, e.g. `+0.9~+1.1`")
		}
		p.i++
	} else if p.peek() == '+' {
		return Time{}, p.fail(at, "an absolute range is `T~T`, e.g. `0.9~1.1`; a relative one `+T~+T`")
	}
	b, err := p.seconds()
	if err != nil {
		return Time{}, err
	}
	if b < a {
		return Time{}, p.fail(at, "the range ends before it starts (%v~%v)", a, b)
	}
	t.End, t.Range = b, true
	return t, nil
}

// seconds reads a non-negative decimal number of seconds: "1", "0.1", ".1".
func (p *parser) seconds() (time.Duration, error) {
	start := p.i
	var whole, frac int64
	digits, fracDigits := 0, 0
	for !p.eol() && p.peek() >= '0' && p.peek() <= '9' {
		if whole < int64(maxTime/time.Second)+1 {
			whole = whole*10 + int64(p.peek()-'0')
		}
		p.i++
		digits++
	}
	if p.peek() == '.' {
		p.i++
		for !p.eol() && p.peek() >= '0' && p.peek() <= '9' {
			if fracDigits < 9 {
				frac = frac*10 + int64(p.peek()-'0')
				fracDigits++
			}
			p.i++
			digits++
		}
	}
	if digits == 0 {
		return 0, p.fail(start, "want a time in seconds (e.g. 0, +0.1, .5, 1.000), got %s", p.rest())
	}
	for ; fracDigits < 9; fracDigits++ {
		frac *= 10
	}
	d := time.Duration(whole)*time.Second + time.Duration(frac)
	if whole > int64(maxTime/time.Second) || d > maxTime {
		return 0, p.fail(start, "time %s is over an hour: a script waits at most %v", p.src[start:p.i], maxTime)
	}
	return d, nil
}

// option reads packetdrill's command-line options at the top of a script.
func (p *parser) option() error {
	start := p.i
	p.i += 2
	name := p.word()
	val := ""
	if p.peek() == '=' {
		p.i++
		vs := p.i
		for !p.eol() && p.peek() != ' ' && p.peek() != '\t' {
			p.i++
		}
		val = p.src[vs:p.i]
	}
	switch name {
	case "tolerance_usecs":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n > 10_000_000 {
			return p.fail(start, "want --tolerance_usecs=N with N from 0 to 10000000 microseconds, got %q", val)
		}
		p.s.Tolerance = time.Duration(n) * time.Microsecond
	case "tolerance_percent":
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return p.fail(start, "want --tolerance_percent=P with P from 0 to 100, got %q", val)
		}
		p.s.TolerancePercent = f
	case "ip_version":
		// packetdrill's family: the remote must be reached over it
		// (the target address says which one a run uses).
		switch val {
		case "ipv4":
			p.assume("the machine under test speaks IPv4 (--ip_version=ipv4)")
		case "ipv6":
			p.assume("the machine under test speaks IPv6 (--ip_version=ipv6)")
		case "ipv4-mapped-ipv6":
			// packetdrill's own socket is AF_INET6 with
			// ::ffff:a.b.c.d addresses; on the wire it is IPv4.
			p.assume("--ip_version=ipv4-mapped-ipv6: packetdrill's socket is AF_INET6 with IPv4-mapped addresses; on the wire, and for the remote, it is IPv4")
		default:
			return p.fail(start, "--ip_version=%s: want ipv4, ipv6 or ipv4-mapped-ipv6", val)
		}
		p.s.IPVersion = val
	default:
		// packetdrill's other options set up its own end (addresses,
		// devices, the local stack): an assumption, not refused.
		p.assume("packetdrill option " + strings.TrimSpace(p.src[start:p.i]) + " is packetdrill's own set-up: not applied")
	}
	return p.end()
}

// end wants nothing more on the line.
func (p *parser) end() error {
	p.space()
	if !p.eol() {
		return p.fail(p.i, "want the end of the line, got %s", p.rest())
	}
	return nil
}

// directiveName reads "%name" without consuming it.
func (p *parser) directiveName() string {
	save := p.i
	p.i++
	d := p.word()
	p.i = save
	return d
}

func isHeader(d string) bool {
	switch d {
	case "port", "summary", "allow-retransmissions", "needs", "optional", "deviation":
		return true
	}
	return false
}

// directives lists the directives for messages.
const directives = "%port N, %summary TEXT, %allow-retransmissions, %needs lab, %optional TEXT, %deviation NAME TEXT, %dial, %send \"TEXT\", %expect-state STATE, %wait SECONDS"

// header reads an untimed directive.
func (p *parser) header(d string) error {
	start := p.i
	p.i += 1 + len(d)
	p.space()
	switch d {
	case "port":
		if p.port.Line != 0 {
			return p.fail(start, "%%port given twice (first at line %d)", p.port.Line)
		}
		n, err := p.number(65535, "a port number (1-65535)")
		if err != nil {
			return err
		}
		if n == 0 {
			return p.fail(start, "%%port 0 is not a TCP port: want 1-65535")
		}
		p.s.Port, p.port = uint16(n), p.pos(start)
	case "summary":
		if p.sum {
			return p.fail(start, "%%summary given twice")
		}
		p.s.Summary, p.sum = strings.TrimSpace(p.src[p.i:]), true
		p.i = len(p.src)
	case "allow-retransmissions":
		p.s.AllowRetransmissions = true
	case "needs":
		if w := p.word(); w != "lab" {
			return p.fail(p.i, "want %%needs lab (the script uses the lab's control port or its client), got %q", w)
		}
		p.s.NeedsLab = true
	case "optional":
		p.s.Optional = strings.TrimSpace(p.src[p.i:])
		p.i = len(p.src)
		if p.s.Optional == "" {
			return p.fail(start, "want %%optional TEXT: the optional behaviour (a MAY) the script expects")
		}
	case "deviation":
		name := p.word()
		p.space()
		why := strings.TrimSpace(p.src[p.i:])
		p.i = len(p.src)
		if name == "" || why == "" {
			return p.fail(start, "want %%deviation NAME TEXT: the deviation's name (what the stack does instead, e.g. silent-on-ack-above-snd-nxt) and the rule it departs from")
		}
		p.s.Deviation, p.s.DeviationWhy = name, why
	}
	return p.end()
}

// directive reads a timed directive into ev.
func (p *parser) directive(ev *Event, timed bool) error {
	start := p.i
	d := p.directiveName()
	p.i += 1 + len(d)
	p.space()
	switch d {
	case "dial":
		for _, e := range p.s.Events {
			if e.Kind == Packet {
				return p.fail(start, "%%dial must come before the first packet line: the remote's SYN starts the connection")
			}
		}
		if p.s.Dials {
			return p.fail(start, "%%dial given twice: one script is one connection")
		}
		p.s.Dials = true
		ev.Kind = Dial
	case "expect-state":
		at := p.i
		w := p.word()
		st, ok := stateName(w)
		if !ok {
			return p.fail(at, "want one of the 11 states (%s), got %q", strings.Join(walk.States, ", "), w)
		}
		ev.Kind, ev.State = ExpectState, st
	case "wait":
		if timed {
			return p.fail(start, "%%wait takes its time after it (`%%wait 0.5`), not before")
		}
		at := p.i
		d, err := p.seconds()
		if err != nil {
			return err
		}
		if d == 0 {
			return p.fail(at, "%%wait 0 waits for nothing: want a time in seconds, e.g. %%wait 0.5")
		}
		ev.Kind, ev.Time = Wait, Time{Kind: Relative, Start: d, End: d}
	case "send":
		at := p.i
		if p.peek() != '"' {
			return p.fail(at, "want a quoted payload after %%send, e.g. %%send \"close\\n\"")
		}
		b, err := p.quoted()
		if err != nil {
			return err
		}
		if len(b) == 0 || len(b) > maxPayload {
			return p.fail(at, "want 1 to %d bytes after %%send, got %d", maxPayload, len(b))
		}
		ev.Kind, ev.Data = Send, b
	case "port", "summary", "allow-retransmissions", "needs", "optional", "deviation":
		return p.fail(start, "%%%s is a setting, not an event: write it without a time, on its own line", d)
	default:
		return p.fail(start, "unknown directive %%%s: want one of %s", d, directives)
	}
	return p.end()
}

// stateName reads a state in RFC 9293's or Linux's spelling ("syn-recv",
// "FIN_WAIT2", "close" too); false for a word that is none of the 11.
func stateName(w string) (result.State, bool) {
	n := strings.ToUpper(strings.ReplaceAll(w, "-", "_"))
	switch n {
	case "SYN_RECEIVED", "SYN_RECV":
		return result.SynRcvd, true
	case "FIN_WAIT1":
		return result.FinWait1, true
	case "FIN_WAIT2":
		return result.FinWait2, true
	case "CLOSE":
		return result.Closed, true
	}
	st, err := result.ParseState(n)
	if err != nil || !st.Valid() {
		return result.NoState, false
	}
	return st, true
}

// number reads a decimal (or 0x hex) integer no larger than max.
func (p *parser) number(limit uint64, what string) (uint64, error) {
	start := p.i
	w := p.word()
	if w == "" {
		return 0, p.fail(start, "want %s, got %s", what, p.rest())
	}
	n, err := strconv.ParseUint(w, 0, 64)
	if err != nil || strings.HasPrefix(w, "0") && len(w) > 1 && !strings.HasPrefix(w, "0x") {
		p.i = start
		return 0, p.fail(start, "want %s, got %q", what, w)
	}
	if n > limit {
		return 0, p.fail(start, "%s is too large: want %s, at most %d", w, what, limit)
	}
	return n, nil
}

// digits reads a decimal integer up to limit without taking '.' or ':'.
func (p *parser) digits(limit uint64, what string) (uint64, error) {
	start := p.i
	for !p.eol() && p.peek() >= '0' && p.peek() <= '9' {
		p.i++
	}
	if start == p.i {
		return 0, p.fail(start, "want %s, got %s", what, p.rest())
	}
	n, err := strconv.ParseUint(p.src[start:p.i], 10, 64)
	if err != nil || n > limit {
		return 0, p.fail(start, "%s is too large: want %s, at most %d", p.src[start:p.i], what, limit)
	}
	return n, nil
}

func (p *parser) expect(c byte, what string) error {
	if p.peek() != c {
		return p.fail(p.i, "want %q %s, got %s", c, what, p.rest())
	}
	p.i++
	return nil
}

// segment reads a packet line after the time.
func (p *parser) segment() (*Segment, error) {
	seg := &Segment{Dir: Dir(p.peek())}
	p.i++
	if p.peek() == '?' {
		if seg.Dir != FromRemote {
			return nil, p.fail(p.i, "only an expected (>) segment may be absent (>?): we send what we inject")
		}
		seg.MayBeAbsent = true
		p.i++
	}
	p.space()
	if c := p.peek(); c == '[' || c == '(' {
		return nil, p.fail(p.i, "IP-level fields ([ect0], (ttl N), ...) are not supported: tcpwalk's segments carry plain IPv4 headers")
	}
	// Flags: packetdrill's WORD, '.', WORD '.', or '-'.
	fs := p.i
	for !p.eol() && p.peek() != ' ' && p.peek() != '\t' {
		p.i++
	}
	flags, err := parseFlags(p.src[fs:p.i])
	if err != nil {
		return nil, p.fail(fs, "%v", err)
	}
	seg.Flags = flags
	p.space()
	if strings.HasPrefix(p.src[p.i:], "...(") && seg.Dir == FromRemote {
		// packetdrill's "...(len)": any sequence number (the remote's
		// choice, e.g. the ISS of a SYN,ACK on a new connection).
		p.i += 4
		n, err := p.digits(maxPayload, "the data length of ...(len)")
		if err != nil {
			return nil, err
		}
		if err := p.expect(')', "after the length (...(len))"); err != nil {
			return nil, err
		}
		seg.AnySeq, seg.End = true, uint32(n)
		return p.segmentFields(seg)
	}
	// start:end(len), or *:*(len) on a ">" line (tcpwalk's extension: any
	// sequence number, e.g. the new ISS of a TIME_WAIT reopened, which
	// the RFC leaves to the stack above a bound).
	var a, b uint64
	var err2 error
	if p.peek() == '*' {
		if seg.Dir != FromRemote {
			return nil, p.fail(p.i, "*:*(len) (any sequence number) only on an expected (>) segment: we send exact numbers")
		}
		p.i++
		if err := p.expect(':', "in *:*(len)"); err != nil {
			return nil, err
		}
		if err := p.expect('*', "in *:*(len)"); err != nil {
			return nil, err
		}
		seg.AnySeq = true
	} else {
		a, err2 = p.digits(math.MaxUint32, "start:end(len), e.g. 0:0(0) or 1:1001(1000)")
		if err2 != nil {
			return nil, err2
		}
		if err := p.expect(':', "between start and end (start:end(len))"); err != nil {
			return nil, err
		}
		b, err2 = p.digits(math.MaxUint32, "the end sequence number of start:end(len)")
		if err2 != nil {
			return nil, err2
		}
	}
	if err := p.expect('(', "before the length (start:end(len))"); err != nil {
		return nil, err
	}
	lat := p.i
	n, err := p.digits(math.MaxUint32, "the data length of start:end(len)")
	if err != nil {
		return nil, err
	}
	if err := p.expect(')', "after the length (start:end(len))"); err != nil {
		return nil, err
	}
	if seg.AnySeq {
		b = a + n
	}
	seg.Start, seg.End = uint32(a), uint32(b)
	if uint32(b)-uint32(a) != uint32(n) {
		return nil, p.fail(lat, "length %d does not match %d:%d, which holds %d bytes", n, a, b, uint32(b)-uint32(a))
	}
	if n > maxPayload {
		return nil, p.fail(lat, "length %d does not fit one IPv4 packet (at most %d bytes of data)", n, maxPayload)
	}
	return p.segmentFields(seg)
}

// segmentFields reads what follows start:end(len): ack, win, urg, the
// options and a payload.
func (p *parser) segmentFields(seg *Segment) (*Segment, error) {
	for {
		p.space()
		if p.eol() {
			break
		}
		at := p.i
		switch c := p.peek(); {
		case c == '<':
			if seg.HasOptions {
				return nil, p.fail(at, "options given twice")
			}
			if err := p.options(seg); err != nil {
				return nil, err
			}
			continue
		case c == '"':
			b, err := p.quoted()
			if err != nil {
				return nil, err
			}
			if uint32(len(b)) != seg.Len() {
				return nil, p.fail(at, "the payload is %d bytes but %d:%d(%d) says %d: make them agree", len(b), seg.Start, seg.End, seg.Len(), seg.Len())
			}
			seg.Payload = b
			if err := p.end(); err != nil {
				return nil, err
			}
			return seg, nil
		}
		if seg.HasOptions {
			return nil, p.fail(at, "want a quoted payload or the end of the line after the options, got %s", p.rest())
		}
		w := p.word()
		p.space()
		// field reads the number after w, which may come once.
		field := func(given *bool, limit uint64, what string) (uint64, error) {
			if *given {
				return 0, p.fail(at, "%s given twice", w)
			}
			*given = true
			return p.digits(limit, what)
		}
		switch w {
		case "ack":
			v, err := field(&seg.HasAck, math.MaxUint32, "an acknowledgment number after ack")
			if err != nil {
				return nil, err
			}
			seg.Ack = uint32(v)
		case "win":
			v, err := field(&seg.HasWin, 65535, "a window (0-65535) after win")
			if err != nil {
				return nil, err
			}
			seg.Win = uint16(v)
		case "urg":
			v, err := field(&seg.HasUrg, 65535, "an urgent pointer (0-65535) after urg")
			if err != nil {
				return nil, err
			}
			seg.Urg = uint16(v)
		default:
			p.i = at
			return nil, p.fail(at, "want ack N, win N, urg N, <options> or a \"payload\", got %s", p.rest())
		}
	}
	return seg, nil
}

// parseFlags reads packetdrill's flags: letters of "FSRPUEW" and '.' for
// ACK, each once, or "-" for none.
func parseFlags(s string) (craft.Flags, error) {
	if s == "" {
		return 0, errors.New("want TCP flags (S . F R P U E W, e.g. S, S., P., F., R, or - for none), got end of line")
	}
	if s == "-" {
		return 0, nil
	}
	var f craft.Flags
	for _, c := range []byte(s) {
		var x craft.Flags
		switch c {
		case 'F':
			x = craft.FlagFIN
		case 'S':
			x = craft.FlagSYN
		case 'R':
			x = craft.FlagRST
		case 'P':
			x = craft.FlagPSH
		case '.':
			x = craft.FlagACK
		case 'U':
			x = craft.FlagURG
		case 'E':
			x = craft.FlagECE
		case 'W':
			x = craft.FlagCWR
		default:
			return 0, fmt.Errorf("want TCP flags from S . F R P U E W (e.g. S, S., P., F., R, or - for none), got %q", s)
		}
		if f&x != 0 {
			return 0, fmt.Errorf("flag %q given twice in %q", c, s)
		}
		f |= x
	}
	return f, nil
}

// quoted reads a Go-syntax string literal ("close\n", "\x00\x01").
func (p *parser) quoted() ([]byte, error) {
	start := p.i
	p.i++
	for !p.eol() {
		c := p.peek()
		if c == '\\' {
			p.i += 2
			continue
		}
		p.i++
		if c == '"' {
			lit := p.src[start:min(p.i, len(p.src))]
			s, err := strconv.Unquote(lit)
			if err != nil {
				return nil, p.fail(start, "bad string %s: use Go's escapes (\\n \\r \\t \\\\ \\\" \\xHH)", lit)
			}
			return []byte(s), nil
		}
	}
	return nil, p.fail(start, "the string is not closed: want a '\"' before the end of the line")
}

// options reads "<...>" or "<opt, opt, ...>".
func (p *parser) options(seg *Segment) error {
	p.i++ // '<'
	seg.HasOptions = true
	p.space()
	if strings.HasPrefix(p.src[p.i:], "...") {
		p.i += 3
		p.space()
		seg.AnyOptions = true
		return p.expect('>', "to close <...>")
	}
	if p.peek() == '>' {
		p.i++
		return nil // "<>": no options
	}
	for {
		p.space()
		o, err := p.option1()
		if err != nil {
			return err
		}
		if (o.Optional || o.AnyValue) && seg.Dir != FromRemote {
			return p.fail(p.i, "an option may be optional (?) or any (*) only on an expected (>) segment: we send exact values")
		}
		seg.Negotiated = seg.Negotiated || o.Optional || o.AnyValue
		seg.Options = append(seg.Options, o)
		if len(seg.Options) > craft.TCPOptionsMaximumSize {
			return p.fail(p.i, "more than %d options cannot fit a TCP header", craft.TCPOptionsMaximumSize)
		}
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '>':
			p.i++
			return nil
		default:
			return p.fail(p.i, "want ',' or '>' after an option, got %s", p.rest())
		}
	}
}

// option1 reads one option (packetdrill's tcp_option).
func (p *parser) option1() (Option, error) {
	at := p.i
	w := p.word()
	optional := strings.HasSuffix(w, "?")
	w = strings.TrimSuffix(w, "?")
	if !p.eol() && p.peek() == '?' {
		optional = true
		p.i++
	}
	p.space()
	o, err := p.option2(at, w)
	o.Optional = optional
	if err == nil && o.Kind != craft.OptMSS && o.Kind != craft.OptWindowScale && o.Kind != craft.OptSACKPermitted && o.Kind != craft.OptTimestamps && (optional || o.AnyValue) {
		return o, p.fail(at, "only mss, wscale, sackOK and TS may be optional (?) or any (*)")
	}
	return o, err
}

// anyValue reads "*" for an option's value ("mss *", "wscale *").
func (p *parser) anyValue() bool {
	if p.peek() == '*' {
		p.i++
		return true
	}
	return false
}

// option2 reads one option after its name w (packetdrill's tcp_option).
func (p *parser) option2(at int, w string) (Option, error) {
	switch strings.ToLower(w) {
	case "nop":
		return Option{Kind: craft.OptNOP}, nil
	case "eol":
		return Option{Kind: craft.OptEOL}, nil
	case "mss":
		if p.anyValue() {
			return Option{Kind: craft.OptMSS, AnyValue: true}, nil
		}
		v, err := p.digits(65535, "an MSS (0-65535) or * after mss")
		return Option{Kind: craft.OptMSS, Value: uint32(v)}, err
	case "wscale":
		if p.anyValue() {
			return Option{Kind: craft.OptWindowScale, AnyValue: true}, nil
		}
		v, err := p.digits(255, "a shift count (0-14; up to 255 to test a stack) or * after wscale")
		return Option{Kind: craft.OptWindowScale, Value: uint32(v)}, err
	case "sackok":
		return Option{Kind: craft.OptSACKPermitted}, nil
	case "sack":
		o := Option{Kind: craft.OptSACK}
		for !p.eol() && p.peek() >= '0' && p.peek() <= '9' {
			l, err := p.digits(math.MaxUint32, "a SACK block L:R")
			if err != nil {
				return o, err
			}
			if err := p.expect(':', "in a SACK block L:R"); err != nil {
				return o, err
			}
			r, err := p.digits(math.MaxUint32, "the right edge of a SACK block L:R")
			if err != nil {
				return o, err
			}
			o.Blocks = append(o.Blocks, craft.SACKBlock{Left: uint32(l), Right: uint32(r)})
			if len(o.Blocks) > 4 {
				return o, p.fail(at, "at most 4 SACK blocks fit a TCP header")
			}
			p.space()
		}
		if len(o.Blocks) == 0 {
			return o, p.fail(p.i, "want SACK blocks L:R after sack, e.g. sack 1001:2001")
		}
		return o, nil
	case "ts":
		o := Option{Kind: craft.OptTimestamps}
		if w := p.word(); w != "val" {
			return o, p.fail(at, "want `TS val N ecr N`")
		}
		p.space()
		v, err := p.digits(math.MaxUint32, "the TS value after val")
		if err != nil {
			return o, err
		}
		p.space()
		if w := p.word(); w != "ecr" {
			return o, p.fail(at, "want `TS val N ecr N`")
		}
		p.space()
		e, err := p.digits(math.MaxUint32, "the echoed TS after ecr")
		if err != nil {
			return o, err
		}
		o.TSVal, o.TSEcr = uint32(v), uint32(e)
		return o, nil
	case "md5", "fo", "foexp":
		return Option{}, p.fail(at, "option %s is not supported: tcpwalk sends nop, eol, mss, wscale, sackOK, sack and TS", w)
	}
	return Option{}, p.fail(at, "want a TCP option (nop, eol, mss N, wscale N, sackOK, sack L:R..., TS val N ecr N), got %q", w)
}
