package probe_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe"
)

// ParseTargetAny takes IPv6 literals in brackets; ParseTarget still
// refuses them (the commands other than send speak IPv4 only).
func TestParseTargetAny(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[2001:2::2]:80", "[2001:2::2]:80"},
		{"198.18.0.2:7001", "198.18.0.2:7001"},
		{"[::ffff:198.18.0.2]:80", "198.18.0.2:80"}, // mapped: the IPv4 host
		{"[::1]:80", "[::1]:80"},
	} {
		got, err := probe.ParseTargetAny(tt.in)
		if err != nil || got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("ParseTargetAny(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"[ff02::1]:80", "multicast"},
		{"[::]:80", "unspecified"},
		{"[fe80::1]:80", "link-local IPv6 addresses are not supported"},
		{"[fe80::1%eth0]:80", "link-local"},
		{"[2001:2::2]:0", `bad port "0"`},
	} {
		_, err := probe.ParseTargetAny(tt.in)
		var ue *probe.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTargetAny(%q) = %v; want a usage error saying %q", tt.in, err, tt.want)
		}
	}
	if _, err := probe.ParseTarget("[2001:2::2]:80"); err == nil || !strings.Contains(err.Error(), "IPv4 only") {
		t.Errorf("ParseTarget([2001:2::2]:80) = %v; want the IPv4-only refusal", err)
	}
}
