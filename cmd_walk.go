//go:build linux

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

func walkCommand() *cli.Command {
	var list strings.Builder
	for _, s := range walk.Scenarios() {
		fmt.Fprintf(&list, "   %-19s %s\n", s.Name, s.Summary)
	}
	return &cli.Command{
		Name:      "walk",
		Usage:     "drive a remote TCP stack through its states and judge every reply against RFC 9293",
		ArgsUsage: "SCENARIO|all HOST:PORT | [IPV6]:PORT",
		Description: `Walks the remote through TCP states with crafted segments, checks each
transition from the wire, and draws each walk as a ladder diagram.

Scenarios:
` + list.String() + `   all                 every scenario at once, each on its own source port

Some states need the remote application to act (close first, close after our
FIN, connect to us). --close-trigger says how tcpwalk makes that happen:
   http        send an HTTP/1.0 request: the server answers and closes
   lab         the lab target's fixed behaviours (default against the lab)
   string:TEXT / hex:BYTES   send these bytes (\r \n \t escapes in TEXT)
   wait        wait for the server's own idle close (up to 30 s)
   none        cause nothing: walks that need an action are skipped
syn-sent needs the remote host to connect to us. --dial-trigger says how:
   lab                     the lab target's client (default against the lab)
   wait:PORT[:WAIT]        wait up to WAIT (60s) for it to connect to our PORT:
                           you make it connect (curl, nc, a device's own client)
   connect-back:PORT:TEXT  send TEXT to its PORT and wait for it to connect
                           back ({addr} {port} {ftp} are our address, port,
                           and FTP's PORT argument): an FTP server in active mode
With --oracle-netns NAME (and always against the lab) the target's own socket
states are read with sock_diag after each step: "wire says / kernel says".

Examples:
   tcpwalk walk handshake 198.18.0.2:7001
   tcpwalk walk passive-close --close-trigger http 198.18.0.2:7002
   tcpwalk walk all --oracle-netns tcpwalk-target 198.18.0.2:7001
   tcpwalk walk all --json 198.18.0.2:7001
   tcpwalk walk all --junit walks.xml --pcap walks.pcapng 198.18.0.2:7001
   tcpwalk walk syn-sent --dial-trigger wait:8000:30s 198.18.0.2:7001
   tcpwalk walk all --html walks.html 198.18.0.2:7001
   tcpwalk walk all [2001:2::2]:7001
   tcpwalk walk handshake -p 7001 2001:2::2

Exit status: 0 every walk passed (or was skipped), 1 a walk failed or was
inconclusive, 2 bad usage, 3 environment error.`,
		Flags: append(walkFlags(),
			&cli.UintFlag{Name: "closed-port", Usage: "a port with no listener, for closed-port (default: the lab's 7009; elsewhere the first of the walked port, its successor, 1, 4, 6 and 9 that answers a SYN with a reset; an open one is reset, never judged)"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per walk, then a summary line"},
			&cli.BoolFlag{Name: "no-color", Usage: "plain text even on a terminal (NO_COLOR is respected too)"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard (walks will fail: the local kernel resets them)"},
			junitFlag(), pcapFlag(), htmlFlag(),
		),
		Action: runWalk,
	}
}

func runWalk(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErr("walk: want SCENARIO HOST:PORT, e.g. tcpwalk walk handshake 198.18.0.2:7001 (scenarios: %s, all)", strings.Join(walk.Names(), ", "))
	}
	scenarios, err := pickScenarios(c.Args().Get(0))
	if err != nil {
		return err
	}
	target, err := parseTarget(c, c.Args().Get(1))
	if err != nil {
		return err
	}
	cp := c.Uint("closed-port")
	if cp > 65535 {
		return usageErr("--closed-port %d: want 1 to 65535", cp)
	}
	setup, err := newWalkSetup(c, target.Addr())
	if err != nil {
		return err
	}
	defer setup.Close()
	cfg := setup.cfg
	cfg.Port, cfg.ClosedPort = target.Port(), uint16(cp)
	if cp == 0 && len(scenarios) == 1 && scenarios[0].Name == "closed-port" {
		// closed-port alone walks the port given, as --help says; only in
		// all does it need a port of its own (--closed-port, or the lab's).
		cfg.ClosedPort = target.Port()
	}
	results, err := runWalks(c.Context, c, probe.Config{Remote: target.Addr(), NetNS: setup.ns, NoGuard: c.Bool("no-rst-guard")}, cfg, scenarios)
	if err != nil {
		return err
	}
	return writeWalks(c, results, false)
}

// pickScenarios reads SCENARIO or all.
func pickScenarios(name string) ([]walk.Scenario, error) {
	if name == "all" {
		return walk.Scenarios(), nil
	}
	s, ok := walk.Lookup(name)
	if !ok {
		return nil, usageErr("unknown scenario %q: want one of %s, all", name, strings.Join(walk.Names(), ", "))
	}
	return []walk.Scenario{s}, nil
}
