package craft

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// encode6 is Encode for IPv6 addresses: the 40-byte header (RFC 8200 §3)
// and the segment, with the TCP checksum over RFC 8200 §8.1's
// pseudo-header. Like the IPv4 path it sums from the words it stores.
func (s *Segment) encode6(b []byte) (int, error) {
	ow0, ow1, ow2, optLen, tcpHdr, bad, linux := s.tcpOptions()
	tcpLen := tcpHdr + len(s.Payload)
	total := IPv6HeaderSize + tcpLen
	if bad >= 0 || optLen > TCPOptionsMaximumSize || tcpLen > IPv6MaximumPayload || !isPlain6(s.Src) || !isPlain6(s.Dst) || len(b) < total {
		return 0, s.encodeError(b, bad)
	}
	b = b[:total]
	small := s.writeTCPBody(b[IPv6HeaderSize:], tcpHdr, linux, ow0, ow1, ow2)

	// The 60 header bytes are seven 64-bit words and one 32-bit word:
	//
	//	w0:     version, traffic class, flow label, payload length, next header, hop limit
	//	s0, s1: source; d0, d1: destination
	//	t0:     TCP ports and sequence number (RFC 9293 §3.1)
	//	t1:     acknowledgment number, data offset, flags, window
	//	t2:     TCP checksum and urgent pointer (32 bits)
	//
	// The pseudo-header is the four address words plus the next header
	// and the TCP length; IPv6 has no header checksum.
	// AppendBinary stores the addresses as two 8-byte words each, which
	// the loads below take from the store buffer; As16's 16-byte array
	// result is copied with wide moves that stall the loads (≈25% of
	// the function's time, measured). isPlain6 above proves 32 bytes.
	var ab [32]byte
	a, _ := s.Src.WithZone("").AppendBinary(ab[:0])
	a, _ = s.Dst.WithZone("").AppendBinary(a)
	a = a[:32]
	s0, s1 := binary.BigEndian.Uint64(a[0:]), binary.BigEndian.Uint64(a[8:])
	d0, d1 := binary.BigEndian.Uint64(a[16:]), binary.BigEndian.Uint64(a[24:])
	hop := uint64(s.TTL)
	if hop == 0 {
		hop = defaultTTL
	}
	w0 := uint64(ipv6FirstWord(s.TOS, s.FlowLabel))<<32 | uint64(tcpLen)<<16 | ProtocolTCP<<8 | hop
	t0 := (uint64(s.SrcPort)<<16|uint64(s.DstPort))<<32 | uint64(s.Seq)
	t1 := uint64(s.Ack)<<32 | uint64(tcpHdr/4)<<28 | uint64(s.Flags)<<16 | uint64(s.Window)

	small += uint64(s.Urgent) + ProtocolTCP + uint64(tcpLen)
	sum, c := bits.Add64(s0, s1, 0)
	sum, c = bits.Add64(sum, d0, c)
	sum, c = bits.Add64(sum, d1, c)
	sum, c = bits.Add64(sum, t0, c)
	sum, c = bits.Add64(sum, t1, c)
	sum, c = bits.Add64(sum, ow0, c)
	sum, c = bits.Add64(sum, ow1, c)
	sum, c = bits.Add64(sum, small, c) // small < 2^40: sum+c cannot wrap
	t2 := uint32(checksumField(fold64(sum+c)))<<16 | uint32(s.Urgent)

	h := (*[IPv6HeaderSize + TCPMinimumSize]byte)(b)
	binary.BigEndian.PutUint64(h[0:], w0)
	binary.BigEndian.PutUint64(h[8:], s0)
	binary.BigEndian.PutUint64(h[16:], s1)
	binary.BigEndian.PutUint64(h[24:], d0)
	binary.BigEndian.PutUint64(h[32:], d1)
	binary.BigEndian.PutUint64(h[40:], t0)
	binary.BigEndian.PutUint64(h[48:], t1)
	binary.BigEndian.PutUint32(h[56:], t2)
	return total, nil
}

// IPv6Packet is a parsed IPv6 packet carrying TCP; both fields view the
// bytes given to [ParseIPv6Packet]. IP ends at the packet's end (see
// ParseIPv6Packet), TCP runs from the TCP header, after any extension
// headers, to that end.
type IPv6Packet struct {
	IP  IPv6
	TCP TCP
}

