package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// Timing bounds every wait of a run.
type Timing struct {
	// Reply is how long we wait for an answer before sending again.
	Reply time.Duration
	// Tries is how often a setup segment is sent.
	Tries int
	// Quiet is how long we listen after a probe.
	Quiet time.Duration
	// RemoteClose bounds the wait for the target app's FIN.
	RemoteClose time.Duration
}

// DefaultTiming suits a lab or a LAN.
var DefaultTiming = Timing{Reply: 400 * time.Millisecond, Tries: 3, Quiet: 300 * time.Millisecond, RemoteClose: 5 * time.Second}

// conn is our end of one connection, played on the connection engine just
// far enough to bring the target into a state. Its SYN offers MSS alone,
// as the firewall matrix has always sent it.
type conn struct {
	e   *tcpconn.Conn
	tm  Timing
	ttl uint8 // TTL of the target's SYN-ACK
	// heard is every segment that came back before the probe (see
	// isRetransmission), synAck the SYN-ACK the handshake took; of the
	// tries sends of its exchanges, retries went unanswered and were sent
	// again (loss on the path).
	heard          []heardSeg
	synAck         craft.Packet
	tries, retries int
	// probeEnd is where a probe that carried data (or a FIN) ends, when
	// one went out on the connection: the target's RCV.NXT may be there
	// now, past SND.NXT, and only a RST at it is in the window (tidy).
	probeEnd    tcpconn.Seq
	hasProbeEnd bool
}

func newConn(f *probe.Flow, tm Timing) *conn {
	e := tcpconn.New(f, nil)
	e.Offer = tcpconn.Offer{MSS: tcpconn.DefaultMSS}
	return &conn{e: e, tm: tm}
}

// s is the sequence state as the rows read it.
func (c *conn) s() seqs {
	return seqs{iss: uint32(c.e.ISS), sndNxt: uint32(c.e.SndNxt), irs: uint32(c.e.IRS), rcvNxt: uint32(c.e.RcvNxt)}
}

// send sends a row's probe as built (the window filled in): a firewall
// probe is what it is, options and all.
func (c *conn) send(seg craft.Segment) (time.Time, error) {
	if seg.Window == 0 && !seg.Flags.Has(craft.FlagRST) {
		seg.Window = tcpconn.DefaultWindow
	}
	if err := c.e.SendVerbatim(&seg, ""); err != nil {
		return time.Time{}, err
	}
	return c.e.LastSend, nil
}

// await reads the flow until match accepts a segment, an ICMP error comes
// (returned as an error), or the deadline passes (probe.ErrTimeout). Every
// segment goes through the engine (recorded, the TCB updated) after match
// saw it as it came.
func (c *conn) await(ctx context.Context, deadline time.Time, match func(craft.Packet) bool) (craft.Packet, uint8, error) {
	f := c.e.Flow
	for {
		e, err := f.Next(ctx, deadline)
		if err != nil {
			return craft.Packet{}, 0, err
		}
		if e.Kind == probe.EventICMP {
			msg := e.ICMPText()
			c.e.Take(e)
			f.Release(e)
			return craft.Packet{}, 0, errors.New(msg)
		}
		c.hear(e)
		ok := match(e.Seg)
		if _, dup := c.e.Take(e); ok && !dup {
			p, err := ownPacket(e)
			ttl := e.HopLimit()
			f.Release(e)
			return p, ttl, err
		}
		f.Release(e)
	}
}

// exchange sends with send and waits for match, up to Tries times.
func (c *conn) exchange(ctx context.Context, what string, send func() error, match func(craft.Packet) bool) (craft.Packet, uint8, error) {
	for try := 0; try < c.tm.Tries; try++ {
		c.tries++
		if err := send(); err != nil {
			return craft.Packet{}, 0, err
		}
		p, ttl, err := c.await(ctx, time.Now().Add(c.tm.Reply), match)
		if errors.Is(err, probe.ErrTimeout) {
			c.retries++
			continue
		}
		if err != nil {
			return p, ttl, fmt.Errorf("%s: %w", what, err)
		}
		return p, ttl, nil
	}
	return craft.Packet{}, 0, fmt.Errorf("%s: no answer after %d tries", what, c.tm.Tries)
}

// handshake sends our SYN and takes the SYN-ACK (the target is in
// SYN_RCVD); with complete, it ACKs it (ESTABLISHED).
func (c *conn) handshake(ctx context.Context, complete bool) error {
	iss := c.e.ISS
	p, ttl, err := c.exchange(ctx, "SYN → SYN,ACK", func() error { return c.e.SendSYN("") },
		func(p craft.Packet) bool {
			f := p.TCP.Flags()
			return f.Has(craft.FlagRST) || f.Has(craft.FlagSYN|craft.FlagACK) && tcpconn.Seq(p.TCP.AckNumber()) == iss+1
		})
	if err != nil {
		return err
	}
	if p.TCP.Flags().Has(craft.FlagRST) {
		return fmt.Errorf("SYN → SYN,ACK: got %s: nothing listens on port %d, or the path refuses it", p.TCP.Flags(), c.e.Flow.Remote.Port())
	}
	c.ttl, c.synAck = ttl, p
	if complete {
		return c.e.SendNext(craft.FlagACK, nil, "")
	}
	return nil
}

