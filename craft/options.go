package craft

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
)

// OptionKind is a TCP option kind (IANA "TCP Option Kind Numbers").
type OptionKind uint8

// Option kinds this package names. Others are kept raw.
const (
	OptEOL           OptionKind = 0 // End of Option List, RFC 9293 §3.2
	OptNOP           OptionKind = 1 // No-Operation, RFC 9293 §3.2
	OptMSS           OptionKind = 2 // Maximum Segment Size, RFC 9293 §3.7.1
	OptWindowScale   OptionKind = 3 // Window Scale, RFC 7323 §2
	OptSACKPermitted OptionKind = 4 // SACK-Permitted, RFC 2018 §2
	OptSACK          OptionKind = 5 // SACK blocks, RFC 2018 §3
	OptTimestamps    OptionKind = 8 // Timestamps, RFC 7323 §3
)

// wireLen is the total option length (kind and length bytes included) a
// known kind must have; 0 means "not fixed".
func (k OptionKind) wireLen() int {
	switch k {
	case OptMSS:
		return 4
	case OptWindowScale:
		return 3
	case OptSACKPermitted:
		return 2
	case OptTimestamps:
		return 10
	}
	return 0
}

// Option is one TCP option: Kind plus its data bytes, without the kind and
// length bytes. Options from [OptionIter] view the packet (no copy).
//
// Encoding does not check known kinds' data lengths, so a test can send an
// MSS option of length 3 on purpose; decoding does check them.
type Option struct {
	Kind OptionKind
	Data []byte
}

// SACKBlock is one SACK block (RFC 2018 §3): the left edge is the first
// sequence number of a received block, the right edge the one after it.
type SACKBlock struct{ Left, Right uint32 }

// MSS returns a Maximum Segment Size option.
func MSS(v uint16) Option {
	return Option{Kind: OptMSS, Data: binary.BigEndian.AppendUint16(make([]byte, 0, 2), v)}
}

// shiftBytes backs WindowScale's data so the option costs no allocation.
var shiftBytes = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return
}()

// WindowScale returns a Window Scale option. RFC 7323 §2.3 caps the shift
// at 14; larger values are encoded as given (a prober may want to send them).
func WindowScale(shift uint8) Option {
	return Option{Kind: OptWindowScale, Data: shiftBytes[shift : int(shift)+1 : int(shift)+1]}
}

// SACKPermitted returns a SACK-Permitted option.
func SACKPermitted() Option { return Option{Kind: OptSACKPermitted} }

// Timestamps returns a Timestamps option (TSval, TSecr).
func Timestamps(val, ecr uint32) Option {
	d := make([]byte, 8)
	binary.BigEndian.PutUint32(d, val)
	binary.BigEndian.PutUint32(d[4:], ecr)
	return Option{Kind: OptTimestamps, Data: d}
}

// SACK returns a SACK option with the given blocks. Four blocks fill 34 of
// the 40 option bytes; more than four cannot be encoded.
func SACK(blocks ...SACKBlock) Option {
	d := make([]byte, 8*len(blocks))
	for i, b := range blocks {
		binary.BigEndian.PutUint32(d[8*i:], b.Left)
		binary.BigEndian.PutUint32(d[8*i+4:], b.Right)
	}
	return Option{Kind: OptSACK, Data: d}
}

// NOP returns a No-Operation option (one byte, used for alignment).
func NOP() Option { return Option{Kind: OptNOP} }

// EOL returns an End of Option List option (one byte).
func EOL() Option { return Option{Kind: OptEOL} }

// DefaultSYNOptions returns the options Linux puts on a SYN, in Linux's
// wire order (tcp_options_write): mss 1460, sackOK, TS val tsVal ecr 0,
// nop, wscale 7 — 20 bytes, no padding needed.
func DefaultSYNOptions(tsVal uint32) []Option {
	// One backing array for all data: two allocations in all.
	var d = make([]byte, 2+8+1)
	binary.BigEndian.PutUint16(d, 1460)
	binary.BigEndian.PutUint32(d[2:], tsVal)
	d[10] = 7
	return []Option{
		{Kind: OptMSS, Data: d[0:2:2]},
		{Kind: OptSACKPermitted},
		{Kind: OptTimestamps, Data: d[2:10:10]},
		{Kind: OptNOP},
		{Kind: OptWindowScale, Data: d[10:11:11]},
	}
}

// Len returns the option's length on the wire: 1 for EOL and NOP, else
// 2 plus the data length.
func (o Option) Len() int {
	if o.Kind == OptEOL || o.Kind == OptNOP {
		return 1
	}
	return 2 + len(o.Data)
}

