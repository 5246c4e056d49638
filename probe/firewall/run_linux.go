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
	ttl, mb, synOnly, lossy, err := profile(ctx, cfg, cp)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("firewall: %s: %s before the first connection was made", m.Target, walk.ReasonInterrupted)
	}
	if err != nil {
		return nil, fmt.Errorf("firewall: %s: %w (the matrix needs a listening port that the path allows)", m.Target, err)
	}
	m.TargetTTL, m.Middlebox, m.TTLFromSYNACK = ttl, mb, synOnly
	m.Cells = make([]Cell, len(rows))
	retries := make([]sends, len(rows))
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.Cells[i], retries[i] = runRowOrInterrupted(ctx, cfg, cp, ttl, mb, &rows[i], 0)
		}()
	}
	wg.Wait()
	m.Lossy, m.exchanges = lossy.retries, lossy.tries
	for _, n := range retries {
		m.Lossy += n.retries
		m.exchanges += n.tries
	}
	if !m.Capture && m.Lossy > 0 {
		// Silence decides a drop only when enough copies went
		// unanswered for loss to be no explanation: the rows that
		// inferred one run again with more.
		again := make([]sends, len(rows))
		for i := range rows {
			if m.Cells[i].Outcome != Dropped || ctx.Err() != nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				m.Cells[i], again[i] = runRowOrInterrupted(ctx, cfg, cp, ttl, mb, &rows[i], silentCopies)
			}()
		}
		wg.Wait()
		for _, n := range again {
			m.Lossy += n.retries
			m.exchanges += n.tries
		}
	}
	undecideOnLoss(m)
	explain(m)
	m.Duration = time.Since(m.Start)
	m.Interrupted = ctx.Err() != nil
	return m, nil
}

// setupConns is how many connections a row tries to bring into its state.
const setupConns = 2

// setupTries is the least number of times a row's setup sends each segment:
// a state that cannot be reached leaves the row undecided.
const setupTries = 5

// silentCopies is how many copies a row that met silence on a lossy path
// (without a capture) sends when it runs again.
const silentCopies = 12

// sends counts the segments a connection's setup sent (tries) and how many
// of them went unanswered and were sent again (retries): their ratio
// estimates the path's loss.
type sends struct{ tries, retries int }

func sendsOf(c *conn) sends { return sends{c.tries, c.retries} }

// retryGap spaces the copies of a probe that got no answer: more than
// Linux's tcp_invalid_ratelimit (500 ms), which would otherwise silence the
// target's answer to an unacceptable segment (RFC 5961 §7).
const retryGap = 600 * time.Millisecond

// runRowOrInterrupted is runRow, with the cell Interrupted when the user
// stopped the run while it ran: a wait the signal ended may look like a
// drop.
func runRowOrInterrupted(ctx context.Context, cfg Config, cp *capture, targetTTL uint8, mb *Middlebox, r *row, copies int) (Cell, sends) {
	cell, n := runRow(ctx, cfg, cp, targetTTL, mb, r, copies)
	if ctx.Err() != nil {
		cell.Outcome, cell.Detail = Interrupted, walk.ReasonInterrupted
	}
	return cell, n
}