// ParseIPv6Packet checks that b is an IPv6 packet carrying a well-formed
// TCP segment and returns views of it, copying nothing. It checks, in
// order: at least 40 bytes, version 6, then walks the extension headers
// (hop-by-hop options, routing, destination options, fragment and
// authentication headers, RFC 8200 §4 and RFC 4302; at most eight, each
// within the packet) to the upper-layer header, refusing a non-first
// fragment (which carries no TCP header), and wants TCP there, then
// [ParseTCP] on the rest. The packet ends at min(40 + payload length,
// len(b)): kernels may hand us a trimmed or padded buffer. The checksum is
// not checked here: see [TCP.VerifyChecksum].
func ParseIPv6Packet(b []byte) (IPv6Packet, error) {
	ip, err := parseIPv6(b)
	if err != nil {
		return IPv6Packet{}, err
	}
	off, proto, err := upperLayer(ip)
	if err != nil {
		return IPv6Packet{}, fmt.Errorf("craft: parse IPv6 packet from %v: %w", ip.Source(), err)
	}
	if proto != ProtocolTCP {
		return IPv6Packet{}, fmt.Errorf("craft: parse IPv6 packet from %v: next header %d after %d extension header bytes, not TCP (6): %w", ip.Source(), proto, off-IPv6HeaderSize, ErrMalformed)
	}
	tcp, err := ParseTCP(ip[off:])
	if err != nil {
		return IPv6Packet{}, fmt.Errorf("craft: parse IPv6 packet from %v: %w", ip.Source(), err)
	}
	return IPv6Packet{IP: ip, TCP: tcp}, nil
}

// parseIPv6 checks the fixed IPv6 header of b and returns b cut to the
// packet.
func parseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderSize {
		return nil, fmt.Errorf("craft: parse IPv6: %d bytes, shorter than the %d-byte header: %w", len(b), IPv6HeaderSize, ErrMalformed)
	}
	ip := IPv6(b)
	if v := ip.Version(); v != IPv6Version {
		return nil, fmt.Errorf("craft: parse IPv6: version %d, want 6: %w", v, ErrMalformed)
	}
	end := min(IPv6HeaderSize+int(ip.PayloadLength()), len(b))
	return ip[:end:end], nil
}

// upperLayer walks the extension headers of ip (cut to the packet or the
// quote) and returns the offset and type of the first header that is not
// one: TCP, ICMPv6, ESP (whose contents are encrypted), No Next Header or
// anything else. Hop-by-hop, routing and destination options headers are
// (length+1)×8 bytes (RFC 8200 §4.3-4.6), a fragment header 8 (§4.5), an
// authentication header (length+2)×4 (RFC 4302 §2.2).
func upperLayer(ip IPv6) (off int, proto uint8, err error) {
	off, proto = IPv6HeaderSize, ip.NextHeader()
	for range ipv6MaxExtensionHops + 1 {
		var n int
		switch proto {
		case ipv6HopByHop, ipv6Routing, ipv6DestinationOpts, ipv6AH:
			if off+2 > len(ip) {
				return off, proto, fmt.Errorf("extension header %d at byte %d is cut short (%d bytes): %w", proto, off, len(ip), ErrMalformed)
			}
			n = (int(ip[off+1]) + 1) * 8
			if proto == ipv6AH {
				n = (int(ip[off+1]) + 2) * 4
			}
		case ipv6Fragment:
			n = 8
			if off+n <= len(ip) {
				if fo := binary.BigEndian.Uint16(ip[off+2:]) & ipv6FragOffsetMask; fo != 0 {
					return off, proto, fmt.Errorf("fragment at offset %d, which carries no TCP header: %w", fo, ErrMalformed)
				}
			}
		default:
			return off, proto, nil
		}
		if off+n > len(ip) {
			return off, proto, fmt.Errorf("extension header %d at byte %d is %d bytes, past the end of the %d-byte packet: %w", proto, off, n, len(ip), ErrMalformed)
		}
		proto, off = ip[off], off+n
	}
	return off, proto, fmt.Errorf("more than %d extension headers: %w", ipv6MaxExtensionHops, ErrMalformed)
}
