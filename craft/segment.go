package craft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// Segment is what to build: one IPv4 packet (with IPOptions, if any) or one
// IPv6 packet (no extension headers) carrying one TCP segment; the family is
// the addresses' (both IPv4 or both IPv6). The zero value of every field is
// sent as is, except TTL.
type Segment struct {
	Src, Dst         netip.Addr // both IPv4 or both IPv6; use Addr.Unmap for ::ffff:a.b.c.d
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            Flags
	Window, Urgent   uint16
	Options          []Option // encoded in order, padded with EOL to 4 bytes
	Payload          []byte
	TTL              uint8  // the IPv6 hop limit too; 0 means 64, Linux's default (net.ipv4.ip_default_ttl, net.ipv6.conf.*.hop_limit)
	TOS              uint8  // the IPv6 traffic class too (both are DSCP and ECN, RFC 2474, RFC 3168)
	ID               uint16 // IPv4 only (IPv6 has one only in a fragment header); the kernel replaces 0 on IP_HDRINCL sends
	DF               bool   // IPv4 only: IPv6 routers never fragment (RFC 8200 §5)
	FlowLabel        uint32 // IPv6 only (RFC 6437): its low 20 bits
	// IPOptions are raw IPv4 option bytes (RFC 791 §3.1), sent as given
	// and padded with EOL to 4 bytes; at most 40. Nil sends none. IPv4 only.
	IPOptions []byte
}

// defaultTTL is what a zero Segment.TTL sends.
const defaultTTL = 64

// Len returns the length of the packet Encode writes.
func (s *Segment) Len() int {
	ip := IPv4MinimumSize + (len(s.IPOptions)+3)&^3
	if s.Src.Is6() {
		ip = IPv6HeaderSize
	}
	return ip + TCPMinimumSize + OptionsLen(s.Options) + len(s.Payload)
}

// errIPOptions6 refuses IPOptions on an IPv6 segment.
var errIPOptions6 = errors.New("craft: IP options on an IPv6 segment: IPv6 carries options in extension headers (RFC 8200 §4)")

// Encode writes the whole packet into b: the IPv4 header with its
// checksum (or the IPv6 header, which has none), the TCP header, options
// and padding, the payload, and the TCP checksum over the pseudo-header
// (RFC 9293 §3.1, RFC 8200 §8.1). Every byte of b[:n] is written, nothing
// after it. It allocates nothing and fails, before writing, if the
// addresses are not both IPv4 or both IPv6, the options exceed 40 bytes,
// the IPv4 packet (or the IPv6 payload) exceeds 65535 bytes or b is
// shorter than [Segment.Len]. With IPOptions (IPv4 only) the header is
// longer (IHL above 5) and the packet is written in two steps, see
// encodeIPOptions.
func (s *Segment) Encode(b []byte) (int, error) {
	if s.Src.Is6() {
		if len(s.IPOptions) > 0 {
			return 0, errIPOptions6
		}
		return s.encode6(b)
	}
	if len(s.IPOptions) > 0 {
		return s.encodeIPOptions(b)
	}
	ow0, ow1, ow2, optLen, tcpHdr, bad, linux := s.tcpOptions()
	total := IPv4MinimumSize + tcpHdr + len(s.Payload)
	if bad >= 0 || optLen > TCPOptionsMaximumSize || total > IPv4MaximumTotalLength || !s.Src.Is4() || !s.Dst.Is4() || len(b) < total {
		return 0, s.encodeError(b, bad)
	}
	b = b[:total]
	small := s.writeTCPBody(b[IPv4MinimumSize:], tcpHdr, linux, ow0, ow1, ow2)

	// The 40 header bytes are five 64-bit words, stored once each. Both
	// checksums are summed from these words in registers (a ones'-
	// complement sum may add any even-aligned word size, RFC 1071 §2(B)),
	// never re-read from b: loading bytes just stored stalls
	// store-to-load forwarding.
	//
	//	w0: version/IHL, TOS, total length, ID, flags/fragment (RFC 791 §3.1)
	//	w1: TTL, protocol, IP checksum, source
	//	w2: destination, TCP source and destination ports (RFC 9293 §3.1)
	//	w3: sequence and acknowledgment numbers
	//	w4: data offset, flags, window, TCP checksum, urgent pointer
	src4, dst4 := s.Src.As4(), s.Dst.As4()
	src, dst := uint64(binary.BigEndian.Uint32(src4[:])), uint64(binary.BigEndian.Uint32(dst4[:]))
	ttl := uint64(s.TTL)
	if ttl == 0 {
		ttl = defaultTTL
	}
	var ff uint64
	if s.DF {
		ff = ipv4FlagDF
	}
	ports := uint64(s.SrcPort)<<16 | uint64(s.DstPort)
	w0 := uint64(IPv4Version<<4|IPv4MinimumSize/4)<<56 | uint64(s.TOS)<<48 | uint64(total)<<32 | uint64(s.ID)<<16 | ff
	w1 := ttl<<56 | ProtocolTCP<<48 | src
	w2 := dst<<32 | ports
	w3 := uint64(s.Seq)<<32 | uint64(s.Ack)
	w4 := uint64(tcpHdr/4)<<60 | uint64(s.Flags)<<48 | uint64(s.Window)<<32 | uint64(s.Urgent)

	ipSum, c := bits.Add64(w0, w1, 0)
	ipSum, c = bits.Add64(ipSum, dst, c)
	w1 |= uint64(checksumField(fold64(ipSum+c))) << 32

	// TCP: the pseudo-header (addresses, protocol, TCP length) and the
	// small terms cannot overflow 64 bits; w3 and w4 carry around.
	small += src + dst + ports + ProtocolTCP + uint64(total-IPv4MinimumSize)
	sum, c := bits.Add64(w3, w4, 0)
	sum, c = bits.Add64(sum, ow0, c)
	sum, c = bits.Add64(sum, ow1, c)
	sum, c = bits.Add64(sum, small, c)
	w4 |= uint64(checksumField(fold64(sum+c))) << 16

	h := (*[IPv4MinimumSize + TCPMinimumSize]byte)(b)
	binary.BigEndian.PutUint64(h[0:], w0)
	binary.BigEndian.PutUint64(h[8:], w1)
	binary.BigEndian.PutUint64(h[16:], w2)
	binary.BigEndian.PutUint64(h[24:], w3)
	binary.BigEndian.PutUint64(h[32:], w4)
	return total, nil
}

