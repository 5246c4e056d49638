//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/privs"
	"github.com/tcpwalk/tcpwalk/probe/scan"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

// Exit statuses, the same for every command.
const (
	exitOK         = 0
	exitNoReply    = 1 // send: no reply; walk/conform: a check failed
	exitUsage      = 2
	exitEnv        = 3
	exitInterrupt  = 130 // 128 + SIGINT
	exitTerminated = 143 // 128 + SIGTERM
)

// exitError carries a status out of a command action.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// The message always fits on one line: control characters that came from the
// command line (a newline inside a quoted argument) are shown escaped, so a
// script reading stderr line by line sees one error as one line.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: oneLineError{fmt.Errorf(format, args...)}}
}

// oneLineError shows its error with control characters escaped, and keeps
// it reachable for errors.Is and errors.As.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return escapeControl(e.err.Error()) }
func (e oneLineError) Unwrap() error { return e.err }

// escapeControl writes control characters (C0, DEL, C1) the way Go quotes
// them, and leaves every other character as it is.
func escapeControl(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// helpFlag is urfave/cli's help flag made safe for several apps at once.
// BoolFlag.Apply records its default in the flag value itself, and
// cli.HelpFlag is one package-level value shared by every app, so two apps
// parsing at the same time (tests run in parallel) write to it together.
// Apply works on a copy instead.
type helpFlag struct{ cli.BoolFlag }

func (f *helpFlag) Apply(set *flag.FlagSet) error {
	c := f.BoolFlag
	return c.Apply(set)
}

func init() {
	if b, ok := cli.HelpFlag.(*cli.BoolFlag); ok {
		cli.HelpFlag = &helpFlag{BoolFlag: *b}
	}
	// The version flag has the same shared state. It has no -v: that is
	// verbose in hping3 and nmap, and a user typing it should not get a
	// version line instead.
	cli.VersionFlag = &helpFlag{BoolFlag: cli.BoolFlag{Name: "version", Usage: "print tcpwalk's version and commit, then exit", DisableDefaultText: true}}
}

// newApp builds the command tree. Output goes to stdout/stderr so tests can
// run the app in-process.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "tcpwalk",
		Usage:     "craft TCP segments and walk a remote TCP stack through its states",
		UsageText: "tcpwalk [--netns NAME] COMMAND [options] HOST:PORT",
		Description: `tcpwalk sends hand-made TCP segments on raw IPv4 sockets and checks what a
remote, unmodified TCP stack answers. While it runs, an nftables table bound
to the process drops the local kernel's RSTs for tcpwalk's own flows, and the
kernel removes that table when tcpwalk exits, even on SIGKILL.

Needs root, or: sudo setcap cap_net_raw,cap_net_admin+ep $(command -v tcpwalk)

Exit status: 0 ok, 1 no reply / check failed, 2 bad usage, 3 environment
error (privileges, guard, namespace), 130/143 interrupted.`,
		Version:         versionText(),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "netns", EnvVars: []string{"TCPWALK_NETNS"},
				Usage: "run in the named network namespace `NAME` (e.g. tcpwalk-prober, made by tcpwalk lab up)"},
		}, familyFlags()...),
		Commands: []*cli.Command{sendCommand(), walkCommand(), conformCommand(), firewallCommand(), runCommand(), scanCommand(), mergeCommand(), labCommand(), demoCommand(),
			helpCommand(), manCommand(), completionCommand()},
		// Without an Action, urfave/cli answers an unknown command with
		// "No help topic" and exit status 3, our environment-error status:
		// make it bad usage (2). Bare `tcpwalk` still prints the help.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErr("unknown command %q: see tcpwalk --help for the commands", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run() maps errors to statuses
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErr("%s", explainFlagError(err))
		},
	}
	// urfave/cli adds --help to the app only when it has no command named
	// help, and ours (listed so that `tcpwalk help CMD` is found) is one.
	app.Flags = append(app.Flags, cli.HelpFlag)
	defaultsOnce(app.Flags)
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
		hideHelpCommand(c)
		eachCommand(c, func(c *cli.Command) { defaultsOnce(c.Flags) })
	}
	return app
}