// MSS returns the MSS value, or 0 if the data is shorter than 2 bytes.
func (o Option) MSS() uint16 {
	if len(o.Data) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(o.Data)
}

// WindowScale returns the shift count, or 0 if there is no data.
func (o Option) WindowScale() uint8 {
	if len(o.Data) < 1 {
		return 0
	}
	return o.Data[0]
}

// Timestamps returns TSval and TSecr, or zeros if the data is shorter than
// 8 bytes.
func (o Option) Timestamps() (val, ecr uint32) {
	if len(o.Data) < 8 {
		return 0, 0
	}
	return binary.BigEndian.Uint32(o.Data), binary.BigEndian.Uint32(o.Data[4:])
}

// SACKBlocks appends the option's SACK blocks to dst and returns it.
// Trailing bytes that do not make a whole block are ignored.
func (o Option) SACKBlocks(dst []SACKBlock) []SACKBlock {
	for d := o.Data; len(d) >= 8; d = d[8:] {
		dst = append(dst, SACKBlock{binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])})
	}
	return dst
}

// String returns the option as tcpdump prints it: "mss 1460", "sackOK",
// "TS val 100 ecr 0", "nop", "eol", "wscale 7", "sack 1 {1000:2000}",
// "unknown-30 0x0102". As in tcpdump, a known kind with the wrong length
// gets "[len N]" appended, N being the wire length.
func (o Option) String() string {
	var buf [64]byte
	return string(o.AppendText(buf[:0]))
}

// AppendText appends the text of [Option.String] to b without allocating
// (beyond growing b).
func (o Option) AppendText(b []byte) []byte {
	switch o.Kind {
	case OptEOL:
		return append(b, "eol"...)
	case OptNOP:
		return append(b, "nop"...)
	case OptMSS:
		b = append(b, "mss"...)
		if len(o.Data) >= 2 {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(o.MSS()), 10)
		}
	case OptWindowScale:
		b = append(b, "wscale"...)
		if len(o.Data) >= 1 {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(o.WindowScale()), 10)
		}
	case OptSACKPermitted:
		b = append(b, "sackOK"...)
	case OptTimestamps:
		b = append(b, "TS"...)
		if len(o.Data) >= 8 {
			val, ecr := o.Timestamps()
			b = append(b, " val "...)
			b = strconv.AppendUint(b, uint64(val), 10)
			b = append(b, " ecr "...)
			b = strconv.AppendUint(b, uint64(ecr), 10)
		}
	case OptSACK:
		b = append(b, "sack"...)
		if len(o.Data)%8 != 0 {
			return append(b, " invalid sack"...) // tcpdump's words
		}
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(len(o.Data)/8), 10)
		b = append(b, ' ')
		for d := o.Data; len(d) >= 8; d = d[8:] {
			b = append(b, '{')
			b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint32(d)), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint32(d[4:])), 10)
			b = append(b, '}')
		}
		return b
	default:
		b = append(b, "unknown-"...)
		b = strconv.AppendUint(b, uint64(o.Kind), 10)
		if len(o.Data) > 0 {
			b = append(b, " 0x"...)
			for _, c := range o.Data {
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
		}
		return b
	}
	if want := o.Kind.wireLen(); want != 0 && o.Len() != want {
		b = append(b, "[len "...)
		b = strconv.AppendUint(b, uint64(o.Len()), 10)
		b = append(b, ']')
	}
	return b
}

const hexDigits = "0123456789abcdef"

// OptionsLen returns the bytes opts take on the wire, padding to a
// multiple of 4 included, as [EncodeOptions] writes them.
func OptionsLen(opts []Option) int {
	n := 0
	for i := range opts {
		n += opts[i].Len()
	}
	return (n + 3) &^ 3
}

// EncodeOptions writes opts in order into b, then pads with zero bytes
// (EOL, RFC 9293 §3.2) to a multiple of 4, and returns the bytes written,
// padding included. It fails, writing nothing, if the options take more
// than 40 bytes, an option's data exceeds 253 bytes, or b is too short.
func EncodeOptions(b []byte, opts []Option) (int, error) {
	n := 0
	for i := range opts {
		if len(opts[i].Data) > 253 {
			return 0, fmt.Errorf("craft: encode TCP options: option %d (kind %d) has %d data bytes; at most 253 fit its length byte", i, opts[i].Kind, len(opts[i].Data))
		}
		n += opts[i].Len()
	}
	padded := (n + 3) &^ 3
	if n > TCPOptionsMaximumSize {
		return 0, fmt.Errorf("craft: encode TCP options: %d option bytes exceed the %d a TCP header holds; drop or shorten options", n, TCPOptionsMaximumSize)
	}
	if len(b) < padded {
		return 0, fmt.Errorf("craft: encode TCP options: buffer holds %d bytes, options need %d", len(b), padded)
	}
	encodeOptions(b, opts, padded)
	return padded, nil
}

