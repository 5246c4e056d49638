//go:build linux

package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

func firewallCommand() *cli.Command {
	return &cli.Command{
		Name:      "firewall",
		Usage:     "test what the path passes, drops, rejects or rewrites: crafted segments × connection states",
		ArgsUsage: "HOST:PORT",
		Description: `For each connection state (none, handshaking, established, closing,
time-wait) sends the segments a firewall must judge: an unsolicited SYN-ACK,
an ACK with no connection, FIN/NULL/Xmas scans, out-of-window data and ACKs,
in-window and exact RSTs, data after a RST, a SYN to a TIME_WAIT 4-tuple and a
SYN with options a middlebox may rewrite. Each probe runs on its own
connection and is reported as delivered, rewritten (which fields), proxied (a
SYN proxy completed the handshake in the target's name), dropped, rejected
(ICMP from which router, or a RST the target did not send: its TTL shows how
many hops short of the target it came from) or answered by a middlebox. The
target's own TTL is learned from a connection that reached it (the ACK of a
byte of data); a middlebox that answers the handshake is named with its hop
and the evidence. The target's retransmissions are never taken for answers.
Rows that follow from a known ruleset mistake (loose conntrack pickup, no
ct state invalid drop, a stateless port accept) name the fix in nftables and
iptables syntax.

A capture in the target's namespace (--oracle-netns; default: the lab's
target, against the lab) decides whether each probe arrived and what the
target answered. Without one, the answers decide: silence after a probe
the target may ignore stays no-answer, and silence on a path that lost
segments is undecided.

--expect open|stateless|stateful judges every probe against a policy:
stateful means only a SYN opens a connection and segments outside a tracked
connection's window are refused. --trace also finds the router that rewrites
what it forwards, from TTL-limited SYNs quoted back in ICMP time exceeded
(with the capture, also the last router, whose changes no router quotes).

PORT must listen, be allowed by the path and keep connections open (the lab's
7001). --blocked-port and --close-port (a port whose app answers
--close-request and closes first) enable the rows that need them; against the
lab they default to 7099 and 7002.

Examples:
   sudo tcpwalk lab up --firewall stateful
   tcpwalk firewall 198.18.2.2:7001
   tcpwalk firewall --expect stateful --oracle-netns tcpwalk-target 198.18.2.2:7001
   tcpwalk firewall --trace --json --junit firewall.xml 198.18.2.2:7001

Exit status: 0 done (with --expect: every probe met the policy), 1 a probe
broke the policy or was undecided, 2 bad usage, 3 environment error or the
target unreachable.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "expect", Usage: "judge against a policy: open, stateless or stateful"},
			&cli.StringFlag{Name: "oracle-netns", Usage: "capture in this namespace (the target's) to see what arrived (default: the lab's target, against the lab)"},
			&cli.UintFlag{Name: "blocked-port", Usage: "a port the policy refuses, for the blocked-port row (default: 7099 against the lab)"},
			&cli.UintFlag{Name: "close-port", Usage: "a port whose app closes first after --close-request, for the TIME_WAIT row (default: 7002 against the lab)"},
			&cli.StringFlag{Name: "close-request", Value: "GET / HTTP/1.0\r\n\r\n", Usage: "what makes the --close-port app answer and close"},
			&cli.BoolFlag{Name: "trace", Usage: "also find the hop that rewrites SYNs (ICMP-quote method)"},
			&cli.IntFlag{Name: "max-hops", Value: 16, Usage: "TTL limit of --trace (1-64)"},
			&cli.DurationFlag{Name: "reply-timeout", Value: firewall.DefaultTiming.Reply, Usage: "wait for a reply before sending again"},
			&cli.DurationFlag{Name: "quiet", Value: firewall.DefaultTiming.Quiet, Usage: "listen this long after each probe"},
			&cli.BoolFlag{Name: "json", Usage: "the matrix (and trace) as one JSON object instead of the table"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard"},
			junitFlag(), htmlFlag(),
		},
		Action: runFirewall,
	}
}

func runFirewall(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr("firewall: want HOST:PORT, e.g. tcpwalk firewall 198.18.2.2:7001")
	}
	target, err := probe.ParseTarget(c.Args().Get(0))
	if err != nil {
		return err
	}
	var policy firewall.Policy
	if s := c.String("expect"); s != "" {
		if policy, err = firewall.ParsePolicy(s); err != nil {
			return usageErr("--expect: %v", err)
		}
	}
	tm := firewall.DefaultTiming
	tm.Reply, tm.Quiet = c.Duration("reply-timeout"), c.Duration("quiet")
	if tm.Reply <= 0 || tm.Quiet <= 0 {
		return usageErr("--reply-timeout and --quiet must be positive")
	}
	if h := c.Int("max-hops"); h < 1 || h > 64 {
		return usageErr("--max-hops %d: want 1 to 64", h)
	}
	blocked, closePort := c.Uint("blocked-port"), c.Uint("close-port")
	if blocked > 65535 || closePort > 65535 {
		return usageErr("--blocked-port and --close-port take a port (1-65535)")
	}
	ns, err := openNetNS(c, target.Addr())
	if err != nil {
		return err
	}
	if ns != nil {
		defer ns.Close()
	}
	cfg := firewall.Config{Port: target.Port(), BlockedPort: uint16(blocked), ClosePort: uint16(closePort),
		CloseRequest: []byte(c.String("close-request")), Timing: tm}
	l, isLab := labTargetFor(c, target.Addr())
	if isLab {
		defer l.Release()
		cfg.Capture = l.Target
		if !c.IsSet("blocked-port") {
			cfg.BlockedPort = lab.PortBlocked
		}
		if !c.IsSet("close-port") {
			cfg.ClosePort = lab.PortClose
		}
	}
	if name := c.String("oracle-netns"); name != "" {
		ons, err := netns.Open(name)
		if err != nil {
			return &exitError{code: exitEnv, err: fmt.Errorf("--oracle-netns %s: %w", name, err)}
		}
		defer ons.Close()
		cfg.Capture = ons
	}
	p, err := probe.Open(probe.Config{Remote: target.Addr(), NetNS: ns, NoGuard: c.Bool("no-rst-guard"),
		Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }})
	if err != nil {
		return err
	}
	defer p.Close()
	cfg.Prober = p
	m, err := firewall.Run(c.Context, cfg)
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	var tr *firewall.Trace
	if c.Bool("trace") && !m.Interrupted {
		if tr, err = firewall.RunTraceCapture(c.Context, p, target.Port(), c.Int("max-hops"), tm, cfg.Capture); err != nil {
			return &exitError{code: exitEnv, err: err}
		}
		m.AddTrace(tr)
	}
	if policy != "" {
		m.Judge(policy)
	}
	return writeFirewall(c, m, tr)
}

// writeFirewall prints the matrix (table or JSON) and the trace, writes
// --junit and maps the verdict to the exit status.
func writeFirewall(c *cli.Context, m *firewall.Matrix, tr *firewall.Trace) error {
	w := c.App.Writer
	var err error
	if c.Bool("json") {
		err = report.WriteFirewallJSON(w, m, tr)
	} else {
		err = report.WriteFirewall(w, m)
		if err == nil && tr != nil {
			fmt.Fprintln(w)
			err = report.WriteTrace(w, tr)
		}
	}
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	if path := c.String("junit"); path != "" {
		suite := "tcpwalk firewall " + m.Target.String()
		if err := writeReportFile("--junit", path, func(w io.Writer) error { return report.WriteJUnit(w, suite, m.Results()) }); err != nil {
			return &exitError{code: exitEnv, err: err}
		}
	}
	if err := writeHTMLFile(c, report.HTMLReport{Results: m.Results(), Firewall: m}); err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	if m.Policy != "" && m.Verdict != walk.Pass && m.Verdict != walk.Skipped {
		return &exitError{code: exitNoReply}
	}
	return nil
}