// tcpOptions is the TCP part of an encode that both families share (Encode, encode6): it reads s's options,
// Linux's SYN layout (what every default probe carries) into three words, else their length on the wire before
// padding, and returns the TCP header length (options padded to 4 bytes). bad >= 0 is the index of a malformed
// option (see encodeError). Only scalars, so that every result comes back in a register.
func (s *Segment) tcpOptions() (ow0, ow1 uint64, ow2 uint32, optLen, tcpHdr, bad int, linux bool) {
	optLen, bad, linux = linuxSYNOptionsLen, -1, isLinuxSYNLayout(s.Options)
	if linux {
		ow0, ow1, ow2 = linuxSYNWords(s.Options)
	} else if optLen, bad = optionsWireLen(s.Options); bad >= 0 {
		return
	}
	return ow0, ow1, ow2, optLen, TCPMinimumSize + (optLen+3)&^3, -1, linux
}

// writeTCPBody writes the options (ow0, ow1, ow2 under Linux's layout) and s's payload after the TCP header at
// t[0:] (tcpHdr bytes with the options), and returns their ones'-complement sum less ow0 and ow1, which the
// caller adds from its registers. Options and payload go first: the header's words then have few live values
// to spill. Their sum is taken from the values written, not re-read (loading bytes just stored stalls
// store-to-load forwarding).
func (s *Segment) writeTCPBody(t []byte, tcpHdr int, linux bool, ow0, ow1 uint64, ow2 uint32) uint64 {
	var small uint64
	if linux {
		opt := (*[linuxSYNOptionsLen]byte)(t[TCPMinimumSize:])
		binary.BigEndian.PutUint64(opt[0:], ow0)
		binary.BigEndian.PutUint64(opt[8:], ow1)
		binary.BigEndian.PutUint32(opt[16:], ow2)
		small = uint64(ow2)
	} else {
		small = uint64(encodeOptions(t[TCPMinimumSize:tcpHdr], s.Options, tcpHdr-TCPMinimumSize))
	}
	if len(s.Payload) > 0 {
		copy(t[tcpHdr:], s.Payload)
		// The payload starts at an even offset, so its own sum is its
		// sum in place; it is read from the caller's bytes.
		small += uint64(Checksum(s.Payload, 0))
	}
	return small
}

