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

func TestSubtractAndPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name     string
		in, ex   []netip.Prefix
		want     []Range
		prefixes []string
	}{
		{"nothing excluded", []netip.Prefix{p("198.18.0.0/30")}, nil, []Range{{0xc6120000, 0xc6120004}}, []string{"198.18.0.0/30"}},
		{"a hole", []netip.Prefix{p("198.18.0.0/29")}, []netip.Prefix{p("198.18.0.3/32")},
			[]Range{{0xc6120000, 0xc6120003}, {0xc6120004, 0xc6120008}}, []string{"198.18.0.0/31", "198.18.0.2/32", "198.18.0.4/30"}},
		{"both ends and beyond", []netip.Prefix{p("198.18.0.4/30"), p("198.18.0.16/30")},
			[]netip.Prefix{p("198.18.0.0/30"), p("198.18.0.4/32"), p("198.18.0.7/32"), p("198.18.0.12/30"), p("198.18.0.18/31")},
			[]Range{{0xc6120005, 0xc6120007}, {0xc6120010, 0xc6120012}}, []string{"198.18.0.5/32", "198.18.0.6/32", "198.18.0.16/31"}},
		{"all excluded", []netip.Prefix{p("198.18.0.2/32")}, []netip.Prefix{p("198.18.0.0/24")}, nil, nil},
		{"everything", []netip.Prefix{p("0.0.0.0/0")}, nil, []Range{{0, 1 << 32}}, []string{"0.0.0.0/0"}},
	}
	for _, tt := range tests {
		got := Subtract(Merge(tt.in), Merge(tt.ex))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Subtract = %x, want %x", tt.name, got, tt.want)
		}
		var ps []string
		for _, x := range Prefixes(got) {
			ps = append(ps, x.String())
		}
		if !slices.Equal(ps, tt.prefixes) {
			t.Errorf("%s: Prefixes = %v, want %v", tt.name, ps, tt.prefixes)
		}
		if back := Merge(Prefixes(got)); len(got) > 0 && !slices.Equal(back, got) {
			t.Errorf("%s: Merge(Prefixes(r)) = %x, want r = %x", tt.name, back, got)
		}
	}
}
