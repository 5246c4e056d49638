//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/privs"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

func labCommand() *cli.Command {
	prefix := &cli.StringFlag{Name: "prefix", Value: lab.DefaultPrefix, Usage: "lab name: namespaces are PREFIX-prober and PREFIX-target"}
	return &cli.Command{
		Name:  "lab",
		Usage: "make, inspect or remove the built-in lab (two network namespaces with real Linux, or gVisor, servers)",
		Description: `The lab is two network namespaces joined by a veth pair, dual-stack, with
addresses from 198.18.0.0/15 (RFC 2544's benchmarking range) and 2001:2::/48
(RFC 5180's) and no default route for either family, so nothing in it reaches
any other network (the routed lab of --firewall is dual-stack too: the
target is 198.18.2.2 and 2001:2:0:2::2, behind a router that forwards both):

   tcpwalk-prober 198.18.0.1  <-- veth -->  tcpwalk-target 198.18.0.2
                  2001:2::1                                2001:2::2

Servers run in the target namespace with fixed behaviours, on real kernel
sockets on both addresses, or with --stack gvisor on gVisor's netstack (a
second, independent TCP implementation in user space, behind a TUN device,
owning both target addresses; its sockets are invisible to sock_diag, so
walks against it read no kernel states):
   7001 hold        accept, read and discard, never close
   7002 close       read one request, answer "HTTP/1.0 200 OK", close (the remote closes first)
   7003 control     line commands: close, shutdown, rst, echo TEXT, close-after-fin [MS]
   7004 echo        echo, close at EOF
   7005 half-close  write "hello", shutdown(SHUT_WR), read until EOF, close
   7009 closed      nothing listens
   7010 dialer      "dial PORT": the target connects to the prober's PORT (SYN_SENT)
   80   http        as 7002 (an HTTP/1.0 server); 8080 http-alt: as 7001

tcpwalk commands whose target is in 198.18.0.0/15 or 2001:2::/48 and unreachable from where
they run use the lab's prober namespace by themselves; --netns tcpwalk-prober
says so explicitly.

--loss PCT and --dup PCT make the path lossy and noisy for TCP, with the
kernel's nftables (no netem): each segment is dropped, or duplicated, with
that probability in each direction (netdev tables tcpwalk_impair_PREFIX in
both namespaces; they go with the lab). Walks must then end with the clean
path's verdicts or inconclusive, never a wrong one.

Examples:
   tcpwalk lab up
   tcpwalk lab up --stack gvisor
   tcpwalk lab up --loss 10% --dup 5%
   tcpwalk lab status
   tcpwalk walk all 198.18.0.2:7001
   tcpwalk lab down`,
		// An unknown word after lab is bad usage (2), not urfave/cli's
		// "No help topic" with status 3; bare `tcpwalk lab` shows the help.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErr("lab: unknown command %q: want up, status or down", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{Name: "up", Usage: "make the lab and start its servers", Flags: []cli.Flag{prefix, &cli.StringFlag{Name: "firewall",
				Usage: "put a router with an nftables ruleset between prober (198.18.0.1, 2001:2::1) and target (198.18.2.2, 2001:2:0:2::2): none, stateless, stateful, reject, clamp, synproxy, loose (each the same for IPv4 and IPv6) or v6-open (stateful for IPv4, IPv6 unfiltered)"},
				&cli.StringFlag{Name: "loss", Usage: "drop `PCT` percent of TCP segments each way (nftables numgen), e.g. 10%"},
				&cli.StringFlag{Name: "dup", Usage: "duplicate `PCT` percent of TCP segments each way (nftables dup), e.g. 5%"},
				stackFlag()}, Action: labUp},
			{Name: "status", Usage: "show the lab, its servers and the target's TCP sockets", Flags: []cli.Flag{prefix}, Action: labStatus},
			{Name: "down", Usage: "remove the lab (also one left by a crash or a killed demo)", Flags: []cli.Flag{prefix}, Action: labDown},
			{Name: "serve", Hidden: true, Usage: "run the lab's servers (started by lab up)", Flags: []cli.Flag{prefix}, Action: labServe},
		},
	}
}

