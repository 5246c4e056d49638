package probe_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
)

// fakeResolver answers names from a table, as a DNS would, without one:
// the tests need no network and no /etc/hosts.
type fakeResolver struct {
	names map[string][]string // name -> addresses, in the resolver's order
	slow  bool                // never answers: waits for the context
	asked []string            // "network host" of each lookup
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, network+" "+host)
	if r.slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var out []netip.Addr
	for _, s := range r.names[host] {
		a := netip.MustParseAddr(s)
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

// ParseTarget takes both families: literals (IPv6 in brackets, or bare
// with a port from -p), and names picked by -4/-6, else the resolver's
// first address.
func TestParseTargetFamilies(t *testing.T) {
	r := &fakeResolver{names: map[string][]string{
		"dual.test":  {"2001:2::2", "198.18.0.2"},
		"dual4.test": {"198.18.0.2", "2001:2::2"},
		"v4.test":    {"198.18.0.2"},
		"v6.test":    {"2001:2::2"},
	}}
	either, v4, v6 := probe.FamilyAny, probe.Family4, probe.Family6
	for _, tt := range []struct {
		in   string
		fam  probe.Family
		port uint16
		want string
	}{
		{"[2001:2::2]:80", either, 0, "[2001:2::2]:80"},
		{"198.18.0.2:7001", either, 0, "198.18.0.2:7001"},
		{"[::ffff:198.18.0.2]:80", either, 0, "198.18.0.2:80"}, // mapped: the IPv4 host
		{"[::1]:80", either, 0, "[::1]:80"},
		{"[2001:2::2]:80", v6, 0, "[2001:2::2]:80"},
		{"198.18.0.2:80", v4, 0, "198.18.0.2:80"},
		{"2001:2::2", either, 7001, "[2001:2::2]:7001"}, // -p
		{"[2001:2::2]", either, 7001, "[2001:2::2]:7001"},
		{"198.18.0.2", either, 7001, "198.18.0.2:7001"},
		{"[2001:2::2]:80", either, 7001, "[2001:2::2]:80"}, // the target's own port wins
		{"dual.test:80", either, 0, "[2001:2::2]:80"},      // the resolver's first
		{"dual4.test:80", either, 0, "198.18.0.2:80"},
		{"dual.test:80", v4, 0, "198.18.0.2:80"},
		{"dual4.test:80", v6, 0, "[2001:2::2]:80"},
		{"v6.test:80", either, 0, "[2001:2::2]:80"},
		{"v6.test", v6, 443, "[2001:2::2]:443"},
		{"v4.test:80", v4, 0, "198.18.0.2:80"},
	} {
		got, err := probe.ParseTarget(tt.in, probe.TargetOptions{Family: tt.fam, Port: tt.port, Resolver: r})
		if err != nil || got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("ParseTarget(%q, %v, port %d) = %v, %v; want %s", tt.in, tt.fam, tt.port, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		fam  probe.Family
		want string
	}{
		{"[2001:2::2]:80", v4, "2001:2::2 is not an IPv4 address, which -4 asks for"},
		{"198.18.0.2:80", v6, "198.18.0.2 is not an IPv6 address, which -6 asks for"},
		{"v4.test:80", v6, `cannot resolve host "v4.test" to an IPv6 address: no such host; without -6 it may resolve to the other family`},
		{"v6.test:80", v4, `cannot resolve host "v6.test" to an IPv4 address`},
		{"nowhere.test:80", either, `cannot resolve host "nowhere.test" to an IPv4 or IPv6 address: no such host`},
	} {
		_, err := probe.ParseTarget(tt.in, probe.TargetOptions{Family: tt.fam, Resolver: r})
		var ue *probe.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTarget(%q, %v) = %v; want a usage error saying %q", tt.in, tt.fam, err, tt.want)
		}
	}
	r.asked = nil
	probe.ParseTarget("dual.test:80", probe.TargetOptions{Family: v6, Resolver: r})
	probe.ParseTarget("dual.test:80", probe.TargetOptions{Resolver: r})
	if want := []string{"ip6 dual.test", "ip dual.test"}; strings.Join(r.asked, ",") != strings.Join(want, ",") {
		t.Errorf("lookups %q, want %q: -6 asks for IPv6 only, no flag for both", r.asked, want)
	}
}

// A name lookup is bounded: a resolver that never answers gives a usage
// error after the wait, not a hang.
func TestParseTargetResolveWait(t *testing.T) {
	start := time.Now()
	_, err := probe.ParseTarget("slow.test:80", probe.TargetOptions{Resolver: &fakeResolver{slow: true}, Wait: 50 * time.Millisecond})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ParseTarget took %v with a 50ms wait", d)
	}
	var ue *probe.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("ParseTarget with a silent resolver = %v; want a usage error saying no answer within 50ms", err)
	}
}
