//go:build linux

package main

import (
	"strings"
	"testing"
)

// -4 and -6 pick the family, before or after the command, for every
// command with a HOST:PORT target; a literal of the other family, or both
// flags at once, is bad usage with a clear message. Nothing here is sent:
// each mistake is caught before a socket opens.
func TestFamilyFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-4", "send", "[2001:2::2]:7001"}, "2001:2::2 is not an IPv4 address, which -4 asks for"},
		{[]string{"send", "-6", "198.18.0.2:7001"}, "198.18.0.2 is not an IPv6 address, which -6 asks for"},
		{[]string{"walk", "-6", "all", "198.18.0.2:7001"}, "198.18.0.2 is not an IPv6 address"},
		{[]string{"conform", "-4", "[2001:2::2]:7001"}, "2001:2::2 is not an IPv4 address"},
		{[]string{"-4", "-6", "send", "198.18.0.2:7001"}, "-4 and -6 together"},
		{[]string{"send", "2001:2::2"}, "has no port: write [2001:2::2]:PORT"},
		{[]string{"walk", "all", "2001:2::2:7001"}, "an IPv6 address goes in brackets"},
		{[]string{"send", "-p", "0", "2001:2::2"}, "-p 0: want a port from 1 to 65535"},
		{[]string{"run", "-6", "198.18.0.2:7001", "scripts/conformance/established.pkt"}, "198.18.0.2 is not an IPv6 address"},
		{[]string{"-4", "run", "2001:2::2", "scripts/conformance/established.pkt"}, "2001:2::2 is not an IPv4 address"},
	} {
		r := runApp(t, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("tcpwalk %s: exit %d, stderr %q; want %d saying %q", strings.Join(tt.args, " "), r.code, r.stderr, exitUsage, tt.want)
		}
	}
}
