package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

// TestFirewallCLI: against a routed lab found from --netns, `tcpwalk
// firewall --expect stateful` passes (exit 0) through the stateful firewall
// with the lab's capture and ports chosen by itself, fails (exit 1) through
// the stateless one, and writes JSON and JUnit.
func TestFirewallCLI(t *testing.T) {
	for _, tc := range []struct {
		fw   lab.Firewall
		code int
	}{{lab.FirewallStateful, 0}, {lab.FirewallStateless, 1}} {
		t.Run(string(tc.fw), func(t *testing.T) {
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: tc.fw})
			target := netip.AddrPortFrom(r.TargetAddr, lab.PortHold).String()
			junit := filepath.Join(t.TempDir(), "fw.xml")
			res := runApp(t, "--netns", r.Prober.Name, "firewall", "--expect", "stateful", "--json", "--junit", junit, target)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d", res.code, tc.code)
			}
			var got report.FirewallJSON
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("JSON: %v", err)
			}
			m := got.Matrix
			if !m.Capture || m.Policy != firewall.PolicyStateful {
				t.Errorf("capture %v policy %q: want the lab's capture and stateful", m.Capture, m.Policy)
			}
			for _, c := range m.Cells {
				if c.Outcome == firewall.NotRun {
					t.Errorf("%s / %s not run: %s (the lab's ports are the defaults)", c.State, c.Probe, c.Detail)
				}
			}
			ack := m.Cell(firewall.StateNone, "ACK without a connection")
			wantAck := map[lab.Firewall]firewall.Outcome{lab.FirewallStateful: firewall.Dropped, lab.FirewallStateless: firewall.Delivered}[tc.fw]
			if ack == nil || ack.Outcome != wantAck {
				t.Errorf("unsolicited ACK: %+v, want %s", ack, wantAck)
			}
			x, err := os.ReadFile(junit)
			if err != nil || !strings.Contains(string(x), "firewall established") {
				t.Errorf("junit: %v\n%s", err, x)
			}
			if tc.fw == lab.FirewallStateless && m.Verdict != walk.Fail {
				t.Errorf("verdict %s, want fail", m.Verdict)
			}
		})
	}
}

// TestFirewallCLITable: the table names the firewall that rejected, and
// --trace reports no rewrite through a rejecting firewall.
func TestFirewallCLITable(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: lab.FirewallReject})
	target := netip.AddrPortFrom(r.TargetAddr, lab.PortHold).String()
	res := runApp(t, "--netns", r.Prober.Name, "firewall", "--trace", target)
	if res.code != 0 {
		t.Fatalf("exit %d", res.code)
	}
	for _, want := range []string{"rejected by 198.18.0.254", "rejected by 198.18.2.2", "sent 1 hop(s) before it", "no router changed the SYN"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestFirewallUsage: bad --expect and missing target are usage errors.
func TestFirewallUsage(t *testing.T) {
	for _, args := range [][]string{{"firewall"}, {"firewall", "--expect", "paranoid", "198.18.2.2:7001"}, {"firewall", "--max-hops", "0", "198.18.2.2:7001"}} {
		if res := runApp(t, args...); res.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, res.code, exitUsage)
		}
	}
}

// TestLabStatusAndDownRouted: `lab status` prints the router's ruleset as
// read from the kernel, and `lab down` removes all three namespaces and the
// rules, also when the lab was left behind (its maker gone without Close).
func TestLabStatusAndDownRouted(t *testing.T) {
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	r, err := lab.CreateRouted(&lab.RoutedConfig{Prefix: prefix, Firewall: lab.FirewallStateful})
	labtest.SkipUnlessPermitted(t, err)
	// Left behind: close the handles only, as a crashed `lab up` would.
	r.Prober.Close()
	r.Target.Close()
	r.Routers[0].NS.Close()
	res := runApp(t, "lab", "status", "--prefix", prefix)
	for _, want := range []string{"firewall stateful", "ct state established,related accept", "ct state invalid drop", "policy drop"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("lab status lacks %q", want)
		}
	}
	if res := runApp(t, "lab", "down", "--prefix", prefix); res.code != 0 {
		t.Fatalf("lab down: exit %d", res.code)
	}
	pns, tns, _, _ := lab.Names(prefix)
	for _, n := range append([]string{pns, tns}, lab.RouterNames(prefix)...) {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); !os.IsNotExist(err) {
			t.Errorf("after lab down, %s: %v", n, err)
		}
	}
}

// TestFirewallCLIMiddleboxes: through the lab's SYN proxy the table calls
// the handshake proxied, names the router at hop 1 with its evidence, and
// gives the target's own TTL (63), never the proxy's (64), as the target's;
// --expect stateful passes. Through the one-router clamp lab, --trace names
// the clamping router, which no ICMP quote shows (the capture does).
func TestFirewallCLIMiddleboxes(t *testing.T) {
	for _, tc := range []struct {
		fw          lab.Firewall
		want, never []string
	}{
		{lab.FirewallSynproxy,
			[]string{"the target's own segments arrive with TTL 63", "a middlebox at hop 1 (198.18.0.254)", "proxied",
				"the connection is proxied", "never reached the target (capture)", "--expect stateful: pass",
				"trace: the SYN with TTL 2, which needs 1 router(s) to pass, was answered with TTL 64, from hop 1"},
			[]string{"arrive with TTL 64\n", "rejected by"}},
		{lab.FirewallClamp, []string{"rewritten by hop 1 (198.18.0.254): mss 1460 → 1000"}, []string{"no router changed the SYN"}},
	} {
		t.Run(string(tc.fw), func(t *testing.T) {
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: tc.fw})
			target := netip.AddrPortFrom(r.TargetAddr, lab.PortHold).String()
			args := []string{"--netns", r.Prober.Name, "firewall", "--trace", target}
			if tc.fw == lab.FirewallSynproxy {
				args = []string{"--netns", r.Prober.Name, "firewall", "--trace", "--expect", "stateful", target}
			}
			res := runApp(t, args...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("output lacks %q\n%s", w, res.stdout)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(res.stdout, n) {
					t.Errorf("output has %q\n%s", n, res.stdout)
				}
			}
		})
	}
}
