package tcpconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/result"
)

// TCB is the sequence state of our end of the connection, in RFC 9293
// §3.3.1's names. Callers that walk a remote through states set these
// directly (a probe may move the numbers on purpose); the engine keeps
// them as a well-behaved TCP would for what it sends and takes.
type TCB struct {
	// Our side: initial send sequence number, oldest unacknowledged,
	// next to send, and the remote's window in bytes (its field scaled).
	ISS, SndUna, SndNxt Seq
	SndWnd              uint32
	// The remote's side: its ISS (once its SYN came) and the next
	// sequence number we expect; RcvWnd is the window we advertise, in
	// bytes (scaled down on the wire once window scaling is negotiated).
	IRS, RcvNxt Seq
	RcvWnd      uint32
	// HaveIRS says the remote's SYN came: IRS is known, and a connection
	// may exist on the remote.
	HaveIRS bool
}

// Conn is our end of one TCP connection, played with raw segments on a
// probe.Flow: every segment we send goes through one builder that makes it
// a conformant sender's (see [Conn.SendRaw]), every segment that comes goes
// through one recorder, and [Conn.Tidy] is the one way to leave nothing
// behind on the remote. A Conn is used by one goroutine at a time.
type Conn struct {
	Flow *probe.Flow
	Rec  *Recorder
	TCB

	// Offer is what our SYNs offer; New sets LinuxOffer.
	Offer Offer
	// Neg is what the SYNs negotiated (zero until both were seen).
	Neg Negotiated
	// TSRecent is RFC 7323 §4.3's TS.Recent: the remote's TSval we echo.
	TSRecent uint32

	// The remote's FIN, once seen: its sequence number, and what its
	// segment acknowledged (did the remote close before or after our FIN?).
	RemoteFIN, RemoteFINAck Seq
	RemoteFINSeen           bool
	// Our FIN, once sent.
	OurFIN     Seq
	OurFINSent bool
	// Received is the data the remote sent that we accepted, in order.
	Received []byte
	// AutoAckData makes the conn ACK remote data at once, in-order data
	// and data it has or cannot take yet alike (never the remote's FIN:
	// that stays the caller's decision).
	AutoAckData bool

	// SynSeq is the sequence number of our last SYN without ACK, and
	// SynPending says it was the last segment we sent and its answer
	// (SYN,ACK or RST,ACK) was not read: the remote may hold a SYN_RCVD
	// for it that only this number resets.
	SynSeq     Seq
	SynPending bool
	// LastSend is when our last segment went out.
	LastSend time.Time

	ourSYN      Offer // what our last SYN offered
	ourSYNSent  bool
	peerSYN     Offer // what the remote's SYN offered
	peerSYNSeen bool
	// synSince: we sent a SYN after the remote's (else the remote may be
	// in SYN_SENT, which only an RST,ACK resets).
	synSince    bool
	lastAckSent Seq // RFC 7323 §4.3's Last.ACK.sent
	clock       tsClock
	opts        optBuf
	rx          craft.OptionSet
	sent        [16]sentSeg // our latest segments, for Retransmit
	sentNext    int
}

// sentSeg is what a retransmission of one of our segments repeats besides
// its numbers: its window and TSecr (RFC 7323 §3.2: only TSval moves).
type sentSeg struct {
	flags    craft.Flags
	seq, ack Seq
	n        int
	window   uint16
	opts     [40]byte // its options as encoded
	nOpts    int
}

// New returns a connection on f with a random ISS, offering LinuxOffer
// (with the MSS of f's family, LinuxOfferFor).
// rec, nil for a fresh one (states CLOSED and LISTEN), records it.
func New(f *probe.Flow, rec *Recorder) *Conn {
	if rec == nil {
		rec = NewRecorder(result.Closed, result.Listen)
	}
	iss := Seq(probe.RandomUint32())
	offer := LinuxOffer
	if f != nil {
		offer = LinuxOfferFor(f.Remote.Addr())
	}
	c := &Conn{Flow: f, Rec: rec, Offer: offer, clock: newTSClock(),
		TCB: TCB{ISS: iss, SndUna: iss, SndNxt: iss, RcvWnd: DefaultWindow}}
	rec.conn = c
	return c
}

