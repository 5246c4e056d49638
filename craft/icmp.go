package craft

import (
	"net/netip"
	"strconv"
)

// ICMP error types (RFC 792, RFC 1812 §5.2.7) that can be about a segment
// we sent.
const (
	ICMPDestinationUnreachable = 3
	ICMPSourceQuench           = 4 // deprecated by RFC 6633, still decoded
	ICMPRedirect               = 5
	ICMPTimeExceeded           = 11
	ICMPParameterProblem       = 12
)

// icmpHeaderSize is the fixed ICMP error header: type, code, checksum and
// four type-specific bytes; the quoted datagram follows (RFC 792).
const icmpHeaderSize = 8

// ICMPError is an ICMP error message about one of our TCP segments:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| pointer (12)  | length (4884) |   next-hop MTU (3/4, RFC 1191)|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Internet Header + 64 bits of Original Data Datagram      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// (For type 5 the second word is the gateway address.) Only the first 8
// bytes of the quoted TCP header are guaranteed (RFC 792): the ports and
// the sequence number. Routers following RFC 1812 §4.3.2.3 quote more.
type ICMPError struct {
	From       netip.Addr // who sent the ICMP message
	Type, Code uint8
	Quoted     IPv4 // the quoted IPv4 header and whatever of our segment follows it
	SrcPort    uint16
	DstPort    uint16
	Seq        uint32
	HasSeq     bool // the quote reaches the sequence number

	MTU     uint16     // next-hop MTU of type 3 code 4 (RFC 1191), else 0
	Pointer uint8      // octet the type 12 error points at, else 0
	Gateway netip.Addr // new first hop of a type 5 redirect, else invalid
}

// QuotedTCP returns the quoted TCP bytes (often just 8), or nil.
func (e ICMPError) QuotedTCP() []byte {
	if len(e.Quoted) < IPv4MinimumSize {
		return nil
	}
	hl := e.Quoted.HeaderLength()
	if hl < IPv4MinimumSize || hl > len(e.Quoted) {
		return nil
	}
	return e.Quoted[hl:]
}

// ParseICMPError decodes b, a whole IPv4 packet carrying an ICMP error
// (type 3, 4, 5, 11 or 12) that quotes a TCP segment. It copies nothing:
// Quoted views b. It fails for other ICMP types (echo replies and the
// like), quotes of other protocols, and quotes too short to hold the two
// ports. When an RFC 4884 length is set, the quote stops there, so
// extension objects are not mistaken for our segment.
func ParseICMPError(b []byte) (ICMPError, error) {
	var m icmpMessage
	if err := parseICMPMessage(b, false, &m); err != nil {
		return ICMPError{}, err
	}
	e := ICMPError{From: m.from, Type: m.typ, Code: m.code, Quoted: IPv4(m.quoted), SrcPort: m.srcPort, DstPort: m.dstPort,
		Seq: m.seq, HasSeq: m.hasSeq}
	switch e.Type {
	case ICMPDestinationUnreachable:
		if e.Code == 4 {
			e.MTU = uint16(m.word)
		}
	case ICMPRedirect:
		e.Gateway = netip.AddrFrom4([4]byte{byte(m.word >> 24), byte(m.word >> 16), byte(m.word >> 8), byte(m.word)})
	case ICMPParameterProblem:
		e.Pointer = uint8(m.word >> 24)
	}
	return e, nil
}

// String returns "ICMP 3/13 (communication administratively prohibited)
// from 198.18.0.9", with the next-hop MTU for 3/4.
func (e ICMPError) String() string {
	label := ""
	if e.Type == ICMPDestinationUnreachable && e.Code == 4 {
		label = ", next-hop MTU "
	}
	return string(appendICMPString(make([]byte, 0, 96), "ICMP", e.Type, e.Code, ICMPDescription(e.Type, e.Code), label, uint32(e.MTU), e.From))
}

var (
	unreachCodes = [...]string{
		0:  "net unreachable",
		1:  "host unreachable",
		2:  "protocol unreachable",
		3:  "port unreachable",
		4:  "fragmentation needed and DF set",
		5:  "source route failed",
		6:  "destination network unknown",
		7:  "destination host unknown",
		8:  "source host isolated",
		9:  "communication with destination network administratively prohibited",
		10: "communication with destination host administratively prohibited",
		11: "network unreachable for type of service",
		12: "host unreachable for type of service",
		13: "communication administratively prohibited",
		14: "host precedence violation",
		15: "precedence cutoff in effect",
	}
	redirectCodes = [...]string{
		0: "redirect datagrams for the network",
		1: "redirect datagrams for the host",
		2: "redirect datagrams for the type of service and network",
		3: "redirect datagrams for the type of service and host",
	}
	timeExceededCodes = [...]string{
		0: "time to live exceeded in transit",
		1: "fragment reassembly time exceeded",
	}
	paramProblemCodes = [...]string{
		0: "pointer indicates the error",
		1: "missing a required option",
		2: "bad length",
	}
)

// ICMPDescription returns the IANA description of an ICMP type and code
// (RFC 792, RFC 1122, RFC 1812), or "type T code C" when unknown.
func ICMPDescription(typ, code uint8) string {
	var table []string
	switch typ {
	case ICMPDestinationUnreachable:
		table = unreachCodes[:]
	case ICMPSourceQuench:
		if code == 0 {
			return "source quench"
		}
	case ICMPRedirect:
		table = redirectCodes[:]
	case ICMPTimeExceeded:
		table = timeExceededCodes[:]
	case ICMPParameterProblem:
		table = paramProblemCodes[:]
	}
	if int(code) < len(table) {
		return table[code]
	}
	return "type " + strconv.Itoa(int(typ)) + " code " + strconv.Itoa(int(code))
}
