package craft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// ICMPv6 error types (RFC 4443 §3) that can be about a segment we sent.
// The numbers differ from ICMPv4's, hence a type of their own.
const (
	ICMPv6DestinationUnreachable = 1
	ICMPv6PacketTooBig           = 2
	ICMPv6TimeExceeded           = 3
	ICMPv6ParameterProblem       = 4
)

// ICMPv6MinimumMTU is the IPv6 minimum link MTU (RFC 8200 §5), which an
// ICMPv6 error never exceeds (RFC 4443 §2.4(c)).
const ICMPv6MinimumMTU = 1280

// ICMPv6Error is an ICMPv6 error message (RFC 4443 §3) about one of our
// TCP segments:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   MTU (2) / Pointer (4) / length (1, 3: RFC 4884) / unused    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    As much of invoking packet as possible without the ICMPv6  |
//	+    packet exceeding the minimum IPv6 MTU                      +
//
// Unlike ICMPv4 (8 bytes of the datagram, RFC 792), the quote is whole up
// to 1280 bytes, so it normally holds our whole segment.
type ICMPv6Error struct {
	From       netip.Addr // who sent the ICMPv6 message
	Type, Code uint8
	Quoted     IPv6 // the quoted IPv6 header and whatever of our packet follows it
	SrcPort    uint16
	DstPort    uint16
	Seq        uint32
	HasSeq     bool // the quote reaches the sequence number

	MTU     uint32 // the MTU of a packet too big (type 2), else 0
	Pointer uint32 // the octet a parameter problem (type 4) points at, else 0
}

// QuotedTCP returns the quoted TCP bytes, after any quoted extension
// headers, or nil.
func (e ICMPv6Error) QuotedTCP() []byte {
	if len(e.Quoted) < IPv6HeaderSize {
		return nil
	}
	off, proto, err := upperLayer(e.Quoted)
	if err != nil || proto != ProtocolTCP {
		return nil
	}
	return e.Quoted[off:]
}

// ParseICMPv6Error decodes b, a whole IPv6 packet carrying an ICMPv6
// error (type 1 to 4) that quotes a TCP segment. It copies nothing:
// Quoted views b. It fails for other ICMPv6 types (informational messages
// from 128 on, neighbour discovery), quotes of other protocols and quotes
// too short to hold the two ports. Extension headers before the ICMPv6
// header, and in the quote, are walked as [ParseIPv6Packet] does. When an
// RFC 4884 length is set (types 1 and 3), the quote stops there, so
// extension objects are not mistaken for our segment. The checksum is not
// checked.
func ParseICMPv6Error(b []byte) (ICMPv6Error, error) {
	var m icmpMessage
	if err := parseICMPMessage(b, true, &m); err != nil {
		return ICMPv6Error{}, err
	}
	e := ICMPv6Error{From: m.from, Type: m.typ, Code: m.code, Quoted: IPv6(m.quoted), SrcPort: m.srcPort, DstPort: m.dstPort,
		Seq: m.seq, HasSeq: m.hasSeq}
	switch e.Type {
	case ICMPv6PacketTooBig:
		e.MTU = m.word
	case ICMPv6ParameterProblem:
		e.Pointer = m.word
	}
	return e, nil
}

// String returns "ICMPv6 1/1 (communication with destination
// administratively prohibited) from 2001:2::9", with the MTU for type 2.
func (e ICMPv6Error) String() string {
	label := ""
	if e.Type == ICMPv6PacketTooBig {
		label = ", MTU "
	}
	return string(appendICMPString(make([]byte, 0, 112), "ICMPv6", e.Type, e.Code, ICMPv6Description(e.Type, e.Code), label, e.MTU, e.From))
}

