package walk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// closedCandidates are the ports tried, after the walked port + 1, for one
// that answers a SYN with a reset: low ports rarely served (tcpmux,
// unassigned, discard).
var closedCandidates = []uint16{1, 4, 6, 9}

// FindClosedPort looks for a port of the remote that answers a SYN with
// <SEQ=0><ACK=x+1><CTL=RST,ACK>, as CLOSED does (RFC 9293 §3.10.7.1),
// trying the walked port (closed-port alone may be given a closed one),
// its successor and then closedCandidates, one SYN each (Timing.Reply
// apart, so under three seconds). A port that answers
// SYN,ACK is open: its half-open connection is reset (<SEQ=x+1><CTL=RST>,
// §3.10.7.4) and the next port tried. Silence (a filter) is passed over
// too. It returns 0 and what each port did when none answered RST.
func FindClosedPort(ctx context.Context, cfg Config) (uint16, string) {
	tm := cfg.Timing
	if tm == (Timing{}) {
		tm = DefaultTiming
	}
	ports := append([]uint16{cfg.Port, cfg.Port + 1}, closedCandidates...)
	var seen []string
	for _, port := range ports {
		if port == 0 {
			continue
		}
		what, err := trySYN(ctx, cfg.Prober, port, tm.Reply)
		if err != nil {
			return 0, err.Error()
		}
		if what == "RST,ACK" {
			return port, ""
		}
		seen = append(seen, fmt.Sprintf("%d: %s", port, what))
	}
	return 0, fmt.Sprintf("no port answered a SYN with a reset (%v)", seen)
}

// trySYN sends one SYN to port and says what answered: "RST,ACK",
// "SYN,ACK" (reset at once), "nothing" or another answer. It is a
// connection of the engine's, so that an open port's half-open connection
// is tidied as every other one is.
func trySYN(ctx context.Context, p *probe.Prober, port uint16, wait time.Duration) (string, error) {
	f, err := p.NewFlow(port, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	c := tcpconn.New(f, nil)
	defer c.Tidy()
	if err := c.SendSYNWith(c.ISS, []craft.Option{craft.MSS(tcpconn.DefaultMSSFor(f.Remote.Addr()))}, "find a closed port"); err != nil {
		return "", err
	}
	c.SndNxt = c.ISS + 1
	deadline := time.Now().Add(wait)
	for {
		r, err := c.Next(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) {
			return "nothing", nil
		}
		if err != nil {
			return "", err
		}
		if r.Seg.ICMP != "" {
			return "an ICMP error", nil
		}
		if r.Seg.Ack != c.ISS+1 {
			continue
		}
		switch r.Flags &^ craft.FlagPSH {
		case craft.FlagRST | craft.FlagACK:
			return "RST,ACK", nil
		case craft.FlagSYN | craft.FlagACK:
			return "SYN,ACK (open; reset)", nil // Tidy resets it
		}
		return r.Flags.String(), nil
	}
}
