//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"

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
		ArgsUsage: "HOST:PORT | HOST4:PORT HOST6:PORT",
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

Both families: with an IPv4 and an IPv6 target (HOST4:PORT HOST6:PORT, in
either order, [brackets] around the IPv6 address), or one name that resolves
to both (without -4 or -6), the matrix runs on IPv4, then on IPv6, and the
report opens with every row whose outcome differs between them: the finding
(a dual-stack host whose IPv6 side the IPv4 rules do not cover; RFC 7123 §3).
Rows not run or undecided on either side are listed as not compared.
--expect judges each family on its own; --trace takes one family. The lab's
v6-open ruleset (stateful for IPv4, IPv6 unfiltered) shows such a hole.

PORT must listen, be allowed by the path and keep connections open (the lab's
7001). --blocked-port and --close-port (a port whose app answers
--close-request and closes first) enable the rows that need them; against the
lab they default to 7099 and 7002.

Examples:
   sudo tcpwalk lab up --firewall stateful
   tcpwalk firewall 198.18.2.2:7001
   tcpwalk firewall --expect stateful --oracle-netns tcpwalk-target 198.18.2.2:7001
   tcpwalk firewall --trace --json --junit firewall.xml 198.18.2.2:7001
   sudo tcpwalk lab up --firewall v6-open
   tcpwalk firewall --expect stateful 198.18.2.2:7001 [2001:2:0:2::2]:7001

Exit status: 0 done (with --expect: every probe met the policy; with two
families: no row differs), 1 a probe broke the policy or was undecided, or a
row differs between IPv4 and IPv6, 2 bad usage, 3 environment error or the
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
			&cli.BoolFlag{Name: "json", Usage: "the matrix (and trace) as one JSON object instead of the table; with two families also matrix6 (IPv6) and parity"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard"},
			junitFlag(), htmlFlag(),
		},
		Action: runFirewall,
	}
}

func runFirewall(c *cli.Context) error {
	if c.NArg() < 1 || c.NArg() > 2 {
		return usageErr("firewall: want HOST:PORT, or HOST4:PORT HOST6:PORT for both families, e.g. tcpwalk firewall 198.18.2.2:7001")
	}
	targets, err := firewallTargets(c)
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
	if len(targets) == 2 && c.Bool("trace") {
		return usageErr("firewall: --trace runs on one family: give one target (or -4 / -6 with a name)")
	}
	var cfgs []firewall.Config
	for _, target := range targets {
		cfg, done, err := firewallConfig(c, target, tm, uint16(blocked), uint16(closePort))
		defer done()
		if err != nil {
			return err
		}
		cfgs = append(cfgs, cfg)
	}
	if len(cfgs) == 2 {
		par, err := firewall.RunParity(c.Context, cfgs[0], cfgs[1])
		if err != nil {
			return &exitError{code: exitEnv, err: err}
		}
		if policy != "" {
			par.Judge(policy)
		}
		return writeParity(c, par)
	}
	cfg, target := cfgs[0], targets[0]
	m, err := firewall.Run(c.Context, cfg)
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	var tr *firewall.Trace
	if c.Bool("trace") && !m.Interrupted {
		if tr, err = firewall.RunTraceCapture(c.Context, cfg.Prober, target.Port(), c.Int("max-hops"), tm, cfg.Capture); err != nil {
			return &exitError{code: exitEnv, err: err}
		}
		m.AddTrace(tr)
	}
	if policy != "" {
		m.Judge(policy)
	}
	return writeFirewall(c, m, tr)
}

