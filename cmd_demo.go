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
route), starts real kernel servers in the target, runs every walk at once with
the kernel's own socket states read beside the wire's, prints a ladder diagram
per walk and a table of the 11 states, and removes everything, also on Ctrl-C.
A demo killed with SIGKILL leaves its lab behind: tcpwalk lab down removes it.
With --stack gvisor the servers run on gVisor's netstack (a second,
independent TCP in user space) instead; its states cannot be read with
sock_diag, so that demo shows the wire alone.

Example:
   tcpwalk demo
   tcpwalk demo --json
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
	prefix := fmt.Sprintf("%s%d", demoPrefix, os.Getpid())
	l, err := lab.Create(&lab.Config{Prefix: prefix, Stack: stack})
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("demo: make the lab: %w (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)", err)}
	}
	defer l.Close()
	if _, err := l.StartServers(); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("demo: start the lab's servers: %w", err)}
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "lab: %s (%s) <-> %s (%s), servers on %s ports 7001-7010, stack %s\n\n",
			l.Prober.Name, l.ProberAddr, l.Target.Name, l.TargetAddr, l.TargetAddr, stackText(l.Stack))
	}
	cfg := walk.Config{
		Port:    lab.PortHold,
		Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober},
	}
	if l.Stack.HasOracle() {
		cfg.Oracle = walk.SockDiag{NS: l.Target}
	}
	results, err := runWalks(c.Context, c, probe.Config{Remote: l.TargetAddr, NetNS: l.Prober}, cfg, walk.Scenarios())
	if err != nil {
		return err
	}
	return writeWalks(c, results, true)
}
