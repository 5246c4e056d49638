package walk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/result"
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

// Conn is our end of one connection, played with raw segments: the
// connection engine (tcpconn.Conn: sequence state, negotiated options, a
// conformant sender, the recorder, the tidy) with the walk's timing and
// its exchanges of expected answers on top.
type Conn struct {
	*tcpconn.Conn
	tm   Timing
	last time.Time // when our last zero-length probe went out
}

func newConn(flow *probe.Flow, tm Timing, rec recorder) *Conn {
	return &Conn{Conn: tcpconn.New(flow, rec.Recorder), tm: tm}
}

// errNoReply is returned when a step's reply did not come after our tries.
var errNoReply = errors.New("no reply")

// SendSYN sends our SYN at ISS with the offered options (Linux's), again
// when called again: SND.NXT is ISS+1 after it.
func (c *Conn) SendSYN() error { return c.Conn.SendSYN("") }

// Want describes an expected segment from the remote, in the spec's notation.
type Want struct {
	Flags    craft.Flags
	Seq, Ack tcpconn.Seq
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
	OrWire result.State
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
		seq = seq.Add(tcpconn.Size(s.Len))
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
type Reply = tcpconn.Reply

// next reads one event, records it and updates the connection.
func (c *Conn) next(ctx context.Context, deadline time.Time) (*Reply, error) {
	return c.Conn.Next(ctx, deadline)
}

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