// firewallTargets reads the target arguments: one HOST:PORT, or an IPv4
// and an IPv6 one (either order) for a parity run, IPv4 first. One name
// that resolves to both families, without -4 or -6, is a parity run too.
func firewallTargets(c *cli.Context) ([]netip.AddrPort, error) {
	if c.NArg() == 1 {
		if both := dualStackTarget(c, c.Args().First()); both != nil {
			return both, nil
		}
	}
	var out []netip.AddrPort
	for _, arg := range c.Args().Slice() {
		t, err := parseTarget(c, arg)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 2 {
		if out[0].Addr().Is6() {
			out[0], out[1] = out[1], out[0]
		}
		if !out[0].Addr().Is4() || !out[1].Addr().Is6() {
			return nil, usageErr("firewall: two targets must be one IPv4 and one IPv6 address of the same host, e.g. 198.18.2.2:7001 [2001:2:0:2::2]:7001")
		}
	}
	return out, nil
}

// nameResolver looks up target names for the two-family check; nil is the
// system's resolver (tests inject their own).
var nameResolver probe.Resolver

// dualStackTarget returns the IPv4 and the IPv6 target of NAME:PORT when
// NAME resolves to both families and neither -4 nor -6 is given; else nil
// (a literal, one family, or an error parseTarget then reports).
func dualStackTarget(c *cli.Context, arg string) []netip.AddrPort {
	fam, err := targetFamily(c)
	host, portStr, serr := net.SplitHostPort(arg)
	if err != nil || serr != nil || fam != probe.FamilyAny {
		return nil
	}
	if _, perr := netip.ParseAddr(host); perr == nil {
		return nil
	}
	port, err := probe.ParsePort(portStr)
	if err != nil {
		return nil
	}
	a4, err4 := probe.ResolveHost(host, probe.TargetOptions{Family: probe.Family4, Resolver: nameResolver})
	a6, err6 := probe.ResolveHost(host, probe.TargetOptions{Family: probe.Family6, Resolver: nameResolver})
	if err4 != nil || err6 != nil {
		return nil
	}
	return []netip.AddrPort{netip.AddrPortFrom(a4, port), netip.AddrPortFrom(a6, port)}
}

// firewallConfig opens what one family's matrix needs against target: the
// namespace to probe from, the lab's capture and ports when target is the
// lab's, --oracle-netns, and the prober. done releases them; call it also
// when err is not nil.
func firewallConfig(c *cli.Context, target netip.AddrPort, tm firewall.Timing, blocked, closePort uint16) (cfg firewall.Config, done func(), err error) {
	var closers []func()
	done = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	ns, err := openNetNS(c, target.Addr())
	if err != nil {
		return cfg, done, err
	}
	if ns != nil {
		closers = append(closers, func() { ns.Close() })
	}
	cfg = firewall.Config{Port: target.Port(), BlockedPort: blocked, ClosePort: closePort,
		CloseRequest: []byte(c.String("close-request")), Timing: tm}
	if l, isLab := labTargetFor(c, target.Addr()); isLab {
		closers = append(closers, func() { l.Release() })
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
			return cfg, done, &exitError{code: exitEnv, err: fmt.Errorf("--oracle-netns %s: %w", name, err)}
		}
		closers = append(closers, func() { ons.Close() })
		cfg.Capture = ons
	}
	p, err := probe.Open(probe.Config{Remote: target.Addr(), NetNS: ns, NoGuard: c.Bool("no-rst-guard"),
		Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }})
	if err != nil {
		return cfg, done, err
	}
	closers = append(closers, func() { p.Close() })
	cfg.Prober = p
	return cfg, done, nil
}

// writeParity prints a two-family run (text or JSON), writes --junit and
// --html, and maps the verdict to the exit status: a row that differs
// between the families is a failing finding, exit 1 as a probe that breaks
// --expect.
func writeParity(c *cli.Context, par *firewall.Parity) error {
	w := c.App.Writer
	var err error
	if c.Bool("json") {
		err = report.WriteParityJSON(w, par)
	} else {
		err = report.WriteParity(w, par)
	}
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	if path := c.String("junit"); path != "" {
		suite := "tcpwalk firewall " + par.V4.Target.String() + " " + par.V6.Target.String()
		if err := writeReportFile("--junit", path, func(w io.Writer) error { return report.WriteJUnit(w, suite, par.Results()) }); err != nil {
			return &exitError{code: exitEnv, err: err}
		}
	}
	if err := writeHTMLFile(c, report.HTMLReport{Results: par.Results()}); err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	if par.Verdict == walk.Fail || (par.Policy != "" && par.Verdict != walk.Pass && par.Verdict != walk.Skipped) {
		return &exitError{code: exitNoReply}
	}
	return nil
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