// eachCommand calls fn on c and on all its subcommands.
func eachCommand(c *cli.Command, fn func(*cli.Command)) {
	fn(c)
	for _, sub := range c.Subcommands {
		eachCommand(sub, fn)
	}
}

// defaultsOnce makes each flag's default appear once in help and in the man
// page. urfave/cli appends "(default: VALUE)" to every flag's usage, VALUE
// being the flag's Go value unless DefaultText is set, so a usage that says
// its own default ("window (default 64240)", where the zero value means
// "choose for me") was printed with two: "(default 64240) (default: 0)". A
// usage's own "(default ...)" is moved into DefaultText here, and a false
// boolean's "(default: false)" is left out: a switch is off unless given.
func defaultsOnce(flags []cli.Flag) {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.UintFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.IntFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.Uint64Flag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.Int64Flag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.Float64Flag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.DurationFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.StringSliceFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
		case *cli.BoolFlag:
			f.Usage, f.DefaultText = splitDefault(f.Usage, f.DefaultText)
			if f.DefaultText == "" && !f.Value {
				f.DisableDefaultText = true
			}
		}
	}
}

// splitDefault takes a trailing "(default X)" or "(default: X)" out of
// usage and returns X as the default text, unless one is already set.
func splitDefault(usage, defaultText string) (string, string) {
	i := strings.LastIndex(usage, "(default")
	if i < 0 || !strings.HasSuffix(usage, ")") {
		return usage, defaultText
	}
	text := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(usage[i+len("(default"):len(usage)-1], ":"), " "))
	if defaultText == "" {
		defaultText = text
	}
	return strings.TrimSpace(usage[:i]), defaultText
}

// hideHelpCommand removes urfave/cli's "help" (alias "h") subcommand from c
// and its subcommands: otherwise `tcpwalk send h 198.18.0.2:80` asks for a
// help topic named after the target and fails with status 3. --help and -h
// still show each command's help.
func hideHelpCommand(c *cli.Command) {
	c.HideHelpCommand = true
	for _, sub := range c.Subcommands {
		hideHelpCommand(sub)
	}
}

// run executes the app and returns the exit status. SIGINT and SIGTERM
// cancel the context: commands print partial results and return.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got os.Signal
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sigs:
			got = s
			cancel()
		case <-done:
		}
	}()

	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{"args": args} // the command line as given, for scan's XML (nmaprun args)
	err := app.RunContext(ctx, reorderArgs(app, args))
	code := exitCode(err)
	if err != nil && code != exitNoReply {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "tcpwalk: %s\n", msg)
		}
	}
	if ctx.Err() != nil && got != nil {
		if got == syscall.SIGTERM {
			return exitTerminated
		}
		return exitInterrupt
	}
	return code
}

func exitCode(err error) int {
	var ee *exitError
	var ue *probe.UsageError
	var en *probe.EnvError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &en), errors.Is(err, privs.ErrPrivileges):
		return exitEnv
	}
	return exitEnv
}

// openNetNS opens the namespace named by --netns. Without --netns, a target
// in the lab's ranges (198.18.0.0/15, 2001:2::/48) is probed from the lab's prober namespace when the lab
// is up and we are not already in it (walk.LabProberNS; said on stderr), so
// that `tcpwalk lab up` followed by `tcpwalk walk all
// 198.18.0.2:7001` works as written. Nil means the current namespace.
func openNetNS(c *cli.Context, target netip.Addr) (*netns.NS, error) {
	name := c.String("netns")
	if name != "" {
		ns, err := netns.Open(name)
		if err != nil {
			return nil, &exitError{code: exitEnv, err: fmt.Errorf("--netns %s: %w (list them with: ip netns list; make the lab with: tcpwalk lab up)", name, err)}
		}
		return ns, nil
	}
	ns := walk.LabProberNS(target)
	if ns == nil {
		return nil, nil
	}
	fmt.Fprintf(c.App.ErrWriter, "tcpwalk: probing %s from the lab's namespace %s (--netns to choose another)\n", target, ns.Name)
	return ns, nil
}

