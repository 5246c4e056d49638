package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// Config is what a run needs. Ports left zero skip the rows that need them.
type Config struct {
	Prober *probe.Prober
	// Port is a listening port the path allows, whose app keeps
	// connections open (the lab's PortHold).
	Port uint16
	// BlockedPort is a port a filtering path refuses (the lab's
	// PortBlocked).
	BlockedPort uint16
	// ClosePort is a port whose app answers CloseRequest and closes first
	// (the lab's PortClose), for the TIME_WAIT row.
	ClosePort    uint16
	CloseRequest []byte
	// Capture is the target's namespace: a capture there decides delivery.
	// Nil: decide from the answers alone.
	Capture *netns.NS
	// Timing: zero means DefaultTiming.
	Timing Timing
	// Parallel bounds how many rows run at once (zero: 8).
	Parallel int
}

// Run sends every probe of the matrix, each on its own connection, and
// returns what became of each. It fails only when the target cannot be
// reached at all (no SYN-ACK from Port) or a capture cannot be opened; a row
// whose state cannot be reached is NotRun with a reason.
func Run(ctx context.Context, cfg Config) (*Matrix, error) {
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	m := &Matrix{Target: netip.AddrPortFrom(cfg.Prober.Remote(), cfg.Port), Local: cfg.Prober.Local(),
		Capture: cfg.Capture != nil, Start: time.Now()}
	var cp *capture
	if cfg.Capture != nil {
		var err error
		if cp, err = startCapture(cfg.Capture, cfg.Prober.Local()); err != nil {
			return nil, err
		}
		defer cp.Close()
	}
	ttl, err := baseline(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("firewall: %s: %s before the first connection was made", m.Target, walk.ReasonInterrupted)
	}
	if err != nil {
		return nil, fmt.Errorf("firewall: %s: %w (the matrix needs a listening port that the path allows)", m.Target, err)
	}
	m.TargetTTL = ttl
	m.Cells = make([]Cell, len(rows))
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cell := runRow(ctx, cfg, cp, ttl, &rows[i])
			if ctx.Err() != nil {
				// A wait the signal ended may look like a drop.
				cell.Outcome, cell.Detail = Interrupted, walk.ReasonInterrupted
			}
			m.Cells[i] = cell
		}()
	}
	wg.Wait()
	m.Duration = time.Since(m.Start)
	m.Interrupted = ctx.Err() != nil
	return m, nil
}

// baseline opens and resets one connection to learn the TTL the target's
// segments arrive with.
func baseline(ctx context.Context, cfg Config) (uint8, error) {
	f, err := cfg.Prober.NewFlow(cfg.Port, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	c := newConn(f, cfg.Timing)
	if err := c.handshake(ctx, false); err != nil {
		tidy(c, StateHandshaking, nil)
		return 0, err
	}
	c.e.Tidy()
	return c.ttl, nil
}

func runRow(ctx context.Context, cfg Config, cp *capture, targetTTL uint8, r *row) Cell {
	cell := Cell{State: r.state, Probe: r.name, Sent: r.sent}
	port := cfg.Port
	switch r.port {
	case portBlocked:
		port = cfg.BlockedPort
	case portClose:
		port = cfg.ClosePort
	}
	if port == 0 {
		cell.Outcome, cell.Detail = NotRun, "needs a port: see --blocked-port and --close-port"
		return cell
	}
	f, err := cfg.Prober.NewFlow(port, 0)
	if err != nil {
		cell.Outcome, cell.Detail = NotRun, err.Error()
		return cell
	}
	defer f.Close()
	c := newConn(f, cfg.Timing)
	if err := setup(ctx, cfg, c, r.state); err != nil {
		cell.Outcome, cell.Detail = NotRun, "could not reach "+string(r.state)+": "+err.Error()
		tidy(c, r.state, nil)
		return cell
	}
	if r.resetFirst {
		if err := c.e.SendRaw(craft.FlagRST, c.e.SndNxt, 0, nil, "reset first"); err != nil {
			cell.Outcome, cell.Detail = NotRun, err.Error()
			return cell
		}
		time.Sleep(20 * time.Millisecond)
	}
	seg := r.build(c.s())
	if r.synOptions {
		seg.Options = craft.DefaultSYNOptions(uint32(time.Now().UnixMilli()))
	}
	// A unique IP ID finds the probe in the capture even when a middlebox
	// rewrites its TCP header.
	seg.ID = uint16(probe.RandomUint32()) | 1
	at, err := c.send(seg)
	if err != nil {
		cell.Outcome, cell.Detail = NotRun, err.Error()
		tidy(c, r.state, nil)
		return cell
	}
	sent := craft.IPv4(append([]byte(nil), f.LastSent()...))
	replies := c.collect(ctx, cfg.Timing.Quiet)
	o := observation{capture: cp != nil, sent: sent, replies: replies, targetTTL: targetTTL, answers: r.answers}
	if cp != nil {
		var arrived time.Time
		key := probeKey{local: f.Local.Port(), id: seg.ID, seq: seg.Seq, flags: seg.Flags}
		if o.got, arrived, o.delivered = cp.findProbe(key, at); o.delivered {
			if fl, ok := cp.findAnswer(f.Local.Port(), arrived); ok {
				o.targetAnswer = fl.String()
			}
		}
	}
	classify(&o, &cell)
	tidy(c, r.state, replies)
	return cell
}

// setup brings c's connection into state.
func setup(ctx context.Context, cfg Config, c *conn, state State) error {
	switch state {
	case StateNone:
		return nil
	case StateHandshaking:
		return c.handshake(ctx, false)
	case StateEstablished:
		return c.handshake(ctx, true)
	case StateClosing:
		if err := c.handshake(ctx, true); err != nil {
			return err
		}
		return c.closeOurs(ctx)
	case StateTimeWait:
		if len(cfg.CloseRequest) == 0 {
			return errors.New("no request makes the target's app close first (CloseRequest)")
		}
		if err := c.handshake(ctx, true); err != nil {
			return err
		}
		return c.remoteClose(ctx, cfg.CloseRequest)
	}
	return fmt.Errorf("unknown state %q", state)
}

// tidy leaves nothing open on the target: the engine's tidy for the
// connection (an exact RST, RFC 9293 §3.10.7.4; it also ends a TIME_WAIT on
// Linux, tcp_rfc1337=0), and a RST at SEG.ACK for any connection a probe's
// answer shows: a SYN-ACK to a probe SYN opened one, and a probe that
// carried data moved the target's RCV.NXT past our SND.NXT, where its ACKs
// say it is.
func tidy(c *conn, state State, replies []Reply) {
	if state != StateNone {
		c.e.Tidy()
	}
	ack := (craft.FlagACK).String()
	for _, r := range replies {
		switch {
		case r.Flags == (craft.FlagSYN | craft.FlagACK).String(),
			state != StateNone && r.ICMP == "" && r.Flags == ack && tcpconn.Seq(r.Ack) != c.e.SndNxt:
			_ = c.e.SendRaw(craft.FlagRST, tcpconn.Seq(r.Ack), 0, nil, "tidy: reset a probe's connection")
		}
	}
}
