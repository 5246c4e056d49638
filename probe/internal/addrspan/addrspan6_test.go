package addrspan

import (
	"net/netip"
	"slices"
	"testing"
)

func TestMergeSubtractPrefixes6(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name     string
		in, ex   []netip.Prefix
		prefixes []string
	}{
		{"one host", []netip.Prefix{p("2001:2::2/128")}, nil, []string{"2001:2::2/128"}},
		{"adjacent and overlapping merge", []netip.Prefix{p("2001:2::4/126"), p("2001:2::/126"), p("2001:2::2/127")}, nil,
			[]string{"2001:2::/125"}},
		{"a hole", []netip.Prefix{p("2001:2::/125")}, []netip.Prefix{p("2001:2::3/128")},
			[]string{"2001:2::/127", "2001:2::2/128", "2001:2::4/126"}},
		{"across the 64-bit word", []netip.Prefix{p("2001:2:0:0:ffff:ffff:ffff:fffe/127"), p("2001:2:0:1::/127")}, nil,
			[]string{"2001:2::ffff:ffff:ffff:fffe/127", "2001:2:0:1::/127"}},
		{"all excluded", []netip.Prefix{p("2001:2::2/128")}, []netip.Prefix{p("2001:2::/120")}, nil},
		{"everything", []netip.Prefix{p("::/0")}, nil, []string{"::/0"}},
		{"everything but the last", []netip.Prefix{p("::/0")}, []netip.Prefix{p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")}, nil},
	}
	for _, tt := range tests {
		got := Subtract6(Merge6(tt.in), Merge6(tt.ex))
		var ps []string
		for _, x := range Prefixes6(got) {
			ps = append(ps, x.String())
		}
		if tt.name == "everything but the last" {
			if len(ps) != 128 || ps[0] != "::/1" || ps[127] != "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128" {
				t.Errorf("%s: %d prefixes %v..., want 128 from ::/1 to …:fffe/128", tt.name, len(ps), ps[:min(3, len(ps))])
			}
			continue
		}
		if !slices.Equal(ps, tt.prefixes) {
			t.Errorf("%s: Prefixes6 = %v, want %v", tt.name, ps, tt.prefixes)
		}
		if back := Merge6(Prefixes6(got)); len(got) > 0 && !slices.Equal(back, got) {
			t.Errorf("%s: Merge6(Prefixes6(r)) = %x, want r = %x", tt.name, back, got)
		}
	}
	if n, ok := Merge6([]netip.Prefix{p("2001:2::/104")})[0].Size(); !ok || n != 1<<24 {
		t.Errorf("Size of a /104 = %d, %v; want 2^24", n, ok)
	}
	if _, ok := Merge6([]netip.Prefix{p("2001:2::/64")})[0].Size(); ok {
		t.Errorf("Size of a /64 fits 64 bits, want not")
	}
}
