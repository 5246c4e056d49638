package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// runDir holds the pid file and log of a lab's server process.
const runDir = "/run/tcpwalk"

func labCommand() *cli.Command {
	prefix := &cli.StringFlag{Name: "prefix", Value: lab.DefaultPrefix, Usage: "lab name: namespaces are PREFIX-prober and PREFIX-target"}
	return &cli.Command{
		Name:  "lab",
		Usage: "make, inspect or remove the built-in lab (two network namespaces with real Linux servers)",
		Description: `The lab is two network namespaces joined by a veth pair, with addresses from
198.18.0.0/15 (RFC 2544's benchmarking range) and no default route, so nothing
in it reaches any other network:

   tcpwalk-prober 198.18.0.1  <-- veth -->  tcpwalk-target 198.18.0.2

Real kernel servers run in the target namespace with fixed behaviours:
   7001 hold        accept, read and discard, never close
   7002 close       read one request, answer "HTTP/1.0 200 OK", close (the remote closes first)
   7003 control     line commands: close, shutdown, rst, echo TEXT, close-after-fin [MS]
   7004 echo        echo, close at EOF
   7005 half-close  write "hello", shutdown(SHUT_WR), read until EOF, close
   7009 closed      nothing listens
   7010 dialer      "dial PORT": the target connects to the prober's PORT (SYN_SENT)
   80   http        as 7002 (an HTTP/1.0 server); 8080 http-alt: as 7001

tcpwalk commands whose target is in 198.18.0.0/15 and unreachable from where
they run use the lab's prober namespace by themselves; --netns tcpwalk-prober
says so explicitly.

--loss PCT and --dup PCT make the path lossy and noisy for TCP, with the
kernel's nftables (no netem): each segment is dropped, or duplicated, with
that probability in each direction (netdev tables tcpwalk_impair_PREFIX in
both namespaces; they go with the lab). Walks must then end with the clean
path's verdicts or inconclusive, never a wrong one.

Examples:
   tcpwalk lab up
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
				Usage: "put a router with an nftables ruleset between prober (198.18.0.1) and target (198.18.2.2): none, stateless, stateful, reject, clamp, synproxy or loose"},
				&cli.StringFlag{Name: "loss", Usage: "drop `PCT` percent of TCP segments each way (nftables numgen), e.g. 10%"},
				&cli.StringFlag{Name: "dup", Usage: "duplicate `PCT` percent of TCP segments each way (nftables dup), e.g. 5%"}}, Action: labUp},
			{Name: "status", Usage: "show the lab, its servers and the target's TCP sockets", Flags: []cli.Flag{prefix}, Action: labStatus},
			{Name: "down", Usage: "remove the lab (also one left by a crash or a killed demo)", Flags: []cli.Flag{prefix}, Action: labDown},
			{Name: "serve", Hidden: true, Usage: "run the lab's servers (started by lab up)", Flags: []cli.Flag{prefix}, Action: labServe},
		},
	}
}

func pidFile(prefix string) string { return filepath.Join(runDir, prefix+".pid") }
func logFile(prefix string) string { return filepath.Join(runDir, prefix+".log") }

func labUp(c *cli.Context) error {
	prefix := c.String("prefix")
	w := c.App.Writer
	if l, err := lab.Open(prefix); err == nil {
		l.Release()
		if pid, alive := serverPID(prefix); alive {
			fmt.Fprintf(w, "lab %s is already up (servers: pid %d)\n", prefix, pid)
			return nil
		}
		return &exitError{code: exitEnv, err: fmt.Errorf("lab %s exists but its servers are not running: run `tcpwalk lab down --prefix %s` first", prefix, prefix)}
	}
	loss, err := parsePercent(c, "loss")
	if err != nil {
		return err
	}
	dup, err := parsePercent(c, "dup")
	if err != nil {
		return err
	}
	var l *lab.Lab
	if c.IsSet("firewall") {
		fw, perr := lab.ParseFirewall(c.String("firewall"))
		if perr != nil {
			return usageErr("lab up --firewall: %v", perr)
		}
		var r *lab.Routed
		if r, err = lab.CreateRouted(&lab.RoutedConfig{Prefix: prefix, Firewall: fw}); err == nil {
			l = r.Lab
			for _, rt := range r.Routers {
				rt.NS.Close()
			}
		}
	} else {
		l, err = lab.Create(&lab.Config{Prefix: prefix})
	}
	if err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN; leftovers: tcpwalk lab down)", err)}
	}
	ok := false
	defer func() {
		if !ok {
			stopServer(prefix)
			l.Close()
		}
	}()
	if err := l.Impair(loss, dup); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: %w", err)}
	}
	if err := startServer(prefix); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: start servers: %w", err)}
	}
	if err := waitListening(l.Target, lab.PortHold, 5*time.Second); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("lab up: servers did not start: %w (see %s)", err, logFile(prefix))}
	}
	ok = true
	pid, _ := serverPID(prefix)
	l.Release()
	fmt.Fprintf(w, "lab %s is up: %s (%s) <-> %s (%s), servers pid %d\n", prefix,
		l.Prober.Name, l.ProberAddr, l.Target.Name, l.TargetAddr, pid)
	if c.IsSet("firewall") {
		fmt.Fprintf(w, "router %s (%s | %s) forwards between them, firewall %s (see: tcpwalk lab status)\n",
			lab.RouterNames(prefix)[0], lab.RouterProberSide.Addr(), lab.RouterTargetSide.Addr(), c.String("firewall"))
		fmt.Fprintf(w, "try:  tcpwalk firewall %s:%d\n", l.TargetAddr, lab.PortHold)
	}
	if loss > 0 || dup > 0 {
		fmt.Fprintf(w, "path: %d%% loss, %d%% duplication of TCP segments each way (nftables table %s)\n", loss, dup, lab.ImpairTable(prefix))
	}
	fmt.Fprintf(w, "try:  tcpwalk walk all %s:%d\n      tcpwalk send --flags S %s:%d\n      tcpwalk lab down\n",
		l.TargetAddr, lab.PortHold, l.TargetAddr, lab.PortHold)
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

// startServer runs `tcpwalk lab serve` as a daemon: its own session, output
// to a log file, pid in runDir.
func startServer(prefix string) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logFile(prefix), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "lab", "serve", "--prefix", prefix)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(prefix), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return err
	}
	return cmd.Process.Release()
}

// serverPID reads the pid file and tells whether that process still runs
// `tcpwalk lab serve`.
func serverPID(prefix string) (int, bool) {
	b, err := os.ReadFile(pidFile(prefix))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "serve") {
		return pid, false
	}
	return pid, true
}

// stopServer ends the server process (SIGTERM, then SIGKILL after 3 s) and
// removes its pid file.
func stopServer(prefix string) {
	defer os.Remove(pidFile(prefix))
	pid, alive := serverPID(prefix)
	if !alive {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func waitListening(ns *netns.NS, port uint16, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		socks, err := sockdiag.Dump(ns)
		if err == nil {
			for _, s := range socks {
				if s.State == sockdiag.Listen && s.Local.Port() == port {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("nothing listens on port %d", port)
			}
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	fmt.Fprintf(c.App.Writer, "%s lab %s: servers up on %s\n", time.Now().Format(time.RFC3339), prefix, l.TargetAddr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-c.Context.Done():
	}
	fmt.Fprintf(c.App.Writer, "%s lab %s: servers stopping\n", time.Now().Format(time.RFC3339), prefix)
	return nil
}

func labStatus(c *cli.Context) error {
	prefix := c.String("prefix")
	w := c.App.Writer
	l, err := lab.Open(prefix)
	if err != nil {
		fmt.Fprintf(w, "lab %s: down\n", prefix)
		if left := leftovers(prefix); len(left) > 0 {
			fmt.Fprintf(w, "left behind: %s (remove with: tcpwalk lab down --prefix %s)\n", strings.Join(left, " "), prefix)
		}
		return &exitError{code: exitEnv}
	}
	defer l.Release()
	pid, alive := serverPID(prefix)
	fmt.Fprintf(w, "lab %s: up\n  prober  %-20s %s on %s\n  target  %-20s %s on %s\n", prefix,
		l.Prober.Name, l.ProberAddr, l.ProberIf, l.Target.Name, l.TargetAddr, l.TargetIf)
	if loss, dup, err := l.Impairment(); err == nil && (loss > 0 || dup > 0) {
		fmt.Fprintf(w, "  path    %d%% loss, %d%% duplication of TCP segments each way (nftables %s)\n", loss, dup, lab.ImpairTable(prefix))
	}
	if alive {
		fmt.Fprintf(w, "  servers pid %d (log %s)\n", pid, logFile(prefix))
	} else {
		fmt.Fprintf(w, "  servers NOT running (run `tcpwalk lab down` then `tcpwalk lab up`)\n")
	}
	writeRouters(w, prefix)
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
		fmt.Fprintf(w, "  router  %-20s %s | %s, firewall %s\n", rt.NS.Name, rt.ProberSide, rt.TargetSide, rt.Firewall)
		if _, rules, err := lab.ReadFirewall(rt.NS); err != nil {
			fmt.Fprintf(w, "    %v\n", err)
		} else {
			fmt.Fprintf(w, "    table ip %s, %s\n", lab.FirewallTable, rt.Firewall.Rules()[0])
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

// leftovers lists parts of a lab that exist (namespaces, pid file).
func leftovers(prefix string) []string {
	pns, tns, _, _ := lab.Names(prefix)
	var out []string
	for _, n := range append([]string{pns, tns}, lab.RouterNames(prefix)...) {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); err == nil {
			out = append(out, "netns "+n)
		}
	}
	if _, err := os.Stat(pidFile(prefix)); err == nil {
		out = append(out, pidFile(prefix))
	}
	return out
}

func labDown(c *cli.Context) error {
	prefix := c.String("prefix")
	stopServer(prefix)
	os.Remove(logFile(prefix))
	var errs []error
	if err := lab.Destroy(prefix); err != nil {
		errs = append(errs, err)
	}
	// Labs of demos that were killed before they could clean up.
	n, err := destroyOrphanDemos()
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

// demoPrefix names a demo's lab after its process, so that `lab down` can
// tell a killed demo's lab from a running one.
const demoPrefix = "tcpwalk-demo-"

func destroyOrphanDemos() (int, error) {
	names, err := netns.List(demoPrefix)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	seen := map[string]bool{}
	removed := 0
	var errs []error
	for _, n := range names {
		p := strings.TrimSuffix(strings.TrimSuffix(n, "-prober"), "-target")
		if seen[p] {
			continue
		}
		seen[p] = true
		pid, err := strconv.Atoi(strings.TrimPrefix(p, demoPrefix))
		if err == nil && demoRunning(pid, filepath.Join(netns.RunDir, n)) {
			continue // a demo still running owns it
		}
		if err := lab.Destroy(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// demoRunning reports whether process pid, after which the demo lab with
// the namespace file nsPath is named, is that demo, still running. A live
// pid alone does not say so: a killed demo's pid may be reused by any
// program. Its command line does not either: a demo run in-process by go
// test has no "demo" on it, and `lab down` must not pull a running demo's
// lab from under it. A process that started before the lab was made is the
// demo: a reused pid starts after the demo died, so after its lab was made.
// When unsure, the lab stays.
func demoRunning(pid int, nsPath string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	fi, err := os.Stat(nsPath) // the namespace's nsfs inode: made with the namespace
	if err != nil {
		return true
	}
	start, err := procStartBoottime(pid)
	if err != nil {
		return true
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return true
	}
	made := time.Duration(now.Nano()) - time.Since(fi.ModTime())
	// starttime counts clock ticks (USER_HZ, 100 a second): one tick of slack.
	return start <= made+10*time.Millisecond
}

// procStartBoottime reads when process pid started, as time since boot
// (field 22 of /proc/PID/stat, in USER_HZ ticks: 100 a second on Linux).
func procStartBoottime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // fields after the name start at field 3
	if len(f) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields, want %d", pid, len(f)+2, startField+3)
	}
	ticks, err := strconv.ParseUint(f[startField], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: starttime %q: %w", pid, f[startField], err)
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// labTargetFor finds the lab whose target is addr, for the lab's trigger,
// oracle and capture: with --netns PREFIX-prober the lab of that prefix (a
// lab made with another prefix, as tests make them, is found, and a default
// lab that happens to use the same addresses is not taken for it), else the
// default lab. Release the lab when done.
func labTargetFor(c *cli.Context, addr netip.Addr) (*lab.Lab, bool) {
	prefix := lab.DefaultPrefix
	if name := c.String("netns"); name != "" {
		p, ok := strings.CutSuffix(name, "-prober")
		if !ok || p == "" {
			return nil, false
		}
		prefix = p
	}
	l, err := lab.Open(prefix)
	if err != nil {
		return nil, false
	}
	if l.TargetAddr != addr {
		l.Release()
		return nil, false
	}
	return l, true
}
