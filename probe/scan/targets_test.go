package scan

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []PortRange
	}{
		{"one", "22", []PortRange{{22, 22}}},
		{"list", "443,22,80", []PortRange{{22, 22}, {80, 80}, {443, 443}}},
		{"range", "1-1024", []PortRange{{1, 1024}}},
		{"all dash", "-", []PortRange{{1, 65535}}},
		{"all range", "1-65535", []PortRange{{1, 65535}}},
		{"open low end", "-1024", []PortRange{{1, 1024}}},
		{"open high end", "60000-", []PortRange{{60000, 65535}}},
		{"merge overlap and adjacent", "1-10,5-20,21,8080", []PortRange{{1, 21}, {8080, 8080}}},
		{"spaces", " 22 , 80 ", []PortRange{{22, 22}, {80, 80}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePorts(tc.in)
			if err != nil {
				t.Fatalf("ParsePorts(%q): %v", tc.in, err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ParsePorts(%q) (-want +got):\n%s", tc.in, d)
			}
		})
	}
	for _, bad := range []string{"", "0", "65536", "10-1", "a", "1-2-3", "22,,80", "-0", "1--2"} {
		if got, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"198.18.0.2", "198.18.0.2/32"},
		{"198.18.0.7/28", "198.18.0.0/28"},
		{"::ffff:198.18.0.2", "198.18.0.2/32"},
	} {
		got, err := ParseHost(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseHost(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"2001:db8::/64", "198.18.0.0/33", "224.0.0.1", "256.1.1.1", "x.invalid"} {
		_, err := ParseHost(bad)
		var ue *probe.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("ParseHost(%q): err = %v, want a UsageError", bad, err)
		}
	}
}

func TestPlanRefusesNonUnicast(t *testing.T) {
	ports := []PortRange{{80, 80}}
	for _, h := range []string{"0.0.0.0/32", "224.0.0.0/24", "255.255.255.255/32", "192.0.0.0/2", "0.0.0.0/0"} {
		if _, err := newPlan([]netip.Prefix{netip.MustParsePrefix(h)}, ports); err == nil {
			t.Errorf("newPlan(%s) accepted a range with no unicast hosts", h)
		}
	}
}

// Every target number maps to an address and port of the plan and back; nothing else maps.
func TestPlanTargetsRoundTrip(t *testing.T) {
	hosts := []netip.Prefix{
		netip.MustParsePrefix("198.18.0.8/30"),
		netip.MustParsePrefix("198.18.0.2/32"),
		netip.MustParsePrefix("198.18.0.9/32"), // inside the /30: merged
		netip.MustParsePrefix("198.18.1.0/31"),
	}
	pl, err := newPlan(hosts, []PortRange{{80, 81}, {22, 22}})
	if err != nil {
		t.Fatal(err)
	}
	if pl.nHosts != 7 || len(pl.ports) != 3 || pl.targets() != 21 {
		t.Fatalf("plan has %d hosts × %d ports = %d, want 7 × 3 = 21", pl.nHosts, len(pl.ports), pl.targets())
	}
	if want := netip.MustParsePrefix("198.18.0.0/23"); pl.cover != want {
		t.Errorf("cover = %v, want %v", pl.cover, want)
	}
	seen := map[string]bool{}
	for tg := range pl.targets() {
		a, port := pl.target(tg)
		k := netip.AddrPortFrom(pl.addr(a), port).String()
		if seen[k] {
			t.Fatalf("target %d = %s twice", tg, k)
		}
		seen[k] = true
		if back, ok := pl.lookup(a, port); !ok || back != tg {
			t.Errorf("lookup(%s) = %d, %v; want %d", k, back, ok, tg)
		}
	}
	for _, k := range []string{"198.18.0.2:22", "198.18.0.11:81", "198.18.1.1:80"} {
		if !seen[k] {
			t.Errorf("%s is not a target", k)
		}
	}
	for _, ap := range []string{"198.18.0.1:80", "198.18.0.12:80", "198.18.0.2:23", "198.18.1.2:22", "10.0.0.1:80"} {
		a := netip.MustParseAddrPort(ap)
		if _, ok := pl.lookup(num(a.Addr()), a.Port()); ok {
			t.Errorf("lookup(%s) found a target outside the plan", ap)
		}
	}
}
