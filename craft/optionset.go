package craft

import "encoding/binary"

// OptionSet is a segment's options decoded in one pass by [ParseOptions]
// or [TCP.DecodeOptions]: what a prober reads from a SYN-ACK (the MSS, the
// window scale, whether SACK is permitted, the timestamps) without
// walking the list again per question. A caller keeps one and reuses it;
// decoding into it allocates nothing.
//
// An option's value fields are meaningful only when [OptionSet.Has]
// reports its kind. When a kind appears more than once, the last one
// wins, as in Linux's tcp_parse_options; [OptionIter] keeps order and
// duplicates for callers that judge them.
type OptionSet struct {
	MSS         uint16 // RFC 9293 §3.7.1
	WindowScale uint8  // shift as sent, not clamped to 14 (RFC 7323 §2.3)
	// NumSACK is how many blocks of SACK are valid: those of the last
	// SACK option (RFC 2018 §3), 1 to 4 when Has(OptSACK).
	NumSACK      uint8
	TSVal, TSEcr uint32 // RFC 7323 §3
	SACK         [4]SACKBlock
	kinds        [4]uint64 // bit k%64 of kinds[k/64]: kind k appeared
}

// Has reports whether an option of kind k appeared: any kind, unknown
// ones included (raw bytes stay with [OptionIter]). Has(OptEOL) reports
// that an EOL ended the list, Has(OptNOP) that a NOP appeared.
func (s *OptionSet) Has(k OptionKind) bool { return s.kinds[k>>6]>>(k&63)&1 != 0 }

// SACKBlocks returns the blocks of the last SACK option; it views s.
func (s *OptionSet) SACKBlocks() []SACKBlock { return s.SACK[:min(int(s.NumSACK), len(s.SACK))] }

// DecodeOptions decodes the segment's options into s; see [ParseOptions].
// After [ParseTCP] or [ParsePacket] accepted t it returns nil.
func (t TCP) DecodeOptions(s *OptionSet) error { return parseOptions(t, true, s) }

// ParseOptions decodes raw option bytes b (the bytes between the fixed TCP
// header and the data offset) into s, by the rules of [OptionIter]: it
// stops at the end of b or at an EOL, and returns the error the iterator
// would return for a malformed option (wrapping [ErrMalformed]), s then
// holding the options before it. It allocates nothing.
//
// The layouts nearly every segment carries (none; mss; nop,nop,TS;
// mss,sackOK,TS,nop,wscale) are decoded from two or three loads without a
// loop; anything else takes the general loop, with the same result.
func ParseOptions(b []byte, s *OptionSet) error { return parseOptions(b, false, s) }

// parseOptions is ParseOptions, and DecodeOptions when b is a whole
// segment (isTCP): both entry points inline, so either costs one call.
func parseOptions(b []byte, isTCP bool, s *OptionSet) error {
	if isTCP {
		b = TCP(b).OptionBytes()
	}
	*s = OptionSet{}
	switch fastOptionLayout(b) {
	case layoutNone:
		return nil
	case layoutMSS:
		s.MSS = binary.BigEndian.Uint16(b[2:])
		s.kinds[0] = 1 << OptMSS
		return nil
	case layoutNOPNOPTS:
		ts := binary.BigEndian.Uint64(b[4:])
		s.TSVal, s.TSEcr = uint32(ts>>32), uint32(ts)
		s.kinds[0] = 1<<OptNOP | 1<<OptTimestamps
		return nil
	case layoutLinuxSYN:
		w0, ts := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
		s.MSS = uint16(w0 >> 32)
		s.TSVal, s.TSEcr = uint32(ts>>32), uint32(ts)
		s.WindowScale = b[19]
		s.kinds[0] = 1<<OptMSS | 1<<OptSACKPermitted | 1<<OptTimestamps | 1<<OptNOP | 1<<OptWindowScale
		return nil
	}
	return parseOptionsLoop(b, s)
}

// parseOptionsLoop is ParseOptions' general loop over a zeroed s.
func parseOptionsLoop(b []byte, s *OptionSet) error {
	for off := 0; off < len(b); {
		k := b[off]
		if k == byte(OptNOP) || k == byte(OptEOL) {
			s.kinds[0] |= 1 << k
			if k == byte(OptEOL) {
				return nil
			}
			off++
			continue
		}
		if off+1 >= len(b) {
			return optionError(b, off)
		}
		n := int(b[off+1])
		if off+n > len(b) || !optionLenOK(k, n) {
			return optionError(b, off)
		}
		d := b[off+2 : off+n]
		switch OptionKind(k) {
		case OptMSS:
			s.MSS = binary.BigEndian.Uint16(d)
		case OptWindowScale:
			s.WindowScale = d[0]
		case OptTimestamps:
			s.TSVal, s.TSEcr = binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case OptSACK:
			s.SACK, s.NumSACK = [4]SACKBlock{}, 0
			for ; len(d) >= 8 && int(s.NumSACK) < len(s.SACK); d = d[8:] {
				s.SACK[s.NumSACK] = SACKBlock{binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])}
				s.NumSACK++
			}
		}
		s.kinds[k>>6] |= 1 << (k & 63)
		off += n
	}
	return nil
}