var (
	unreach6Codes = [...]string{
		0: "no route to destination",
		1: "communication with destination administratively prohibited",
		2: "beyond scope of source address",
		3: "address unreachable",
		4: "port unreachable",
		5: "source address failed ingress/egress policy",
		6: "reject route to destination",
		7: "error in source routing header", // RFC 6550
		8: "headers too long",               // RFC 8883
	}
	timeExceeded6Codes = [...]string{
		0: "hop limit exceeded in transit",
		1: "fragment reassembly time exceeded",
	}
	paramProblem6Codes = [...]string{
		0:  "erroneous header field encountered",
		1:  "unrecognized next header type encountered",
		2:  "unrecognized IPv6 option encountered",
		3:  "IPv6 first fragment has incomplete IPv6 header chain",           // RFC 7112
		4:  "SR upper-layer header error",                                    // RFC 8754
		5:  "unrecognized next header type encountered by intermediate node", // RFC 8883
		6:  "extension header too big",
		7:  "extension header chain too long",
		8:  "too many extension headers",
		9:  "too many options in extension header",
		10: "option too big",
	}
)

// ICMPv6Description returns the IANA description of an ICMPv6 error type
// and code (RFC 4443 and its updates), or "type T code C" when unknown.
func ICMPv6Description(typ, code uint8) string {
	var table []string
	switch typ {
	case ICMPv6DestinationUnreachable:
		table = unreach6Codes[:]
	case ICMPv6PacketTooBig:
		if code == 0 {
			return "packet too big"
		}
	case ICMPv6TimeExceeded:
		table = timeExceeded6Codes[:]
	case ICMPv6ParameterProblem:
		table = paramProblem6Codes[:]
	}
	if int(code) < len(table) {
		return table[code]
	}
	return "type " + strconv.Itoa(int(typ)) + " code " + strconv.Itoa(int(code))
}

// ICMPv6ErrorFields is an ICMPv6 error to build, for tests and labs that
// play a router or a filtering host: [ICMPv6ErrorFields.Encode] writes
// the IPv6 header, the ICMPv6 header with its checksum, and the quote.
type ICMPv6ErrorFields struct {
	From, To   netip.Addr // the reporting node and the offending packet's source; both IPv6
	Type, Code uint8
	// Param is the second word: the MTU of a packet too big, the pointer
	// of a parameter problem; 0 (unused) for the others.
	Param    uint32
	HopLimit uint8  // 0 means 64
	Quote    []byte // the offending packet, header first; cut so the error fits 1280 bytes (RFC 4443 §2.4(c))
}

// quoteLen is how much of the quote Encode writes.
func (f *ICMPv6ErrorFields) quoteLen() int {
	return min(len(f.Quote), ICMPv6MinimumMTU-IPv6HeaderSize-icmpHeaderSize)
}

// Len returns the length of the packet Encode writes: at most 1280.
func (f *ICMPv6ErrorFields) Len() int { return IPv6HeaderSize + icmpHeaderSize + f.quoteLen() }

// Encode writes the packet into b and returns its length. The checksum
// covers RFC 8200 §8.1's pseudo-header with next header 58 (RFC 4443
// §2.3). It allocates nothing and fails, before writing, if an address is
// not plain IPv6 or b is shorter than [ICMPv6ErrorFields.Len].
func (f *ICMPv6ErrorFields) Encode(b []byte) (int, error) {
	if !isPlain6(f.From) || !isPlain6(f.To) {
		return 0, fmt.Errorf("craft: encode ICMPv6 error %v -> %v: both addresses must be IPv6", f.From, f.To)
	}
	n := f.Len()
	if len(b) < n {
		return 0, fmt.Errorf("craft: encode ICMPv6 error: buffer holds %d bytes, packet needs %d", len(b), n)
	}
	hop := f.HopLimit
	if hop == 0 {
		hop = defaultTTL
	}
	mlen := n - IPv6HeaderSize
	IPv6(b).Encode(&IPv6Fields{PayloadLength: uint16(mlen), NextHeader: ProtocolICMPv6, HopLimit: hop, Src: f.From, Dst: f.To})
	m := b[IPv6HeaderSize:n]
	m[0], m[1], m[2], m[3] = f.Type, f.Code, 0, 0
	binary.BigEndian.PutUint32(m[4:], f.Param)
	copy(m[icmpHeaderSize:], f.Quote[:f.quoteLen()])
	binary.BigEndian.PutUint16(m[2:], checksumField(Checksum(m, PseudoHeaderSum(f.From, f.To, ProtocolICMPv6, uint16(mlen)))))
	return n, nil
}