// labTargetFor finds the lab whose target is addr (walk.FindLab) with the
// namespace --netns names. Release the lab when done.
func labTargetFor(c *cli.Context, addr netip.Addr) (*lab.Lab, bool) {
	return walk.FindLab(c.String("netns"), addr)
}

// reorderArgs lets options stand anywhere, as hping3 and nping allow:
// `tcpwalk send 198.18.0.2:80 --flags S` becomes
// `tcpwalk send --flags S 198.18.0.2:80` before urfave/cli (which stops at the
// first positional argument) parses it; a global option after the command
// (`send --netns NS ...`) moves before it, a command's option before the
// command (`tcpwalk --json demo`) after it.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global options up to the command name. A command's own option
	// written before the command (`tcpwalk --json demo`) is kept for the
	// command; anything else is left for urfave/cli to judge.
	var early []string
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		if c := commandAhead(app, args[i+1:]); c != nil && !hasFlag(app.Flags, a) && !isHelpName(a) && hasFlag(c.Flags, a) {
			early = append(early, a)
			if takesValue(c.Flags, a) && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				early = append(early, args[i])
			}
			continue
		}
		out = append(out, a)
		if takesValue(app.Flags, a) && !strings.Contains(a, "=") && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	if i >= len(args) {
		return append(out, early...)
	}
	// `tcpwalk help CMD [SUB]` is `tcpwalk CMD [SUB] --help`; a bare
	// `tcpwalk help` is `tcpwalk --help`. Only here, where the command name
	// stands: `tcpwalk walk help HOST:PORT` still names a scenario.
	if args[i] == "help" {
		asked := append(append(append([]string{}, out...), args[i+1:]...), "--help")
		return reorderArgs(app, asked)
	}
	nGlobal := len(out)
	var moved []string // global options written after the command
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	for cmd != nil && len(cmd.Subcommands) > 0 && i < len(args) {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		cmd = sub
		out = append(out, args[i])
		i++
	}
	if cmd == nil {
		return append(append(out, early...), args[i:]...)
	}
	flags := early
	var positional []string
	help := false
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if !hasFlag(cmd.Flags, a) && hasFlag(app.Flags, a) && !isHelpName(a) {
				// A global option (--netns) after the command: it goes
				// before the command, where urfave/cli reads it.
				moved = append(moved, a)
				if takesValue(app.Flags, a) && !strings.Contains(a, "=") && i+1 < len(args) {
					i++
					moved = append(moved, args[i])
				}
				continue
			}
			help = help || isHelpFlag(a)
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		positional = append(positional, a)
	}
	if len(moved) > 0 {
		out = append(append(append([]string{}, out[:nGlobal]...), moved...), out[nGlobal:]...)
	}
	out = append(out, flags...)
	// With --help, urfave/cli takes the first argument for a help topic
	// ("No help topic for '198.18.0.2:80'", exit status 3): asking for a
	// command's help on a full command line shows that help instead.
	if help {
		return out
	}
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// isHelpFlag reports whether arg asks for help the way Go's flag package
// reads it: -h, --h, -help, --help, or with =true (or another true value).
func isHelpFlag(arg string) bool {
	name, ok := strings.CutPrefix(arg, "--")
	if !ok {
		name = strings.TrimPrefix(arg, "-")
	}
	name, value, hasValue := strings.Cut(name, "=")
	if name != "h" && name != "help" {
		return false
	}
	if !hasValue {
		return true
	}
	on, err := strconv.ParseBool(value)
	return err == nil && on
}

// commandAhead is the command (or subcommand) named by the first word of
// rest that is not an option, or nil: the command an option written before
// it belongs to.
func commandAhead(app *cli.App, rest []string) *cli.Command {
	for k, w := range rest {
		if strings.HasPrefix(w, "-") {
			continue
		}
		c := app.Command(w)
		if c != nil && k+1 < len(rest) && len(c.Subcommands) > 0 {
			if sub := c.Command(rest[k+1]); sub != nil {
				return sub
			}
		}
		if c != nil {
			return c
		}
		// A word that is no command: an option's value; keep looking.
	}
	return nil
}

