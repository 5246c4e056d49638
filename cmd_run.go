//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run packetdrill-style scripts against a remote TCP stack",
		ArgsUsage: "HOST[:PORT] SCRIPT...",
		Description: `Runs scripts of packetdrill packet lines against a remote, unmodified
stack, one connection per script: "<" is a segment tcpwalk sends, ">" one
the remote must send, with packetdrill's flags, relative sequence numbers,
options, times and tolerance. Paste packetdrill's packet lines as they are.

  %port 7001
  0    < S  0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
  +0   > S. 0:0(0) ack 1 <...>
  +0   < .  1:1(0) ack 1 win 257
  +0   %expect-state ESTABLISHED

What packetdrill does with system calls, scripts say with directives:
  %port N              the remote port (HOST:PORT on the command line wins)
  %send "TEXT"         data that makes the remote app act ("close\n" to the
                       lab's control port 7003, an HTTP request, ...)
  %dial                ask the lab's client to connect to us (SYN_SENT)
  %expect-state STATE  the remote's state: sock_diag decides when there is
                       an oracle (the lab), else the segments so far (when
                       they tell nothing yet, the line is noted, not judged)
  %wait SECONDS        nothing may come for that long
  %needs lab           the script uses the lab's control port or client:
                       skipped, with that reason, against other hosts
  %summary TEXT, %allow-retransmissions
Where stacks may differ, ">" lines can say so (tcpwalk's extensions):
  mss *, wscale *      any value          sackOK?, TS? val 1 ecr 100, wscale? *
                                          the option may be absent (options
                                          are then matched in any order,
                                          NOPs aside)
  >? . 1:1(0) ack 7    the segment may be absent: the ACK may ride on the
                       segment the next line expects (its FIN)
  +1~+3.5 > S. ...     a time range (packetdrill's): an RTO of 1 s to 3 s
A script whose first SYN meets RST,ACK ends "no listener at PORT" (one line,
exit status 3), not a list of FAILs.
packetdrill scripts run as they are: their system calls become what the
remote must be or do. listen() is a precondition (a listener at the target
port, packetdrill's 8080 unless HOST:PORT; checked by the first SYN);
connect() asks the remote to dial us (the lab's client, --dial-trigger); close(),
shutdown() and write() are the remote app's, made through the lab's app
control (elsewhere, --close-trigger http makes a close() or shutdown() in
ESTABLISHED with an HTTP request, the script's sequence numbers offset by
the request's and the answer's lengths); getsockopt(), read() and the like are local observations, noted;
sysctl lines and options are assumptions about the remote, shown with the
verdict; sockstat state counts are %expect-state; #ifdef STANDARD branches
are taken. A script runs over the target address's family;
--ip_version=ipv4 or ipv6 pins it to one (against the dual-stack lab, its
address of that family; elsewhere a script of the other family is
skipped); ipv4-mapped-ipv6 is IPv4 on the wire. A line with no remote
equivalent skips the script, saying why
(scripts/freebsd-suite.md has the whole mapping). The language is
described in scripts/README.md; ready-made
scripts for the 11 states and RFC 5961 are in scripts/conformance.

An expected segment may come max(4 ms, 12.5% of the gap) early or late, and
--slack later still (the path's delay). A script stops at its first check
that does not pass and ends with a RST so that the remote keeps nothing.

On a lossy path (--lossy; by default against a lab made with --loss or
--dup) a missing answer makes
tcpwalk send its segments again as TCP would (3 tries, 600 ms apart, the
same bytes), the remote's retransmissions and repeats are passed over, and
a difference loss can explain is INCONCLUSIVE with the reason, never FAIL.
Other options, window or data in the line's own segment, or an ACK of more
than we sent, still FAIL.

Examples:
   tcpwalk run 198.18.0.2 scripts/conformance/*.pkt
   tcpwalk run 2001:2::2 scripts/conformance/*.pkt
   tcpwalk run --junit run.xml --pcap run.pcapng 198.18.0.2 my.pkt
   tcpwalk run --oracle-netns tcpwalk-target 198.18.0.2:7001 handshake.pkt
   tcpwalk run --lossy 198.18.0.2 scripts/conformance/*.pkt
   tcpwalk run --parallel 16 198.18.0.2 ../shared/suites/freebsd-tcp-testsuite-state-event-engine/*.pkt
   tcpwalk run --lab=false --close-trigger http 198.18.0.2:80 ../shared/suites/freebsd-tcp-testsuite-state-event-engine/*.pkt

Exit status: 0 every script passed (or was skipped), 1 a script failed or
was inconclusive, 2 bad usage or a mistake in a script (shown as
file:line:col), 3 environment error or the target answered nothing.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "oracle-netns", Usage: "read the target's real socket states in this namespace (default: the lab's target, against the lab)"},
			&cli.BoolFlag{Name: "lab", Usage: "the target is a tcpwalk lab target: %dial asks its client to connect (default: when the lab is found; --lab=false treats the lab's target as any host: no app control, dialer, closed port or oracle)"},
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "scripts run at once, each on its own source port (1-64)"},
			&cli.DurationFlag{Name: "slack", Value: script.DefaultSlack, Usage: "extra lateness allowed on expected segments, for the path's delay"},
			&cli.DurationFlag{Name: "max-wait", Value: script.DefaultMaxWait, Usage: "how long an expected segment timed * may take"},
			&cli.BoolFlag{Name: "lossy", Usage: "the path loses or duplicates segments: send ours again as TCP would, and call what loss explains inconclusive (default: when the lab is impaired)"},
			&cli.StringFlag{Name: "dial-trigger", Usage: "how to make the remote connect to us for connect() and %dial: lab, wait:PORT[:WAIT], connect-back:PORT:TEXT (default: the lab's client against the lab, else those scripts are skipped)"},
			&cli.StringFlag{Name: "close-trigger", Usage: "without the lab's app control, make a packetdrill close() or shutdown(SHUT_WR) of the remote app in ESTABLISHED with a request on the connection: http, string:TEXT, hex:BYTES (the server must answer and close; the script's sequence numbers are offset by the request's and the answer's lengths after it)"},
			&cli.UintFlag{Name: "closed-port", Usage: "a port with no listener, for packetdrill scripts whose socket is in CLOSED (default: the lab's 7009; elsewhere they are skipped)"},
			&cli.BoolFlag{Name: "ladder", Usage: "draw every script as a ladder diagram, not only the failed ones"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per script, then a summary line"},
			&cli.BoolFlag{Name: "no-color", Usage: "plain text even on a terminal (NO_COLOR is respected too)"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard (scripts will fail: the local kernel resets them)"},
			junitFlag(), pcapFlag(), htmlFlag(),
		},
		Action: runScripts,
	}
}

func runScripts(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageErr("run: want HOST[:PORT] SCRIPT..., e.g. tcpwalk run 198.18.0.2 scripts/conformance/*.pkt")
	}
	target, port, err := parseRunTarget(c, c.Args().Get(0))
	if err != nil {
		return err
	}
	parallel := c.Int("parallel")
	if parallel < 1 || parallel > 64 {
		return usageErr("--parallel %d: want 1 to 64", parallel)
	}
	slack, maxWait := c.Duration("slack"), c.Duration("max-wait")
	if slack < 0 || slack > time.Minute {
		return usageErr("--slack %v: want a duration from 0 to 1m", slack)
	}
	if maxWait <= 0 || maxWait > time.Hour {
		return usageErr("--max-wait %v: want a duration from 1ms to 1h", maxWait)
	}
	scripts, err := loadScripts(c.Context, c.Args().Slice()[1:], port)
	if err != nil {
		return err
	}
	ns, err := openNetNS(c, target)
	if err != nil {
		return err
	}
	if ns != nil {
		defer ns.Close()
	}
	cp := c.Uint("closed-port")
	if cp > 65535 {
		return usageErr("--closed-port %d: want 1 to 65535", cp)
	}
	cfg := script.Config{Port: port, MaxWait: maxWait, Slack: slack, ClosedPort: uint16(cp), Lossy: c.Bool("lossy")}
	if slack == 0 {
		cfg.Slack = -1 // none
	}
	l, isLab := labTargetFor(c, target)
	if isLab && c.IsSet("lab") && !c.Bool("lab") {
		// --lab=false: the lab's target as any host (no app control,
		// dialer, closed port or oracle), e.g. to see what
		// --close-trigger alone allows.
		l.Release()
		l, isLab = nil, false
	}
	if isLab {
		defer l.Release()
		labNS := ns
		if labNS == nil {
			labNS = l.Prober
		}
		cfg.Lab = &walk.LabTarget{Addr: target, NS: labNS} // the lab's address of target's family
		if loss, dup, err := l.Impairment(); err == nil && (loss > 0 || dup > 0) {
			cfg.Lossy = true // lab up --loss/--dup
		}
		if cfg.ClosedPort == 0 {
			cfg.ClosedPort = lab.PortClosed
		}
	} else if c.Bool("lab") {
		cfg.Lab = &walk.LabTarget{Addr: target, NS: ns}
	}
	if d := c.String("dial-trigger"); d != "" {
		lt, _ := cfg.Lab.(*walk.LabTarget)
		dialNS := ns
		if lt != nil {
			dialNS = lt.NS
		}
		if cfg.DialTrigger, err = walk.ParseDialTrigger(d, lt, target, dialNS); err != nil {
			return usageErr("%v", err)
		}
	}
	if ct := c.String("close-trigger"); ct != "" {
		t, err := walk.ParseTrigger(ct, nil)
		if err != nil {
			return usageErr("%v", err)
		}
		if p, err := t.Plan(walk.CloseFirst, 0); err != nil || len(p.Payload) == 0 {
			return usageErr("--close-trigger %q: want a request to send (http, string:TEXT or hex:BYTES): run's trigger goes on the connection under test", ct)
		}
		cfg.CloseTrigger = t
	}
	oracle, closeOracle, err := chooseOracle(c, l, isLab)
	if err != nil {
		return err
	}
	if closeOracle != nil {
		defer closeOracle()
	}
	cfg.Oracle = oracle
	p, err := probe.Open(probe.Config{Remote: target, NetNS: ns, NoGuard: c.Bool("no-rst-guard"),
		Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }})
	if err != nil {
		return err
	}
	defer p.Close()
	cfg.Prober = p
	var alt netip.Addr // the lab's target address of the other family
	if isLab {
		alt = l.TargetAddr6
		if target.Is6() {
			alt = l.TargetAddr
		}
	}
	results, err := runFamilies(c, cfg, scripts, parallel, alt, ns)
	if err != nil {
		return err
	}
	return writeScripts(c, target, results)
}

// runFamilies runs the scripts against cfg's target, and those whose
// --ip_version names the other family against alt (the same dual-stack
// lab's address of that family) when it is valid: packetdrill's
// --ip_version chooses the family. Without alt such a script is skipped
// and says which address to give. Results keep the scripts' order.
func runFamilies(c *cli.Context, cfg script.Config, scripts []*script.Script, parallel int, alt netip.Addr, ns *netns.NS) ([]walk.Result, error) {
	var same, other []*script.Script
	var otherAt []int
	for i, s := range scripts {
		if f := s.Family(); alt.IsValid() && f != 0 && (f == 6) != cfg.Prober.Remote().Is6() {
			other, otherAt = append(other, s), append(otherAt, i)
			continue
		}
		same = append(same, s)
	}
	if len(other) == 0 {
		return script.RunAll(c.Context, cfg, scripts, parallel), nil
	}
	p, err := probe.Open(probe.Config{Remote: alt, NetNS: ns, NoGuard: c.Bool("no-rst-guard"),
		Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	alts := cfg
	alts.Prober = p
	if lt, ok := cfg.Lab.(*walk.LabTarget); ok {
		alts.Lab = &walk.LabTarget{Addr: alt, NS: lt.NS}
	}
	out := make([]walk.Result, len(scripts))
	rs, ro := script.RunAll(c.Context, cfg, same, parallel), script.RunAll(c.Context, alts, other, parallel)
	for i, j := 0, 0; i < len(scripts); i++ {
		if j < len(otherAt) && otherAt[j] == i {
			out[i] = ro[j]
			j++
			continue
		}
		out[i], rs = rs[0], rs[1:]
	}
	return out, nil
}

// parseRunTarget reads HOST or HOST:PORT ([IPV6]:PORT, or a bare IPv6
// address), a name's family picked by -4/-6; a zero port leaves it to the
// scripts' %port.
func parseRunTarget(c *cli.Context, s string) (netip.Addr, uint16, error) {
	fam, err := targetFamily(c)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	opt := probe.TargetOptions{Family: fam}
	if _, _, err := net.SplitHostPort(s); err == nil {
		ap, err := probe.ParseTarget(s, opt)
		return ap.Addr(), ap.Port(), err
	}
	a, err := probe.ResolveHost(s, opt)
	return a, 0, err
}

// loadScripts parses every script before anything is sent: a mistake in
// any of them is bad usage (exit status 2), all mistakes shown at once.
func loadScripts(ctx context.Context, paths []string, port uint16) ([]*script.Script, error) {
	var out []*script.Script
	var errs []error
	for _, path := range paths {
		src, err := readScript(ctx, path, scriptWait)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("run: interrupted while reading %s", path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read script: %w", err))
			continue
		}
		s, err := script.Parse(path, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if port == 0 && s.Port == 0 && !s.Dials && !s.Closed() {
			errs = append(errs, fmt.Errorf("%s: no remote port: add `%%port N` to the script or give HOST:PORT", path))
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, &exitError{code: exitUsage, err: errors.Join(errs...)}
	}
	return out, nil
}

// Bounds on reading a script that is not a regular file (a FIFO, a
// process substitution): how long to wait for its writer, and how much.
const (
	scriptWait = 30 * time.Second
	maxScript  = 1 << 20
)

// readScript reads a script file. A regular file is read at once; anything
// else (a FIFO blocks in open(2) until a writer comes, and in read(2) until
// it closes) is read in the background, given up on SIGINT (ctx) or after
// wait, and at most maxScript bytes: `run` never hangs on it.
func readScript(ctx context.Context, path string, wait time.Duration) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil || fi.Mode().IsRegular() {
		return os.ReadFile(path)
	}
	type read struct {
		b   []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			done <- read{nil, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxScript+1))
		if err == nil && len(b) > maxScript {
			err = fmt.Errorf("%s: longer than %d bytes: not a script", path, maxScript)
		}
		done <- read{b, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		unblockFIFO(path)
		return nil, ctx.Err()
	case <-timer.C:
		unblockFIFO(path)
		return nil, fmt.Errorf("%s: nothing came within %v (a FIFO that no one writes to?)", path, wait)
	}
}

// unblockFIFO opens path for writing without blocking and closes it again:
// a reader waiting in open(2) for a writer then returns and reads EOF, so
// the goroutine of readScript ends.
func unblockFIFO(path string) {
	if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
	}
}

// writeScripts prints the results (a line per script, the failed checks
// with expected and received, ladders on request, or JSON), writes the
// report files and maps verdicts to the exit status.
func writeScripts(c *cli.Context, target netip.Addr, results []walk.Result) error {
	w := c.App.Writer
	color := !c.Bool("no-color") && isTerminal(w)
	if c.Bool("json") {
		if err := report.WriteWalkJSON(w, results); err != nil {
			return &exitError{code: exitEnv, err: err}
		}
	} else {
		for _, r := range results {
			if noListener(r) {
				// One line: nothing listens there, which is no RFC failure.
				fmt.Fprintf(w, "%-12s %s  (%s)\n", "NO LISTENER", r.Scenario, r.Reason)
				continue
			}
			if c.Bool("ladder") || r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive {
				if err := report.WriteLadder(w, r, report.LadderOptions{Color: color, Width: ladderWidth(w)}); err != nil {
					return &exitError{code: exitEnv, err: err}
				}
			}
			report.WriteScriptResult(w, r)
		}
		if len(results) > 1 {
			report.WalkSummary(w, results, color)
			report.WriteSkipReasons(w, results)
		}
	}
	if err := writeReportFiles(c, "tcpwalk run "+target.String(), results); err != nil {
		return err
	}
	answered, sent, bad, closed, other := false, false, false, 0, 0
	for _, r := range results {
		for _, s := range r.Segments {
			answered = answered || s.Dir == walk.In && s.ICMP == ""
			sent = sent || s.Dir == walk.Out
		}
		bad = bad || r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive
		switch {
		case noListener(r):
			closed++
		case r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive:
			other++
		}
	}
	if closed > 0 && other == 0 && c.Context.Err() == nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("no listener: %d of %d scripts met a reset where a listener should answer (check HOST:PORT)", closed, len(results))}
	}
	// Interrupted (run exits 130/143), scripts cut short before any answer
	// do not mean the target is down; scripts that sent nothing (all
	// skipped) say nothing of it either.
	if !answered && sent && bad && c.Context.Err() == nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("%s answered none of the scripts: is it up, and the port open? (%d scripts)", target, len(results))}
	}
	if bad {
		return &exitError{code: exitNoReply}
	}
	return nil
}

// noListener reports whether a script met a reset where its listener
// should have answered its first SYN.
func noListener(r walk.Result) bool {
	return strings.HasPrefix(r.Reason, script.ReasonNoListener)
}