// defaultSendMSS is the remote's MSS when its SYN carries none, for the
// flow's family.
func (c *Conn) defaultSendMSS() uint16 {
	if c.Flow == nil {
		return defaultSendMSS
	}
	return defaultSendMSSFor(c.Flow.Remote.Addr())
}

// ErrTooLong is returned for data longer than the remote takes in one
// segment (RFC 9293 §3.7.1, Eff.snd.MSS).
var ErrTooLong = errors.New("data longer than the remote's MSS")

// TSVal is the timestamp our next segment carries.
func (c *Conn) TSVal() uint32 { return c.clock.now() }

// EffSndMSS is the most data one segment of ours may carry: the remote's
// MSS less our TCP options (RFC 9293 §3.7.1, RFC 6691 §2).
func (c *Conn) EffSndMSS() int {
	mss := int(c.defaultSendMSS())
	switch {
	case c.Neg.Done:
		mss = int(c.Neg.SendMSS)
	case c.peerSYNSeen && c.peerSYN.MSS != 0:
		mss = int(c.peerSYN.MSS)
	}
	if c.Neg.Timestamps {
		mss -= 12 // NOP, NOP, TSopt on every segment
	}
	return mss
}

// SendSYN sends our SYN at ISS with the offered options, again when called
// again: SND.NXT is ISS+1 after it.
func (c *Conn) SendSYN(note string) error {
	c.SndNxt = c.ISS
	return c.SendNext(craft.FlagSYN, nil, note)
}

// SendSYNWith sends a SYN at seq carrying exactly opts (none when nil): what
// the remote negotiates then is what opts offer. SND.NXT stays.
func (c *Conn) SendSYNWith(seq Seq, opts []craft.Option, note string) error {
	seg := craft.Segment{Seq: uint32(seq), Flags: craft.FlagSYN, Window: uint16(min(c.RcvWnd, 65535)), Options: opts}
	return c.SendVerbatim(&seg, note)
}

// SendNext sends flags with payload at SND.NXT, acknowledging RCV.NXT when
// ACK is among flags, and advances SND.NXT by the segment length (SYN and FIN
// count one).
func (c *Conn) SendNext(flags craft.Flags, payload []byte, note string) error {
	var ack Seq
	if flags.Has(craft.FlagACK) {
		ack = c.RcvNxt
	}
	if err := c.SendRaw(flags, c.SndNxt, ack, payload, note); err != nil {
		return err
	}
	c.SndNxt = c.SndNxt.Add(Size(len(payload)))
	if flags.Has(craft.FlagSYN) {
		c.SndNxt++
	}
	if flags.Has(craft.FlagFIN) {
		c.OurFIN, c.OurFINSent = c.SndNxt, true
		c.SndNxt++
	}
	return nil
}

// SendRaw sends a segment with exactly the given numbers (SND.NXT stays),
// as a conformant sender builds it:
//   - a SYN carries the offered options (Offer), TSecr = TS.Recent when it
//     also acknowledges, else 0 (RFC 7323 §3.2), and an unscaled window
//     (§2.2);
//   - once timestamps are negotiated, every other non-RST segment carries
//     TSopt: TSval from our clock, TSecr = TS.Recent (§3.2, §4.3);
//   - the window is RcvWnd, shifted once window scaling is negotiated
//     (§2.3);
//   - a RST carries no options and a zero window;
//   - data longer than EffSndMSS is refused (ErrTooLong).
func (c *Conn) SendRaw(flags craft.Flags, seq, ack Seq, payload []byte, note string) error {
	return c.send(flags, seq, ack, payload, note, nil)
}

// Retransmit sends one of our earlier segments again: the same numbers,
// data, window and options; only TSval moves (RFC 9293 §3.8.1, RFC 7323
// §3.2). SND.NXT stays. A segment not among our recent ones is built as
// SendRaw builds it.
func (c *Conn) Retransmit(flags craft.Flags, seq, ack Seq, payload []byte) error {
	var prev *sentSeg
	for i := range c.sent {
		s := &c.sent[i]
		if s.flags == flags && s.seq == seq && s.ack == ack && s.n == len(payload) && s.flags != 0 {
			prev = s
		}
	}
	return c.send(flags, seq, ack, payload, "retransmission", prev)
}

