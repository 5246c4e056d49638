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
