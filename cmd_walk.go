//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

func walkCommand() *cli.Command {
	var list strings.Builder
	for _, s := range walk.Scenarios() {
		fmt.Fprintf(&list, "   %-19s %s\n", s.Name, s.Summary)
	}
	return &cli.Command{
		Name:      "walk",
		Usage:     "drive a remote TCP stack through its states and judge every reply against RFC 9293",
		ArgsUsage: "SCENARIO|all HOST:PORT",
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
	target, err := probe.ParseTarget(c.Args().Get(1))
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

// runWalks opens a prober and runs the walks concurrently.
func runWalks(ctx context.Context, c *cli.Context, pcfg probe.Config, cfg walk.Config, scenarios []walk.Scenario) ([]walk.Result, error) {
	pcfg.Warn = func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }
	p, err := probe.Open(pcfg)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	cfg.Prober = p
	if cfg.Dial != nil && cfg.Dial.Port() != 0 && needsDial(scenarios) {
		// The remote connects to one fixed port of ours: a prober of
		// that port alone, so that no other walk takes it and the guard
		// and filter cover it wherever it is.
		dcfg := pcfg
		dcfg.LocalLo, dcfg.LocalHi = cfg.Dial.Port(), cfg.Dial.Port()
		dp, err := probe.Open(dcfg)
		if err != nil {
			return nil, fmt.Errorf("--dial-trigger %s: %w", cfg.Dial.Name(), err)
		}
		defer dp.Close()
		cfg.DialProber = dp
		fmt.Fprintf(c.App.ErrWriter, "tcpwalk: syn-sent waits up to %v for %s to connect to %s (--dial-trigger %s)\n",
			cfg.Dial.Wait(), pcfg.Remote, netip.AddrPortFrom(dp.Local(), cfg.Dial.Port()), cfg.Dial.Name())
	}
	return walk.Run(ctx, cfg, scenarios), nil
}

// needsDial reports whether a walk needs the remote to connect to us.
func needsDial(scenarios []walk.Scenario) bool {
	for _, s := range scenarios {
		if s.Action == walk.Connect {
			return true
		}
	}
	return false
}

// writeWalks prints ladders and the summary (or JSON) and maps verdicts to
// the exit status.
func writeWalks(c *cli.Context, results []walk.Result, coverage bool) error {
	// The report files first: they are written even when stdout fails.
	fileErr := writeReportFiles(c, "tcpwalk "+c.Command.Name, results)
	w := c.App.Writer
	if c.Bool("json") {
		if err := report.WriteWalkJSON(w, results); err != nil {
			return err
		}
	} else {
		color := !c.Bool("no-color") && isTerminal(w)
		for _, r := range results {
			if err := report.WriteLadder(w, r, report.LadderOptions{Color: color, Width: ladderWidth(w)}); err != nil {
				return err
			}
			fmt.Fprintln(w)
		}
		if len(results) > 1 {
			report.WalkSummary(w, results, color)
		}
		if coverage {
			writeCoverage(w, walk.StateCoverage(results), len(results) > 0 && results[0].Oracle)
		}
	}
	if fileErr != nil {
		return fileErr
	}
	for _, r := range results {
		if r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive {
			return &exitError{code: exitNoReply}
		}
	}
	return nil
}

// junitFlag and pcapFlag are the report file flags of walk and demo (and
// of any command with walk.Results), read by writeReportFiles. New flags
// each time: urfave/cli keeps state in a flag.
func junitFlag() cli.Flag {
	return &cli.StringFlag{Name: "junit", Usage: "also write JUnit XML to `FILE`, one test case per walk, for CI"}
}

func pcapFlag() cli.Flag {
	return &cli.StringFlag{Name: "pcap", Usage: "also write every segment sent and received to `FILE` (pcapng, a comment on each packet)"}
}

func htmlFlag() cli.Flag {
	return &cli.StringFlag{Name: "html", Usage: "also write a self-contained HTML page to `FILE`: each walk's ladder drawn in SVG, its checks linked to the segments"}
}

// writeHTMLFile writes the --html page, when asked for, titled with the
// command line that made it.
func writeHTMLFile(c *cli.Context, rep report.HTMLReport) error {
	path := c.String("html")
	if path == "" {
		return nil
	}
	rep.Title = strings.Join(append([]string{"tcpwalk", c.Command.Name}, c.Args().Slice()...), " ")
	rep.Created = time.Now()
	return writeReportFile("--html", path, func(w io.Writer) error { return report.WriteHTML(w, rep) })
}

// writeReportFiles writes the --junit and --pcap files, created or
// truncated, when asked for. Failing to write one is an environment error
// (exit status 3); both are attempted either way.
func writeReportFiles(c *cli.Context, suite string, results []walk.Result) error {
	var errs []error
	if path := c.String("junit"); path != "" {
		errs = append(errs, writeReportFile("--junit", path, func(w io.Writer) error { return report.WriteJUnit(w, suite, results) }))
	}
	if path := c.String("pcap"); path != "" {
		errs = append(errs, writeReportFile("--pcap", path, func(w io.Writer) error { return report.WritePcap(w, results) }))
	}
	page := report.HTMLReport{Results: results}
	if name := c.Command.Name; name == "walk" || name == "demo" {
		page.Coverage = walk.StateCoverage(results)
	}
	errs = append(errs, writeHTMLFile(c, page))
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	return nil
}

// writeReportFile creates or truncates path and fills it with write.
func writeReportFile(flag, path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is the directory there and writable?)", flag, path, err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return nil
}

// writeCoverage prints the state table; without an oracle (a gvisor lab's
// netstack) states can only be seen on the wire, and the header says so.
func writeCoverage(w io.Writer, cov []walk.Coverage, oracle bool) {
	if oracle {
		fmt.Fprintln(w, "\nThe 11 states of RFC 9293, each seen on the wire and in the target kernel (sock_diag):")
	} else {
		fmt.Fprintln(w, "\nThe 11 states of RFC 9293, each seen on the wire (no kernel-state oracle for this target):")
	}
	for _, cv := range cov {
		mark := "confirmed"
		switch {
		case len(cv.By) == 0:
			mark = "NOT SEEN"
		case !cv.Kernel:
			mark = "wire only"
		}
		fmt.Fprintf(w, "  %-12s %-10s by %s\n", cv.State, mark, strings.Join(cv.By, ", "))
	}
}

// ladderWidth is the width ladders are drawn to: the terminal's columns when
// w is one (an 80-column terminal must not wrap them by itself), else 100.
func ladderWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col >= 40 {
			return int(ws.Col)
		}
	}
	return report.DefaultWidth
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && report.ColorEnabled(f)
}

// keep lab imported for the doc link in help text.
var _ = lab.PortHold
