package firewall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// baselineTries is how often the baseline sends each segment: the run
// cannot start without it, so it rides out more loss than a row's setup.
const baselineTries = 6

// settle waits, after our ACK of a SYN-ACK that offered a zero window, for
// the window to open (sending our ACK again if nothing comes): RFC 9293
// §3.8.6 forbids sending data into a zero window. A SYN proxy offers one
// until it has opened its own connection to the target, then sends a window
// update. Without a zero window there is nothing to wait for. The engine
// builds what it sends: with timestamps negotiated (the baseline), every
// segment carries them (RFC 7323 §3.2: a stack may drop segments without).
func (c *conn) settle(ctx context.Context) error {
	if c.synAck.TCP == nil || c.synAck.TCP.WindowSize() != 0 {
		return nil
	}
	// The first try sends our ACK again; the next ones a zero-window
	// probe (SEG.SEQ = SND.NXT-1, RFC 9293 §3.8.6.1 and §3.8.4), which
	// the target must answer with its window even when the proxy's window
	// update was lost, and which a lost ACK does not need.
	sent := 0
	_, _, err := c.exchange(ctx, "ACK → window update", func() error {
		seq, note := c.e.SndNxt, "ACK again, for the window"
		if sent > 0 {
			seq, note = c.e.SndNxt-1, "zero-window probe"
		}
		sent++
		return c.e.SendRaw(craft.FlagACK, seq, c.e.RcvNxt, nil, note)
	},
		func(p craft.Packet) bool {
			f := p.TCP.Flags()
			return f.Has(craft.FlagACK) && !f.Has(craft.FlagSYN) && p.TCP.WindowSize() > 0
		})
	return err
}

// profile opens one connection, sends a byte of data and takes its ACK: the
// TTL of that ACK is the target's own (the data reached it). When the
// SYN-ACK came with another TTL, something nearer answered the handshake
// in the target's name; what else it did (window, timestamps, IP ID, the
// target's own ISS in the capture, the hop's address) is gathered as the
// middlebox's evidence.
func profile(ctx context.Context, cfg Config, cp *capture) (ttl uint8, mb *Middlebox, synOnly bool, lossy sends, err error) {
	// A proxy that lost its own SYN to the target never retransmits it:
	// that connection is stuck, a new one is not.
	for try := 1; ; try++ {
		var n sends
		ttl, mb, n, err = profileOnce(ctx, cfg, cp)
		lossy.tries += n.tries
		lossy.retries += n.retries
		var nd *noDataAck
		if errors.As(err, &nd) && (try == baselineConns || ctx.Err() != nil) {
			// The handshake works but no data is acknowledged: the
			// matrix can still run, on the SYN-ACK's TTL, and says so.
			return nd.synAckTTL, nil, true, lossy, nil
		}
		if err == nil || try == baselineConns || ctx.Err() != nil {
			return ttl, mb, false, lossy, err
		}
	}
}

// noDataAck: the baseline's handshake was answered, its data never
// acknowledged.
type noDataAck struct {
	synAckTTL uint8
	err       error
}

func (e *noDataAck) Error() string { return e.err.Error() }

// baselineConns is how many connections the baseline tries.
const baselineConns = 3

