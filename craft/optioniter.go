package craft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about bytes that are not a valid
// packet, segment, option list or ICMP error, so callers can tell "the
// remote sent garbage" (errors.Is(err, ErrMalformed)) from their own
// mistakes.
var ErrMalformed = errors.New("malformed")

// OptionIter walks raw TCP option bytes without copying:
//
//	it := seg.Options()
//	for it.Next() {
//		o := it.Option()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// Iteration stops at the end of the bytes, at an EOL option (the rest is
// padding, RFC 9293 §3.2) or at the first malformed option, which Err
// then describes: a missing length byte, a length below 2, a length past
// the end, or a known kind with a length its RFC does not allow (MSS 4,
// window scale 3, SACK-permitted 2, timestamps 10, SACK 2+8n with n
// from 1 to 4, the most a 40-byte options area holds). Unknown kinds are
// returned raw. EOL itself is not returned; [OptionIter.SawEOL] says
// whether one ended the list. [ParseOptions] decodes the same bytes into
// an [OptionSet] in one pass when order does not matter.
type OptionIter struct {
	b      []byte
	off    int // start of the next option
	cur    int // start of the current option
	n      int // length of the current option (1 for NOP)
	err    error
	sawEOL bool
}

// NewOptionIter returns an iterator over raw option bytes b (the bytes
// between the fixed TCP header and the data offset).
func NewOptionIter(b []byte) OptionIter { return OptionIter{b: b} }

// optLenMask holds, per kind, the total lengths (kind and length bytes
// included) its RFC allows: bit n set means length n is allowed. 0 means
// any length of at least 2 (unknown kinds). Lengths of 64 and more shift
// every bit out, so no known kind allows them.
var optLenMask = [256]uint64{
	OptMSS:           1 << 4,                        // RFC 9293 §3.2
	OptWindowScale:   1 << 3,                        // RFC 7323 §2.2
	OptSACKPermitted: 1 << 2,                        // RFC 2018 §2
	OptTimestamps:    1 << 10,                       // RFC 7323 §3.2
	OptSACK:          1<<10 | 1<<18 | 1<<26 | 1<<34, // RFC 2018 §3: 2+8n, n from 1 to 4
}

// optionLenOK reports whether an option of kind k may have length n.
func optionLenOK(k byte, n int) bool {
	m := optLenMask[k]
	return n >= 2 && (m == 0 || m>>uint(n)&1 != 0)
}

// Next advances to the next option and reports whether there is one.
func (it *OptionIter) Next() bool {
	off := it.off
	if off >= len(it.b) {
		return false
	}
	b := it.b[off:]
	switch b[0] {
	case byte(OptEOL):
		it.sawEOL = true
		it.off = len(it.b)
		return false
	case byte(OptNOP):
		it.cur, it.n, it.off = off, 1, off+1
		return true
	}
	if len(b) >= 2 {
		n := int(b[1])
		if n <= len(b) && optionLenOK(b[0], n) {
			it.cur, it.n, it.off = off, n, off+n
			return true
		}
	}
	it.err = optionError(it.b, off)
	it.off = len(it.b)
	return false
}

// Option returns the current option; its Data views the packet.
func (it *OptionIter) Option() Option {
	switch it.n {
	case 0:
		return Option{} // before the first Next
	case 1:
		return Option{Kind: OptNOP}
	}
	d := it.b[it.cur:][:it.n:it.n]
	return Option{Kind: OptionKind(d[0]), Data: d[2:]}
}

// Err returns the error that stopped iteration, or nil.
func (it *OptionIter) Err() error { return it.err }

// SawEOL reports whether an EOL option ended the list.
func (it *OptionIter) SawEOL() bool { return it.sawEOL }

// optionsValid reports whether raw option bytes are well formed by the
// rules of [OptionIter.Next], without building an error: ParsePacket's
// fast path. The layouts nearly every segment carries are recognised by
// [fastOptionLayout] with a couple of masked compares; the rest take the
// general loop.
func optionsValid(b []byte) bool {
	return fastOptionLayout(b) != layoutOther || optionsValidLoop(b)
}

// optionsValidLoop is optionsValid's general loop: one step per option,
// lengths checked against optLenMask.
func optionsValidLoop(b []byte) bool {
	for off := 0; off < len(b); {
		k := b[off]
		if k == byte(OptEOL) {
			return true
		}
		if k == byte(OptNOP) {
			off++
			continue
		}
		if off+1 >= len(b) {
			return false
		}
		n := int(b[off+1])
		if off+n > len(b) || !optionLenOK(k, n) {
			return false
		}
		off += n
	}
	return true
}