func labUp(c *cli.Context) error {
	prefix, err := labCommandArgs(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	// Every option is checked first, also when the lab is up already.
	stack, err := parseStack(c)
	if err != nil {
		return err
	}
	loss, err := parsePercent(c, "loss")
	if err != nil {
		return err
	}
	dup, err := parsePercent(c, "dup")
	if err != nil {
		return err
	}
	var fw lab.Firewall
	if c.IsSet("firewall") {
		if fw, err = lab.ParseFirewall(c.String("firewall")); err != nil {
			return usageErr("lab up --firewall: %v", err)
		}
		if stack != lab.StackLinux {
			return usageErr("lab up: --firewall works with --stack linux only")
		}
	}
	if l, err := lab.Open(prefix); err == nil {
		defer l.Release()
		if c.IsSet("stack") && l.Stack != stack {
			return usageErr("lab %s is already up with stack %s, not %s: run `tcpwalk lab down%s` first", prefix, l.Stack, stack, prefixFlag(prefix))
		}
		return labReconfigure(c, l, loss, dup)
	}
	var l *lab.Lab
	if c.IsSet("firewall") {
		var r *lab.Routed
		if r, err = lab.CreateRouted(&lab.RoutedConfig{Prefix: prefix, Firewall: fw}); err == nil {
			l = r.Lab
			for _, rt := range r.Routers {
				rt.NS.Close()
			}
		}
	} else {
		l, err = lab.Create(&lab.Config{Prefix: prefix, Stack: stack})
	}
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN; leftovers: tcpwalk lab down%s)", err, prefixFlag(prefix))}
	}
	ok := false
	defer func() {
		if !ok {
			lab.StopServerProcess(prefix)
			l.Close()
		}
	}()
	if err := l.Impair(loss, dup); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w", err)}
	}
	ready, err := lab.StartServerProcess(prefix, "lab", "serve", "--prefix", prefix)
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: start servers: %w", err)}
	}
	if err := lab.WaitReady(ready, 5*time.Second); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: servers did not start: %w (see %s)", err, lab.LogFile(prefix))}
	}
	if l.Stack.HasOracle() {
		if err := lab.WaitListening(l.Target, lab.PortHold, 5*time.Second); err != nil {
			return &exitError{code: exitEnv, err: fmt.Errorf("lab up: servers did not start: %w (see %s)", err, lab.LogFile(prefix))}
		}
	}
	if c.Context.Err() != nil {
		// SIGINT or SIGTERM while the lab was being made: no half-made
		// lab, and no lab the user asked to stop. The deferred Close
		// removes it; run() exits with 130 or 143.
		return &exitError{code: exitInterrupt, err: fmt.Errorf("lab up: interrupted: lab %s removed again", prefix)}
	}
	ok = true
	pid, _ := lab.ServerPID(prefix)
	l.Release()
	fmt.Fprintf(w, "lab %s is up: %s (%s) <-> %s (%s), servers pid %d, stack %s\n", prefix,
		l.Prober.Name, labAddrs(l.ProberAddr, l.ProberAddr6), l.Target.Name, labAddrs(l.TargetAddr, l.TargetAddr6), pid, l.Stack.Description())
	// Without --netns, only the default lab's namespace is found by itself.
	via := ""
	if prefix != lab.DefaultPrefix {
		via = "--netns " + l.Prober.Name + " "
	}
	if c.IsSet("firewall") {
		fmt.Fprintf(w, "router %s (%s | %s) forwards between them, firewall %s (see: tcpwalk lab status%s)\n",
			lab.RouterNames(prefix)[0], labAddrs(lab.RouterProberSide.Addr(), lab.RouterProberSide6.Addr()),
			labAddrs(lab.RouterTargetSide.Addr(), lab.RouterTargetSide6.Addr()), c.String("firewall"), prefixFlag(prefix))
		fmt.Fprintf(w, "try:  tcpwalk %sfirewall %s:%d\n", via, l.TargetAddr, lab.PortHold)
		if l.TargetAddr6.IsValid() {
			fmt.Fprintf(w, "      tcpwalk %sfirewall %s:%d %s\n", via, l.TargetAddr, lab.PortHold, netip.AddrPortFrom(l.TargetAddr6, lab.PortHold))
		}
	}
	if loss > 0 || dup > 0 {
		fmt.Fprintf(w, "path: %d%% loss, %d%% duplication of TCP segments each way (nftables table %s)\n", loss, dup, lab.ImpairTable(prefix))
	}
	fmt.Fprintf(w, "try:  tcpwalk %swalk all %s:%d\n      tcpwalk %ssend --flags S %s:%d\n", via, l.TargetAddr, lab.PortHold, via, l.TargetAddr, lab.PortHold)
	if l.TargetAddr6.IsValid() {
		fmt.Fprintf(w, "      tcpwalk %swalk all %s\n", via, netip.AddrPortFrom(l.TargetAddr6, lab.PortHold))
		fmt.Fprintf(w, "      tcpwalk %ssend --flags S %s\n", via, netip.AddrPortFrom(l.TargetAddr6, lab.PortHold))
	}
	fmt.Fprintf(w, "      tcpwalk lab down%s\n", prefixFlag(prefix))
	return nil
}