// KeepAlive sends KA1, the keep-alive probe of RFC 9293 §3.8.4:
// <SEQ=SND.NXT−1><ACK=RCV.NXT><CTL=ACK> with one garbage byte. In every
// synchronized state it draws <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> at once,
// and carrying data it is never rate-limited.
func (c *Conn) KeepAlive() error {
	return c.SendRaw(craft.FlagACK, c.SndNxt-1, c.RcvNxt, []byte{0}, "KA1")
}

func (c *Conn) send(flags craft.Flags, seq, ack Seq, payload []byte, note string, prev *sentSeg) error {
	seg, err := c.build(flags, seq, ack, payload, prev)
	if err != nil {
		return err
	}
	return c.SendVerbatim(&seg, note)
}

// build makes the segment SendRaw (or, with prev, Retransmit) sends. It
// allocates nothing: the options view the Conn's buffer, valid until the
// next build.
func (c *Conn) build(flags craft.Flags, seq, ack Seq, payload []byte, prev *sentSeg) (craft.Segment, error) {
	if len(payload) > 0 && len(payload) > c.EffSndMSS() {
		return craft.Segment{}, c.tooLong(len(payload))
	}
	seg := craft.Segment{Seq: uint32(seq), Ack: uint32(ack), Flags: flags, Payload: payload}
	c.opts.reset()
	if prev != nil && c.opts.again(prev.opts[:prev.nOpts], c.clock.now()) {
		seg.Window, seg.Options = prev.window, c.opts.list()
		return seg, nil
	}
	c.opts.reset()
	acking := flags.Has(craft.FlagACK)
	switch {
	case flags.Has(craft.FlagRST):
	case flags.Has(craft.FlagSYN):
		seg.Window = uint16(min(c.RcvWnd, 65535))
		var ecr uint32
		if acking && c.peerSYNSeen {
			ecr = c.TSRecent
		}
		c.opts.synOptions(c.Offer, c.clock.now(), ecr)
	default:
		seg.Window = c.window()
		if c.Neg.Timestamps {
			var ecr uint32
			if acking {
				ecr = c.TSRecent
			}
			c.opts.tsOption(c.clock.now(), ecr)
		}
	}
	seg.Options = c.opts.list()
	return seg, nil
}

// tooLong is ErrTooLong for n bytes, kept off build's path so that it
// allocates only when it fails.
func (c *Conn) tooLong(n int) error {
	remote := "the remote"
	if c.Flow != nil {
		remote = c.Flow.Remote.String()
	}
	return fmt.Errorf("tcpconn: send %d bytes to %s: %w (%d bytes a segment)", n, remote, ErrTooLong, c.EffSndMSS())
}

// window is the window field of a segment after the SYNs.
func (c *Conn) window() uint16 {
	w := c.RcvWnd
	if c.Neg.WindowScale {
		w >>= c.Neg.RcvShift
	}
	return uint16(min(w, 65535))
}

// SendVerbatim sends seg as given (its options, window and numbers: a
// script's own segment, a SYN with chosen options), records it, and keeps
// what the engine must know of it: the SYN's offer, Last.ACK.sent, the
// pending SYN. The other Send methods end here.
func (c *Conn) SendVerbatim(seg *craft.Segment, note string) error {
	if seg.ID == 0 {
		// The kernel would fill a zero IP ID after we recorded the bytes;
		// drawing it here keeps the record (and pcap) equal to the wire.
		seg.ID = uint16(probe.RandomUint32()) | 1
	}
	at, err := c.Flow.Send(seg)
	if err != nil {
		return err
	}
	c.sentSeg(at, seg, c.Flow.LastSent(), note)
	return nil
}