// runRow runs one row on its own connection and returns its cell and how
// many of its setup exchanges had to be sent again.
func runRow(ctx context.Context, cfg Config, cp *capture, targetTTL uint8, mb *Middlebox, r *row, copies int) (Cell, sends) {
	cell := Cell{State: r.state, Probe: r.name, Sent: r.sent}
	port := cfg.Port
	switch r.port {
	case portBlocked:
		port = cfg.BlockedPort
	case portClose:
		port = cfg.ClosePort
	}
	if port == 0 {
		cell.Outcome, cell.Detail, cell.portMissing = NotRun, "needs a port: see --blocked-port and --close-port", true
		return cell, sends{}
	}
	tm := cfg.Timing
	tm.Tries = max(tm.Tries, setupTries)
	// A setup that fails on a lossy path (a lost request the target's
	// app never answers, a proxy's lost SYN to the target: neither is sent
	// again) may succeed on a fresh connection: one more, then give up.
	var f *probe.Flow
	var c *conn
	var spent sends
	for attempt := 1; ; attempt++ {
		var err error
		if f, err = freshFlow(cfg.Prober, port); err != nil {
			cell.Outcome, cell.Detail = NotRun, err.Error()
			return cell, spent
		}
		c = newConn(f, tm)
		err = setup(ctx, cfg, c, r.state)
		if err == nil {
			break
		}
		tidy(c, r.state, nil)
		f.Close()
		spent.tries += c.tries
		spent.retries += c.retries + 1
		if attempt == setupConns || ctx.Err() != nil {
			cell.Outcome, cell.Detail = NotRun, "could not reach "+string(r.state)+": "+err.Error()
			return cell, spent
		}
	}
	defer f.Close()
	c.tries += spent.tries
	c.retries += spent.retries
	if r.resetFirst {
		if err := c.e.SendRaw(craft.FlagRST, c.e.SndNxt, 0, nil, "reset first"); err != nil {
			cell.Outcome, cell.Detail = NotRun, err.Error()
			return cell, sendsOf(c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.drain(ctx, 10*time.Millisecond)
	s := c.s()
	seg := r.build(s)
	if r.synOptions {
		seg.Options = craft.DefaultSYNOptions(uint32(time.Now().UnixMilli()))
	}
	o := observation{capture: cp != nil, targetTTL: targetTTL, answers: r.answers, probeFlags: seg.Flags, mb: mb}
	var replies []Reply
	var last time.Time
	if copies == 0 {
		copies = max(cfg.Timing.Tries, 1)
	}
	if cp != nil && mb != nil && seg.Flags&(craft.FlagSYN|craft.FlagACK) == craft.FlagSYN {
		// The capture cannot see what a middlebox answers for the
		// target: only more copies make a lost answer unlikely.
		copies *= 2
	}
	for try := 0; try < copies; try++ {
		if try > 0 {
			time.Sleep(time.Until(last.Add(retryGap)))
		}
		// A unique IP ID (IPv6: flow label) finds the probe in the
		// capture even when a middlebox rewrites its TCP header.
		id := markProbe(&seg, cfg.Prober.Remote().Is6())
		at, err := c.send(seg)
		if err != nil {
			cell.Outcome, cell.Detail = NotRun, err.Error()
			tidy(c, r.state, replies)
			return cell, sendsOf(c)
		}
		if n := len(seg.Payload); seg.Flags&craft.FlagRST == 0 && (n > 0 || seg.Flags&craft.FlagFIN != 0) {
			end := tcpconn.Seq(seg.Seq).Add(tcpconn.Size(n))
			if seg.Flags&craft.FlagFIN != 0 {
				end = end.Add(1)
			}
			c.probeEnd, c.hasProbeEnd = end, true
		}
		last = at
		o.copies++
		o.sent = append([]byte(nil), f.LastSent()...)
		got := c.collect(ctx, cfg.Timing.Quiet)
		answered := false
		var synSent time.Time
		if seg.Flags.Has(craft.FlagSYN) {
			synSent = at
		}
		for i := range got {
			got[i].Retransmission = isRetransmission(&got[i], c.heard, s.irs, s.rcvNxt, r.state != StateNone, synSent)
			answered = answered || !got[i].Retransmission
		}
		replies = append(replies, got...)
		if cp != nil {
			var arrived time.Time
			key := probeKey{local: f.Local.Port(), id: id, seq: seg.Seq, flags: seg.Flags}
			if o.got, arrived, o.delivered = cp.findProbe(key, at); o.delivered {
				if fl, ok := cp.findAnswer(f.Local.Port(), arrived); ok {
					o.targetAnswer = fl.String()
				}
				break
			}
		}
		// Silence is the answer to a probe a TCP may ignore, unless a
		// capture shows it never arrived: only then is it sent again.
		if answered || ctx.Err() != nil || (cp == nil && !r.answers) {
			break
		}
	}
	if cp != nil && !o.delivered {
		// The probe never arrived: what the target itself sent (its
		// app closing, its timers) answers nothing we sent.
		for i := range replies {
			r := &replies[i]
			if r.ICMP == "" && !r.Retransmission && r.TTL == targetTTL && cp.sawTargetSend(f.Local.Port(), r.Seq, r.flags) {
				r.Unprompted = true
			}
		}
	}
	o.replies = replies
	cell.copies = o.copies
	cell.probeSYN = seg.Flags&(craft.FlagSYN|craft.FlagACK) == craft.FlagSYN
	classify(&o, &cell)
	tidy(c, r.state, replies)
	return cell, sendsOf(c)
}

// markProbe gives seg a fresh odd identifier the capture finds it by: the
// IPv4 ID, or on IPv6, which has none outside a fragment header, the flow
// label (RFC 6437: 20 bits, kept end to end). It returns the identifier.
func markProbe(seg *craft.Segment, v6 bool) uint32 {
	if v6 {
		seg.FlowLabel = probe.RandomUint32()&0xfffff | 1
		return seg.FlowLabel
	}
	seg.ID = uint16(probe.RandomUint32()) | 1
	return uint32(seg.ID)
}

// setup brings c's connection into state.
func setup(ctx context.Context, cfg Config, c *conn, state State) error {
	switch state {
	case StateNone:
		return nil
	case StateHandshaking:
		return c.handshake(ctx, false)
	case StateEstablished:
		if err := c.handshake(ctx, true); err != nil {
			return err
		}
		return c.settle(ctx)
	case StateClosing:
		if err := c.handshake(ctx, true); err != nil {
			return err
		}
		if err := c.settle(ctx); err != nil {
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
		if err := c.settle(ctx); err != nil {
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
	// Also without a connection (StateNone): a SYN probe whose answer was
	// not read (a run interrupted right after it) left a SYN_RCVD, which
	// the engine resets at SYN+1.
	c.e.Tidy()
	if state != StateNone && c.hasProbeEnd && c.probeEnd != c.e.SndNxt {
		// The probe's data may have moved the target's RCV.NXT past
		// SND.NXT, out of the engine's RST's window; its ACK, which says
		// so, may not have been read (a run interrupted right after).
		_ = c.e.SendRaw(craft.FlagRST, c.probeEnd, 0, nil, "tidy: reset past the probe's data")
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