// prefixFlag is " --prefix P" for a lab other than the default, else "".
func prefixFlag(prefix string) string {
	if prefix == lab.DefaultPrefix {
		return ""
	}
	return " --prefix " + prefix
}

// labReconfigure is `lab up` on a lab that is up: --loss and --dup change
// its path in place; --firewall would need another topology, so it is
// refused (exit 2) rather than ignored.
func labReconfigure(c *cli.Context, l *lab.Lab, loss, dup int) error {
	prefix, w := l.Prefix, c.App.Writer
	pid, alive := lab.ServerPID(prefix)
	if !alive {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab %s exists but its servers are not running: run `tcpwalk lab down%s` first", prefix, prefixFlag(prefix))}
	}
	if c.IsSet("firewall") {
		return usageErr("lab up --firewall: lab %s is up already, and a firewall needs a lab with a router: run `tcpwalk lab down%s` first", prefix, prefixFlag(prefix))
	}
	if !c.IsSet("loss") && !c.IsSet("dup") {
		fmt.Fprintf(w, "lab %s is already up (servers: pid %d)\n", prefix, pid)
		return nil
	}
	if !c.IsSet("loss") || !c.IsSet("dup") {
		// The option not given keeps its current value.
		curLoss, curDup, err := l.Impairment()
		if err != nil {
			return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w", err)}
		}
		if !c.IsSet("loss") {
			loss = curLoss
		}
		if !c.IsSet("dup") {
			dup = curDup
		}
	}
	if err := l.Impair(loss, dup); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w", err)}
	}
	fmt.Fprintf(w, "lab %s is already up (servers: pid %d); its path now: %d%% loss, %d%% duplication of TCP segments each way\n", prefix, pid, loss, dup)
	return nil
}

// labAddrs is "198.18.0.1" or, on a dual-stack lab, "198.18.0.1, 2001:2::1".
func labAddrs(a4, a6 netip.Addr) string {
	if !a6.IsValid() {
		return a4.String()
	}
	return a4.String() + ", " + a6.String()
}

// parsePercent reads --NAME as a whole percentage, "10" or "10%".
func parsePercent(c *cli.Context, name string) (int, error) {
	v := strings.TrimSpace(c.String(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
	if err != nil || n < 0 || n > 100 {
		return 0, usageErr("lab up --%s %q: want a whole percentage from 0 to 100, e.g. 10%%", name, v)
	}
	return n, nil
}

// labServe runs the servers until SIGTERM or SIGINT.
func labServe(c *cli.Context) error {
	prefix := c.String("prefix")
	l, err := lab.Open(prefix)
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	defer l.Release()
	s, err := l.StartServers()
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	defer s.Close()
	fmt.Fprintf(c.App.Writer, "%s lab %s: servers up on %s (%s)\n", time.Now().Format(time.RFC3339), prefix, l.TargetAddr, l.Stack.Description())
	lab.SignalReady()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-c.Context.Done():
	}
	fmt.Fprintf(c.App.Writer, "%s lab %s: servers stopping\n", time.Now().Format(time.RFC3339), prefix)
	return nil
}

// labCommandArgs checks what every lab subcommand takes: no arguments, and a
// prefix that can name a lab (checked before anything needs root).
func labCommandArgs(c *cli.Context) (string, error) {
	if c.Args().Present() {
		return "", usageErr("lab %s: unexpected argument %q: the lab is named with --prefix", c.Command.Name, c.Args().First())
	}
	prefix := c.String("prefix")
	if err := lab.CheckPrefix(prefix); err != nil {
		return "", usageErr("lab %s --prefix: %v", c.Command.Name, err)
	}
	return prefix, nil
}

func labStatus(c *cli.Context) error {
	prefix, err := labCommandArgs(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	l, err := lab.Open(prefix)
	if err != nil && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) || !privs.CanEnterNS()) && len(lab.Leftovers(prefix)) > 0 {
		// Not "down": a lab that cannot be read is not known to be down.
		return &exitError{code: exitEnv, err: fmt.Errorf("lab status: reading lab %s needs root (CAP_SYS_ADMIN to enter its namespaces): %w", prefix, err)}
	}
	if err != nil {
		fmt.Fprintf(w, "lab %s: down\n", prefix)
		if left := lab.Leftovers(prefix); len(left) > 0 {
			fmt.Fprintf(w, "left behind: %s (remove with: tcpwalk lab down --prefix %s)\n", strings.Join(left, " "), prefix)
		}
		return &exitError{code: exitEnv}
	}
	defer l.Release()
	pid, alive := lab.ServerPID(prefix)
	fmt.Fprintf(w, "lab %s: up\n  prober  %-20s %s on %s\n", prefix, l.Prober.Name, labAddrs(l.ProberAddr, l.ProberAddr6), l.ProberIf)
	if l.Stack == lab.StackGVisor {
		fmt.Fprintf(w, "  target  %-20s %s on %s (netstack), forwarded from %s\n", l.Target.Name, labAddrs(l.TargetAddr, l.TargetAddr6), l.TUNIf, l.TargetIf)
	} else {
		fmt.Fprintf(w, "  target  %-20s %s on %s\n", l.Target.Name, labAddrs(l.TargetAddr, l.TargetAddr6), l.TargetIf)
	}
	fmt.Fprintf(w, "  stack   %s: %s\n", l.Stack, l.Stack.Description())
	if loss, dup, err := l.Impairment(); err == nil && (loss > 0 || dup > 0) {
		fmt.Fprintf(w, "  path    %d%% loss, %d%% duplication of TCP segments each way (nftables %s)\n", loss, dup, lab.ImpairTable(prefix))
	}
	if alive {
		fmt.Fprintf(w, "  servers pid %d (log %s)\n", pid, lab.LogFile(prefix))
	} else {
		fmt.Fprintf(w, "  servers NOT running (run `tcpwalk lab down` then `tcpwalk lab up`)\n")
	}
	writeRouters(w, prefix)
	if !l.Stack.HasOracle() {
		fmt.Fprintf(w, "  target TCP sockets: not visible (netstack's sockets live in the server process; sock_diag sees only the kernel's)\n")
		return nil
	}
	writeSockets(w, l.Target)
	return nil
}

