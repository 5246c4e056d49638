package scan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// addrsOf lists every address the prefixes cover, in order.
func addrsOf(ps []netip.Prefix) []string {
	var out []string
	for _, r := range addrspan.Merge(ps) {
		for a := r.Lo; a < r.Hi; a++ {
			out = append(out, addrOf(uint32(a)).String())
		}
	}
	return out
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // every address, when few
		count    int      // else how many
		first    string
		last     string
	}{
		{name: "address", in: "198.18.0.2", want: []string{"198.18.0.2"}},
		{name: "prefix", in: "198.18.0.4/30", want: []string{"198.18.0.4", "198.18.0.5", "198.18.0.6", "198.18.0.7"}},
		{name: "last octet range", in: "198.18.0.2-5", want: []string{"198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5"}},
		{name: "list", in: "198.18.0.7,2,5", want: []string{"198.18.0.2", "198.18.0.5", "198.18.0.7"}},
		{name: "list of ranges, overlapping", in: "198.18.0.1-3,2-4,9", want: []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.9"}},
		{name: "two octets", in: "198.18.0-1.1-254", count: 508, first: "198.18.0.1", last: "198.18.1.254"},
		{name: "third octet list", in: "198.18.1,3.7", want: []string{"198.18.1.7", "198.18.3.7"}},
		{name: "star", in: "198.18.0.*", count: 256, first: "198.18.0.0", last: "198.18.0.255"},
		{name: "dash alone", in: "198.18.2.-", count: 256, first: "198.18.2.0", last: "198.18.2.255"},
		{name: "open ends", in: "198.18.0.-2,254-", want: []string{"198.18.0.0", "198.18.0.1", "198.18.0.2", "198.18.0.254", "198.18.0.255"}},
		{name: "runs merge across octets", in: "198.18.0-3.*", count: 1024, first: "198.18.0.0", last: "198.18.3.255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParseTarget(tc.in)
			if err != nil {
				t.Fatalf("ParseTarget(%q): %v", tc.in, err)
			}
			got := addrsOf(ps)
			if tc.want != nil {
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("ParseTarget(%q) addresses (-want +got):\n%s", tc.in, d)
				}
				return
			}
			if len(got) != tc.count || got[0] != tc.first || got[len(got)-1] != tc.last {
				t.Errorf("ParseTarget(%q): %d addresses %s..%s, want %d %s..%s", tc.in, len(got), got[0], got[len(got)-1], tc.count, tc.first, tc.last)
			}
		})
	}
	for _, bad := range []string{"198.18.0.5-2", "198.18.0.256", "198.18.0.1-300", "198.18.,.1", "198.18.0.1,,2",
		"1-254.1-254.1-254.1-2", "198.18.0.0/33", "224.0.0.1", "256.1.1.1"} {
		ps, err := ParseTarget(bad)
		var ue *probe.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("ParseTarget(%q) = %v, %v; want a usage error", bad, ps, err)
		}
	}
}

