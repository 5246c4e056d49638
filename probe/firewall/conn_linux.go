package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
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

// conn is our end of one connection, played with raw segments, just far
// enough to bring the target into a state.
type conn struct {
	flow *probe.Flow
	tm   Timing
	s    seqs
	ttl  uint8 // TTL of the target's SYN-ACK
	// heard is every segment that came back before the probe (see
	// isRetransmission), synAck the SYN-ACK the handshake took; of the
	// tries sends of its exchanges, retries went unanswered and were sent
	// again (loss on the path).
	heard          []heardSeg
	synAck         craft.Packet
	tries, retries int
}

func newConn(f *probe.Flow, tm Timing) *conn {
	iss := probe.RandomUint32()
	return &conn{flow: f, tm: tm, s: seqs{iss: iss, sndNxt: iss}}
}

func (c *conn) send(seg craft.Segment) (time.Time, error) {
	if seg.Window == 0 && !seg.Flags.Has(craft.FlagRST) {
		seg.Window = probe.DefaultWin
	}
	return c.flow.Send(&seg)
}

// await reads the flow until match accepts a segment, an ICMP error comes
// (returned as an error), or the deadline passes (probe.ErrTimeout).
func (c *conn) await(ctx context.Context, deadline time.Time, match func(craft.Packet) bool) (craft.Packet, uint8, error) {
	for {
		e, err := c.flow.Next(ctx, deadline)
		if err != nil {
			return craft.Packet{}, 0, err
		}
		if e.Kind == probe.EventICMP {
			msg := e.ICMP.String()
			c.flow.Release(e)
			return craft.Packet{}, 0, errors.New(msg)
		}
		c.hear(e)
		if match(e.Seg) {
			p, err := craft.ParsePacket(append([]byte(nil), e.Bytes()...))
			ttl := e.Seg.IP.TTL()
			c.flow.Release(e)
			return p, ttl, err
		}
		c.flow.Release(e)
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
	syn := craft.Segment{Seq: c.s.iss, Flags: craft.FlagSYN, Options: []craft.Option{craft.MSS(1460)}}
	p, ttl, err := c.exchange(ctx, "SYN → SYN,ACK", func() error { _, err := c.send(syn); return err },
		func(p craft.Packet) bool {
			f := p.TCP.Flags()
			return f.Has(craft.FlagRST) || f.Has(craft.FlagSYN|craft.FlagACK) && p.TCP.AckNumber() == c.s.iss+1
		})
	if err != nil {
		return err
	}
	if p.TCP.Flags().Has(craft.FlagRST) {
		return fmt.Errorf("SYN → SYN,ACK: got %s: nothing listens on port %d, or the path refuses it", p.TCP.Flags(), c.flow.Remote.Port())
	}
	c.ttl, c.synAck = ttl, p
	c.s.sndNxt = c.s.iss + 1
	c.s.irs = p.TCP.SequenceNumber()
	c.s.rcvNxt = c.s.irs + 1
	if complete {
		_, err := c.send(craft.Segment{Seq: c.s.sndNxt, Ack: c.s.rcvNxt, Flags: craft.FlagACK})
		return err
	}
	return nil
}

// closeOurs sends our FIN and waits for its ACK: the target, whose app does
// not close, is in CLOSE_WAIT.
func (c *conn) closeOurs(ctx context.Context) error {
	fin := c.s.sndNxt
	_, _, err := c.exchange(ctx, "FIN → ACK", func() error {
		_, err := c.send(craft.Segment{Seq: fin, Ack: c.s.rcvNxt, Flags: craft.FlagFIN | craft.FlagACK})
		return err
	}, func(p craft.Packet) bool {
		return p.TCP.Flags().Has(craft.FlagACK) && p.TCP.AckNumber() == fin+1
	})
	if err != nil {
		return err
	}
	c.s.sndNxt = fin + 1
	return nil
}

// remoteClose sends request, which makes the target's app answer and close
// first, takes its data and FIN, and sends our FIN: the target ends in
// TIME_WAIT (RFC 9293 §3.6).
func (c *conn) remoteClose(ctx context.Context, request []byte) error {
	if _, err := c.send(craft.Segment{Seq: c.s.sndNxt, Ack: c.s.rcvNxt, Flags: craft.FlagPSH | craft.FlagACK, Payload: request}); err != nil {
		return err
	}
	c.s.sndNxt += uint32(len(request))
	deadline := time.Now().Add(c.tm.RemoteClose)
	for {
		p, _, err := c.await(ctx, deadline, func(p craft.Packet) bool { return p.TCP.SequenceNumber() == c.s.rcvNxt })
		if err != nil {
			return fmt.Errorf("wait for the target app to close: %w", err)
		}
		c.s.rcvNxt += uint32(len(p.TCP.Payload()))
		if p.TCP.Flags().Has(craft.FlagRST) {
			return fmt.Errorf("wait for the target app to close: got %s", p.TCP.Flags())
		}
		if p.TCP.Flags().Has(craft.FlagFIN) {
			c.s.rcvNxt++
			break
		}
		if _, err := c.send(craft.Segment{Seq: c.s.sndNxt, Ack: c.s.rcvNxt, Flags: craft.FlagACK}); err != nil {
			return err
		}
	}
	return c.closeOurs(ctx)
}

// collect gathers what comes back for d: TCP segments and ICMP errors.
func (c *conn) collect(ctx context.Context, d time.Duration) []Reply {
	var out []Reply
	deadline := time.Now().Add(d)
	for {
		e, err := c.flow.Next(ctx, deadline)
		if err != nil {
			return out
		}
		switch e.Kind {
		case probe.EventICMP:
			out = append(out, Reply{From: e.ICMP.From, TTL: craft.IPv4(e.Bytes()).TTL(), ICMP: e.ICMP.String()})
		case probe.EventSegment:
			t := e.Seg.TCP
			out = append(out, Reply{From: e.Seg.IP.Source(), TTL: e.Seg.IP.TTL(), Flags: t.Flags().String(),
				Seq: t.SequenceNumber(), Ack: t.AckNumber(), Len: len(t.Payload()), at: e.At, flags: t.Flags()})
		}
		c.flow.Release(e)
	}
}
