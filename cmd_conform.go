//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

func conformCommand() *cli.Command {
	// The checks by state, wrapped to 78 columns.
	var list strings.Builder
	line := ""
	for i, ch := range conform.Checks() {
		if i == 0 || ch.State != conform.Checks()[i-1].State {
			if line != "" {
				list.WriteString(line + "\n")
			}
			line = "   " + ch.State.String() + ":"
		}
		if len(line)+1+len(ch.Event) > 78 {
			list.WriteString(line + "\n")
			line = "     "
		}
		line += " " + ch.Event
	}
	list.WriteString(line + "\n")
	return &cli.Command{
		Name:      "conform",
		Usage:     "run the conformance matrix: TCP states × RFC 9293 / RFC 5961 events, each judged against its rule",
		ArgsUsage: "HOST:PORT | [IPV6]:PORT",
		Description: `Puts the remote in each TCP state tcpwalk can reach, sends one event there
(exact, in-window and out-of-window RSTs, a SYN, ACKs above SND.NXT and far
below SND.UNA, data after our FIN, our FIN again, SYNs into TIME_WAIT, a bad
ACK and a retransmitted SYN in SYN_RCVD), checks the answer and whether the
connection survived, and checks the options echo of the handshake. Checks
run concurrently, each on its own source port, with at most --parallel of
them in the remote's handshake at once (a listen backlog of 5 is common).

Verdicts: pass (also where the RFC allows several answers, e.g. with or
without the optional RFC 5961 challenge ACKs: the profile says which);
deviation (a SHOULD departed from, named by its behaviour, e.g.
synack-on-retransmitted-syn, with the stacks it was seen on); fail (a MUST
departed from, or an answer no rule allows); inconclusive (no answer);
skipped (the state needs an app action the trigger cannot cause).

PORT should be a port whose app keeps connections open (the lab's 7001);
--close-trigger says how to make the app close first or after our FIN, as
for tcpwalk walk (default: lab against the lab, else none). The lab is the
one whose prober namespace --netns names (PREFIX-prober), or tcpwalk's.

Checks (ID = STATE/event; --only takes patterns like TIME_WAIT/* or */syn):
` + list.String() + `
Measured and reported, not judged: the SYN,ACK retransmission schedule, the
FIN retransmission backoff in FIN_WAIT_1, whether SYN cookies are in use, and
the TIME_WAIT fingerprint. The run ends with a stack profile: the optional
mechanisms seen (RFC 5961, RFC 1337, SACK, timestamps, window scale), the
initial RTO, tail loss probe, RST format, ISS pattern and the nearest known
stack family, each with the checks that showed it.

Examples:
   tcpwalk conform 198.18.0.2:7001
   tcpwalk conform --json --junit conform.xml --pcap conform.pcapng 198.18.0.2:7001
   tcpwalk conform --html conform.html 198.18.0.2:7001
   tcpwalk conform --only 'TIME_WAIT/*' --oracle-netns tcpwalk-target 198.18.0.2:7001
   tcpwalk conform [2001:2::2]:7001

Exit status: 0 every check passed (deviations and skips allowed, unless
--strict), 1 a check failed or was inconclusive (with --strict: or deviated),
2 bad usage, 3 environment error or the target unreachable.`,
		Flags: append(walkFlags(),
			&cli.StringSliceFlag{Name: "only", Usage: "run only the checks and measurements whose ID matches `PATTERN` (repeatable)"},
			&cli.BoolFlag{Name: "strict", Usage: "deviations (SHOULDs departed from) fail the run (exit status 1)"},
			&cli.IntFlag{Name: "parallel", Value: conform.DefaultParallel, Usage: "at most `N` connections in the remote's handshake at once (its listen backlog must hold them; raise it for a large backlog)"},
			&cli.BoolFlag{Name: "all-retransmissions", Usage: "measure every SYN,ACK and FIN retransmission (about 2 minutes on Linux) instead of the first few"},
			&cli.BoolFlag{Name: "json", Usage: "the run as one JSON object instead of the table"},
			&cli.BoolFlag{Name: "no-color", Usage: "plain text even on a terminal (NO_COLOR is respected too)"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard (checks will fail: the local kernel resets them)"},
			junitFlag(), pcapFlag(), htmlFlag(),
		),
		Action: runConform,
	}
}

func runConform(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr("conform: want HOST:PORT, e.g. tcpwalk conform 198.18.0.2:7001")
	}
	target, err := parseTarget(c, c.Args().Get(0))
	if err != nil {
		return err
	}
	only := c.StringSlice("only")
	if _, _, err := conform.Select(only); err != nil {
		return usageErr("--only: %v", err)
	}
	setup, err := newWalkSetup(c, target.Addr())
	if err != nil {
		return err
	}
	defer setup.Close()
	p, err := probe.Open(probe.Config{Remote: target.Addr(), NetNS: setup.ns, NoGuard: c.Bool("no-rst-guard"),
		Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }})
	if err != nil {
		return err
	}
	defer p.Close()
	rep, err := conform.Run(c.Context, conform.Config{
		Walk:               withProber(setup.cfg, p, target.Port()),
		AllRetransmissions: c.Bool("all-retransmissions"),
		Only:               only,
		Parallel:           c.Int("parallel"),
	})
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	return writeConform(c, rep)
}

