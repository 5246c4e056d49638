package script

import (
	"strconv"
	"strings"

	"github.com/tcpwalk/tcpwalk/craft"
)

// wireSeg is one segment as seen on the wire, with its numbers made
// relative the way the script writes them: the sender's sequence numbers to
// its ISS, the acknowledgment to the receiver's (absolute while that ISS is
// unknown).
type wireSeg struct {
	Flags    craft.Flags
	Seq, Ack uint32 // relative
	Win, Urg uint16
	Payload  []byte
	Options  []Option
}

// String writes the segment as a packet line without time and direction:
// "S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 7>".
func (w *wireSeg) String() string {
	var b strings.Builder
	if w.Flags == 0 {
		b.WriteByte('-')
	} else {
		b.WriteString(w.Flags.String())
	}
	n := uint32(len(w.Payload))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(uint64(w.Seq), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(w.Seq+n), 10))
	b.WriteByte('(')
	b.WriteString(strconv.FormatUint(uint64(n), 10))
	b.WriteByte(')')
	if w.Flags.Has(craft.FlagACK) || w.Ack != 0 {
		b.WriteString(" ack ")
		b.WriteString(strconv.FormatUint(uint64(w.Ack), 10))
	}
	b.WriteString(" win ")
	b.WriteString(strconv.FormatUint(uint64(w.Win), 10))
	if w.Flags.Has(craft.FlagURG) || w.Urg != 0 {
		b.WriteString(" urg ")
		b.WriteString(strconv.FormatUint(uint64(w.Urg), 10))
	}
	if len(w.Options) > 0 {
		b.WriteString(" <")
		b.WriteString(optionsText(w.Options))
		b.WriteByte('>')
	}
	if len(w.Payload) > 0 && len(w.Payload) <= 64 {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(string(w.Payload)))
	}
	return b.String()
}

// optionsText writes options as a packet line does, without the brackets.
func optionsText(opts []Option) string {
	var b strings.Builder
	for i, o := range opts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(o.String())
	}
	return b.String()
}

// String writes the option in packetdrill's words.
func (o Option) String() string {
	switch o.Kind {
	case craft.OptNOP:
		return "nop"
	case craft.OptEOL:
		return "eol"
	case craft.OptMSS:
		return "mss " + strconv.FormatUint(uint64(o.Value), 10)
	case craft.OptWindowScale:
		return "wscale " + strconv.FormatUint(uint64(o.Value), 10)
	case craft.OptSACKPermitted:
		return "sackOK"
	case craft.OptTimestamps:
		return "TS val " + strconv.FormatUint(uint64(o.TSVal), 10) + " ecr " + strconv.FormatUint(uint64(o.TSEcr), 10)
	case craft.OptSACK:
		var b strings.Builder
		b.WriteString("sack")
		for _, k := range o.Blocks {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(uint64(k.Left), 10))
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(k.Right), 10))
		}
		return b.String()
	}
	return "unknown-" + strconv.Itoa(int(o.Kind))
}

// fromWire reads the options of a received segment; SACK blocks become
// relative to base (our ISS). Malformed or unknown options are kept as
// unknown kinds so that a comparison fails and says so.
func fromWire(opts []craft.Option, base uint32) []Option {
	out := make([]Option, 0, len(opts))
	for _, c := range opts {
		o := Option{Kind: c.Kind}
		switch c.Kind {
		case craft.OptMSS:
			o.Value = uint32(c.MSS())
		case craft.OptWindowScale:
			o.Value = uint32(c.WindowScale())
		case craft.OptTimestamps:
			o.TSVal, o.TSEcr = c.Timestamps()
		case craft.OptSACK:
			for _, k := range c.SACKBlocks(nil) {
				o.Blocks = append(o.Blocks, craft.SACKBlock{Left: k.Left - base, Right: k.Right - base})
			}
		}
		out = append(out, o)
	}
	return out
}
