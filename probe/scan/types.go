package scan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Type is a scan type: which flags the probes carry, and so how replies read (nmap's -sS, -sA, -sF, -sN, -sX,
// -sW, -sM). The zero value is invalid.
type Type uint8

const (
	TypeSYN    Type = iota + 1 // SYN: half-open connect (nmap -sS)
	TypeACK                    // ACK: maps firewall rules, open and closed alike answer RST (nmap -sA)
	TypeFIN                    // FIN (nmap -sF)
	TypeNULL                   // no flags (nmap -sN)
	TypeXmas                   // FIN, PSH, URG (nmap -sX)
	TypeWindow                 // ACK, read the RST's window (nmap -sW)
	TypeMaimon                 // FIN, ACK (nmap -sM)
)

var typeNames = [...]string{TypeSYN: "syn", TypeACK: "ack", TypeFIN: "fin", TypeNULL: "null", TypeXmas: "xmas",
	TypeWindow: "window", TypeMaimon: "maimon"}

// TypeNames lists the names ParseType accepts, in order.
func TypeNames() []string { return append([]string(nil), typeNames[1:]...) }

// ParseType reads a scan type name: syn, ack, fin, null, xmas, window or maimon.
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if t > 0 && strings.EqualFold(s, n) {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("unknown scan type %q: want one of %s", s, strings.Join(TypeNames(), ", "))
}

func (t Type) valid() bool { return t >= TypeSYN && t <= TypeMaimon }

// String returns the type's name ("syn").
func (t Type) String() string {
	if !t.valid() {
		return "Type(" + strconv.Itoa(int(t)) + ")"
	}
	return typeNames[t]
}

// Flags returns the TCP flags of the type's probes.
func (t Type) Flags() craft.Flags {
	switch t {
	case TypeSYN:
		return craft.FlagSYN
	case TypeACK, TypeWindow:
		return craft.FlagACK
	case TypeFIN:
		return craft.FlagFIN
	case TypeNULL:
		return 0
	case TypeXmas:
		return craft.FlagFIN | craft.FlagPSH | craft.FlagURG
	case TypeMaimon:
		return craft.FlagFIN | craft.FlagACK
	}
	return 0
}

// seqLen is how much sequence space a probe of the type takes: SYN and FIN count one (RFC 9293 §3.4).
func (t Type) seqLen() uint32 {
	if f := t.Flags(); f.Has(craft.FlagSYN) || f.Has(craft.FlagFIN) {
		return 1
	}
	return 0
}

// State is a port's state as nmap names it. The zero value is invalid.
type State uint8

const (
	Open         State = iota + 1 // a service answers (SYN-ACK; window scan: RST with a window)
	Closed                        // reachable, nothing listens (RST)
	Filtered                      // no answer after the retries, or an ICMP unreachable
	Unfiltered                    // ACK scan: reachable (RST), open or closed unknown
	OpenFiltered                  // FIN, NULL, Xmas, Maimon: no answer, which open ports and firewalls both give
)

// States lists every state, in order.
var States = []State{Open, Closed, Filtered, Unfiltered, OpenFiltered}

var stateNames = [...]string{Open: "open", Closed: "closed", Filtered: "filtered", Unfiltered: "unfiltered",
	OpenFiltered: "open|filtered"}

// String returns nmap's name of the state ("open|filtered").
func (s State) String() string {
	if s < Open || s > OpenFiltered {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// ParseState reads nmap's name of a state ("open|filtered").
func ParseState(s string) (State, error) {
	for st, n := range stateNames {
		if st > 0 && s == n {
			return State(st), nil
		}
	}
	return 0, fmt.Errorf("unknown port state %q: want open, closed, filtered, unfiltered or open|filtered", s)
}

// ReasonKind is what a state was decided on, with nmap's --reason names.
type ReasonKind uint8

const (
	ReasonSynAck     ReasonKind = iota + 1 // "syn-ack"
	ReasonSyn                              // "split-handshake-syn": a bare SYN answered ours
	ReasonReset                            // "reset"
	ReasonNoResponse                       // "no-response"
	ReasonICMP                             // "icmp T/C from ADDR"
	ReasonNotSent                          // "not-sent (why)": the local kernel refused to send the probe
	// ReasonARP is a host's reason only: it answered no probe, but answered ARP on the link, so it is up.
	ReasonARP // "arp-response"
)

var reasonNames = [...]string{ReasonSynAck: "syn-ack", ReasonSyn: "split-handshake-syn", ReasonReset: "reset",
	ReasonNoResponse: "no-response", ReasonICMP: "icmp", ReasonNotSent: "not-sent", ReasonARP: "arp-response"}

func (k ReasonKind) String() string {
	if k < ReasonSynAck || k > ReasonARP {
		return "ReasonKind(" + strconv.Itoa(int(k)) + ")"
	}
	return reasonNames[k]
}

// ParseReasonKind reads a reason's name ("syn-ack", "no-response", "icmp").
func ParseReasonKind(s string) (ReasonKind, error) {
	for k, n := range reasonNames {
		if k > 0 && s == n {
			return ReasonKind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown reason %q: want syn-ack, split-handshake-syn, reset, no-response, icmp or arp-response", s)
}

// Reason is why a port got its state.
type Reason struct {
	Kind               ReasonKind
	ICMPType, ICMPCode uint8      // ReasonICMP only
	ICMPv6             bool       // ReasonICMP: the type and code are ICMPv6's (RFC 4443), as in every IPv6 scan
	From               netip.Addr // ReasonICMP: who sent it, when known
	Detail             string     // ReasonNotSent: why, e.g. "operation not permitted: a local OUTPUT rule drops it?"
}

// String returns "syn-ack", "reset", "no-response", "icmp 3/13 from 198.18.0.2" or "icmpv6 1/1 from 2001:2::2".
func (r Reason) String() string {
	if r.Kind == ReasonNotSent && r.Detail != "" {
		return r.Kind.String() + " (" + r.Detail + ")"
	}
	if r.Kind != ReasonICMP {
		return r.Kind.String()
	}
	s := "icmp "
	if r.ICMPv6 {
		s = "icmpv6 "
	}
	s += strconv.Itoa(int(r.ICMPType)) + "/" + strconv.Itoa(int(r.ICMPCode))
	if r.From.IsValid() {
		s += " from " + r.From.String()
	}
	return s
}

// answer is what the table holds for a target: the kind of reply that decided it (0: none yet). One byte, so a
// full sweep of a /24 takes 16 MiB.
type answer uint8

const (
	ansNone    answer = 0
	ansSynAck  answer = 1
	ansSyn     answer = 2  // bare SYN: split handshake
	ansRST     answer = 3  // RST with a zero window
	ansRSTWin  answer = 4  // RST with a nonzero window
	ansUnreach answer = 16 // + code: ICMP destination unreachable (type 3), codes 0-15
	ansTimeEx  answer = 32 // + code: ICMP time exceeded (type 11), codes 0-15
	// ansNotSent + i marks a target whose probe the local kernel refused to send, for the scanner's i-th
	// distinct reason (scanner.notSent). Nothing replaces it, no retry probes it.
	ansNotSent answer = 0xf0
	maxNotSent        = 15 // reasons told apart; later ones share the last
	// ansSkipped marks a target never probed: a broadcast address (see scanner.skip). Nothing replaces it.
	ansSkipped answer = 0xff
)

func (a answer) icmp() bool { return a >= ansUnreach && a < ansTimeEx+16 }

func (a answer) notSent() bool { return a >= ansNotSent && a < ansSkipped }

// validated reports whether the answer carried our cookie (every TCP answer but a bare SYN, every ICMP error).
// A bare SYN cannot: its acknowledgment field is not in use (RFC 9293 §3.5, simultaneous open).
func (a answer) validated() bool {
	return a != ansNone && a != ansSyn && a != ansSkipped && !a.notSent()
}

// wins reports whether answer a replaces old in the table: a first answer always; a TCP reply with our cookie
// over an ICMP error or a bare SYN (the target itself outranks a router, and a cookie outranks none). Nothing
// replaces a skipped target's mark.
func (a answer) wins(old answer) bool {
	if old == ansNone {
		return a != ansNone
	}
	if old == ansSkipped || old.notSent() {
		return false
	}
	return (old.icmp() || old == ansSyn) && a.validated() && !a.icmp()
}

// icmpAnswer maps an ICMP error to an answer, or ansNone for the ones nmap does not read as filtered: type 3
// codes 0 (net), 1 (host), 2 (protocol), 3 (port), 9 and 10 (net and host administratively prohibited, RFC 1122
// §3.2.2.1) and 13 (communication administratively prohibited, RFC 1812 §5.2.7.1); type 11, any code.
func icmpAnswer(typ, code uint8) answer {
	switch {
	case typ == craft.ICMPDestinationUnreachable:
		switch code {
		case 0, 1, 2, 3, 9, 10, 13:
			return ansUnreach + answer(code)
		}
	case typ == craft.ICMPTimeExceeded && code < 16:
		return ansTimeEx + answer(code)
	}
	return ansNone
}

// icmp6Answer maps an ICMPv6 error to an answer, or ansNone for the ones that say nothing of a filter: destination
// unreachable (type 1), codes 0 (no route), 1 (administratively prohibited), 2 (beyond the scope of the source),
// 3 (address unreachable), 4 (port unreachable), 5 (source address failed ingress/egress policy) and 6 (reject
// route), every code RFC 4443 §3.1 defines, each a sign the probe was not delivered; time exceeded (type 3), any
// code. Packet too big and parameter problem are not read: the first asks for a smaller packet, the second
// reports a malformed one.
func icmp6Answer(typ, code uint8) answer {
	switch {
	case typ == craft.ICMPv6DestinationUnreachable && code <= 6:
		return ansUnreach + answer(code)
	case typ == craft.ICMPv6TimeExceeded && code < 16:
		return ansTimeEx + answer(code)
	}
	return ansNone
}

// classify6 is classify for an IPv6 scan: an ICMP reason carries ICMPv6's types.
func classify6(t Type, a answer) (State, Reason) {
	st, why := classify(t, a)
	if why.Kind == ReasonICMP {
		why.ICMPv6 = true
		switch why.ICMPType {
		case craft.ICMPDestinationUnreachable:
			why.ICMPType = craft.ICMPv6DestinationUnreachable
		case craft.ICMPTimeExceeded:
			why.ICMPType = craft.ICMPv6TimeExceeded
		}
	}
	return st, why
}

// classify gives the state and reason of a target of a scan of type t from its answer, with nmap's reading
// (see the package doc). An ICMP reason's From is left for the caller.
func classify(t Type, a answer) (State, Reason) {
	switch {
	case a.notSent():
		// Nothing went out: the state of the port is unknown. Filtered, with the local reason, is what a
		// reader acts on: a local rule or route stands between us and it.
		return Filtered, Reason{Kind: ReasonNotSent}
	case a == ansNone:
		switch t {
		case TypeFIN, TypeNULL, TypeXmas, TypeMaimon:
			return OpenFiltered, Reason{Kind: ReasonNoResponse}
		}
		return Filtered, Reason{Kind: ReasonNoResponse}
	case a >= ansTimeEx:
		return Filtered, Reason{Kind: ReasonICMP, ICMPType: craft.ICMPTimeExceeded, ICMPCode: uint8(a - ansTimeEx)}
	case a >= ansUnreach:
		return Filtered, Reason{Kind: ReasonICMP, ICMPType: craft.ICMPDestinationUnreachable, ICMPCode: uint8(a - ansUnreach)}
	case a == ansSynAck:
		return Open, Reason{Kind: ReasonSynAck}
	case a == ansSyn:
		return Open, Reason{Kind: ReasonSyn}
	}
	// A RST.
	r := Reason{Kind: ReasonReset}
	switch t {
	case TypeACK:
		return Unfiltered, r
	case TypeWindow:
		if a == ansRSTWin {
			return Open, r
		}
	}
	return Closed, r
}