// encodeOptions writes already-checked options and zero padding up to
// padded bytes, and returns their ones'-complement sum (unfolded, at most
// 40 words) as placed at an even offset, computed from the option values
// rather than re-read from b.
func encodeOptions(b []byte, opts []Option, padded int) uint32 {
	b = b[:padded]
	var sum uint32
	i := 0
	for k := range opts {
		o := &opts[k]
		kind := o.Kind
		if kind == OptEOL || kind == OptNOP {
			b[i] = byte(kind)
			if i&1 == 0 {
				sum += uint32(kind) << 8
			} else {
				sum += uint32(kind)
			}
			i++
			continue
		}
		d := o.Data
		n := 2 + len(d)
		w := b[i : i+n]
		// Sum as if the option started at an even offset; at an odd one
		// every byte changes place in its word, which byte-swaps the sum
		// (RFC 1071 §2(B)). The common kinds get wide loads and stores.
		var os uint32
		switch {
		case kind == OptMSS && len(d) == 2:
			v := uint32(binary.BigEndian.Uint16(d))
			binary.BigEndian.PutUint32(w, 0x0204<<16|v)
			os = 0x0204 + v
		case kind == OptTimestamps && len(d) == 8:
			v := binary.BigEndian.Uint64(d)
			binary.BigEndian.PutUint16(w, 0x080a)
			binary.BigEndian.PutUint64(w[2:], v)
			os = 0x080a + sum64(v)
		case kind == OptSACK && len(d)%8 == 0:
			binary.BigEndian.PutUint16(w, uint16(kind)<<8|uint16(n))
			os = uint32(kind)<<8 | uint32(n)
			for j := 0; j+8 <= len(d); j += 8 {
				v := binary.BigEndian.Uint64(d[j:])
				binary.BigEndian.PutUint64(w[2+j:], v)
				os += sum64(v)
			}
		default:
			w[0], w[1] = byte(kind), byte(n)
			os = uint32(kind)<<8 | uint32(n)
			j := 0
			for ; j+1 < len(d); j += 2 {
				w[2+j], w[3+j] = d[j], d[j+1]
				os += uint32(d[j])<<8 | uint32(d[j+1])
			}
			if j < len(d) {
				w[2+j] = d[j]
				os += uint32(d[j]) << 8
			}
		}
		if i&1 == 0 {
			sum += os
		} else {
			sum += uint32(bits.ReverseBytes16(fold32(os)))
		}
		i += n
	}
	clear(b[i:])
	return sum
}

// sum64 adds the four 16-bit words of v (at most 0x3fffc, no overflow).
func sum64(v uint64) uint32 {
	return uint32(v>>48) + uint32(v>>32)&0xffff + uint32(v>>16)&0xffff + uint32(v)&0xffff
}

// linuxSYNOptionsLen is the wire length of Linux's SYN option layout.
const linuxSYNOptionsLen = 20

// isLinuxSYNLayout reports whether opts are laid out as Linux lays out a
// SYN's options (tcp_options_write, and [DefaultSYNOptions]): mss,
// sackOK, TS, nop, wscale, each with its RFC length. Encode writes that
// layout, which every default probe carries, with three wide stores.
func isLinuxSYNLayout(opts []Option) bool {
	return len(opts) == 5 &&
		opts[0].Kind == OptMSS && len(opts[0].Data) == 2 &&
		opts[1].Kind == OptSACKPermitted && len(opts[1].Data) == 0 &&
		opts[2].Kind == OptTimestamps && len(opts[2].Data) == 8 &&
		opts[3].Kind == OptNOP &&
		opts[4].Kind == OptWindowScale && len(opts[4].Data) == 1
}

// linuxSYNWords returns the 20 bytes of options that isLinuxSYNLayout
// accepted as three big-endian words, for Encode to store and sum in
// registers:
//
//	02 04 mm mm 04 02 08 0a | TSval TSecr | 01 03 03 ws
func linuxSYNWords(opts []Option) (w0, w1 uint64, w2 uint32) {
	mss, ts, ws := opts[0].Data, opts[2].Data, opts[4].Data
	w0 = 0x0204_0000_0402_080a | uint64(binary.BigEndian.Uint16(mss))<<32
	return w0, binary.BigEndian.Uint64(ts), 0x0103_0300 | uint32(ws[0])
}
