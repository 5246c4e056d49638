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
// "SYN,ACK" (reset at once), "nothing" or another answer.
func trySYN(ctx context.Context, p *probe.Prober, port uint16, wait time.Duration) (string, error) {
	f, err := p.NewFlow(port, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	x := probe.RandomUint32()
	if _, err := f.Send(&craft.Segment{Seq: x, Flags: craft.FlagSYN, Window: tcpconn.DefaultWindow, Options: []craft.Option{craft.MSS(1460)}}); err != nil {
		return "", err
	}
	deadline := time.Now().Add(wait)
	for {
		ev, err := f.Next(ctx, deadline)
		if errors.Is(err, probe.ErrTimeout) {
			return "nothing", nil
		}
		if err != nil {
			return "", err
		}
		if ev.Kind != probe.EventSegment {
			f.Release(ev)
			return "an ICMP error", nil
		}
		flags, ack := ev.Seg.TCP.Flags(), ev.Seg.TCP.AckNumber()
		f.Release(ev)
		if ack != x+1 {
			continue
		}
		switch flags &^ craft.FlagPSH {
		case craft.FlagRST | craft.FlagACK:
			return "RST,ACK", nil
		case craft.FlagSYN | craft.FlagACK:
			// Open: leave nothing half-open behind.
			_, err := f.Send(&craft.Segment{Seq: x + 1, Flags: craft.FlagRST})
			return "SYN,ACK (open; reset)", err
		}
		return flags.String(), nil
	}
}