// optionsWireLen returns the bytes opts take before padding, or the index
// of the first option whose data does not fit its length byte.
func optionsWireLen(opts []Option) (n, bad int) {
	for i := range opts {
		o := &opts[i]
		if o.Kind == OptEOL || o.Kind == OptNOP {
			n++
			continue
		}
		if len(o.Data) > 253 {
			return n, i
		}
		n += 2 + len(o.Data)
	}
	return n, -1
}

// encodeError says why Encode refuses s; bad is the index of an option
// whose data is too long, or -1. It is kept out of Encode's fast path.
//
//go:noinline
func (s *Segment) encodeError(b []byte, bad int) error {
	if bad >= 0 {
		return fmt.Errorf("craft: encode segment: option %d (kind %d) has %d data bytes; at most 253 fit its length byte", bad, s.Options[bad].Kind, len(s.Options[bad].Data))
	}
	optLen := 0
	for i := range s.Options {
		optLen += s.Options[i].Len()
	}
	if optLen > TCPOptionsMaximumSize {
		return fmt.Errorf("craft: encode segment: %d option bytes exceed the %d a TCP header holds; drop or shorten options", optLen, TCPOptionsMaximumSize)
	}
	v4, v6 := s.Src.Is4() && s.Dst.Is4(), isPlain6(s.Src) && isPlain6(s.Dst)
	if !v4 && !v6 {
		return fmt.Errorf("craft: encode segment %v -> %v: the addresses must be both IPv4 or both IPv6 (unmap ::ffff: addresses with Addr.Unmap)", s.Src, s.Dst)
	}
	total := s.Len()
	if v4 && total > IPv4MaximumTotalLength {
		return fmt.Errorf("craft: encode segment: packet would be %d bytes, over the IPv4 limit of %d; shorten the payload", total, IPv4MaximumTotalLength)
	}
	if v6 && total-IPv6HeaderSize > IPv6MaximumPayload {
		return fmt.Errorf("craft: encode segment: TCP segment would be %d bytes, over the IPv6 payload limit of %d; shorten the payload", total-IPv6HeaderSize, IPv6MaximumPayload)
	}
	return fmt.Errorf("craft: encode segment: buffer holds %d bytes, packet needs %d", len(b), total)
}

// isPlain6 reports whether a is an IPv6 address that is not IPv4-mapped:
// what an IPv6 header may carry for tcpwalk.
func isPlain6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// Packet is a parsed IPv4 packet carrying TCP; both fields view the bytes
// given to [ParsePacket]. IP ends at the packet's end (see ParsePacket),
// TCP runs from the TCP header to that end.
type Packet struct {
	IP  IPv4
	TCP TCP
}

// ParsePacket checks that b is an IPv4 packet carrying a well-formed TCP
// segment and returns views of it, copying nothing. It checks, in order:
// at least 20 bytes, version 4, IHL at least 5 and within b, total length
// at least the header length, not a non-first fragment (whose payload
// does not start with a TCP header), protocol 6, and then [ParseTCP] on the
// payload. The packet ends at min(total length, len(b)): kernels may hand
// us a trimmed or padded buffer. Checksums are not checked here (a prober
// reports a bad one rather than drop it): see [IPv4.IsChecksumValid] and
// [TCP.VerifyChecksum].
func ParsePacket(b []byte) (p Packet, err error) {
	// Small enough to inline, so that the caller builds the views from
	// two offsets: a Packet returned from a call is spilled and copied
	// with wide moves that stall on store forwarding (≈9 ns, more than
	// all the checks).
	var hl int
	p.IP, hl, err = packetBounds(b)
	p.TCP = TCP(p.IP[hl:])
	return p, err
}

