package main

import (
	"context"
	"encoding/json"
	"net"
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

// TestFirewallParityCLI: `tcpwalk firewall HOST4:PORT HOST6:PORT` on the
// routed lab. Through v6-open (strict IPv4, IPv6 unfiltered) the text
// opens with the finding, the JSON lists the 10 rows a stateful firewall
// refuses as v4/v6 differences, --junit fails the parity case, --expect
// stateful holds on IPv4 and fails on IPv6, and the exit status is 1.
// Through stateful (one inet table) there is no difference and exit 0.
func TestFirewallParityCLI(t *testing.T) {
	for _, fw := range []lab.Firewall{lab.FirewallV6Open, lab.FirewallStateful} {
		t.Run(string(fw), func(t *testing.T) {
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
			t4 := netip.AddrPortFrom(r.TargetAddr, lab.PortHold).String()
			t6 := netip.AddrPortFrom(r.TargetAddr6, lab.PortHold).String()
			junit := filepath.Join(t.TempDir(), "parity.xml")
			// The IPv6 target first: the order does not matter.
			res := runApp(t, "--netns", r.Prober.Name, "firewall", "--expect", "stateful", "--junit", junit, t6, t4)
			text := runApp(t, "--netns", r.Prober.Name, "firewall", t4, t6)
			var out struct {
				Matrix  struct{ Target string }
				Matrix6 struct {
					Target  string
					Verdict string
				}
				Parity struct {
					Differences []struct{ State, Probe, IPv4, IPv6 string }
					Verdict     string
				}
			}
			js := runApp(t, "--netns", r.Prober.Name, "firewall", "--json", t4, t6)
			if err := json.Unmarshal([]byte(js.stdout), &out); err != nil {
				t.Fatalf("--json: %v\n%s", err, js.stdout)
			}
			if out.Matrix.Target != t4 || out.Matrix6.Target != t6 {
				t.Errorf("--json: matrix %q, matrix6 %q; want %s, %s", out.Matrix.Target, out.Matrix6.Target, t4, t6)
			}
			xml, err := os.ReadFile(junit)
			if err != nil {
				t.Fatal(err)
			}
			if fw == lab.FirewallStateful {
				if res.code != 0 || text.code != 0 || len(out.Parity.Differences) != 0 || !strings.Contains(text.stdout, "no difference") {
					t.Errorf("stateful: exits %d/%d, differences %v:\n%s", res.code, text.code, out.Parity.Differences, text.stdout)
				}
				if strings.Contains(string(xml), "<failure") {
					t.Errorf("stateful: JUnit has a failure:\n%s", xml)
				}
				return
			}
			if res.code != exitNoReply || text.code != exitNoReply || js.code != exitNoReply {
				t.Errorf("v6-open: exits %d, %d, %d; want %d (a difference is a failing finding)", res.code, text.code, js.code, exitNoReply)
			}
			if !strings.HasPrefix(text.stdout, "firewall parity of "+t4+" (IPv4) and "+t6+" (IPv6)\nFINDING: 10 of 18 compared rows differ") {
				t.Errorf("v6-open: the text does not open with the finding:\n%s", text.stdout)
			}
			if n := len(out.Parity.Differences); n != 10 || out.Parity.Verdict != "fail" {
				t.Errorf("v6-open: %d differences, verdict %s; want 10, fail", n, out.Parity.Verdict)
			}
			for _, d := range out.Parity.Differences {
				if d.IPv4 != "dropped" || d.IPv6 != "delivered" {
					t.Errorf("v6-open: %s / %s: IPv4 %s, IPv6 %s", d.State, d.Probe, d.IPv4, d.IPv6)
				}
			}
			if !strings.Contains(res.stdout, "--expect stateful: IPv4 pass, IPv6 fail") {
				t.Errorf("v6-open: --expect per family:\n%s", res.stdout)
			}
			if !strings.Contains(string(xml), `name="firewall parity"`) || !strings.Contains(string(xml), "the families differ: IPv4 dropped, IPv6 delivered") {
				t.Errorf("v6-open: JUnit lacks the parity failure:\n%s", xml)
			}
			// One name with both families is a two-family run (.test never
			// resolves for real, RFC 6761 §6.2).
			nameResolver = fakeResolver{"dual.test": {r.TargetAddr, r.TargetAddr6}}
			t.Cleanup(func() { nameResolver = nil })
			byName := runApp(t, "--netns", r.Prober.Name, "firewall", "dual.test:7001")
			if byName.code != exitNoReply || !strings.Contains(byName.stdout, "FINDING: 10 of 18 compared rows differ") {
				t.Errorf("by name: exit %d:\n%s%s", byName.code, byName.stdout, byName.stderr)
			}
		})
	}
}

// fakeResolver answers names from its map, for either family.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range f[host] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// TestFirewallTwoTargetsUsage: two targets must be one of each family.
func TestFirewallTwoTargetsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"firewall", "198.18.2.2:7001", "198.18.2.3:7001"},
		{"firewall", "[2001:2::2]:7001", "[2001:2::3]:7001"},
		{"firewall", "198.18.2.2:7001", "[2001:2::2]:7001", "198.18.2.3:7001"},
		{"firewall", "--trace", "198.18.2.2:7001", "[2001:2::2]:7001"},
	} {
		if res := runApp(t, args...); res.code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, res.code, exitUsage, res.stderr)
		}
	}
}
