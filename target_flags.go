//go:build linux

package main

import (
	"net/netip"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe"
)

// familyFlags are the global -4 and -6 (as ping's and curl's): which family
// a target name resolves to. Like every global option they may stand after
// the command too (tcpwalk walk -6 ...; reorderArgs moves them).
func familyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "4", Usage: "IPv4 only: a target name resolves to its IPv4 address (as ping -4); an IPv6 literal is refused"},
		&cli.BoolFlag{Name: "6", Usage: "IPv6 only: a target name resolves to its IPv6 address (as ping -6); an IPv4 literal is refused"},
	}
}

// portFlag is -p: the port of a target written without one (2001:2::2 -p 80).
func portFlag() cli.Flag {
	return &cli.UintFlag{Name: "port", Aliases: []string{"p"}, Usage: "port `PORT` of a target written without one (tcpwalk send -p 80 2001:2::2)"}
}

// targetFamily reads -4 and -6 from the command line. Without either it is
// probe.FamilyAny: a name takes the first address the system's resolver
// returns, a literal its own family.
func targetFamily(c *cli.Context) (probe.Family, error) {
	v4, v6 := false, false
	for _, x := range c.Lineage() {
		for _, n := range x.LocalFlagNames() {
			v4 = v4 || (n == "4" && x.Bool("4"))
			v6 = v6 || (n == "6" && x.Bool("6"))
		}
	}
	switch {
	case v4 && v6:
		return 0, usageErr("-4 and -6 together: give one of them, or neither to take either family")
	case v4:
		return probe.Family4, nil
	case v6:
		return probe.Family6, nil
	}
	return probe.FamilyAny, nil
}

// parseTarget reads a command's HOST:PORT argument ([IPV6]:PORT, or HOST
// with -p PORT where the command has -p), picking the family by -4/-6.
func parseTarget(c *cli.Context, s string) (netip.AddrPort, error) {
	fam, err := targetFamily(c)
	if err != nil {
		return netip.AddrPort{}, err
	}
	opt := probe.TargetOptions{Family: fam}
	if c.IsSet("port") {
		p := c.Uint("port")
		if p == 0 || p > 65535 {
			return netip.AddrPort{}, usageErr("-p %d: want a port from 1 to 65535", p)
		}
		opt.Port = uint16(p)
	}
	return probe.ParseTarget(s, opt)
}
