package tcpconn

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
)

// DefaultWindow is the receive window we advertise: Linux's SYN window,
// one 1460-byte MSS times 44. It is the one place this number is written.
const DefaultWindow = 64240

// DefaultMSS is the MSS we offer over IPv4: an Ethernet MTU of 1500 less
// the IPv4 and TCP headers (RFC 9293 §3.7.1). DefaultMSS6 is the same over
// IPv6, whose header is 40 bytes (RFC 8200 §3; RFC 8200 §8.3: the MSS is
// the MTU less 60).
const (
	DefaultMSS  = 1460
	DefaultMSS6 = 1440
)

// defaultSendMSS is the remote's MSS when its SYN carried none: 536 for
// IPv4 (RFC 9293 §3.7.1), and 1220 for IPv6 (RFC 8200 §8.3: the minimum
// link MTU of 1280 less 60).
const (
	defaultSendMSS  = 536
	defaultSendMSS6 = 1220
)

// DefaultMSSFor is the MSS we offer to remote: DefaultMSS, or DefaultMSS6
// for an IPv6 remote.
func DefaultMSSFor(remote netip.Addr) uint16 {
	if remote.Is6() && !remote.Is4In6() {
		return DefaultMSS6
	}
	return DefaultMSS
}

// defaultSendMSSFor is defaultSendMSS for remote's family.
func defaultSendMSSFor(remote netip.Addr) uint16 {
	if remote.Is6() && !remote.Is4In6() {
		return defaultSendMSS6
	}
	return defaultSendMSS
}

// Offer is what our SYNs offer (RFC 9293 §3.7.1, RFC 7323, RFC 2018). The
// zero Offer offers nothing.
type Offer struct {
	// MSS, when not zero, is sent as the MSS option.
	MSS uint16
	// SACKPermitted offers selective acknowledgments. The engine keeps no
	// data out of order, so it never has blocks to report (RFC 2018 §4: a
	// receiver reports only data it holds), and it retransmits only what
	// its caller asks, so blocks the remote sends change nothing: offering
	// is safe wherever the engine is used.
	SACKPermitted bool
	// Timestamps offers RFC 7323 timestamps. Once the remote echoes them,
	// every non-RST segment we send carries TSopt (§3.2).
	Timestamps bool
	// WindowScale offers a shift of WindowShift for the windows we
	// advertise (RFC 7323 §2).
	WindowScale bool
	WindowShift uint8
}

// LinuxOffer is what Linux offers on a SYN over IPv4: mss 1460, sackOK, TS,
// wscale 7 (LinuxOfferFor gives the IPv6 one, mss 1440).
var LinuxOffer = Offer{MSS: DefaultMSS, SACKPermitted: true, Timestamps: true, WindowScale: true, WindowShift: 7}

// LinuxOfferFor is LinuxOffer with the MSS for remote's family.
func LinuxOfferFor(remote netip.Addr) Offer {
	o := LinuxOffer
	o.MSS = DefaultMSSFor(remote)
	return o
}

// offerOf reads what a SYN's options offer.
func offerOf(s *craft.OptionSet) Offer {
	o := Offer{SACKPermitted: s.Has(craft.OptSACKPermitted), Timestamps: s.Has(craft.OptTimestamps),
		WindowScale: s.Has(craft.OptWindowScale), WindowShift: min(s.WindowScale, 14)}
	if s.Has(craft.OptMSS) {
		o.MSS = s.MSS
	}
	return o
}

// offerOfOptions reads what a list of options we send offers.
func offerOfOptions(opts []craft.Option) Offer {
	var o Offer
	for _, op := range opts {
		switch op.Kind {
		case craft.OptMSS:
			o.MSS = op.MSS()
		case craft.OptSACKPermitted:
			o.SACKPermitted = true
		case craft.OptTimestamps:
			o.Timestamps = true
		case craft.OptWindowScale:
			o.WindowScale, o.WindowShift = true, min(op.WindowScale(), 14)
		}
	}
	return o
}

// Negotiated is what both SYNs agreed on: an option is in use only when
// both sides sent it (RFC 7323 §2.2, §3.2; RFC 2018 §2).
type Negotiated struct {
	// Done is set once both SYNs were seen.
	Done bool
	// SendMSS is the remote's MSS (536 when its SYN had none).
	SendMSS uint16
	// Timestamps: every non-RST segment carries TSopt (RFC 7323 §3.2).
	Timestamps bool
	// WindowScale: windows after the SYNs are scaled, ours by RcvShift,
	// the remote's by SndShift (RFC 7323 §2.3).
	WindowScale        bool
	SndShift, RcvShift uint8
	// SACK: both sent SACK-permitted.
	SACK bool
}

