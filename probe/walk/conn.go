package walk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
)

// Timing of our side. Replies to our segments come at once on a healthy path;
// the remote's own retransmissions follow its timers (Linux: SYN-ACK after
// 1 s, FIN after ≥ 200 ms).
type Timing struct {
	// Reply is how long we wait for a reply before retransmitting ours.
	Reply time.Duration
	// Tries is how many times we send a segment that expects a reply.
	Tries int
	// RemoteRetransmit is how long we wait for a remote retransmission.
	RemoteRetransmit time.Duration
	// Quiet is how long we listen to conclude "no reply".
	Quiet time.Duration
	// RateLimit spaces zero-length probes on one connection: Linux answers
	// at most one invalid segment or challenge ACK per 500 ms per socket
	// (tcp_invalid_ratelimit).
	RateLimit time.Duration
}

// DefaultTiming suits a lab or a LAN.
var DefaultTiming = Timing{
	Reply:            400 * time.Millisecond,
	Tries:            5,
	RemoteRetransmit: 3500 * time.Millisecond,
	Quiet:            300 * time.Millisecond,
	RateLimit:        550 * time.Millisecond,
}

// Conn is our end of one connection, played with raw segments.
type Conn struct {
	flow *probe.Flow
	tm   Timing
	rec  *recorder

	// Our sequence variables (RFC 9293 §3.3.1): ISS, SND.NXT.
	ISS    uint32
	SndNxt uint32
	// The remote's: IRS (its ISS) and RCV.NXT (the next byte we expect).
	IRS     uint32
	RcvNxt  uint32
	haveIRS bool
	// synSeq is the sequence number of our last SYN without ACK, and
	// synPending says it was the last segment we sent and its answer
	// (SYN,ACK or RST,ACK) was not read: the remote may hold a SYN_RCVD
	// for it that only this number resets.
	synSeq     uint32
	synPending bool
	// The remote's FIN, once seen: its sequence number, and what its
	// segment acknowledged (did the remote close before or after our FIN?).
	RemoteFIN     uint32
	RemoteFINAck  uint32
	RemoteFINSeen bool
	// Our FIN, once sent.
	OurFIN     uint32
	OurFINSent bool
	// Data the remote sent that we accepted, in order.
	Received []byte

	// AutoAckData makes the conn ACK remote data at once, in-order data
	// and data it has or cannot take yet alike (never the remote's FIN:
	// that stays the walk's decision).
	AutoAckData bool

	tsVal    uint32
	last     time.Time // when our last zero-length probe went out
	lastSend time.Time // when our last segment went out
}

func newConn(flow *probe.Flow, tm Timing, rec *recorder) *Conn {
	iss := probe.RandomUint32()
	return &Conn{flow: flow, tm: tm, rec: rec, ISS: iss, SndNxt: iss, tsVal: uint32(time.Now().UnixMilli())}
}

// errNoReply is returned when a step's reply did not come after our tries.
var errNoReply = errors.New("no reply")

// send writes seg and records it. It does not touch SND.NXT.
func (c *Conn) send(seg craft.Segment, note string) error {
	if seg.Window == 0 && !seg.Flags.Has(craft.FlagRST) {
		seg.Window = probe.DefaultWin
	}
	if seg.ID == 0 {
		// The kernel would fill a zero IP ID after we recorded the bytes;
		// drawing it here keeps the record (and pcap) equal to the wire.
		seg.ID = uint16(probe.RandomUint32()) | 1
	}
	at, err := c.flow.Send(&seg)
	if err != nil {
		return err
	}
	c.rec.sent(at, &seg, c.flow.LastSent(), note)
	c.lastSend = at
	c.synPending = seg.Flags&(craft.FlagSYN|craft.FlagACK|craft.FlagRST) == craft.FlagSYN
	if c.synPending {
		c.synSeq = seg.Seq
	}
	return nil
}

// SendSYN sends our SYN at ISS with Linux's options, again when called
// again: SND.NXT is ISS+1 after it.
func (c *Conn) SendSYN() error {
	c.SndNxt = c.ISS
	return c.SendNext(craft.FlagSYN, nil, "")
}

