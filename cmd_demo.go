//go:build linux

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "build a throwaway lab, walk its target (Linux, or gVisor with --stack gvisor) through all 11 TCP states, draw every walk, remove the lab",
		Description: `Makes two network namespaces joined by veth (198.18.0.0/15, no default
route; also 2001:2::/48, walked with -6), starts real kernel servers in the target, runs every walk at once with
the kernel's own socket states read beside the wire's, prints a ladder diagram
per walk and a table of the 11 states, and removes everything, also on Ctrl-C.
A demo killed with SIGKILL leaves its lab behind: tcpwalk lab down removes it.
With --stack gvisor the servers run on gVisor's netstack (a second,
independent TCP in user space) instead; its states cannot be read with
sock_diag, so that demo shows the wire alone.

Example:
   tcpwalk demo
   tcpwalk demo --json
   tcpwalk demo -6
   tcpwalk demo --stack gvisor
   tcpwalk demo --junit demo.xml --pcap demo.pcapng
   tcpwalk demo --html demo.html`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per walk, then a summary line"},
			&cli.BoolFlag{Name: "no-color", Usage: "plain text even on a terminal (NO_COLOR is respected too)"},
			junitFlag(), pcapFlag(), htmlFlag(), stackFlag(),
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("demo: unexpected argument %q: demo takes none (it makes its own lab)", c.Args().First())
	}
	stack, err := parseStack(c)
	if err != nil {
		return err
	}
	fam, err := targetFamily(c)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%s%d", lab.DemoPrefix, os.Getpid())
	l, err := lab.Create(&lab.Config{Prefix: prefix, Stack: stack})
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("demo: make the lab: %w (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)", err)}
	}
	defer l.Close()
	if _, err := l.StartServers(); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("demo: start the lab's servers: %w", err)}
	}
	// IPv4 by default; -6 walks over the lab's IPv6 addresses.
	local, target := l.ProberAddr, l.TargetAddr
	if fam == probe.Family6 {
		local, target = l.ProberAddr6, l.TargetAddr6
		if !target.IsValid() {
			return usageErr("demo -6: the %s lab has no IPv6 address yet; leave -6 out", l.Stack.Description())
		}
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "lab: %s (%s) <-> %s (%s), servers on %s ports 7001-7010, stack %s\n\n",
			l.Prober.Name, local, l.Target.Name, target, target, l.Stack.Description())
	}
	cfg := walk.Config{
		Port:    lab.PortHold,
		Trigger: &walk.LabTarget{Addr: target, NS: l.Prober},
	}
	if l.Stack.HasOracle() {
		cfg.Oracle = walk.SockDiag{NS: l.Target}
	}
	results, err := runWalks(c.Context, c, probe.Config{Remote: target, NetNS: l.Prober}, cfg, walk.Scenarios())
	if err != nil {
		return err
	}
	return writeWalks(c, results, true)
}