// negotiate settles what both SYNs offered; defMSS is the remote's MSS when
// its SYN carried none (defaultSendMSSFor).
func negotiate(ours, theirs Offer, defMSS uint16) Negotiated {
	n := Negotiated{Done: true, SendMSS: theirs.MSS, Timestamps: ours.Timestamps && theirs.Timestamps,
		WindowScale: ours.WindowScale && theirs.WindowScale, SACK: ours.SACKPermitted && theirs.SACKPermitted}
	if n.SendMSS == 0 {
		n.SendMSS = defMSS
	}
	if n.WindowScale {
		n.SndShift, n.RcvShift = theirs.WindowShift, ours.WindowShift
	}
	return n
}

// tsClock is our timestamp clock: one tick per millisecond (RFC 7323 §5.4
// wants 1 ms to 1 s), from a random start per connection (RFC 7323 §7.1),
// monotonic whatever the wall clock does.
type tsClock struct {
	base  uint32
	start time.Time
}

func newTSClock() tsClock { return tsClock{base: probe.RandomUint32(), start: time.Now()} }

// now is the TSval to send now.
func (t tsClock) now() uint32 { return t.base + uint32(time.Since(t.start)/time.Millisecond) }

// optBuf builds one segment's options without allocating: the option
// values view data, which the Conn owns and reuses for the next segment.
type optBuf struct {
	data [40]byte
	opts [8]craft.Option
	n, d int
}

func (b *optBuf) reset() { b.n, b.d = 0, 0 }

func (b *optBuf) add(k craft.OptionKind, data ...byte) {
	start := b.d
	b.d += copy(b.data[b.d:], data)
	b.opts[b.n] = craft.Option{Kind: k, Data: b.data[start:b.d:b.d]}
	b.n++
}

func (b *optBuf) addTS(val, ecr uint32) {
	var d [8]byte
	binary.BigEndian.PutUint32(d[:], val)
	binary.BigEndian.PutUint32(d[4:], ecr)
	b.add(craft.OptTimestamps, d[:]...)
}

func (b *optBuf) list() []craft.Option {
	if b.n == 0 {
		return nil
	}
	return b.opts[:b.n]
}

// synOptions writes o in Linux's order and alignment (tcp_options_write):
// mss; sackOK and TS together, or each after two NOPs; nop, wscale.
func (b *optBuf) synOptions(o Offer, tsVal, tsEcr uint32) {
	if o.MSS != 0 {
		b.add(craft.OptMSS, byte(o.MSS>>8), byte(o.MSS))
	}
	switch {
	case o.SACKPermitted && o.Timestamps:
		b.add(craft.OptSACKPermitted)
		b.addTS(tsVal, tsEcr)
	case o.Timestamps:
		b.add(craft.OptNOP)
		b.add(craft.OptNOP)
		b.addTS(tsVal, tsEcr)
	case o.SACKPermitted:
		b.add(craft.OptNOP)
		b.add(craft.OptNOP)
		b.add(craft.OptSACKPermitted)
	}
	if o.WindowScale {
		b.add(craft.OptNOP)
		b.add(craft.OptWindowScale, o.WindowShift)
	}
}

// tsOption writes NOP, NOP, TSopt: Linux's 12 bytes on every segment after
// the SYN.
func (b *optBuf) tsOption(val, ecr uint32) {
	b.add(craft.OptNOP)
	b.add(craft.OptNOP)
	b.addTS(val, ecr)
}

// again writes the options of an earlier segment (raw, as encoded) with
// TSval moved to tsVal: a retransmission's (RFC 7323 §3.2: TSecr, and all
// else, stay). It reports false, writing nothing usable, when raw does
// not parse or does not fit.
func (b *optBuf) again(raw []byte, tsVal uint32) bool {
	it := craft.NewOptionIter(raw)
	for it.Next() {
		if b.n == len(b.opts) {
			return false
		}
		o := it.Option()
		if o.Kind == craft.OptTimestamps {
			_, ecr := o.Timestamps()
			b.addTS(tsVal, ecr)
			continue
		}
		if b.d+len(o.Data) > len(b.data) {
			return false
		}
		b.add(o.Kind, o.Data...)
	}
	return it.Err() == nil
}