// sentSeg records seg, sent at at as raw, and keeps what the engine must
// know of it.
func (c *Conn) sentSeg(at time.Time, seg *craft.Segment, raw []byte, note string) {
	c.Rec.sent(at, seg, raw, note)
	c.LastSend = at
	f := seg.Flags
	c.SynPending = f&(craft.FlagSYN|craft.FlagACK|craft.FlagRST) == craft.FlagSYN
	if c.SynPending {
		c.SynSeq = Seq(seg.Seq)
	}
	if f.Has(craft.FlagACK) && !f.Has(craft.FlagRST) {
		c.lastAckSent = Seq(seg.Ack)
	}
	if f.Has(craft.FlagSYN) && !f.Has(craft.FlagRST) {
		c.ourSYN, c.ourSYNSent, c.synSince = offerOfOptions(seg.Options), true, true
		if c.peerSYNSeen && !c.Neg.Done {
			c.Neg = negotiate(c.ourSYN, c.peerSYN, c.defaultSendMSS())
		}
	}
	if !f.Has(craft.FlagRST) {
		s := &c.sent[c.sentNext%len(c.sent)]
		c.sentNext++
		*s = sentSeg{flags: f, seq: Seq(seg.Seq), ack: Seq(seg.Ack), n: len(seg.Payload), window: seg.Window}
		s.nOpts, _ = craft.EncodeOptions(s.opts[:], seg.Options)
	}
}

// Reply is one received segment (or ICMP error), as recorded.
type Reply struct {
	Seg     *Segment // the recorded segment
	Flags   craft.Flags
	Data    []byte
	SrcPort uint16
}

// Next reads the next segment (or ICMP error) of the connection, records
// it and updates the connection (in-order data is taken; a FIN is noted,
// not acknowledged), or returns probe.ErrTimeout when deadline passes. A
// copy the path made of an earlier segment is recorded and passed over.
func (c *Conn) Next(ctx context.Context, deadline time.Time) (*Reply, error) {
	for {
		e, err := c.Flow.Next(ctx, deadline)
		if err != nil {
			return nil, err
		}
		r, dup := c.Take(e)
		c.Flow.Release(e)
		if !dup {
			return r, nil
		}
	}
}

// Take records one event and updates the connection; dup reports a path's
// copy of an earlier segment, which changes nothing. The caller still
// releases e.
func (c *Conn) Take(e *probe.Event) (r *Reply, dup bool) {
	if e.Kind == probe.EventICMP {
		// An error about our pending SYN (its quote names the SYN's
		// sequence number): the SYN made no connection there, so the tidy
		// has no SYN_RCVD to reset, and a reset would only draw the same
		// error again (RFC 1122 §4.2.3.9: a hard error aborts the open).
		if seq, ok := quotedSeq(e); ok && c.SynPending && Seq(seq) == c.SynSeq && unreachable(e) {
			c.SynPending = false
		}
		return &Reply{Seg: c.Rec.ICMP(e.At, e.ICMPText(), e.Bytes())}, false
	}
	tcp := e.Seg.TCP
	flags := tcp.Flags()
	payload := tcp.Payload()
	seq, ack := Seq(tcp.SequenceNumber()), Seq(tcp.AckNumber())
	seg := c.Rec.Received(e.At, &e.Seg, e.Bytes())
	if seg.Duplicate {
		return nil, true
	}
	optsOK := tcp.DecodeOptions(&c.rx) == nil
	// The remote's SYN opens its side: its first bare SYN, or a SYN,ACK
	// answering one of our SYNs with an ISS not seen yet (one with the
	// known ISS is its retransmission, which changes nothing; one that
	// acknowledges something else is a stale connection's, RFC 9293
	// §3.10.7.3).
	synAnswer := flags.Has(craft.FlagSYN|craft.FlagACK) && c.ourSYNSent && c.sentSYN(ack-1)
	known := c.HaveIRS && seq == c.IRS
	if !flags.Has(craft.FlagRST) && (synAnswer && !known || flags&(craft.FlagSYN|craft.FlagACK) == craft.FlagSYN && !c.HaveIRS) {
		c.learnSYN(seq, ack, synAnswer, optsOK)
	}
	if flags.Has(craft.FlagACK) && flags&(craft.FlagSYN|craft.FlagRST) != 0 && ack == c.SynSeq+1 {
		c.SynPending = false // our SYN's answer
	}
	c.updateTSRecent(flags, seq, optsOK)
	if flags.Has(craft.FlagACK) && !flags.Has(craft.FlagRST) && c.SndUna.LessEq(ack) && ack.LessEq(c.SndNxt) {
		c.SndUna = ack
		w := uint32(tcp.WindowSize())
		if c.Neg.WindowScale && !flags.Has(craft.FlagSYN) {
			w <<= c.Neg.SndShift
		}
		c.SndWnd = w
	}
	r = &Reply{Seg: seg, Flags: flags, Data: append([]byte(nil), payload...), SrcPort: tcp.SourcePort()}
	c.takeData(flags, seq, ack, payload)
	return r, false
}

