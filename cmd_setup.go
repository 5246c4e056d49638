//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// walkFlags are the flags every command built on walks shares.
func walkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "close-trigger", Usage: "how to make the remote app act: http, lab, wait, none, string:TEXT, hex:BYTES (default: lab against the lab, else none)"},
		&cli.StringFlag{Name: "dial-trigger", Usage: "how to make the remote host connect to us (syn-sent): lab, wait:PORT[:WAIT], connect-back:PORT:TEXT (default: lab against the lab, else the walk is skipped)"},
		&cli.StringFlag{Name: "oracle-netns", Usage: "read the target's real socket states in this namespace (default: the lab's target, against the lab)"},
		&cli.DurationFlag{Name: "reply-timeout", Value: walk.DefaultTiming.Reply, Usage: "wait for a reply before retransmitting ours"},
		&cli.IntFlag{Name: "tries", Value: walk.DefaultTiming.Tries, Usage: "times a segment that expects a reply is sent (1-10)"},
	}
}

// walkSetup is what walk and conform share once the target is known: the
// namespace to probe from, and a walk.Config whose trigger, oracle and
// timing come from the flags, with the lab's trigger and oracle by default
// against the lab's target. Close releases what it opened.
type walkSetup struct {
	ns      *netns.NS
	cfg     walk.Config
	closers []func()
}

func newWalkSetup(c *cli.Context, target netip.Addr) (_ *walkSetup, err error) {
	s := &walkSetup{cfg: walk.Config{Timing: walk.DefaultTiming}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.cfg.Timing.Reply, s.cfg.Timing.Tries = c.Duration("reply-timeout"), c.Int("tries")
	if t := s.cfg.Timing.Reply; t <= 0 || t > time.Minute {
		return nil, usageErr("--reply-timeout %v: want a duration from 1ms to 1m", t)
	}
	if n := s.cfg.Timing.Tries; n < 1 || n > 10 {
		return nil, usageErr("--tries %d: want 1 to 10", n)
	}
	if s.ns, err = openNetNS(c, target); err != nil {
		return nil, err
	}
	if s.ns != nil {
		s.closers = append(s.closers, func() { s.ns.Close() })
	}
	var labTarget *walk.LabTarget
	l, isLab := labTargetFor(c, target)
	if isLab {
		s.closers = append(s.closers, func() { l.Release() })
		labNS := s.ns
		if labNS == nil {
			labNS = l.Prober
		}
		labTarget = &walk.LabTarget{Addr: l.TargetAddr, NS: labNS}
	}
	trigName := c.String("close-trigger")
	if trigName == "" && isLab {
		trigName = "lab"
	}
	if s.cfg.Trigger, err = walk.ParseTrigger(trigName, labTarget); err != nil {
		return nil, usageErr("%v", err)
	}
	if d := c.String("dial-trigger"); d != "" {
		dialNS := s.ns
		if labTarget != nil {
			dialNS = labTarget.NS
		}
		if s.cfg.Dial, err = walk.ParseDialTrigger(d, labTarget, target, dialNS); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	var closeOracle func()
	if s.cfg.Oracle, closeOracle, err = chooseOracle(c, l, isLab); err != nil {
		return nil, err
	}
	if closeOracle != nil {
		s.closers = append(s.closers, closeOracle)
	}
	return s, nil
}

// chooseOracle picks what reads the target's own connection states: sock_diag
// in --oracle-netns, else in the lab's target namespace when the lab's
// stack is the kernel. A gvisor lab's netstack keeps its sockets in user
// space, where sock_diag cannot see them: reading the empty kernel would
// report every connection CLOSED, so such a lab gets no oracle (said on
// stderr), and --oracle-netns naming its target is refused. The returned
// func, when not nil, closes what was opened.
func chooseOracle(c *cli.Context, l *lab.Lab, isLab bool) (walk.Oracle, func(), error) {
	name := c.String("oracle-netns")
	gvisor := isLab && !l.Stack.HasOracle()
	switch {
	case name != "" && gvisor && name == l.Target.Name:
		return nil, nil, usageErr("--oracle-netns %s: the lab's target runs gVisor's netstack, whose sockets sock_diag cannot see (leave --oracle-netns out)", name)
	case name != "":
		ons, err := netns.Open(name)
		if err != nil {
			return nil, nil, &exitError{code: exitEnv, err: fmt.Errorf("--oracle-netns %s: %w", name, err)}
		}
		return walk.SockDiag{NS: ons}, func() { ons.Close() }, nil
	case gvisor:
		fmt.Fprintf(c.App.ErrWriter, "tcpwalk: the lab's target %s runs gVisor's netstack: no kernel-state oracle (sock_diag cannot see its sockets)\n", l.TargetAddr)
		return nil, nil, nil
	case isLab:
		return walk.SockDiag{NS: l.Target}, nil, nil
	}
	return nil, nil, nil
}

func (s *walkSetup) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// withProber completes a setup's walk.Config for one prober and port.
func withProber(cfg walk.Config, p *probe.Prober, port uint16) walk.Config {
	cfg.Prober, cfg.Port = p, port
	return cfg
}
