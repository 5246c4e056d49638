package addrspan

import (
	"net/netip"
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		in   []netip.Prefix
		want []Range
	}{
		{"none", nil, nil},
		{"one host", []netip.Prefix{p("198.18.0.2/32")}, []Range{{0xc6120002, 0xc6120003}}},
		{"unmasked, overlapping, adjacent, out of order",
			[]netip.Prefix{p("198.18.0.9/30"), p("198.18.0.0/29"), p("198.18.0.4/31"), p("198.19.0.0/24")},
			[]Range{{0xc6120000, 0xc612000c}, {0xc6130000, 0xc6130100}}},
		{"everything", []netip.Prefix{p("0.0.0.0/0"), p("10.0.0.0/8")}, []Range{{0, 1 << 32}}},
		{"the last address", []netip.Prefix{p("255.255.255.255/32")}, []Range{{0xffffffff, 1 << 32}}},
	}
	for _, tt := range tests {
		if got := Merge(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Merge(%v) = %x, want %x", tt.name, tt.in, got, tt.want)
		}
	}
}