// packetBounds returns b cut to the packet and the IPv4 header length,
// after every check of ParsePacket in a few compares and no error built on
// the way; anything they reject goes to parsePacket, which checks again
// in order to say what is wrong (and then ip is nil and hl 0).
// FuzzParsePacketFastPath checks that both accept the same packets.
func packetBounds(b []byte) (ip IPv4, hl int, err error) {
	if len(b) >= IPv4MinimumSize+TCPMinimumSize {
		hl = int(b[0]&0xf) * 4
		end := min(int(binary.BigEndian.Uint16(b[IPv4TotalLengthOffset:])), len(b))
		if b[0]>>4 == IPv4Version && hl >= IPv4MinimumSize && hl+TCPMinimumSize <= end &&
			binary.BigEndian.Uint16(b[IPv4FlagsFragOffset:])&ipv4FragOffsetMask == 0 && b[IPv4ProtocolOffset] == ProtocolTCP {
			t := b[hl:end]
			off := int(t[TCPDataOffset]>>4) * 4
			if off >= TCPMinimumSize && off <= len(t) {
				if o := t[TCPMinimumSize:off]; fastOptionLayout(o) != layoutOther || optionsValidLoop(o) {
					return b[:end:end], hl, nil
				}
			}
		}
	}
	if _, err := parsePacket(b); err != nil {
		return nil, 0, err
	}
	// Unreachable while both agree; fail closed if they ever do not.
	return nil, 0, fmt.Errorf("craft: parse packet: %d bytes rejected by the fast checks only: %w", len(b), ErrMalformed)
}

// parsePacket is ParsePacket check by check, each failure with its own
// error. It is kept out of ParsePacket's fast path.
//
//go:noinline
func parsePacket(b []byte) (Packet, error) {
	ip, err := parseIPv4(b)
	if err != nil {
		return Packet{}, err
	}
	if p := ip.Protocol(); p != ProtocolTCP {
		return Packet{}, fmt.Errorf("craft: parse packet from %v: protocol %d, not TCP (6): %w", ip.Source(), p, ErrMalformed)
	}
	tcp, err := ParseTCP(ip[ip.HeaderLength():])
	if err != nil {
		return Packet{}, fmt.Errorf("craft: parse packet from %v: %w", ip.Source(), err)
	}
	return Packet{IP: ip, TCP: tcp}, nil
}

// parseIPv4 checks the IPv4 header of b and returns b cut to the packet.
func parseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinimumSize {
		return nil, fmt.Errorf("craft: parse IPv4: %d bytes, shorter than the %d-byte minimum header: %w", len(b), IPv4MinimumSize, ErrMalformed)
	}
	ip := IPv4(b)
	if v := ip.Version(); v != IPv4Version {
		return nil, fmt.Errorf("craft: parse IPv4: version %d, want 4: %w", v, ErrMalformed)
	}
	hl := ip.HeaderLength()
	if hl < IPv4MinimumSize {
		return nil, fmt.Errorf("craft: parse IPv4: header length %d bytes (IHL %d), below the minimum of 20 (IHL 5): %w", hl, hl/4, ErrMalformed)
	}
	if hl > len(b) {
		return nil, fmt.Errorf("craft: parse IPv4: header length %d bytes, past the end of the %d-byte packet: %w", hl, len(b), ErrMalformed)
	}
	tl := int(ip.TotalLength())
	if tl < hl {
		return nil, fmt.Errorf("craft: parse IPv4: total length %d, shorter than the %d-byte header: %w", tl, hl, ErrMalformed)
	}
	if off := ip.FragmentOffset(); off != 0 {
		return nil, fmt.Errorf("craft: parse IPv4 from %v: fragment at offset %d, which carries no TCP header: %w", ip.Source(), off, ErrMalformed)
	}
	end := min(tl, len(b))
	return ip[:end:end], nil
}

// ParseTCP checks that b is a well-formed TCP segment, header first: at
// least 20 bytes, data offset at least 5 words and within b, and options
// well-formed (see [OptionIter]). It copies nothing.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinimumSize {
		return nil, fmt.Errorf("craft: parse TCP: %d bytes, shorter than the %d-byte minimum header: %w", len(b), TCPMinimumSize, ErrMalformed)
	}
	t := TCP(b)
	off := t.DataOffset()
	if off < TCPMinimumSize {
		return nil, fmt.Errorf("craft: parse TCP: data offset %d bytes, below the minimum of 20: %w", off, ErrMalformed)
	}
	if off > len(b) {
		return nil, fmt.Errorf("craft: parse TCP: data offset %d bytes, past the end of the %d-byte segment: %w", off, len(b), ErrMalformed)
	}
	if opts := b[TCPMinimumSize:off]; !optionsValid(opts) {
		it := NewOptionIter(opts)
		for it.Next() {
		}
		if it.err == nil { // unreachable while optionsValid and Next agree
			it.err = fmt.Errorf("craft: TCP options %x: %w", opts, ErrMalformed)
		}
		return nil, fmt.Errorf("craft: parse TCP %d > %d: %w", t.SourcePort(), t.DestinationPort(), it.err)
	}
	return t, nil
}