// isHelpName reports whether arg names the help flag (-h, --help=...),
// which every command has too: after a command it asks for that
// command's help.
func isHelpName(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name == "h" || name == "help"
}

// hasFlag reports whether the flag named in arg ("--netns", "-c=3") is
// one of flags.
func hasFlag(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// takesValue reports whether the flag named in arg (e.g. "--seq") needs a
// value; unknown flags are left for urfave/cli to reject.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if j := strings.IndexByte(name, '='); j >= 0 {
		name = name[:j]
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			df, ok := f.(cli.DocGenerationFlag)
			return !ok || df.TakesValue()
		}
	}
	return false
}

// durationNoUnit is the flag package's error for a duration without a unit
// (`-i 1`): `invalid value "1" for flag -i: parse error`.
var durationNoUnit = regexp.MustCompile(`^invalid value "([0-9.]+)" for flag (-[-A-Za-z0-9]+): parse error$`)

// explainFlagError says what "parse error" means where that is known: a
// bare number given to a duration flag needs a unit.
func explainFlagError(err error) string {
	if m := durationNoUnit.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("invalid value %q for flag %s: a duration needs a unit, e.g. %ss or %sms", m[1], m[2], m[1], m[1])
	}
	return err.Error()
}

// --- Shared by the commands that serve or make a lab (lab, demo). ---

// stackFlag chooses the TCP that serves the lab's target.
func stackFlag() cli.Flag {
	return &cli.StringFlag{Name: "stack", Value: string(lab.StackLinux),
		Usage: "TCP stack serving the target: linux (the kernel) or gvisor (gVisor's netstack on a TUN device)"}
}

// parseStack reads --stack.
func parseStack(c *cli.Context) (lab.Stack, error) {
	st, err := lab.ParseStack(c.String("stack"))
	if err != nil {
		return "", usageErr("--stack: %v", err)
	}
	return st, nil
}

// --- Shared by the commands that walk (walk, demo) and write walk reports (conform, firewall, run, send). ---

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
			report.WriteCoverage(w, walk.StateCoverage(results), len(results) > 0 && results[0].Oracle)
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

// --- Shared by the commands built on walks (walk, conform, run): flags, namespace, trigger and oracle. ---

// walkFlags are the flags every command built on walks shares.
func walkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "close-trigger", Usage: "how to make the remote app act: http, lab, wait, none, string:TEXT, hex:BYTES (default: lab against the lab, else none)"},
		&cli.StringFlag{Name: "dial-trigger", Usage: "how to make the remote host connect to us (syn-sent): lab, wait:PORT[:WAIT], connect-back:PORT:TEXT (default: lab against the lab, else the walk is skipped)"},
		&cli.StringFlag{Name: "oracle-netns", Usage: "read the target's real socket states in this namespace (default: the lab's target, against the lab)"},
		&cli.DurationFlag{Name: "reply-timeout", Value: walk.DefaultTiming.Reply, Usage: "wait for a reply before retransmitting ours"},
		&cli.IntFlag{Name: "tries", Value: walk.DefaultTiming.Tries, Usage: "times a segment that expects a reply is sent (1-10)"},
		portFlag(),
	}
}

// walkSetup is what walk and conform share once the target is known: the
// namespace to probe from, and a walk.Config whose trigger, oracle and
// timing come from the flags, with the lab's trigger and oracle by default
// against the lab's target. Close releases what it opened.
type walkSetup struct {
	ns      *netns.NS
	cfg     walk.Config
	closers []func()
}

