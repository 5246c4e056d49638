package craft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// icmpMessage is what ParseICMPError and ParseICMPv6Error both read, in one code path (parseICMPMessage) with the
// family as a parameter: the sender, the type and code, the second header word, the quoted IP header with what
// follows it, and the quoted TCP ports and sequence number.
type icmpMessage struct {
	from             netip.Addr
	typ, code        uint8
	word             uint32 // the type-specific second word of the header
	quoted           []byte
	srcPort, dstPort uint16
	seq              uint32
	hasSeq           bool
}

// icmpName names the message family: "ICMP" or "ICMPv6".
func icmpName(v6 bool) string {
	if v6 {
		return "ICMPv6"
	}
	return "ICMP"
}

// parseICMPMessage decodes b, a whole IPv4 (v6 false) or IPv6 packet carrying an ICMP or ICMPv6 error about a
// datagram that quotes a TCP segment (see ParseICMPError and ParseICMPv6Error). It copies nothing.
func parseICMPMessage(b []byte, v6 bool, e *icmpMessage) error {
	name := icmpName(v6)
	var from netip.Addr
	var m []byte
	hdr := IPv4MinimumSize // the quoted header's fixed size
	if v6 {
		hdr = IPv6HeaderSize
		ip, err := parseIPv6(b)
		if err != nil {
			return fmt.Errorf("craft: parse ICMPv6 error: %w", err)
		}
		from = ip.Source()
		off, proto, err := upperLayer(ip)
		if err != nil {
			return fmt.Errorf("craft: parse ICMPv6 error from %v: %w", from, err)
		}
		if proto != ProtocolICMPv6 {
			return fmt.Errorf("craft: parse ICMPv6 error from %v: next header %d, not ICMPv6 (58): %w", from, proto, ErrMalformed)
		}
		m = ip[off:]
	} else {
		ip, err := parseIPv4(b)
		if err != nil {
			return fmt.Errorf("craft: parse ICMP error: %w", err)
		}
		from = ip.Source()
		if p := ip.Protocol(); p != ProtocolICMP {
			return fmt.Errorf("craft: parse ICMP error from %v: protocol %d, not ICMP (1): %w", from, p, ErrMalformed)
		}
		m = ip[ip.HeaderLength():]
	}
	if len(m) < icmpHeaderSize+hdr {
		return fmt.Errorf("craft: parse %s error from %v: %d %s bytes, too short for a header and a quoted IPv%d header (%d): %w",
			name, from, len(m), name, ipVersion(v6), icmpHeaderSize+hdr, ErrMalformed)
	}
	e.from, e.typ, e.code, e.word = from, m[0], m[1], binary.BigEndian.Uint32(m[4:])
	lenAt, unit, isError := icmpQuoteUnit(v6, e.typ)
	if !isError {
		what := "datagram"
		if v6 {
			what = "packet"
		}
		return fmt.Errorf("craft: parse %s error from %v: type %d code %d is not an error message about a %s: %w", name, from, e.typ, e.code, what, ErrMalformed)
	}
	q := m[icmpHeaderSize:]
	if unit > 0 {
		// RFC 4884 §4.1, §4.2: the length of the original datagram, in 32-bit words for ICMP, 64-bit for ICMPv6.
		if l := int(m[lenAt]) * unit; l >= hdr && l < len(q) {
			q = q[:l:l]
		}
	}
	if v := q[0] >> 4; v != ipVersion(v6) {
		return icmpMalformed(e, name, "quoted header has version %d, want %d", v, ipVersion(v6))
	}
	// The quoted TCP header: after the IPv4 header's IHL, or after any quoted IPv6 extension headers.
	var toff int
	if v6 {
		off, proto, err := upperLayer(IPv6(q))
		if err != nil {
			return fmt.Errorf("craft: parse ICMPv6 %d/%d from %v: quoted packet: %w", e.typ, e.code, from, err)
		}
		if proto != ProtocolTCP {
			return icmpMalformed(e, name, "quotes next header %d, not TCP (6)", proto)
		}
		toff = off
	} else {
		quoted := IPv4(q)
		if toff = quoted.HeaderLength(); toff < IPv4MinimumSize || toff > len(q) {
			return icmpMalformed(e, name, "quoted header length %d does not fit the %d quoted bytes", toff, len(q))
		}
		if p := quoted.Protocol(); p != ProtocolTCP {
			return icmpMalformed(e, name, "quotes protocol %d, not TCP (6)", p)
		}
	}
	t := q[toff:]
	if len(t) < 4 {
		return icmpMalformed(e, name, "quotes %d TCP bytes, too few for the ports", len(t))
	}
	e.quoted = q
	e.srcPort = binary.BigEndian.Uint16(t)
	e.dstPort = binary.BigEndian.Uint16(t[2:])
	if len(t) >= 8 {
		e.seq = binary.BigEndian.Uint32(t[4:])
		e.hasSeq = true
	}
	return nil
}

// icmpMalformed is the error of a malformed quote in message e.
func icmpMalformed(e *icmpMessage, name, format string, args ...any) error {
	return fmt.Errorf("craft: parse %s %d/%d from %v: %s: %w", name, e.typ, e.code, e.from, fmt.Sprintf(format, args...), ErrMalformed)
}

func ipVersion(v6 bool) uint8 {
	if v6 {
		return IPv6Version
	}
	return IPv4Version
}

// icmpQuoteUnit reports whether typ is an error about a datagram of the family, and where its RFC 4884 length
// is: the byte of the header that holds it and the bytes per unit (unit 0: the type has none).
func icmpQuoteUnit(v6 bool, typ uint8) (lenAt, unit int, ok bool) {
	if v6 {
		switch typ {
		case ICMPv6DestinationUnreachable, ICMPv6TimeExceeded:
			return 4, 8, true // RFC 4884 §4.2: byte 4, 64-bit words
		case ICMPv6PacketTooBig, ICMPv6ParameterProblem:
			return 0, 0, true
		}
		return 0, 0, false
	}
	switch typ {
	case ICMPDestinationUnreachable, ICMPTimeExceeded, ICMPParameterProblem:
		return 5, 4, true // RFC 4884 §4.1: byte 5, 32-bit words
	case ICMPSourceQuench, ICMPRedirect:
		return 0, 0, true
	}
	return 0, 0, false
}

// appendICMPString appends "NAME T/C (description[, mtuLabel MTU]) from FROM", the String of either error.
func appendICMPString(b []byte, name string, typ, code uint8, desc, mtuLabel string, mtu uint32, from netip.Addr) []byte {
	b = append(b, name...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(typ), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(code), 10)
	b = append(b, " ("...)
	b = append(b, desc...)
	if mtuLabel != "" {
		b = append(b, mtuLabel...)
		b = strconv.AppendUint(b, uint64(mtu), 10)
	}
	b = append(b, ") from "...)
	return from.AppendTo(b)
}
