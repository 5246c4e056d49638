package lab_test

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// echoFrom connects from ns to addr (IPv4 or IPv6) with a kernel socket and
// echoes one line.
func echoFrom(ns *netns.NS, addr netip.AddrPort, wait time.Duration) error {
	network := "tcp4"
	if addr.Addr().Is6() {
		network = "tcp6"
	}
	return ns.Do(func() error {
		c, err := net.DialTimeout(network, addr.String(), wait)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping\n" {
			return errors.New("echo answered " + string(buf))
		}
		return nil
	})
}

// TestRoutedForwards: with one and with two routers and no rules, the
// prober reaches the target's echo server through the router(s), and the
// addresses are those documented.
func TestRoutedForwards(t *testing.T) {
	for _, n := range []int{1, 2} {
		r := labtest.NewRouted(t, lab.RoutedConfig{Routers: n})
		if len(r.Routers) != n {
			t.Fatalf("%d routers: got %d", n, len(r.Routers))
		}
		if r.TargetAddr != lab.RoutedTargetAddr.Addr() || r.ProberAddr != lab.DefaultProberAddr.Addr() {
			t.Errorf("addresses %s, %s", r.ProberAddr, r.TargetAddr)
		}
		if err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr, lab.PortEcho), 3*time.Second); err != nil {
			t.Errorf("%d routers: echo through the path: %v", n, err)
		}
		// Dual-stack: the same over IPv6, from 2001:2::1 to 2001:2:0:2::2.
		if r.TargetAddr6 != lab.RoutedTargetAddr6.Addr() || r.ProberAddr6 != lab.DefaultProberAddr6.Addr() {
			t.Errorf("IPv6 addresses %s, %s", r.ProberAddr6, r.TargetAddr6)
		}
		if err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr6, lab.PortEcho), 3*time.Second); err != nil {
			t.Errorf("%d routers: echo through the path over IPv6: %v", n, err)
		}
		checkNoDefaultRoutes(t, r)
		// lab.Open sees a routed lab like a two-namespace one.
		l, err := lab.Open(r.Prefix)
		if err != nil {
			t.Fatalf("Open(%s): %v", r.Prefix, err)
		}
		if l.TargetAddr != r.TargetAddr || l.TargetAddr6 != r.TargetAddr6 {
			t.Errorf("Open: target %s, %s, want %s, %s", l.TargetAddr, l.TargetAddr6, r.TargetAddr, r.TargetAddr6)
		}
		l.Release()
	}
}

// TestFirewallProfiles: each profile's ruleset is accepted by the kernel and
// read back (profile and rule texts) as installed; the filtering ones
// (stateless, stateful, synproxy, loose) refuse a connection to PortBlocked
// and allow PortEcho: through the SYN proxy too, whose handshake the
// prober's kernel completes with the router and which then reaches the
// target.
func TestFirewallProfiles(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{})
	fw := r.Routers[0].NS
	for _, f := range lab.Firewalls() {
		if err := lab.InstallFirewall(fw, f); err != nil {
			t.Fatalf("install %s: %v", f, err)
		}
		got, rules, err := lab.ReadFirewall(fw)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		if got != f {
			t.Errorf("read back profile %q, want %q", got, f)
		}
		want := f.Rules()[1:] // without the chain line
		if len(want) == 0 {
			want = nil
		}
		if diff := cmp.Diff(want, rules); diff != "" {
			t.Errorf("%s: rules (-want +got):\n%s", f, diff)
		}
		// synproxy needs conntrack's loose pickup off (the client's ACK
		// must be invalid to reach it); every other profile has the
		// default back.
		var loose []byte
		if err := fw.Do(func() (err error) {
			loose, err = os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")
			return err
		}); err != nil && !(errors.Is(err, fs.ErrNotExist) && f == lab.FirewallNone) {
			t.Fatalf("%s: read nf_conntrack_tcp_loose: %v", f, err)
		}
		if want := map[bool]string{true: "0\n", false: "1\n"}[f == lab.FirewallSynproxy]; loose != nil && string(loose) != want {
			t.Errorf("%s: nf_conntrack_tcp_loose %q, want %q", f, loose, want)
		}
		filtering := f == lab.FirewallStateless || f == lab.FirewallStateful || f == lab.FirewallSynproxy || f == lab.FirewallLoose
		if filtering || f == lab.FirewallV6Open {
			if err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr, lab.PortEcho), 3*time.Second); err != nil {
				t.Errorf("%s: allowed port: %v", f, err)
			}
			err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr, lab.PortBlocked), 300*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), "timeout") {
				t.Errorf("%s: blocked port: err = %v, want a timeout (SYN dropped)", f, err)
			}
		}
		// The IPv6 twin: the same verdicts over IPv6, except for v6-open,
		// whose ip table IPv6 never meets: the SYN to the blocked port
		// reaches the target, whose kernel resets it (nothing listens).
		if f != lab.FirewallNone {
			if err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr6, lab.PortEcho), 3*time.Second); err != nil {
				t.Errorf("%s: allowed port over IPv6: %v", f, err)
			}
			err := echoFrom(r.Prober, netip.AddrPortFrom(r.TargetAddr6, lab.PortBlocked), 300*time.Millisecond)
			switch {
			case filtering && (err == nil || !strings.Contains(err.Error(), "timeout")):
				t.Errorf("%s: blocked port over IPv6: err = %v, want a timeout (SYN dropped, as over IPv4)", f, err)
			case f == lab.FirewallV6Open && (err == nil || !strings.Contains(err.Error(), "refused")):
				t.Errorf("%s: blocked port over IPv6: err = %v, want connection refused (IPv6 unfiltered)", f, err)
			}
		}
		if want := map[bool]string{true: "ip", false: "inet"}[f == lab.FirewallV6Open]; f.Family() != want {
			t.Errorf("%s: table family %s, want %s", f, f.Family(), want)
		}
	}
	if err := lab.RemoveFirewall(fw); err != nil {
		t.Fatal(err)
	}
	if got, rules, err := lab.ReadFirewall(fw); err != nil || got != lab.FirewallNone || len(rules) != 0 {
		t.Errorf("after RemoveFirewall: %q %q %v, want none", got, rules, err)
	}
}

