package probe_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// TestCheckLabRoute: a lab-range address that would leave through a default
// route is refused; the lab's own connected subnet and addresses outside the
// lab range pass.
func TestCheckLabRoute(t *testing.T) {
	l := labtest.NewBare(t)
	check := func(dst string) error {
		var got error
		if err := l.Prober.Do(func() error { got = probe.CheckLabRoute(netip.MustParseAddr(dst)); return nil }); err != nil {
			t.Fatalf("Do: %v", err)
		}
		return got
	}
	// No default route in the lab: an unknown lab address has no route at
	// all, which the send itself reports.
	if err := check("198.18.5.5"); err != nil {
		t.Errorf("without a default route: %v", err)
	}
	// Give the prober a default route via the target, as a host's uplink.
	if err := l.Prober.Do(func() error {
		link, err := netlink.LinkByName(l.ProberIf)
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(l.TargetAddr.AsSlice())})
	}); err != nil {
		t.Fatalf("add a default route: %v", err)
	}
	err := check("198.18.5.5")
	if err == nil || !strings.Contains(err.Error(), "default route") {
		t.Errorf("lab address through the default route: %v, want a refusal naming the default route", err)
	}
	var env *probe.EnvError
	if err != nil && !errors.As(err, &env) {
		t.Errorf("refusal %T is not an EnvError (exit status 3)", err)
	}
	if err := check(l.TargetAddr.String()); err != nil {
		t.Errorf("the lab's connected target: %v", err)
	}
	if err := check("192.0.2.7"); err != nil {
		t.Errorf("an address outside the lab range: %v", err)
	}
}

// TestCheckLabRoute6 is TestCheckLabRoute for the lab's IPv6 range,
// 2001:2::/48.
func TestCheckLabRoute6(t *testing.T) {
	l := labtest.NewBare(t)
	check := func(dst string) error {
		var got error
		if err := l.Prober.Do(func() error { got = probe.CheckLabRoute(netip.MustParseAddr(dst)); return nil }); err != nil {
			t.Fatalf("Do: %v", err)
		}
		return got
	}
	if err := check("2001:2:0:5::5"); err != nil {
		t.Errorf("without a default route: %v", err)
	}
	if err := l.Prober.Do(func() error {
		link, err := netlink.LinkByName(l.ProberIf)
		if err != nil {
			return err
		}
		_, all, _ := net.ParseCIDR("::/0")
		return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: all, Gw: net.IP(l.TargetAddr6.AsSlice())})
	}); err != nil {
		t.Fatalf("add an IPv6 default route: %v", err)
	}
	if err := check("2001:2:0:5::5"); err == nil || !strings.Contains(err.Error(), "default route") || !strings.Contains(err.Error(), "2001:2::/48") {
		t.Errorf("lab address through the IPv6 default route: %v, want a refusal naming the default route and 2001:2::/48", err)
	}
	if err := check(l.TargetAddr6.String()); err != nil {
		t.Errorf("the lab's connected IPv6 target: %v", err)
	}
	if err := check("2001:db8::7"); err != nil {
		t.Errorf("an address outside the lab range: %v", err)
	}
}
