package script

import (
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

// Script is one parsed script file.
type Script struct {
	// Name is the file the script came from (for messages and reports).
	Name string
	// Port is the remote port of %port; zero when the script names none.
	Port uint16
	// Summary is the text of %summary.
	Summary string
	// AllowRetransmissions lets the remote retransmit a segment it sent
	// before without failing the script (%allow-retransmissions).
	AllowRetransmissions bool
	// Tolerance is the timing tolerance floor (--tolerance_usecs, default
	// 4 ms) and TolerancePercent the share of the gap since the previous
	// event that is tolerated too (--tolerance_percent, default 12.5):
	// an expected segment may come max(Tolerance, gap·percent/100) early
	// or late, as in packetdrill.
	Tolerance        time.Duration
	TolerancePercent float64
	// IPVersion is packetdrill's --ip_version: "ipv4", "ipv6" or
	// "ipv4-mapped-ipv6" (IPv4 on the wire); "" runs over the family of
	// the target address. A script run against a target of the other
	// family is skipped (see Family).
	IPVersion string
	// Dials is true when the script asks the remote to connect (%dial).
	Dials bool
	// NeedsLab is "%needs lab": the script talks the lab's control
	// protocol or needs its client; against another host it is skipped.
	NeedsLab bool
	// Optional is "%optional TEXT": the script expects an optional
	// behaviour (a MAY, such as RFC 5961's challenge ACKs); a stack that
	// answers otherwise is "not implemented (optional)", skipped, not
	// failed.
	Optional string
	// Deviation is "%deviation NAME TEXT": a behaviour the RFC asks with a
	// SHOULD (or in words without a keyword) that correct stacks are known
	// to leave out; a stack that answers otherwise has the named
	// deviation (verdict deviation, with the line that showed it), not a
	// fail. DeviationWhy is TEXT.
	Deviation, DeviationWhy string
	// Events are the timed lines in order.
	Events []Event
	// Assumptions are what the script takes for granted about the machine
	// under test and tcpwalk cannot check on a remote host: packetdrill
	// options, shell lines (sysctl settings), the #ifdef branch taken, the
	// system calls that set up its socket. They are shown with the verdict.
	Assumptions []Assumption
	// Listens is true when the script's socket is a listener (listen()):
	// a precondition, a listener at the target port, which the script's
	// first SYN checks.
	Listens bool
	// Packetdrill is true when the script has packetdrill's system-call
	// lines: written for one stack's packetdrill, its ">" lines' windows
	// and option layout are that stack's choices, not the RFC's, and are
	// not compared (the option kinds are).
	Packetdrill bool
}

// Assumption is one thing a script takes for granted, at its line.
type Assumption struct {
	Pos  Pos
	Text string
}

// Defaults of the timing tolerance, packetdrill's.
const (
	DefaultTolerance        = 4 * time.Millisecond
	DefaultTolerancePercent = 12.5
)

// Pos is a place in a script: 1-based line and column (in characters).
type Pos struct {
	Line, Col int
}

// TimeKind says how an event's time is written.
type TimeKind uint8

// Time kinds. The zero value is invalid on purpose.
const (
	_ TimeKind = iota
	// Absolute: seconds from the start of the script ("0.100").
	Absolute
	// Relative: seconds after the previous event happened ("+0.1").
	Relative
	// Any: whenever it comes ("*"), only for expected segments.
	Any
)

// Time is when an event happens; Start == End unless a range ("~") was
// written.
type Time struct {
	Kind       TimeKind
	Start, End time.Duration
	Range      bool
}

// EventKind says what a line does.
type EventKind uint8

// Event kinds. The zero value is invalid on purpose.
const (
	_ EventKind = iota
	// Packet: "<" (we send) or ">" (the remote must send).
	Packet
	// Dial: %dial, ask the lab's client to connect to us.
	Dial
	// ExpectState: %expect-state STATE.
	ExpectState
	// Wait: %wait SECONDS, nothing may come meanwhile.
	Wait
	// Send: %send "TEXT", data at our next sequence number.
	Send
	// App: a system call of the remote's application that the lab's app
	// control can make (close, shutdown, write): Action says which.
	App
	// Note: a local observation of packetdrill's (getsockopt, read,
	// ioctl...) that the wire does not show: not checked, noted.
	Note
	// Unsupported: a line with no remote equivalent (Reason says why):
	// the script ends skipped there.
	Unsupported
)

// Event is one timed line.
type Event struct {
	Pos  Pos
	Text string // the line as written, trimmed, comments removed
	Time Time
	Kind EventKind
	// Segment is the packet of a Packet event.
	Segment *Segment
	// State is the state of an ExpectState event, as in walk.States.
	State result.State
	// Data is the payload of a Send event.
	Data []byte
	// Action is an App event's "close", "shutdown", "rst" or "write N";
	// Listener is true when it closes the listening socket.
	Action   string
	Listener bool
	// Reason says why a Note is not checked, or why an Unsupported line
	// has no remote equivalent.
	Reason string
}

// Dir is a packet line's direction, as packetdrill writes it. packetdrill
// names directions from the stack under test ("<" inbound to it), walk and
// the engine from our side (tcpconn.In: from the remote); the names here
// say which end sends, so that neither reading traps.
type Dir byte

// Directions.
const (
	// ToRemote: "<", a segment we inject towards the stack under test.
	ToRemote Dir = '<'
	// FromRemote: ">", a segment the stack under test must send.
	FromRemote Dir = '>'
)

// Segment is a packet line.
type Segment struct {
	Dir   Dir
	Flags craft.Flags
	// Start and End are the relative sequence numbers of the data
	// ("start:end(len)"); SYN and FIN are not counted, as in packetdrill.
	Start, End uint32
	Ack        uint32
	HasAck     bool
	Win        uint16
	HasWin     bool
	Urg        uint16
	HasUrg     bool
	// Options as written, in order; AnyOptions is "<...>" (not checked);
	// HasOptions tells "<>"-less lines (no options at all) apart.
	Options    []Option
	HasOptions bool
	AnyOptions bool
	// Negotiated: an option of the line has "*" or "?", so the options
	// are matched as a set, in any order, NOPs and EOL aside.
	Negotiated bool
	// AnySeq is "*:*(len)" (tcpwalk's) or "...(len)" (packetdrill's) on a
	// ">" line: any sequence number.
	AnySeq bool
	// MayBeAbsent is a ">?" line (tcpwalk's extension): the segment may
	// not come on its own, e.g. an ACK the stack may piggyback on the
	// segment the next line expects (its FIN). When what comes is not
	// this line's, it is the next line's to match.
	MayBeAbsent bool
	// Payload is the quoted data of a "<" line (tcpwalk's extension);
	// nil sends End-Start zero bytes, as packetdrill does.
	Payload []byte
}

// Len is the data length.
func (s *Segment) Len() uint32 { return s.End - s.Start }

// Option is one TCP option of a packet line.
type Option struct {
	Kind craft.OptionKind
	// AnyValue is "mss *" or "wscale *": any MSS or shift (tcpwalk's
	// extension, on ">" lines: the value is the stack's choice).
	AnyValue bool
	// Optional is a "?" after the option's name ("sackOK?", "TS? val 1 ecr
	// 100", "wscale? *"): the stack may leave it out (tcpwalk's extension,
	// on ">" lines: SACK, timestamps and window scale are optional, RFC
	// 2018, RFC 7323).
	Optional bool
	// Value is the MSS or the window scale shift.
	Value uint32
	// TSVal and TSEcr are the timestamps (TS val N ecr N).
	TSVal, TSEcr uint32
	// Blocks are SACK blocks, relative to the receiver's ISS.
	Blocks []craft.SACKBlock
}

// Family is the IP version the script must run over: 4 or 6 from
// --ip_version (4 for ipv4-mapped-ipv6, which is IPv4 on the wire), 0 when
// it names none and runs over either.
func (s *Script) Family() int {
	switch s.IPVersion {
	case "ipv4", "ipv4-mapped-ipv6":
		return 4
	case "ipv6":
		return 6
	}
	return 0
}