// writeRouters prints the routers of a routed lab and the ruleset each
// has, as read back from the kernel.
func writeRouters(w io.Writer, prefix string) {
	routers, err := lab.OpenRouters(prefix)
	if err != nil {
		fmt.Fprintf(w, "  routers: %v\n", err)
		return
	}
	for _, rt := range routers {
		fmt.Fprintf(w, "  router  %-20s %s | %s, firewall %s\n", rt.NS.Name, labAddrs(rt.ProberSide, rt.ProberSide6), labAddrs(rt.TargetSide, rt.TargetSide6), rt.Firewall)
		if _, rules, err := lab.ReadFirewall(rt.NS); err != nil {
			fmt.Fprintf(w, "    %v\n", err)
		} else {
			fmt.Fprintf(w, "    table %s %s, %s\n", rt.Firewall.Family(), lab.FirewallTable, rt.Firewall.Rules()[0])
			for _, r := range rules {
				fmt.Fprintf(w, "      %s\n", r)
			}
		}
		rt.NS.Close()
	}
}

func writeSockets(w io.Writer, ns *netns.NS) {
	socks, err := sockdiag.Dump(ns)
	if err != nil {
		fmt.Fprintf(w, "  target sockets: %v\n", err)
		return
	}
	fmt.Fprintf(w, "  target TCP sockets (sock_diag):\n")
	for _, s := range socks {
		remote := "*"
		if s.Remote.Addr().IsValid() && !s.Remote.Addr().IsUnspecified() {
			remote = s.Remote.String()
		}
		fmt.Fprintf(w, "    %-12s %-22s %s\n", s.State, s.Local, remote)
	}
}

func labDown(c *cli.Context) error {
	prefix, err := labCommandArgs(c)
	if err != nil {
		return err
	}
	lab.StopServerProcess(prefix)
	os.Remove(lab.LogFile(prefix))
	var errs []error
	if err := lab.Destroy(prefix); err != nil {
		errs = append(errs, err)
	}
	// Labs of demos that were killed before they could clean up.
	n, err := lab.DestroyOrphanDemos()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab down: %w", err)}
	}
	fmt.Fprintf(c.App.Writer, "lab %s is down", prefix)
	if n > 0 {
		fmt.Fprintf(c.App.Writer, " (and %d lab(s) of killed demos)", n)
	}
	fmt.Fprintln(c.App.Writer)
	return nil
}
