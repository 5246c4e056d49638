//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe/lab"
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
			return usageErr("lab %s is already up with stack %s, not %s: run `%s` first", prefix, l.Stack, stack, lab.DownCommand(prefix))
		}
		return labReconfigure(c, l, loss, dup)
	}
	cfg := lab.UpConfig{Prefix: prefix, Stack: stack, Routed: c.IsSet("firewall"), Firewall: fw, Loss: loss, Dup: dup,
		ServeArgs: []string{"lab", "serve", "--prefix", prefix}}
	l, err := lab.Up(c.Context, cfg)
	if errors.Is(err, lab.ErrUpInterrupted) {
		// run() exits with 130 or 143.
		return &exitError{code: exitInterrupt, err: fmt.Errorf("lab up: %w", err)}
	}
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w", err)}
	}
	defer l.Release()
	l.WriteUp(c.App.Writer, cfg)
	return nil
}

// labReconfigure is `lab up` on a lab that is up: --loss and --dup change
// its path in place; --firewall would need another topology, so it is
// refused (exit 2) rather than ignored.
func labReconfigure(c *cli.Context, l *lab.Lab, loss, dup int) error {
	prefix, w := l.Prefix, c.App.Writer
	pid, alive := lab.ServerPID(prefix)
	if !alive {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab %s exists but its servers are not running: run `%s` first", prefix, lab.DownCommand(prefix))}
	}
	if c.IsSet("firewall") {
		return usageErr("lab up --firewall: lab %s is up already, and a firewall needs a lab with a router: run `%s` first", prefix, lab.DownCommand(prefix))
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
	err = lab.WriteStatus(c.App.Writer, prefix)
	if errors.Is(err, lab.ErrDown) {
		return &exitError{code: exitEnv}
	}
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab status: %w", err)}
	}
	return nil
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
