package probe_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe"
)

// noNames is a resolver that knows no name, and asks no one.
type noNames struct{}

func (noNames) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("no such host")
}

// FuzzParseTarget: ParseTarget never panics; what it accepts is an IPv4 or
// IPv6 unicast destination with a real port that reads back the same from
// its own text; what it refuses is a usage error on one line. Names go to
// a resolver that knows none, so no input sends a DNS query.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"198.18.0.2:80",          // the lab's target
		"198.18.0.2:65535",       // the highest port
		"198.18.0.2:0",           // port 0 is no TCP port
		"198.18.0.2:65536",       // one past the highest
		"198.18.0.2",             // no port
		"198.18.0.2:",            // empty port
		":80",                    // no host
		"[::1]:80",               // IPv6 loopback
		"[2001:2::2]:7001",       // the lab's IPv6 target
		"2001:2::2:80",           // IPv6 without brackets: no port
		"[fe80::1%eth0]:80",      // link-local with a zone: refused
		"name.test:80",           // a name: the resolver knows none
		"[::ffff:198.18.0.2]:80", // IPv4-mapped: unmapped and taken
		"224.0.0.1:80",           // multicast
		"255.255.255.255:80",     // broadcast
		"0.0.0.0:80",             // unspecified
		"1.2.3:80",               // three octets
		"300.1.1.1:80",           // octet too big
		"nowhere.invalid:80",     // RFC 6761 name: refused without a lookup
		"198.18.0.2:+80",         // a sign
		"198.18.0.2:0x50",        // hex port
		"a:b:c",                  // too many colons
		"198.18.0.2:80\n",        // a newline in the port
	} {
		f.Add(s)
	}
	opt := probe.TargetOptions{Resolver: noNames{}}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := probe.ParseTarget(s, opt)
		if err != nil {
			var ue *probe.UsageError
			if !errors.As(err, &ue) {
				t.Errorf("ParseTarget(%q): %v is not a usage error", s, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseTarget(%q): message spans lines: %q", s, err)
			}
			return
		}
		if ap.Port() == 0 || probe.CheckDestination(ap.Addr()) != nil {
			t.Fatalf("ParseTarget(%q) = %v: not a unicast destination with a port", s, ap)
		}
		again, err := probe.ParseTarget(ap.String(), opt)
		if err != nil || again != ap {
			t.Fatalf("ParseTarget(%q) = %v, but its text reads back as %v, %v", s, ap, again, err)
		}
	})
}

// FuzzParsePort: ParsePort accepts exactly the decimal numbers 1 to 65535.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "1", "65535", "0", "65536", "", "-1", "+80", "0x50", "080", " 80", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		port, err := probe.ParsePort(s)
		n, perr := strconv.ParseUint(s, 10, 16)
		want := perr == nil && n >= 1
		if (err == nil) != want || (want && uint64(port) != n) {
			t.Fatalf("ParsePort(%q) = %d, %v; strconv says %d, %v", s, port, err, n, perr)
		}
	})
}
