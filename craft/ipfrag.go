package craft

import (
	"errors"
	"fmt"
)

// IPv4OptionsMaximumSize is the most option bytes an IPv4 header holds
// (IHL 15: 60 bytes, 20 of them fixed).
const IPv4OptionsMaximumSize = IPv4MaximumHeaderSize - IPv4MinimumSize

// ipv4OptionCopied is the copied flag of an IP option type (RFC 791 §3.1):
// options with it set go into every fragment, the others into the first only.
const ipv4OptionCopied = 0x80

// encodeIPOptions writes s with s.IPOptions in its IPv4 header. The
// segment is encoded without them after the room the options take, then
// the fixed header is moved down in front of the options: the TCP checksum
// does not cover the IP header, so nothing else changes.
func (s *Segment) encodeIPOptions(b []byte) (int, error) {
	ol := (len(s.IPOptions) + 3) &^ 3
	if ol > IPv4OptionsMaximumSize {
		return 0, fmt.Errorf("craft: encode segment: %d IP option bytes exceed the %d an IPv4 header holds", len(s.IPOptions), IPv4OptionsMaximumSize)
	}
	if total := s.Len(); total > IPv4MaximumTotalLength {
		return 0, fmt.Errorf("craft: encode segment: packet would be %d bytes, over the IPv4 limit of %d; shorten the payload", total, IPv4MaximumTotalLength)
	} else if len(b) < total {
		return 0, fmt.Errorf("craft: encode segment: buffer holds %d bytes, packet needs %d", len(b), total)
	}
	plain := *s
	plain.IPOptions = nil
	n, err := plain.Encode(b[ol:])
	if err != nil {
		return 0, err
	}
	copy(b, b[ol:ol+IPv4MinimumSize]) // overlapping: copy moves
	opts := b[IPv4MinimumSize : IPv4MinimumSize+ol]
	clear(opts[copy(opts, s.IPOptions):]) // EOL padding (RFC 791: type 0)
	ip := IPv4(b[:n+ol])
	ip.SetVersionIHL(IPv4MinimumSize + ol)
	ip.SetTotalLength(uint16(n + ol))
	ip.UpdateChecksum()
	return n + ol, nil
}

// ErrFragment is wrapped by the errors of [FragmentIPv4].
var ErrFragment = errors.New("cannot fragment")

// FragmentIPv4 writes into dst the fragment of pkt (a whole IPv4 packet or
// itself a fragment) that carries its payload from byte off on, at most
// size bytes, and returns the fragment's length and the payload offset of
// the next fragment, which is 0 after the last one. Call it from off 0
// until next is 0 to cut the whole packet, as RFC 791 §3.2 does:
//
//   - every fragment keeps the ID, protocol, addresses, TOS and TTL;
//   - the first fragment keeps all options, later ones only those with the
//     copied flag (type bit 0x80), padded with EOL to 4 bytes;
//   - fragment offsets count 8-byte units from the start of the original
//     datagram, so size must be a multiple of 8 (the last fragment takes
//     what is left), and MF is set on all but the last fragment (or kept
//     from a fragment being cut again);
//   - each fragment's total length and header checksum are its own.
//
// A packet with DF set is refused: the sender asked that it never be
// fragmented. FragmentIPv4 allocates nothing.
func FragmentIPv4(dst []byte, pkt IPv4, off, size int) (n, next int, err error) {
	if len(pkt) < IPv4MinimumSize || pkt.Version() != IPv4Version {
		return 0, 0, fmt.Errorf("craft: fragment: not an IPv4 packet: %w", ErrFragment)
	}
	hl := pkt.HeaderLength()
	if hl < IPv4MinimumSize || hl > len(pkt) || int(pkt.TotalLength()) < hl {
		return 0, 0, fmt.Errorf("craft: fragment: header length %d of a %d-byte packet: %w", hl, len(pkt), ErrFragment)
	}
	if pkt.DontFragment() {
		return 0, 0, fmt.Errorf("craft: fragment: the packet has DF set: %w", ErrFragment)
	}
	payload := pkt.Payload()
	if off < 0 || off%8 != 0 || off >= max(len(payload), 1) {
		return 0, 0, fmt.Errorf("craft: fragment: offset %d of a %d-byte payload (a multiple of 8 inside it): %w", off, len(payload), ErrFragment)
	}
	if size < 8 || size%8 != 0 {
		return 0, 0, fmt.Errorf("craft: fragment: %d payload bytes per fragment; want a multiple of 8 (offsets count 8-byte units): %w", size, ErrFragment)
	}
	end := min(off+size, len(payload))
	last := end == len(payload)

	// The header: the fixed part, then the options this fragment keeps.
	if len(dst) < IPv4MaximumHeaderSize {
		return 0, 0, fmt.Errorf("craft: fragment: buffer of %d bytes: %w", len(dst), ErrFragment)
	}
	copy(dst, pkt[:IPv4MinimumSize])
	ol := IPv4MinimumSize
	if off == 0 {
		ol += copy(dst[IPv4MinimumSize:], pkt[IPv4MinimumSize:hl])
	} else {
		ol += copiedOptions(dst[IPv4MinimumSize:], pkt[IPv4MinimumSize:hl])
	}
	for ol%4 != 0 {
		dst[ol] = 0 // EOL
		ol++
	}
	n = ol + end - off
	if len(dst) < n {
		return 0, 0, fmt.Errorf("craft: fragment: buffer of %d bytes, the fragment needs %d: %w", len(dst), n, ErrFragment)
	}
	copy(dst[ol:], payload[off:end])
	f := IPv4(dst[:n])
	f.SetVersionIHL(ol)
	f.SetTotalLength(uint16(n))
	f.SetFlagsFragment(false, !last || pkt.MoreFragments(), pkt.FragmentOffset()+off)
	f.UpdateChecksum()
	if last {
		return n, 0, nil
	}
	return n, end, nil
}

// copiedOptions writes the options of opts whose copied flag is set into
// dst and returns the bytes written. It stops at EOL and at an option
// whose length does not fit.
func copiedOptions(dst, opts []byte) int {
	n := 0
	for i := 0; i < len(opts); {
		t := opts[i]
		switch t {
		case 0: // EOL: the end of the options
			return n
		case 1: // NOP: not copied
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return n
		}
		l := int(opts[i+1])
		if t&ipv4OptionCopied != 0 {
			n += copy(dst[n:], opts[i:i+l])
		}
		i += l
	}
	return n
}