// learnSYN takes the remote's SYN: its ISS, RCV.NXT, the options it
// offered, and what they negotiate with ours.
func (c *Conn) learnSYN(seq, ack Seq, answersOurs, optsOK bool) {
	c.IRS, c.HaveIRS, c.RcvNxt = seq, true, seq+1
	if answersOurs {
		c.SndNxt = ack // also for a SYN sent by SendRaw or SendVerbatim
	}
	// After a bare SYN of the remote's, it is in SYN_SENT until a SYN of
	// ours comes (see Tidy).
	c.peerSYN, c.peerSYNSeen, c.synSince = Offer{}, true, answersOurs
	if optsOK {
		c.peerSYN = offerOf(&c.rx)
	}
	c.Neg = Negotiated{}
	if c.ourSYNSent {
		c.Neg = negotiate(c.ourSYN, c.peerSYN, c.defaultSendMSS())
	}
	if c.peerSYN.Timestamps && optsOK {
		c.TSRecent = c.rx.TSVal
	}
}

// sentSYN reports whether seq is the sequence number of one of our recent
// SYNs (without ACK), or of the last one.
func (c *Conn) sentSYN(seq Seq) bool {
	if c.SynSeq == seq {
		return true
	}
	for i := range c.sent {
		if s := &c.sent[i]; s.flags&(craft.FlagSYN|craft.FlagACK) == craft.FlagSYN && s.seq == seq {
			return true
		}
	}
	return false
}

// updateTSRecent keeps TS.Recent as RFC 7323 §4.3 says: a segment's TSval
// replaces it when it is not older and the segment starts at or before
// Last.ACK.sent (it is the segment our last ACK expected), and the segment
// lies in this connection's sequence space.
func (c *Conn) updateTSRecent(flags craft.Flags, seq Seq, optsOK bool) {
	if !c.Neg.Timestamps || !optsOK || !c.rx.Has(craft.OptTimestamps) || flags.Has(craft.FlagRST) || flags.Has(craft.FlagSYN) {
		return
	}
	if !inSpace(seq, c.IRS) || !seq.LessEq(c.lastAckSent) {
		return
	}
	if v := Seq(c.rx.TSVal); Seq(c.TSRecent).LessEq(v) {
		c.TSRecent = c.rx.TSVal
	}
}

// inSpace reports whether seq lies in the sequence space of the connection
// whose remote ISS is irs: within 2^30 after it. A segment far from it is a
// stale connection's on the same 4-tuple (an earlier one whose reset was
// lost, RFC 9293 §3.5.2).
func inSpace(seq, irs Seq) bool { return irs.Size(seq) < 1<<30 }