// checkNoDefaultRoutes: no namespace of the routed lab has a default route
// of either family; the IPv6 range goes through the next router.
func checkNoDefaultRoutes(t *testing.T, r *lab.Routed) {
	t.Helper()
	nss := []*netns.NS{r.Prober, r.Target}
	for _, rt := range r.Routers {
		nss = append(nss, rt.NS)
	}
	for _, ns := range nss {
		for _, fam := range []string{"-4", "-6"} {
			out, err := exec.Command("ip", "-n", ns.Name, fam, "route", "show", "default").CombinedOutput()
			if err != nil {
				t.Fatalf("ip -n %s %s route: %v: %s", ns.Name, fam, err, out)
			}
			if strings.TrimSpace(string(out)) != "" {
				t.Errorf("%s has a default route (%s): %s", ns.Name, fam, out)
			}
		}
	}
}

// crashEnv makes the test binary a child that builds a routed lab and dies
// by SIGKILL, as a crashed `tcpwalk lab up` would.
const crashEnv = "TCPWALK_TEST_ROUTED_CRASH"

func TestMain(m *testing.M) {
	if p := os.Getenv(crashEnv); p != "" {
		if _, err := lab.CreateRouted(&lab.RoutedConfig{Prefix: p, Routers: 2, Firewall: lab.FirewallStateful, Firewall2: lab.FirewallClamp}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		p, _ := os.FindProcess(os.Getpid())
		p.Kill()
		select {}
	}
	os.Exit(m.Run())
}

// TestDestroyRoutedAfterCrash: a process that made a routed lab (two
// routers with rules) is killed; Destroy removes all four namespaces and the
// rules, even from a router namespace that someone still holds open.
func TestDestroyRoutedAfterCrash(t *testing.T) {
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+prefix)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		if strings.Contains(string(out), "permission") || strings.Contains(string(out), "not permitted") {
			labtest.SkipUnlessPermitted(t, os.ErrPermission)
		}
		t.Fatalf("child: %v (want killed by a signal): %s", err, out)
	}
	pns, tns, _, _ := lab.Names(prefix)
	names := append([]string{pns, tns}, lab.RouterNames(prefix)...)
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); err != nil {
			t.Fatalf("after the crash, namespace %s: %v (want it left behind)", n, err)
		}
	}
	held, err := netns.Open(lab.RouterNames(prefix)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if f, _, err := lab.ReadFirewall(held); err != nil || f != lab.FirewallStateful {
		t.Fatalf("left-behind router: firewall %q, %v; want stateful", f, err)
	}
	if err := lab.Destroy(prefix); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Destroy, namespace %s: %v (want gone)", n, err)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(held.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range tabs {
		t.Errorf("after Destroy, the held router namespace still has table %s", tab.Name)
	}
	// Destroy again: nothing left, no error.
	if err := lab.Destroy(prefix); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}
