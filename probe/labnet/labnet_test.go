package labnet

import (
	"net/netip"
	"testing"
)

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"198.18.0.2", true},
		{"198.19.255.255", true},
		{"198.17.255.255", false},
		{"198.20.0.0", false},
		{"2001:2::2", true},
		{"2001:2:0:ffff::1", true},
		{"2001:3::1", false},
		{"::ffff:198.18.0.2", false}, // IPv4-mapped: not the IPv4 range, nor the IPv6 one
		{"10.0.0.1", false},
	} {
		if got := Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