func TestResolveTargets(t *testing.T) {
	for _, tc := range []struct {
		name             string
		targets, exclude []string
		want             []string
	}{
		{"no exclusions", []string{"198.18.0.2-4", "198.18.0.9"}, nil, []string{"198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.9"}},
		{"exclude a list and a prefix", []string{"198.18.0.0/29"}, SplitTargetList("198.18.0.1,3,198.18.0.4/31"), []string{"198.18.0.0", "198.18.0.2", "198.18.0.6", "198.18.0.7"}},
		{"exclude addresses no probe may go to", []string{"198.18.0.2"}, []string{"224.0.0.1", "0.0.0.0"}, []string{"198.18.0.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ResolveTargets(tc.targets, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, addrsOf(ps)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	var ue *probe.UsageError
	if _, err := ResolveTargets([]string{"198.18.0.2-3"}, []string{"198.18.0.0/24"}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "excluded") {
		t.Errorf("every target excluded: %v, want a usage error saying so", err)
	}
	if _, err := ResolveTargets(nil, nil); !errors.As(err, &ue) {
		t.Errorf("no targets: %v, want a usage error", err)
	}
}

func TestSplitTargetList(t *testing.T) {
	got := SplitTargetList("198.18.0.2,5,7, 198.18.1.0/24,198.18.2.1-3,9,,localhost.")
	want := []string{"198.18.0.2,5,7", "198.18.1.0/24", "198.18.2.1-3,9", "localhost."}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestReadTargetList(t *testing.T) {
	in := "# lab hosts\n198.18.0.2 198.18.0.3\t198.18.0.10-12 # the servers\n\n  198.18.1.0/30\n"
	got, err := ReadTargetList(strings.NewReader(in), "hosts.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"198.18.0.2", "198.18.0.3", "198.18.0.10-12", "198.18.1.0/30"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestFormatHosts(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		in   []netip.Prefix
		want string
	}{
		{[]netip.Prefix{p("198.18.0.2/32")}, "198.18.0.2"},
		{[]netip.Prefix{p("198.18.0.0/28")}, "198.18.0.0/28"},
		{[]netip.Prefix{p("198.18.0.2/31"), p("198.18.0.4/30"), p("198.18.0.8/32"), p("198.18.0.20/32")}, "198.18.0.2-8 198.18.0.20"},
		{[]netip.Prefix{p("198.18.0.254/31"), p("198.18.1.0/31")}, "198.18.0.254-198.18.1.1"},
	} {
		if got := FormatHosts(tc.in); got != tc.want {
			t.Errorf("FormatHosts(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzOctetSpec: no octet specification panics, and what parses covers only addresses the specification
// names (each address's octets are in the octet's list). Only octet specifications are fed to ParseTarget:
// anything else would be looked up as a host name.
func FuzzOctetSpec(f *testing.F) {
	for _, s := range []string{
		"198.18.0.2-20",     // a last-octet range
		"198.18.0-1.1-254",  // two ranges
		"198.18.0.2,5,7",    // a list
		"198.18.*.-",        // whole octets
		"198.18.0.-2,254-",  // open ends
		"198.18.0.5-2",      // backwards
		"198.18.0.1,,2",     // an empty item
		"1-254.1-254.1-2.1", // many runs
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isOctetSpec(strings.TrimSpace(s)) || len(s) > 200 {
			return
		}
		ps, err := ParseTarget(s)
		if err != nil {
			return
		}
		parts := strings.Split(strings.TrimSpace(s), ".")
		sets := make([][]octetRange, 4)
		for i, p := range parts {
			if sets[i], err = parseOctet(p); err != nil {
				t.Fatalf("ParseTarget(%q) parsed, octet %q does not: %v", s, p, err)
			}
		}
		in := func(rs []octetRange, v byte) bool {
			for _, r := range rs {
				if v >= r.lo && v <= r.hi {
					return true
				}
			}
			return false
		}
		for _, r := range addrspan.Merge(ps) {
			for _, a := range []uint64{r.Lo, r.Hi - 1} {
				b := addrOf(uint32(a)).As4()
				for i := range 4 {
					if !in(sets[i], b[i]) {
						t.Fatalf("ParseTarget(%q) covers %v, whose octet %d is not in %q", s, addrOf(uint32(a)), i+1, parts[i])
					}
				}
			}
		}
	})
}

// addrsOf6 lists every IPv6 address the prefixes cover, in order (few only).
func addrsOf6(ps []netip.Prefix) []string {
	var out []string
	for _, r := range addrspan.Merge6(ps) {
		for a := r.Lo; a.Cmp(r.Last) <= 0 && len(out) < 1<<20; a = a.Add(1) {
			out = append(out, a.Addr().String())
		}
	}
	return out
}

func TestParseTargetIPv6(t *testing.T) {
	for _, tc := range []struct {
		name, in    string
		want        []string // every address, when few
		count       int      // else how many
		first, last string
		prefixes    int // how many prefixes, when nonzero
	}{
		{name: "address", in: "2001:2::2", want: []string{"2001:2::2"}},
		{name: "bracketed", in: "[2001:2::2]", want: []string{"2001:2::2"}},
		{name: "prefix", in: "2001:2::4/126", want: []string{"2001:2::4", "2001:2::5", "2001:2::6", "2001:2::7"}},
		{name: "prefix at the limit", in: "2001:2::/104", count: 1 << 24, first: "2001:2::", last: "2001:2::ff:ffff", prefixes: 1},
		{name: "last group range", in: "2001:2::1-a", count: 10, first: "2001:2::1", last: "2001:2::a"},
		{name: "last group list, hex, unsorted", in: "2001:2::2,a,5", want: []string{"2001:2::2", "2001:2::5", "2001:2::a"}},
		{name: "list of ranges, overlapping", in: "2001:2::1-3,2-4,f", want: []string{"2001:2::1", "2001:2::2", "2001:2::3", "2001:2::4", "2001:2::f"}},
		{name: "full range across groups", in: "2001:2::fffe-2001:2::1:1", want: []string{"2001:2::fffe", "2001:2::ffff", "2001:2::1:0", "2001:2::1:1"}},
		{name: "range in the low word's top", in: "2001:2:0:0:ffff:ffff:ffff:fffe-2001:2:0:1::1", count: 4,
			first: "2001:2::ffff:ffff:ffff:fffe", last: "2001:2:0:1::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParseTarget(tc.in)
			if err != nil {
				t.Fatalf("ParseTarget(%q): %v", tc.in, err)
			}
			if tc.prefixes != 0 && len(ps) != tc.prefixes {
				t.Errorf("ParseTarget(%q) = %v, want %d prefixes", tc.in, ps, tc.prefixes)
			}
			if tc.count == 1<<24 { // too many to list: the prefix says it
				if ps[0] != netip.MustParsePrefix("2001:2::/104") {
					t.Errorf("ParseTarget(%q) = %v", tc.in, ps)
				}
				return
			}
			got := addrsOf6(ps)
			if tc.want != nil {
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("ParseTarget(%q) addresses (-want +got):\n%s", tc.in, d)
				}
				return
			}
			if len(got) != tc.count || got[0] != tc.first || got[len(got)-1] != tc.last {
				t.Errorf("ParseTarget(%q): %d addresses %s..%s, want %d %s..%s", tc.in, len(got), got[0], got[len(got)-1], tc.count, tc.first, tc.last)
			}
		})
	}
}

// IPv6 sweeps above the limit, and ranges without unicast hosts, are refused with a message that says why and
// what to do instead.
func TestParseTargetIPv6Refused(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // in the message
	}{
		{"2001:2::/64", []string{"refusing to sweep 2001:2::/64", "2^64 addresses", "at most 2^24", "/104", "-iL", "2001:2::/120"}},
		{"2001:2::/103", []string{"2^25 addresses", "/104 or longer"}},
		{"::/0", []string{"refusing to sweep ::/0", "2^128"}},
		{"2001:2::-2001:2::100:0", []string{"more than 16777216 addresses"}},
		{"2001:2::1-2001:2::", []string{"runs backwards"}},
		{"2001:2::5-1", []string{"runs backwards"}},
		{"2001:2::1-10000", []string{"not a last group", "0 to ffff"}},
		{"2001:2::1,2001:2::5", []string{"last groups only", "separate targets"}},
		{"2001:2::1-g", []string{"not a last group"}},
		{"2001:2:::1-5", []string{"not an IPv6 address"}},
		{"ff02::1", []string{"multicast"}},
		{"ff02::/120", []string{"multicast"}},
		{"fe80::1-5", []string{"link-local"}},
		{"fe80::1", []string{"link-local"}},
		{"::ffff:c612:1-5", []string{"IPv4-mapped", "IPv4 addresses"}},
		{"::/128", []string{"unspecified"}},
		{"2001:2::/129", []string{"bad host prefix", "2001:2::/120"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ps, err := ParseTarget(tc.in)
			if err == nil {
				t.Fatalf("ParseTarget(%q) = %v, want an error", tc.in, ps)
			}
			var ue *probe.UsageError
			if !errors.As(err, &ue) {
				t.Errorf("ParseTarget(%q): %T %v, want a usage error", tc.in, err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseTarget(%q): %q does not say %q", tc.in, err, w)
				}
			}
		})
	}
}

// Exclusions take any IPv6 address or prefix (a /64 too); IPv4 and IPv6 targets are each subtracted from their own.
func TestResolveTargetsIPv6(t *testing.T) {
	got, err := ResolveTargets([]string{"2001:2::/124", "198.18.0.0/30"}, SplitTargetList("2001:2::/64,198.18.0.1,2001:3::1"))
	// 2001:2::/64 excludes every IPv6 target; the IPv4 ones are left.
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatHosts(got); s != "198.18.0.0 198.18.0.2/31" {
		t.Errorf("left %q, want 198.18.0.0 198.18.0.2/31", s)
	}
	got, err = ResolveTargets([]string{"2001:2::0-f"}, SplitTargetList("2001:2::3,7,a-f"))
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatHosts(got); s != "2001:2::-2 2001:2::4-6 2001:2::8/127" {
		t.Errorf("left %q, want 2001:2::-2 2001:2::4-6 2001:2::8/127", s)
	}
	// What FormatHosts writes, ParseTarget reads back.
	for _, part := range strings.Fields(FormatHosts(got)) {
		if _, err := ParseTarget(part); err != nil {
			t.Errorf("ParseTarget(%q) of FormatHosts' output: %v", part, err)
		}
	}
	if _, err := ResolveTargets([]string{"2001:2::2"}, []string{"2001:2::/48"}); err == nil || !strings.Contains(err.Error(), "every target is excluded") {
		t.Errorf("excluding every IPv6 target: %v", err)
	}
}

// A plan is of one family: IPv4 and IPv6 hosts together are refused, with what to do.
func TestPlanRefusesTwoFamilies(t *testing.T) {
	_, err := newPlan([]netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("2001:2::2/128")}, []PortRange{{80, 80}})
	if err == nil || !strings.Contains(err.Error(), "two families") || !strings.Contains(err.Error(), "two runs") {
		t.Errorf("newPlan of both families: %v", err)
	}
	if _, err := newPlan([]netip.Prefix{netip.MustParsePrefix("2001:2::/64")}, []PortRange{{80, 80}}); err == nil || !strings.Contains(err.Error(), "refusing to sweep") {
		t.Errorf("newPlan of a /64: %v", err)
	}
}