// takeData takes in-order data (RFC 9293 §3.10.7.4, seventh: segment text)
// and notes the remote's FIN.
func (c *Conn) takeData(flags craft.Flags, seq, ack Seq, payload []byte) {
	dataSeq := seq
	if flags.Has(craft.FlagSYN) {
		dataSeq++
	}
	// Only data in this connection's sequence space is its data; a
	// retransmission may repeat some of what we have.
	if len(payload) > 0 && c.HaveIRS && inSpace(dataSeq, c.IRS+1) {
		end := dataSeq.Add(Size(len(payload)))
		if dataSeq.LessEq(c.RcvNxt) && !end.LessEq(c.RcvNxt) {
			c.Received = append(c.Received, payload[dataSeq.Size(c.RcvNxt):]...)
			c.RcvNxt = end
			if c.AutoAckData && !flags.Has(craft.FlagFIN) {
				_ = c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ack data")
			}
		} else if c.AutoAckData && !flags.Has(craft.FlagFIN) {
			// Data we have (our ACK of it was lost) or out of order: ACK
			// RCV.NXT again (RFC 9293 §3.10.7.4, first; RFC 5681 §4.2).
			// Unacknowledged, the remote keeps retransmitting it, and
			// after its timeout (cwnd 1) holds back its FIN behind it.
			_ = c.SendRaw(craft.FlagACK, c.SndNxt, c.RcvNxt, nil, "ack data again")
		}
	}
	// Only a FIN in this connection's sequence space is its FIN: before the
	// remote's SYN, or far from it, a FIN is a stale connection's.
	if flags.Has(craft.FlagFIN) && c.HaveIRS && inSpace(dataSeq, c.IRS+1) {
		if !c.RemoteFINSeen {
			c.RemoteFINAck = ack
		}
		c.RemoteFIN, c.RemoteFINSeen = dataSeq.Add(Size(len(payload))), true
	}
}

// Synchronized reports whether the remote's ISS is known (a SYN came).
func (c *Conn) Synchronized() bool { return c.HaveIRS }

// Forget marks the connection as gone on the remote: Tidy sends nothing.
func (c *Conn) Forget() { c.HaveIRS, c.SynPending = false, false }

// Tidy leaves no connection of ours behind on the remote, and is the one
// place that decides how:
//   - with the remote's SYN seen, an exact RST <SEQ=SND.NXT> destroys any
//     synchronized TCB (RFC 9293 §3.10.7.4) and a Linux TIME_WAIT
//     (tcp_rfc1337=0); it draws no reply. When we sent no SYN since the
//     remote's, the remote may be in SYN_SENT, which takes only a RST that
//     acknowledges its SYN (§3.10.7.3): the RST then carries <ACK=RCV.NXT>.
//   - a SYN of ours whose answer was not read (a run cut short right after
//     it) may have left a SYN_RCVD, which outlives us through its SYN,ACK
//     retransmissions: <SEQ=SYN+1><CTL=RST> is in that connection's window
//     and removes it (§3.10.7.4, SYN-RECEIVED), and a listener or a closed
//     port that never took the SYN ignores it (§3.10.7.1-2).
func (c *Conn) Tidy() {
	for _, s := range c.tidyPlan() {
		_ = c.SendRaw(s.flags, s.seq, s.ack, nil, s.note)
	}
}

// tidySeg is one RST Tidy sends.
type tidySeg struct {
	flags    craft.Flags
	seq, ack Seq
	note     string
}

func (c *Conn) tidyPlan() []tidySeg {
	var out []tidySeg
	if c.HaveIRS {
		if c.synSince || !c.peerSYNSeen {
			out = append(out, tidySeg{craft.FlagRST, c.SndNxt, 0, "tidy: reset"})
		} else {
			out = append(out, tidySeg{craft.FlagRST | craft.FlagACK, c.SndNxt, c.RcvNxt, "tidy: reset"})
		}
	}
	if c.SynPending && (!c.HaveIRS || c.SynSeq+1 != c.SndNxt) {
		out = append(out, tidySeg{craft.FlagRST, c.SynSeq + 1, 0, "tidy: reset the SYN's connection"})
	}
	return out
}

// quotedSeq is the sequence number of our segment that an ICMP error quotes.
func quotedSeq(e *probe.Event) (uint32, bool) {
	if e.ICMP6.Type != 0 {
		return e.ICMP6.Seq, e.ICMP6.HasSeq
	}
	return e.ICMP.Seq, e.ICMP.HasSeq
}

// unreachable reports a destination-unreachable error (ICMP type 3,
// ICMPv6 type 1): the segment it quotes was not delivered.
func unreachable(e *probe.Event) bool {
	if e.ICMP6.Type != 0 {
		return e.ICMP6.Type == 1
	}
	return e.ICMP.Type == 3
}