// SendNext sends flags with payload at SND.NXT, acknowledging RCV.NXT when
// ACK is among flags, and advances SND.NXT by the segment length (SYN and FIN
// count one).
func (c *Conn) SendNext(flags craft.Flags, payload []byte, note string) error {
	seg := craft.Segment{Seq: c.SndNxt, Flags: flags, Payload: payload}
	if flags.Has(craft.FlagACK) {
		seg.Ack = c.RcvNxt
	}
	if flags.Has(craft.FlagSYN) {
		seg.Options = craft.DefaultSYNOptions(c.tsVal)
	}
	if err := c.send(seg, note); err != nil {
		return err
	}
	c.SndNxt += uint32(len(payload))
	if flags.Has(craft.FlagSYN) {
		c.SndNxt++
	}
	if flags.Has(craft.FlagFIN) {
		c.OurFIN, c.OurFINSent = c.SndNxt, true
		c.SndNxt++
	}
	return nil
}

// SendRaw sends a segment with exactly the given numbers; SND.NXT stays.
func (c *Conn) SendRaw(flags craft.Flags, seq, ack uint32, payload []byte, note string) error {
	return c.send(craft.Segment{Seq: seq, Ack: ack, Flags: flags, Payload: payload}, note)
}

// Retransmit sends a copy of one of our earlier segments: the same numbers,
// SND.NXT untouched.
func (c *Conn) Retransmit(flags craft.Flags, seq, ack uint32, payload []byte) error {
	return c.SendRaw(flags, seq, ack, payload, "retransmission")
}

// KeepAlive sends KA1, the keep-alive probe of RFC 9293 §3.8.4:
// <SEQ=SND.NXT−1><ACK=RCV.NXT><CTL=ACK> with one garbage byte. In every
// synchronized state it draws <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> at once,
// and carrying data it is never rate-limited.
func (c *Conn) KeepAlive() error {
	return c.SendRaw(craft.FlagACK, c.SndNxt-1, c.RcvNxt, []byte{0}, "KA1")
}

// Want describes an expected segment from the remote, in the spec's notation.
type Want struct {
	Flags    craft.Flags
	Seq, Ack uint32
	// AnySeq and AnyAck skip the comparison of that field.
	AnySeq, AnyAck bool
	// IgnoreData accepts a payload before a wanted FIN (a FIN that carries
	// the last data, as Linux's collapsed retransmissions do): Seq is then
	// the FIN's own sequence number, SEG.SEQ+SEG.LEN.
	IgnoreData bool
	// IgnoreFIN and IgnoreSYN leave that flag out of the comparison, as
	// PSH always is.
	IgnoreFIN, IgnoreSYN bool
	// Retry, when set, is the answer of the remote in the state before the
	// transition our segment was to cause: it shows that segment (or the
	// wanted answer) was lost, so Exchange sends again instead of judging
	// it. After Timing.Tries such answers the step is inconclusive.
	Retry *Want
	// RetryWait, when set, is how long the wanted answer may still take
	// after the first Retry answer of a try, instead of what is left of
	// Timing.Reply: the Retry answer showed our segment arrived, and the
	// wanted answer, lost, comes again by the remote's own retransmission
	// timer, which backs off past the tries' span (RFC 6298 §5.5).
	RetryWait time.Duration
	// Beyond, when set, is an answer showing the remote went past the
	// wanted state already (our segment arrived, the wanted answer was
	// lost, and the remote moved on): the step is inconclusive, not failed.
	Beyond *Want
	// Or, when set, is another answer that passes the step, leaving the
	// remote in OrWire: e.g. the ACK of our FIN carried by the remote's own
	// FIN, when its app closes at once (CLOSE_WAIT lasts no time).
	Or     *Want
	OrWire string
	// OrNote says what the Or answer means, for the report.
	OrNote string
}

// Match reports whether s is the wanted segment. PSH is ignored: it carries
// no state; so are FIN and SYN with IgnoreFIN and IgnoreSYN.
func (w Want) Match(s *Segment, flags craft.Flags) bool {
	ignore := craft.FlagPSH
	if w.IgnoreFIN {
		ignore |= craft.FlagFIN
	}
	if w.IgnoreSYN {
		ignore |= craft.FlagSYN
	}
	if flags&^ignore != w.Flags&^ignore {
		return false
	}
	seq := s.Seq
	if w.IgnoreData && flags.Has(craft.FlagFIN) {
		seq += uint32(s.Len)
	}
	if !w.AnySeq && seq != w.Seq {
		return false
	}
	if !w.AnyAck && s.Ack != w.Ack {
		return false
	}
	return true
}

// String writes w as <SEQ=..><ACK=..><CTL=..>.
func (w Want) String() string {
	s := ""
	if w.AnySeq {
		s += "<SEQ=*>"
	} else {
		s += fmt.Sprintf("<SEQ=%d>", w.Seq)
	}
	if w.Flags.Has(craft.FlagACK) {
		if w.AnyAck {
			s += "<ACK=*>"
		} else {
			s += fmt.Sprintf("<ACK=%d>", w.Ack)
		}
	}
	return s + "<CTL=" + ctlNames(w.Flags) + ">"
}