func newWalkSetup(c *cli.Context, target netip.Addr) (_ *walkSetup, err error) {
	s := &walkSetup{cfg: walk.Config{Timing: walk.DefaultTiming}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.cfg.Timing.Reply, s.cfg.Timing.Tries = c.Duration("reply-timeout"), c.Int("tries")
	if t := s.cfg.Timing.Reply; t <= 0 || t > time.Minute {
		return nil, usageErr("--reply-timeout %v: want a duration from 1ms to 1m", t)
	}
	if n := s.cfg.Timing.Tries; n < 1 || n > 10 {
		return nil, usageErr("--tries %d: want 1 to 10", n)
	}
	if s.ns, err = openNetNS(c, target); err != nil {
		return nil, err
	}
	if s.ns != nil {
		s.closers = append(s.closers, func() { s.ns.Close() })
	}
	var labTarget *walk.LabTarget
	l, isLab := labTargetFor(c, target)
	if isLab {
		s.closers = append(s.closers, func() { l.Release() })
		labNS := s.ns
		if labNS == nil {
			labNS = l.Prober
		}
		labTarget = &walk.LabTarget{Addr: target, NS: labNS} // the lab's dialer answers over the family it is asked on
	}
	trigName := c.String("close-trigger")
	if trigName == "" && isLab {
		trigName = "lab"
	}
	if s.cfg.Trigger, err = walk.ParseTrigger(trigName, labTarget); err != nil {
		return nil, usageErr("%v", err)
	}
	if d := c.String("dial-trigger"); d != "" {
		dialNS := s.ns
		if labTarget != nil {
			dialNS = labTarget.NS
		}
		if s.cfg.Dial, err = walk.ParseDialTrigger(d, labTarget, target, dialNS); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	var closeOracle func()
	if s.cfg.Oracle, closeOracle, err = chooseOracle(c, l, isLab); err != nil {
		return nil, err
	}
	if closeOracle != nil {
		s.closers = append(s.closers, closeOracle)
	}
	return s, nil
}

// chooseOracle picks what reads the target's own connection states: sock_diag
// in --oracle-netns, else in the lab's target namespace when the lab's
// stack is the kernel. A gvisor lab's netstack keeps its sockets in user
// space, where sock_diag cannot see them: reading the empty kernel would
// report every connection CLOSED, so such a lab gets no oracle (said on
// stderr), and --oracle-netns naming its target is refused. The returned
// func, when not nil, closes what was opened.
func chooseOracle(c *cli.Context, l *lab.Lab, isLab bool) (walk.Oracle, func(), error) {
	name := c.String("oracle-netns")
	gvisor := isLab && !l.Stack.HasOracle()
	switch {
	case name != "" && gvisor && name == l.Target.Name:
		return nil, nil, usageErr("--oracle-netns %s: the lab's target runs gVisor's netstack, whose sockets sock_diag cannot see (leave --oracle-netns out)", name)
	case name != "":
		ons, err := netns.Open(name)
		if err != nil {
			return nil, nil, &exitError{code: exitEnv, err: fmt.Errorf("--oracle-netns %s: %w", name, err)}
		}
		return walk.SockDiag{NS: ons}, func() { ons.Close() }, nil
	case gvisor:
		fmt.Fprintf(c.App.ErrWriter, "tcpwalk: the lab's target %s runs gVisor's netstack: no kernel-state oracle (sock_diag cannot see its sockets)\n", l.TargetAddr)
		return nil, nil, nil
	case isLab:
		return walk.SockDiag{NS: l.Target}, nil, nil
	}
	return nil, nil, nil
}

func (s *walkSetup) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// withProber completes a setup's walk.Config for one prober and port.
func withProber(cfg walk.Config, p *probe.Prober, port uint16) walk.Config {
	cfg.Prober, cfg.Port = p, port
	return cfg
}

// --- Shared by the commands that print scan results (scan, merge). ---

// scanOutputFlags are the output options of scan and merge, which openScanOutputs reads.
func scanOutputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
		&cli.BoolFlag{Name: "grepable", Usage: "nmap's grepable format (-oG): one line per host"},
		&cli.BoolFlag{Name: "reason", Usage: "show why each port got its state (syn-ack, reset, no-response, icmp 3/13 from X, icmpv6 1/1 from X)"},
		&cli.BoolFlag{Name: "open", Usage: "list only ports that may be open (open, open|filtered, unfiltered)"},
		&cli.BoolFlag{Name: "all", Usage: "list every port and every host, none summed up"},
		&cli.StringFlag{Name: "oX", Usage: "write nmap's XML to `FILE` (- for stdout)"},
		&cli.StringFlag{Name: "oN", Usage: "write the normal (text) output to `FILE` (- for stdout)"},
		&cli.StringFlag{Name: "oG", Usage: "write nmap's grepable output to `FILE` (- for stdout)"},
		&cli.StringFlag{Name: "oA", Usage: "write all three, to `BASE`.xml, BASE.nmap and BASE.gnmap"},
	}
}