func profileOnce(ctx context.Context, cfg Config, cp *capture) (uint8, *Middlebox, sends, error) {
	f, err := freshFlow(cfg.Prober, cfg.Port)
	if err != nil {
		return 0, nil, sends{}, err
	}
	defer f.Close()
	tm := cfg.Timing
	tm.Tries = max(tm.Tries, baselineTries)
	c := newConn(f, tm)
	// The options Linux puts on a SYN, timestamps among them: their clock
	// tells a proxy's SYN-ACK from the target's segments. The engine then
	// puts timestamps on every segment if the SYN-ACK took them.
	c.e.Offer = tcpconn.LinuxOffer
	// The engine's tidy resets whatever this connection left: a SYN_RCVD
	// of an unanswered SYN, the connection once open (RST at SND.NXT,
	// which stays at our byte of data until the target acknowledges it).
	defer c.e.Tidy()
	if err := c.handshake(ctx, true); err != nil {
		return 0, nil, sendsOf(c), err
	}
	synAckAt := time.Now()
	syn := c.synAck
	if err := c.settle(ctx); err != nil {
		return 0, nil, sendsOf(c), err
	}
	// SND.NXT moves past the byte only once it is acknowledged (SendRaw
	// leaves it): a reset at the byte is exact while it is not.
	seq, data := c.e.SndNxt, []byte{'\n'}
	sent := false
	p, ttl, err := c.exchange(ctx, "data → ACK", func() error {
		if sent {
			return c.e.Retransmit(craft.FlagPSH|craft.FlagACK, seq, c.e.RcvNxt, data)
		}
		sent = true
		return c.e.SendRaw(craft.FlagPSH|craft.FlagACK, seq, c.e.RcvNxt, data, "one byte: its ACK comes from the target")
	},
		func(p craft.Packet) bool {
			return p.TCP.Flags().Has(craft.FlagACK) && !p.TCP.Flags().Has(craft.FlagSYN) && tcpconn.Seq(p.TCP.AckNumber()) == seq+1
		})
	if err != nil {
		return 0, nil, sendsOf(c), &noDataAck{c.ttl, err}
	}
	c.e.SndNxt = seq + 1
	if ttl == c.ttl {
		return ttl, nil, sendsOf(c), nil
	}
	mb := &Middlebox{Hop: hopOf(c.ttl), TTL: c.ttl, Proxied: true}
	mb.Evidence = append(mb.Evidence, fmt.Sprintf(
		"TTL: the SYN-ACK arrives with %d (sent from hop %d), the ACK of our data, which reached the target, with %d (hop %d)",
		c.ttl, mb.Hop, ttl, hopOf(ttl)))
	if syn.TCP.WindowSize() == 0 {
		mb.Evidence = append(mb.Evidence,
			"window: the SYN-ACK offers a zero window, opened by a window update once the target was reached (a SYN proxy's way)")
	}
	if v1, ok1 := tsval(syn.TCP); ok1 {
		if v2, ok2 := tsval(p.TCP); ok2 {
			ms := time.Since(synAckAt).Milliseconds() + 1
			d := int64(int32(v2 - v1))
			// RFC 7323 §5.4: a timestamp clock ticks between 1 ms and
			// 1 s; one clock cannot go back or run far ahead of time.
			if d < 0 || d > 2*ms+1000 {
				mb.Evidence = append(mb.Evidence, fmt.Sprintf(
					"timestamps: TSval %d on the SYN-ACK, %d on the target's ACK %d ms later: two clocks", v1, v2, ms))
			} else {
				mb.Evidence = append(mb.Evidence, fmt.Sprintf(
					"timestamps: TSval %d then %d: one clock, or the proxy translates them", v1, v2))
			}
		}
	} else if _, ok := tsval(p.TCP); ok {
		mb.Evidence = append(mb.Evidence, "timestamps: on the target's segments, not on the SYN-ACK")
	}
	if syn.IP == nil || p.IP == nil {
		// IPv6: no IP ID outside a fragment header.
	} else if a, b := syn.IP.ID(), p.IP.ID(); a != b {
		mb.Evidence = append(mb.Evidence, fmt.Sprintf("IP ID: %d on the SYN-ACK, %d on the target's ACK", a, b))
	}
	if cp != nil {
		if iss, ok := cp.findTargetSYNACK(f.Local.Port()); ok && iss != uint32(c.e.IRS) {
			mb.Evidence = append(mb.Evidence, fmt.Sprintf(
				"sequence translation: the target's own SYN-ACK (seen by the capture) has ISS %d, the one we got %d", iss, uint32(c.e.IRS)))
		} else if !ok {
			mb.Evidence = append(mb.Evidence, "capture: the target sent no SYN-ACK to our SYN before our ACK")
		}
	}
	if h, err := traceHop(ctx, cfg.Prober, cfg.Port, uint8(min(mb.Hop, 255)), cfg.Timing); err == nil && h.From.IsValid() && !h.Reached {
		mb.Addr = h.From
		mb.Evidence = append(mb.Evidence, fmt.Sprintf("a SYN with TTL %d ran out at %s (ICMP time exceeded)", mb.Hop, h.From))
	}
	return ttl, mb, sendsOf(c), nil
}

// tsval returns the TSval of t's timestamps option (RFC 7323 §3).
func tsval(t craft.TCP) (uint32, bool) {
	it := craft.NewOptionIter(t.OptionBytes())
	for it.Next() {
		if o := it.Option(); o.Kind == craft.OptTimestamps {
			v, _ := o.Timestamps()
			return v, true
		}
	}
	return 0, false
}
