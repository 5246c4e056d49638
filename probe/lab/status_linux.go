package lab

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/privs"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// ErrDown is returned by WriteStatus for a lab that is not up.
var ErrDown = errors.New("lab is down")

// WriteStatus writes what `tcpwalk lab status` shows of the lab prefix:
// its namespaces and addresses, stack, path, server process, routers with
// the rulesets read back from the kernel, and the target's TCP sockets.
// For a lab that is not up it writes "down" and what is left of one, and
// returns ErrDown; a lab that cannot be read for want of privileges is not
// called down.
func WriteStatus(w io.Writer, prefix string) error {
	l, err := Open(prefix)
	if err != nil && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) || !privs.CanEnterNS()) && len(Leftovers(prefix)) > 0 {
		return fmt.Errorf("reading lab %s needs root (CAP_SYS_ADMIN to enter its namespaces): %w", prefix, err)
	}
	if err != nil {
		fmt.Fprintf(w, "lab %s: down\n", prefix)
		if left := Leftovers(prefix); len(left) > 0 {
			fmt.Fprintf(w, "left behind: %s (remove with: %s)\n", strings.Join(left, " "), DownCommand(prefix))
		}
		return ErrDown
	}
	defer l.Release()
	pid, alive := ServerPID(prefix)
	fmt.Fprintf(w, "lab %s: up\n  prober  %-20s %s on %s\n", prefix, l.Prober.Name, addrs(l.ProberAddr, l.ProberAddr6), l.ProberIf)
	if l.Stack == StackGVisor {
		fmt.Fprintf(w, "  target  %-20s %s on %s (netstack), forwarded from %s\n", l.Target.Name, addrs(l.TargetAddr, l.TargetAddr6), l.TUNIf, l.TargetIf)
	} else {
		fmt.Fprintf(w, "  target  %-20s %s on %s\n", l.Target.Name, addrs(l.TargetAddr, l.TargetAddr6), l.TargetIf)
	}
	fmt.Fprintf(w, "  stack   %s: %s\n", l.Stack, l.Stack.Description())
	if loss, dup, err := l.Impairment(); err == nil && (loss > 0 || dup > 0) {
		fmt.Fprintf(w, "  path    %d%% loss, %d%% duplication of TCP segments each way (nftables %s)\n", loss, dup, ImpairTable(prefix))
	}
	if alive {
		fmt.Fprintf(w, "  servers pid %d (log %s)\n", pid, LogFile(prefix))
	} else {
		fmt.Fprintf(w, "  servers NOT running (run `%s` then `tcpwalk lab up%s`)\n", DownCommand(prefix), PrefixArg(prefix))
	}
	writeRouters(w, prefix)
	if !l.Stack.HasOracle() {
		fmt.Fprintf(w, "  target TCP sockets: not visible (netstack's sockets live in the server process; sock_diag sees only the kernel's)\n")
		return nil
	}
	writeSockets(w, l.Target)
	return nil
}

// WriteUp writes what `tcpwalk lab up` says of the lab it made from cfg:
// the two ends, the router and path if any, and commands to try.
func (l *Lab) WriteUp(w io.Writer, cfg UpConfig) {
	prefix := l.Prefix
	pid, _ := ServerPID(prefix)
	fmt.Fprintf(w, "lab %s is up: %s (%s) <-> %s (%s), servers pid %d, stack %s\n", prefix,
		l.Prober.Name, addrs(l.ProberAddr, l.ProberAddr6), l.Target.Name, addrs(l.TargetAddr, l.TargetAddr6), pid, l.Stack.Description())
	// Without --netns, only the default lab's namespace is found by itself.
	via := ""
	if prefix != DefaultPrefix {
		via = "--netns " + l.Prober.Name + " "
	}
	if cfg.Routed {
		fmt.Fprintf(w, "router %s (%s | %s) forwards between them, firewall %s (see: tcpwalk lab status%s)\n",
			RouterNames(prefix)[0], addrs(RouterProberSide.Addr(), RouterProberSide6.Addr()),
			addrs(RouterTargetSide.Addr(), RouterTargetSide6.Addr()), cfg.Firewall, PrefixArg(prefix))
		fmt.Fprintf(w, "try:  tcpwalk %sfirewall %s:%d\n", via, l.TargetAddr, PortHold)
		if l.TargetAddr6.IsValid() {
			fmt.Fprintf(w, "      tcpwalk %sfirewall %s:%d %s\n", via, l.TargetAddr, PortHold, netip.AddrPortFrom(l.TargetAddr6, PortHold))
		}
	}
	if cfg.Loss > 0 || cfg.Dup > 0 {
		fmt.Fprintf(w, "path: %d%% loss, %d%% duplication of TCP segments each way (nftables table %s)\n", cfg.Loss, cfg.Dup, ImpairTable(prefix))
	}
	fmt.Fprintf(w, "try:  tcpwalk %swalk all %s:%d\n      tcpwalk %ssend --flags S %s:%d\n", via, l.TargetAddr, PortHold, via, l.TargetAddr, PortHold)
	if l.TargetAddr6.IsValid() {
		fmt.Fprintf(w, "      tcpwalk %swalk all %s\n", via, netip.AddrPortFrom(l.TargetAddr6, PortHold))
		fmt.Fprintf(w, "      tcpwalk %ssend --flags S %s\n", via, netip.AddrPortFrom(l.TargetAddr6, PortHold))
	}
	fmt.Fprintf(w, "      %s\n", DownCommand(prefix))
}

// addrs is "198.18.0.1" or, on a dual-stack lab, "198.18.0.1, 2001:2::1".
func addrs(a4, a6 netip.Addr) string {
	if !a6.IsValid() {
		return a4.String()
	}
	return a4.String() + ", " + a6.String()
}

// writeRouters writes the routers of a routed lab and the ruleset each
// has, as read back from the kernel.
func writeRouters(w io.Writer, prefix string) {
	routers, err := OpenRouters(prefix)
	if err != nil {
		fmt.Fprintf(w, "  routers: %v\n", err)
		return
	}
	for _, rt := range routers {
		fmt.Fprintf(w, "  router  %-20s %s | %s, firewall %s\n", rt.NS.Name, addrs(rt.ProberSide, rt.ProberSide6), addrs(rt.TargetSide, rt.TargetSide6), rt.Firewall)
		if _, rules, err := ReadFirewall(rt.NS); err != nil {
			fmt.Fprintf(w, "    %v\n", err)
		} else {
			fmt.Fprintf(w, "    table %s %s, %s\n", rt.Firewall.Family(), FirewallTable, rt.Firewall.Rules()[0])
			for _, r := range rules {
				fmt.Fprintf(w, "      %s\n", r)
			}
		}
		rt.NS.Close()
	}
}

// writeSockets writes the TCP sockets of ns as sock_diag shows them.
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