// scanOutputs are where a scan's results go: stdout in the format of --json/--grepable (or text), unless an -o
// option takes stdout, and the files of -oX, -oN, -oG and -oA.
type scanOutputs struct {
	stdout report.ScanFormat // 0: an -o option writes to stdout instead
	toOut  report.ScanFormat // the -o format written to stdout, if any
	files  []scanFile
}

type scanFile struct {
	format report.ScanFormat
	path   string
	f      *os.File
}

// openScanOutputs creates the output files before the scan, so that an unwritable path fails at once, not after
// an hour of scanning.
func openScanOutputs(c *cli.Context) (*scanOutputs, error) {
	o := &scanOutputs{stdout: report.ScanText}
	switch {
	case c.Bool("json"):
		o.stdout = report.ScanJSON
	case c.Bool("grepable"):
		o.stdout = report.ScanGrepable
	}
	type want struct {
		flag   string
		format report.ScanFormat
		path   string
	}
	var wants []want
	for _, w := range []want{{"oX", report.ScanXML, ""}, {"oN", report.ScanText, ""}, {"oG", report.ScanGrepable, ""}} {
		if p := c.String(w.flag); p != "" {
			w.path = p
			wants = append(wants, w)
		}
	}
	if base := c.String("oA"); base != "" {
		if base == "-" {
			return nil, usageErr("-oA -: -oA writes three files; give a base name, or use -oX - for stdout")
		}
		wants = append(wants, want{"oA", report.ScanXML, base + ".xml"}, want{"oA", report.ScanText, base + ".nmap"},
			want{"oA", report.ScanGrepable, base + ".gnmap"})
	}
	for _, w := range wants {
		if w.path == "-" {
			if o.toOut != 0 {
				return nil, usageErr("-%s -: another -o option already writes to stdout; keep one", w.flag)
			}
			o.toOut, o.stdout = w.format, 0
			continue
		}
		f, err := os.Create(w.path)
		if err != nil {
			o.close()
			return nil, &exitError{code: exitEnv, err: fmt.Errorf("scan: -%s: %w", w.flag, err)}
		}
		o.files = append(o.files, scanFile{format: w.format, path: w.path, f: f})
	}
	if o.toOut != 0 && (c.Bool("json") || c.Bool("grepable")) {
		o.close()
		return nil, usageErr("scan: an -o option writes to stdout (-), and --json or --grepable too: keep one")
	}
	return o, nil
}

// print writes the result to every output.
func (o *scanOutputs) print(c *cli.Context, res *scan.Result) error {
	svc, _ := scan.DefaultServices()
	args, _ := c.App.Metadata["args"].([]string)
	if args == nil {
		args = os.Args
	}
	pr := func(w io.Writer, f report.ScanFormat) error {
		p := &report.ScanPrinter{W: w, Format: f, Reason: c.Bool("reason"), Open: c.Bool("open"), All: c.Bool("all"),
			Args: args, Services: svc}
		return p.Print(res)
	}
	var errs []error
	for _, f := range []report.ScanFormat{o.stdout, o.toOut} {
		if f != 0 {
			errs = append(errs, pr(c.App.Writer, f))
		}
	}
	for i := range o.files {
		sf := &o.files[i]
		if err := pr(sf.f, sf.format); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sf.path, err))
		}
		if err := sf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sf.path, err))
		}
		sf.f = nil
	}
	return errors.Join(errs...)
}

// discard closes and removes the files, for a scan that gave no result.
func (o *scanOutputs) discard() {
	for i := range o.files {
		if sf := &o.files[i]; sf.f != nil {
			sf.f.Close()
			os.Remove(sf.path)
			sf.f = nil
		}
	}
}

func (o *scanOutputs) close() {
	for _, sf := range o.files {
		if sf.f != nil {
			sf.f.Close()
		}
	}
}