// Option layouts that fastOptionLayout recognises.
const (
	layoutOther    = iota // anything else: take the general loop
	layoutNone            // no options
	layoutMSS             // mss (a SYN or SYN-ACK without the rest)
	layoutNOPNOPTS        // nop, nop, TS: Linux data segments (tcp_parse_aligned_timestamp)
	layoutLinuxSYN        // mss, sackOK, TS, nop, wscale: Linux SYNs and SYN-ACKs
)

// Masked words of the recognised layouts: the bytes that must match, the
// values (mss, TS, wscale) masked out.
const (
	mssWord       = 0x0204_0000 // mss: 02 04 mm mm
	nopNOPTSWord  = 0x0101_080a // 01 01 08 0a, then TSval, TSecr
	linuxSYNWord0 = 0x0204_0000_0402_080a
	linuxSYNMask0 = 0xffff_0000_ffff_ffff
	linuxSYNWord2 = 0x0103_0300 // 01 03 03 ws
	linuxSYNMask2 = 0xffff_ff00
)

// fastOptionLayout recognises the common option layouts with one to two
// masked compares and no loop. Every layout it names is one the general
// loop accepts with the same options (FuzzOptionsFastPath checks it).
func fastOptionLayout(b []byte) int {
	switch len(b) {
	case 0:
		return layoutNone
	case 4:
		if binary.BigEndian.Uint32(b)&0xffff_0000 == mssWord {
			return layoutMSS
		}
	case 12:
		if binary.BigEndian.Uint32(b) == nopNOPTSWord {
			return layoutNOPNOPTS
		}
	case linuxSYNOptionsLen:
		if binary.BigEndian.Uint64(b)&linuxSYNMask0 == linuxSYNWord0 &&
			binary.BigEndian.Uint32(b[16:])&linuxSYNMask2 == linuxSYNWord2 {
			return layoutLinuxSYN
		}
	}
	return layoutOther
}

// optionError describes why the option at off is malformed. It is kept out
// of Next so the fast path stays small.
//
//go:noinline
func optionError(b []byte, off int) error {
	kind := OptionKind(b[off])
	if off+1 >= len(b) {
		return fmt.Errorf("craft: TCP option kind %d at offset %d has no length byte (options end there): %w", kind, off, ErrMalformed)
	}
	n := int(b[off+1])
	if n < 2 {
		return fmt.Errorf("craft: TCP option kind %d at offset %d has length %d; a length counts the kind and length bytes, so it is at least 2: %w", kind, off, n, ErrMalformed)
	}
	if off+n > len(b) {
		return fmt.Errorf("craft: TCP option kind %d at offset %d has length %d, past the end of the %d option bytes: %w", kind, off, n, len(b), ErrMalformed)
	}
	if want := kind.wireLen(); want != 0 && n != want {
		return fmt.Errorf("craft: TCP option %s at offset %d has length %d, want %d: %w", optionName(kind), off, n, want, ErrMalformed)
	}
	return fmt.Errorf("craft: TCP option sack at offset %d has length %d, want 2+8n for n from 1 to 4 blocks (RFC 2018 §3): %w", off, n, ErrMalformed)
}

func optionName(k OptionKind) string {
	switch k {
	case OptMSS:
		return "mss"
	case OptWindowScale:
		return "wscale"
	case OptSACKPermitted:
		return "sackOK"
	case OptTimestamps:
		return "TS"
	case OptSACK:
		return "sack"
	}
	return fmt.Sprintf("unknown-%d", k)
}

// OptionsText appends the options as tcpdump lists them inside
// "options [...]": "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7", with
// "eol" where an EOL ends the list and "[bad opt]" where a malformed
// option stops it. It appends nothing for a segment without options.
func (t TCP) OptionsText(b []byte) []byte {
	it := t.Options()
	first := true
	for it.Next() {
		if !first {
			b = append(b, ',')
		}
		first = false
		o := it.Option()
		b = o.AppendText(b)
	}
	if it.err != nil || it.sawEOL {
		if !first {
			b = append(b, ',')
		}
		if it.err != nil {
			return append(b, "[bad opt]"...)
		}
		b = append(b, "eol"...)
	}
	return b
}
