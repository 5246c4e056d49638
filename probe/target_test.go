package probe_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
)

func TestParseTarget(t *testing.T) {
	got, err := probe.ParseTarget("198.18.0.2:7001")
	if want := netip.MustParseAddrPort("198.18.0.2:7001"); err != nil || got != want {
		t.Errorf("ParseTarget(198.18.0.2:7001) = %v, %v; want %v, nil", got, err, want)
	}
}

// TestParseTargetRefuses checks that every bad target is a UsageError whose
// text names the problem. None of these may reach the DNS: the numeric and
// .invalid cases are answered locally, so the test also runs offline and fast.
func TestParseTargetRefuses(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no port", "198.18.0.2", "has no port"},
		{"empty port", "198.18.0.2:", "missing port"},
		{"port 0", "198.18.0.2:0", `bad port "0"`},
		{"port too big", "198.18.0.2:70000", `bad port "70000"`},
		{"port not a number", "198.18.0.2:http", `bad port "http"`},
		{"empty host", ":80", "missing host"},
		{"octet too big", "999.1.1.1:80", `bad IPv4 address "999.1.1.1"`},
		{"three octets", "198.18.2:80", `bad IPv4 address "198.18.2"`},
		{"IPv6 without brackets", "2001:2::2:80", "has no port: write [2001:2::2:80]:PORT"},
		{"IPv6 without port", "[2001:2::2]", "has no port"},
		{"bad IPv6", "[2001:2::2::1]:80", `bad IPv6 address "2001:2::2::1"`},
		{"IPv6 multicast", "[ff02::1]:80", "multicast"},
		{"IPv6 unspecified", "[::]:80", "unspecified"},
		{"IPv6 link-local", "[fe80::1]:80", "link-local IPv6 addresses are not supported"},
		{"IPv6 zone", "[fe80::1%eth0]:80", "link-local"},
		{"IPv6 port 0", "[2001:2::2]:0", `bad port "0"`},
		{"multicast", "224.0.0.1:80", "multicast"},
		{"broadcast", "255.255.255.255:80", "broadcast"},
		{"unspecified", "0.0.0.0:80", "unspecified"},
		{"reserved TLD", "nonexistent.invalid:80", "never resolve"},
		{"reserved TLD, rooted, upper case", "X.INVALID.:80", "never resolve"},
		{"two colons", "1.2.3.4:80:90", "bad target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := probe.ParseTarget(tt.in)
			var ue *probe.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseTarget(%q) = %v, %v; want a *probe.UsageError", tt.in, got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseTarget(%q) error %q does not say %q", tt.in, err, tt.want)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("ParseTarget(%q) took %v: did it ask the DNS?", tt.in, d)
			}
		})
	}
}
