//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/privs"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "netns", EnvVars: []string{"TCPWALK_NETNS"},
				Usage: "run in the named network namespace `NAME` (e.g. tcpwalk-prober, made by tcpwalk lab up)"},
		},
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
// in 198.18.0.0/15 (the lab's range) is probed from the lab's prober
// namespace when the lab is up and we are not already in it (said on
// stderr), so that `tcpwalk lab up` followed by `tcpwalk walk all
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
	if !benchNet.Contains(target) && !probe.LabRange6.Contains(target) {
		return nil, nil
	}
	pns, _, _, _ := lab.Names(lab.DefaultPrefix)
	ns, err := netns.Open(pns)
	if err != nil {
		return nil, nil // no lab: probe from here
	}
	if sameNS(ns) || !canEnterNS() || !labShouldProbe(lab.DefaultPrefix, target) {
		ns.Close()
		return nil, nil
	}
	fmt.Fprintf(c.App.ErrWriter, "tcpwalk: probing %s from the lab's namespace %s (--netns to choose another)\n", target, pns)
	return ns, nil
}

// labShouldProbe reports whether a target in the lab range, given without
// --netns while the default lab exists, is the lab's to probe: one of the
// lab's own addresses, or an address this namespace has no route to (other
// than a default route, which CheckLabRoute refuses anyway). A namespace of
// the user's own on 198.19.x.x, routed from here, is probed from here.
func labShouldProbe(prefix string, target netip.Addr) bool {
	if l, err := lab.Open(prefix); err == nil {
		own := target == l.ProberAddr || target == l.TargetAddr
		l.Release()
		if own {
			return true
		}
	}
	if probe.CheckLabRoute(target) != nil {
		return true // only the default route leads there from here
	}
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, 9)))
	if err != nil {
		return true // no route here
	}
	conn.Close()
	return false
}

// canEnterNS reports whether this process may enter another network
// namespace: setns(2) needs CAP_SYS_ADMIN, which a tcpwalk given only
// CAP_NET_RAW and CAP_NET_ADMIN by setcap (and run inside a namespace with
// `ip netns exec`) does not have. It then probes from where it is instead
// of failing on the lab's namespace. Unknown means yes.
func canEnterNS() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true
	}
	defer f.Close()
	eff, err := privs.ParseCapEff(f)
	if err != nil {
		return true
	}
	const capSysAdmin = 21 // include/uapi/linux/capability.h
	return eff&(1<<capSysAdmin) != 0
}

// sameNS reports whether ns is the namespace we run in.
func sameNS(ns *netns.NS) bool {
	cur, err := netns.Current()
	if err != nil {
		return false
	}
	defer cur.Close()
	a, err1 := cur.ID()
	b, err2 := ns.ID()
	return err1 == nil && err2 == nil && a == b
}

// benchNet is RFC 2544's benchmarking range, the lab's addresses.
var benchNet = netip.MustParsePrefix("198.18.0.0/15")

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