// writeConform prints the table (or JSON), writes the report files and maps
// the verdicts to the exit status.
func writeConform(c *cli.Context, rep conform.Report) error {
	w := c.App.Writer
	var err error
	if c.Bool("json") {
		err = report.WriteConformJSON(w, rep)
	} else {
		err = report.WriteConformTableWidth(w, rep, !c.Bool("no-color") && isTerminal(w), ladderWidth(w))
	}
	if err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	if err := writeConformFiles(c, rep); err != nil {
		return err
	}
	if c.Context.Err() != nil {
		// Interrupted (SIGINT, SIGTERM; run exits 130/143): the checks cut
		// short say so, and "answered none" would blame the target.
		return nil
	}
	return conformStatus(rep, c.Bool("strict"))
}

// writeConformFiles writes --junit (one test case per check) and --pcap
// (the checks' segments and the measurements'), as writeReportFiles does
// for walks.
func writeConformFiles(c *cli.Context, rep conform.Report) error {
	suite := "tcpwalk conform " + rep.Target.String()
	var errs []error
	if path := c.String("junit"); path != "" {
		errs = append(errs, writeReportFile("--junit", path, func(w io.Writer) error {
			return report.WriteJUnitProperties(w, suite, rep.Results, report.ProfileProperties(rep.Profile))
		}))
	}
	if path := c.String("pcap"); path != "" {
		all := rep.AllResults()
		errs = append(errs, writeReportFile("--pcap", path, func(w io.Writer) error { return report.WritePcap(w, all) }))
	}
	errs = append(errs, writeHTMLFile(c, report.HTMLReport{Results: rep.Results, Conform: &rep}))
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitEnv, err: err}
	}
	return nil
}

// errUnreachable says that no check got a single answer from the target.
var errUnreachable = errors.New("the target answered none of the checks")

// conformStatus maps a run to the exit status: 3 when the target answered
// nothing at all, 1 when a check failed or was inconclusive (or, strict, a
// deviation), else 0.
func conformStatus(rep conform.Report, strict bool) error {
	answered, bad := false, false
	for _, r := range rep.Results {
		for _, s := range r.Segments {
			if s.Dir == walk.In && s.ICMP == "" {
				answered = true
			}
		}
		switch r.Verdict {
		case walk.Fail, walk.Inconclusive:
			bad = true
		case walk.Deviation:
			bad = bad || strict
		}
	}
	n := rep.Counts()
	if !answered && n.Skipped < len(rep.Results) {
		return &exitError{code: exitEnv, err: fmt.Errorf("conform %s: %w (is it up, is PORT listening, is there a route?)", rep.Target, errUnreachable)}
	}
	if bad {
		return &exitError{code: exitNoReply}
	}
	return nil
}