// closeOurs sends our FIN and waits for its ACK: the target, whose app does
// not close, is in CLOSE_WAIT.
func (c *conn) closeOurs(ctx context.Context) error {
	fin := c.e.SndNxt
	sent := false
	_, _, err := c.exchange(ctx, "FIN → ACK", func() error {
		if sent {
			return c.e.Retransmit(craft.FlagFIN|craft.FlagACK, fin, c.e.RcvNxt, nil)
		}
		sent = true
		return c.e.SendNext(craft.FlagFIN|craft.FlagACK, nil, "")
	}, func(p craft.Packet) bool {
		return p.TCP.Flags().Has(craft.FlagACK) && tcpconn.Seq(p.TCP.AckNumber()) == fin+1
	})
	return err
}

// remoteClose sends request, which makes the target's app answer and close
// first, takes its data and FIN, and sends our FIN: the target ends in
// TIME_WAIT (RFC 9293 §3.6).
func (c *conn) remoteClose(ctx context.Context, request []byte) error {
	e := c.e
	if err := e.SendNext(craft.FlagPSH|craft.FlagACK, request, ""); err != nil {
		return err
	}
	deadline := time.Now().Add(c.tm.RemoteClose)
	for {
		p, _, err := c.await(ctx, deadline, func(p craft.Packet) bool { return tcpconn.Seq(p.TCP.SequenceNumber()) == e.RcvNxt })
		if err != nil {
			return fmt.Errorf("wait for the target app to close: %w", err)
		}
		if p.TCP.Flags().Has(craft.FlagRST) {
			return fmt.Errorf("wait for the target app to close: got %s", p.TCP.Flags())
		}
		if p.TCP.Flags().Has(craft.FlagFIN) {
			e.RcvNxt = e.RemoteFIN + 1
			break
		}
		if err := e.SendNext(craft.FlagACK, nil, ""); err != nil {
			return err
		}
	}
	return c.closeOurs(ctx)
}

// collect gathers what comes back for d: TCP segments and ICMP errors. It
// reads the flow, not the engine: the answers are to a probe, not to the
// connection (a SYN,ACK to a probe SYN opens another one), and must not
// move the connection's TCB; tidy resets what they show.
func (c *conn) collect(ctx context.Context, d time.Duration) []Reply {
	var out []Reply
	deadline := time.Now().Add(d)
	for {
		e, err := c.e.Flow.Next(ctx, deadline)
		if err != nil {
			return out
		}
		switch e.Kind {
		case probe.EventICMP:
			ttl := craft.IPv4(e.Bytes()).TTL()
			if e.IsIPv6() {
				ttl = craft.IPv6(e.Bytes()).HopLimit()
			}
			out = append(out, Reply{From: e.Source(), TTL: ttl, ICMP: e.ICMPText()})
		case probe.EventSegment:
			t := e.Seg.TCP
			out = append(out, Reply{From: e.Source(), TTL: e.HopLimit(), Flags: t.Flags().String(),
				Seq: t.SequenceNumber(), Ack: t.AckNumber(), Len: len(t.Payload()), at: e.At, flags: t.Flags()})
		}
		c.e.Flow.Release(e)
	}
}

// ownPacket copies the segment of e out of the event's buffer: on IPv4 the
// whole packet (IP and TCP views), on IPv6 the TCP segment only (Packet.IP
// is an IPv4 view: nil there).
func ownPacket(e *probe.Event) (craft.Packet, error) {
	if e.IsIPv6() {
		t, err := craft.ParseTCP(append([]byte(nil), e.Seg.TCP...))
		return craft.Packet{TCP: t}, err
	}
	return craft.ParsePacket(append([]byte(nil), e.Bytes()...))
}

// hear records e, a segment read while bringing the connection into its
// state.
func (c *conn) hear(e *probe.Event) {
	if e.Kind != probe.EventSegment {
		return
	}
	t := e.Seg.TCP
	c.heard = append(c.heard, heardSeg{seq: t.SequenceNumber(), flags: t.Flags(), len: len(t.Payload()),
		ttl: e.HopLimit(), at: e.At})
}

// drain reads what is already queued for the flow (a path's duplicate of a
// segment the setup took, a window update, a retransmission), so that the
// probe's listening starts clean; what it reads is heard, and goes through
// the engine like every segment of the setup (it belongs to the
// connection, not to the probe).
func (c *conn) drain(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		e, err := c.e.Flow.Next(ctx, deadline)
		if err != nil {
			return
		}
		c.hear(e)
		c.e.Take(e)
		c.e.Flow.Release(e)
	}
}