func ctlNames(f craft.Flags) string {
	names := []struct {
		f craft.Flags
		n string
	}{{craft.FlagSYN, "SYN"}, {craft.FlagFIN, "FIN"}, {craft.FlagRST, "RST"}, {craft.FlagPSH, "PSH"}, {craft.FlagACK, "ACK"}, {craft.FlagURG, "URG"}}
	out := ""
	for _, n := range names {
		if f.Has(n.f) {
			if out != "" {
				out += ","
			}
			out += n.n
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// Reply is one received segment, as matched.
type Reply struct {
	Seg     *Segment // the recorded segment
	Flags   craft.Flags
	Data    []byte
	SrcPort uint16
}

// next reads one event, records it and updates the remote's variables
// (in-order data is taken; a FIN is noted, not acknowledged).
func (c *Conn) next(ctx context.Context, deadline time.Time) (*Reply, error) {
	for {
		e, err := c.flow.Next(ctx, deadline)
		if err != nil {
			return nil, err
		}
		r, dup := c.take(e)
		c.flow.Release(e)
		// A copy made by the path is recorded and otherwise ignored.
		if !dup {
			return r, nil
		}
	}
}

// take records one event and updates the remote's variables; dup reports
// a path's copy of an earlier segment, which changes nothing.
func (c *Conn) take(e *probe.Event) (r *Reply, dup bool) {
	if e.Kind == probe.EventICMP {
		c.rec.icmp(e.At, e.ICMPText(), e.Bytes())
		return &Reply{Seg: c.rec.last()}, false
	}
	tcp := e.Seg.TCP
	flags := tcp.Flags()
	payload := tcp.Payload()
	seq := tcp.SequenceNumber()
	seg := c.rec.received(e.At, &e.Seg, e.Bytes())
	if seg.Duplicate {
		return nil, true
	}
	if flags.Has(craft.FlagSYN) && !c.haveIRS {
		c.IRS, c.haveIRS = seq, true
	}
	if flags.Has(craft.FlagACK) && flags&(craft.FlagSYN|craft.FlagRST) != 0 && tcp.AckNumber() == c.synSeq+1 {
		c.synPending = false // our SYN's answer
	}
	r = &Reply{Seg: seg, Flags: flags, Data: append([]byte(nil), payload...), SrcPort: tcp.SourcePort()}
	// Take in-order data (RFC 9293 §3.10.7.4, seventh: segment text).
	dataSeq := seq
	if flags.Has(craft.FlagSYN) {
		dataSeq++
	}
	// Only data in this connection's sequence space is its data (see the
	// FIN below); a retransmission may repeat some of what we have.
	if len(payload) > 0 && c.haveRcv() && dataSeq-(c.IRS+1) < 1<<30 {
		end := dataSeq + uint32(len(payload))
		if seqLE(dataSeq, c.RcvNxt) && !seqLE(end, c.RcvNxt) {
			c.Received = append(c.Received, payload[c.RcvNxt-dataSeq:]...)
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
	// remote's SYN, or far from it, a FIN is a stale connection's on the
	// same 4-tuple (an earlier one whose reset was lost, RFC 9293 §3.5.2).
	if flags.Has(craft.FlagFIN) && c.haveIRS && dataSeq-(c.IRS+1) < 1<<30 {
		if !c.RemoteFINSeen {
			c.RemoteFINAck = tcp.AckNumber()
		}
		c.RemoteFIN, c.RemoteFINSeen = dataSeq+uint32(len(payload)), true
	}
	return r, false
}

func (c *Conn) haveRcv() bool { return c.haveIRS }

// Next reads the next segment (or ICMP error) of the connection, records it
// and updates the remote's variables, or returns probe.ErrTimeout.
func (c *Conn) Next(ctx context.Context, deadline time.Time) (*Reply, error) {
	return c.next(ctx, deadline)
}

// Synchronized reports whether the remote's ISS is known (a SYN came).
func (c *Conn) Synchronized() bool { return c.haveIRS }

// Forget marks the connection as gone on the remote: Finish sends no tidy
// RST.
func (c *Conn) Forget() { c.haveIRS, c.synPending = false, false }

// SpaceProbe waits so that zero-length probes on this connection are at
// least Timing.RateLimit apart (Linux's per-socket limit on challenge ACKs
// and replies to invalid segments).
func (c *Conn) SpaceProbe(ctx context.Context) error { return c.spaceProbe(ctx) }

// Timing returns the connection's timing.
func (c *Conn) Timing() Timing { return c.tm }

// Expect waits until deadline for a segment matching w; other segments are
// recorded and passed over.
func (c *Conn) Expect(ctx context.Context, w Want, wait time.Duration) (*Reply, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := c.next(ctx, deadline)
		if err != nil {
			if errors.Is(err, probe.ErrTimeout) {
				return nil, errNoReply
			}
			return nil, err
		}
		if r.Seg != nil && r.Seg.ICMP == "" && w.Match(r.Seg, r.Flags) {
			return r, nil
		}
	}
}

// errStillBefore is returned when every try drew the answer of the state
// before the transition (Want.Retry).
var errStillBefore = errors.New("still in the state before")

// errBeyond is returned when an answer matched Want.Beyond.
var errBeyond = errors.New("the wanted answer was lost")

// Exchange sends with send, waits for w, and retransmits up to Tries times.
// On failure it returns the last segment that came (if any) for the report.
//
// Only a segment that came after this exchange's first send can answer it:
// one queued before (an answer to a copy of an earlier segment of ours) is
// passed over, as are the remote's retransmissions and repeats of earlier
// answers, which tell nothing new, and the app's data. An answer matching w.Retry shows that
// our segment or the wanted answer was lost: the wanted answer may still
// come within Timing.Reply (w.RetryWait when set), and then the segment is
// sent again.
func (c *Conn) Exchange(ctx context.Context, send func(retry bool) error, w Want) (*Reply, *Segment, error) {
	var other *Segment
	start := time.Now()
	retried := 0 // tries that drew w.Retry
	for try := 0; try < c.tm.Tries; try++ {
		sawRetry := false
		if err := send(try > 0); err != nil {
			return nil, nil, err
		}
		deadline := time.Now().Add(c.tm.Reply)
		for {
			r, err := c.next(ctx, deadline)
			if errors.Is(err, probe.ErrTimeout) {
				break
			}
			if err != nil {
				return nil, other, err
			}
			if r.Seg == nil || r.Seg.At.Before(start) {
				continue
			}
			if r.Seg.ICMP == "" && (w.Match(r.Seg, r.Flags) || w.Or != nil && w.Or.Match(r.Seg, r.Flags)) {
				return r, nil, nil
			}
			if r.Seg.ICMP != "" {
				return nil, r.Seg, nil // an ICMP error is the path's answer
			}
			if w.Beyond != nil && w.Beyond.Match(r.Seg, r.Flags) {
				return nil, nil, fmt.Errorf("%w: the remote went on and sent %s", errBeyond, describe(r.Seg))
			}
			if w.Retry != nil && w.Retry.Match(r.Seg, r.Flags) {
				// The wanted answer may still come; else send again.
				if !sawRetry && w.RetryWait > 0 {
					if d := time.Now().Add(w.RetryWait); d.After(deadline) {
						deadline = d
					}
				}
				sawRetry = true
				continue
			}
			// The app's data (no SYN, FIN or RST) is no answer to a probe.
			appData := r.Seg.Len > 0 && r.Flags&^(craft.FlagPSH|craft.FlagACK) == 0
			if !r.Seg.Retransmission && !r.Seg.Repeat && !appData {
				other = r.Seg
				if r.Flags.Has(craft.FlagRST) {
					return nil, other, nil // a reset ends the exchange at once
				}
			}
		}
		// A wrong reply is an answer: judge it instead of retransmitting.
		if other != nil {
			return nil, other, nil
		}
		if sawRetry {
			retried++
		}
	}
	if retried > 0 {
		return nil, nil, fmt.Errorf("%w: %d of %d tries drew %s", errStillBefore, retried, c.tm.Tries, w.Retry)
	}
	return nil, other, errNoReply
}

// Collect gathers every segment for d (retransmissions included).
func (c *Conn) Collect(ctx context.Context, d time.Duration) ([]*Reply, error) {
	deadline := time.Now().Add(d)
	var out []*Reply
	for {
		r, err := c.next(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// spaceProbe waits so that zero-length probes on this connection are at
// least RateLimit apart.
func (c *Conn) spaceProbe(ctx context.Context) error {
	if c.last.IsZero() {
		c.last = time.Now()
		return nil
	}
	wait := c.tm.RateLimit - time.Since(c.last)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.last = time.Now()
	return nil
}
