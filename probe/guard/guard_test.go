package guard

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

func TestIntervals(t *testing.T) {
	k := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	start := func(s string) nftables.SetElement { return nftables.SetElement{Key: k(s)} }
	end := func(s string) nftables.SetElement { return nftables.SetElement{Key: k(s), IntervalEnd: true} }
	tests := []struct {
		name string
		in   []string
		want []nftables.SetElement
	}{
		{"one host", []string{"198.18.0.2/32"}, []nftables.SetElement{end("0.0.0.0"), start("198.18.0.2"), end("198.18.0.3")}},
		{"net", []string{"198.18.0.0/15"}, []nftables.SetElement{end("0.0.0.0"), start("198.18.0.0"), end("198.20.0.0")}},
		{"unmasked prefix", []string{"198.18.0.7/24"}, []nftables.SetElement{end("0.0.0.0"), start("198.18.0.0"), end("198.18.1.0")}},
		{"sorted and merged", []string{"198.18.1.0/24", "198.18.0.5/32", "198.18.0.0/24", "198.19.0.0/16"},
			[]nftables.SetElement{end("0.0.0.0"), start("198.18.0.0"), end("198.18.2.0"), start("198.19.0.0"), end("198.20.0.0")}},
		{"starts at zero", []string{"0.0.0.0/8"}, []nftables.SetElement{start("0.0.0.0"), end("1.0.0.0")}},
		{"ends at the top", []string{"255.255.255.255/32"}, []nftables.SetElement{end("0.0.0.0"), start("255.255.255.255")}},
		{"everything", []string{"198.18.0.2/32", "0.0.0.0/0"}, nil},
		{"IPv6 host", []string{"2001:2::2/128"}, []nftables.SetElement{end("::"), start("2001:2::2"), end("2001:2::3")}},
		{"IPv6 net", []string{"2001:2::/48"}, []nftables.SetElement{end("::"), start("2001:2::"), end("2001:2:1::")}},
		{"IPv6 sorted and merged", []string{"2001:2:0:1::/64", "2001:2::5/128", "2001:2::/64", "2001:3::/32"},
			[]nftables.SetElement{end("::"), start("2001:2::"), end("2001:2:0:2::"), start("2001:3::"), end("2001:4::")}},
		{"IPv6 starts at zero", []string{"::/8"}, []nftables.SetElement{start("::"), end("100::")}},
		{"IPv6 ends at the top", []string{"ffff::/16"}, []nftables.SetElement{end("::"), start("ffff::")}},
		{"IPv6 everything", []string{"::/0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []netip.Prefix
			for _, s := range tt.in {
				in = append(in, netip.MustParsePrefix(s))
			}
			if diff := cmp.Diff(tt.want, intervals(in)); diff != "" {
				t.Errorf("intervals(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	ok := Config{Mark: 1, Remotes: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}, LocalLo: 1, LocalHi: 2}
	for name, mod := range map[string]func(*Config){
		"zero mark":   func(c *Config) { c.Mark = 0 },
		"no remotes":  func(c *Config) { c.Remotes = nil },
		"mapped IPv4": func(c *Config) { c.Remotes = []netip.Prefix{netip.MustParsePrefix("::ffff:198.18.0.2/128")} },
		"invalid":     func(c *Config) { c.Remotes = []netip.Prefix{{}} },
		"empty range": func(c *Config) { c.LocalLo, c.LocalHi = 3, 2 },
	} {
		c := ok
		mod(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, c)
		}
	}
}

func TestConfigBothFamilies(t *testing.T) {
	c := Config{Mark: 1, LocalLo: 1, LocalHi: 2,
		Remotes: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("2001:2::2/128")}}
	if err := c.validate(); err != nil {
		t.Errorf("validate(IPv4 and IPv6 remotes) = %v, want nil", err)
	}
}
