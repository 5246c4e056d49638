package firewall_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

var (
	fwAddr6     = lab.RouterProberSide6.Addr()
	targetAddr6 = lab.RoutedTargetAddr6.Addr()
)

// implied6 is implied for the IPv6 matrix: the same as IPv4's for every
// profile written once for both families (inet), with the router's and the
// target's IPv6 addresses; v6-open's ip table never meets IPv6, whose
// matrix is then an open path's.
func implied6(fw lab.Firewall) map[key]want {
	if fw == lab.FirewallV6Open {
		return implied(lab.FirewallNone)
	}
	m := implied(fw)
	for k, w := range m {
		switch w.by {
		case fwAddr:
			w.by = fwAddr6
		case targetAddr:
			w.by = targetAddr6
		}
		m[k] = w
	}
	return m
}

// TestProfileMatrixIPv6: each firewall profile's IPv6 twin yields, over
// IPv6, the matrix its ruleset implies, seen by a capture at the target:
// IPv4's for the inet profiles, an open path's for v6-open. The target's
// hop limit is 63 (64 less one router, RFC 8200 §3).
//
// synproxy is left out: the kernel's nftables synproxy drops every SYN of
// ours over IPv6 (nft trace: verdict drop at the synproxy rule; its
// syn_received counter does not move). nft_synproxy_do_eval
// (net/netfilter/nft_synproxy.c) verifies the TCP checksum with
// nf_ip_checksum, IPv4's pseudo-header, for both families: our raw SYN
// carries its full, correct checksum (tcpdump agrees) and fails that check,
// while a kernel socket's SYN, whose checksum veth leaves to offload
// (CHECKSUM_PARTIAL, not verified), passes (TestFirewallProfiles). Over
// IPv4 the same raw SYN is proxied (TestProfileMatrix).
func TestProfileMatrixIPv6(t *testing.T) {
	for _, fw := range lab.Firewalls() {
		if fw == lab.FirewallSynproxy {
			continue
		}
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
			m := runMatrix(t, r, r.TargetAddr6, true)
			if m.TargetTTL != 63 {
				t.Errorf("target hop limit %d, want 63 (64 less one router)", m.TargetTTL)
			}
			if m.Target.Addr() != targetAddr6 || m.Local != r.ProberAddr6 {
				t.Errorf("matrix %s → %s, want %s → %s", m.Local, m.Target, r.ProberAddr6, targetAddr6)
			}
			exp := implied6(fw)
			for _, c := range m.Cells {
				w, ok := exp[key{c.State, c.Probe}]
				if !ok {
					w = want{outcome: firewall.Delivered}
				}
				if c.Outcome != w.outcome {
					t.Errorf("%s / %s: %s (%s), want %s", c.State, c.Probe, c.Outcome, c.Detail, w.outcome)
					continue
				}
				if w.by.IsValid() && c.RejectedBy != w.by {
					t.Errorf("%s / %s: rejected by %s, want %s (%s)", c.State, c.Probe, c.RejectedBy, w.by, c.Detail)
				}
				if w.outcome == firewall.Rejected && w.by == fwAddr6 && !strings.Contains(c.Detail, "ICMPv6") {
					t.Errorf("%s / %s: detail %q, want the router's ICMPv6 error", c.State, c.Probe, c.Detail)
				}
			}
			checkNoRetransmissionReject(t, fw, m)
		})
	}
}

// TestParityLab: on the routed lab, the parity run reports the broken
// ruleset (v6-open: stateful for IPv4 only) as v4/v6 differences, exactly
// the rows a stateful firewall refuses, each IPv4-refused and
// IPv6-delivered, and the consistent rulesets (one inet table) as none.
// synproxy is left out (see TestProfileMatrixIPv6).
func TestParityLab(t *testing.T) {
	for _, fw := range []lab.Firewall{lab.FirewallNone, lab.FirewallStateless, lab.FirewallStateful, lab.FirewallReject,
		lab.FirewallClamp, lab.FirewallLoose, lab.FirewallV6Open} {
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
			cfg := func(remote netip.Addr) firewall.Config {
				p, err := probe.Open(probe.Config{Remote: remote, NetNS: r.Prober})
				labtest.SkipUnlessPermitted(t, err)
				t.Cleanup(func() { p.Close() })
				return firewall.Config{Prober: p, Port: lab.PortHold, BlockedPort: lab.PortBlocked,
					ClosePort: lab.PortClose, CloseRequest: []byte("GET / HTTP/1.0\r\n\r\n"), Capture: r.Target}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			par, err := firewall.RunParity(ctx, cfg(r.TargetAddr), cfg(r.TargetAddr6))
			if err != nil {
				t.Fatalf("RunParity through %s: %v", fw, err)
			}
			if par.V4.Target.Addr() != r.TargetAddr || par.V6.Target.Addr() != r.TargetAddr6 {
				t.Errorf("targets %s and %s", par.V4.Target, par.V6.Target)
			}
			if len(par.Uncompared) != 0 {
				t.Errorf("%s: uncompared rows %+v, want none (a clean path, a capture)", fw, par.Uncompared)
			}
			if fw != lab.FirewallV6Open {
				if len(par.Differences) != 0 || par.Verdict != walk.Pass {
					t.Errorf("%s (one inet table): differences %v, verdict %s; want none, pass", fw, par.Differences, par.Verdict)
				}
				return
			}
			var got []key
			for _, d := range par.Differences {
				got = append(got, key{d.State, d.Probe})
				if d.V4 != firewall.Dropped || d.V6 != firewall.Delivered {
					t.Errorf("%s: IPv4 %s, IPv6 %s; want dropped, delivered", d, d.V4, d.V6)
				}
			}
			if diff := cmp.Diff(refusedByStateful, got, cmp.AllowUnexported(key{})); diff != "" {
				t.Errorf("v6-open: differing rows (-want +got):\n%s", diff)
			}
			if par.Verdict != walk.Fail {
				t.Errorf("v6-open: verdict %s, want fail", par.Verdict)
			}
			// --expect per family: stateful holds on IPv4, fails on IPv6.
			par.Judge(firewall.PolicyStateful)
			if par.V4.Verdict != walk.Pass || par.V6.Verdict != walk.Fail || par.Verdict != walk.Fail {
				t.Errorf("--expect stateful: IPv4 %s, IPv6 %s, parity %s; want pass, fail, fail", par.V4.Verdict, par.V6.Verdict, par.Verdict)
			}
			if len(par.Differences) != len(refusedByStateful) {
				t.Errorf("after Judge: %d differences, want %d", len(par.Differences), len(refusedByStateful))
			}
		})
	}
}

// TestParityLabNoCapture: without a capture at the target (the usual case
// outside a lab), the answers alone still find v6-open's hole: every row
// the target answers over IPv6 that IPv4's stateful rules refuse is
// reported, IPv4 dropped or no-answer (an out-of-window ACK's answer is one
// a TCP may withhold, RFC 5961 §7) and IPv6 delivered (the target's answer
// proves it), and nothing else is; the
// stateful ruleset still shows no difference. Rows the target may ignore
// silently (FIN, NULL and Xmas scans without a connection) are no-answer on
// both families: silence cannot tell a drop from an ignore there.
func TestParityLabNoCapture(t *testing.T) {
	answered := []key{
		{firewall.StateNone, "SYN to a blocked port"},
		{firewall.StateNone, "unsolicited SYN-ACK"},
		{firewall.StateNone, "ACK without a connection"},
		{firewall.StateHandshaking, "ACK of an unsent number"},
		{firewall.StateEstablished, "data out of window"},
		{firewall.StateEstablished, "ACK out of window"},
		{firewall.StateClosing, "ACK out of window"},
	}
	for _, fw := range []lab.Firewall{lab.FirewallStateful, lab.FirewallV6Open} {
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
			cfg := func(remote netip.Addr) firewall.Config {
				p, err := probe.Open(probe.Config{Remote: remote, NetNS: r.Prober})
				labtest.SkipUnlessPermitted(t, err)
				t.Cleanup(func() { p.Close() })
				return firewall.Config{Prober: p, Port: lab.PortHold, BlockedPort: lab.PortBlocked,
					ClosePort: lab.PortClose, CloseRequest: []byte("GET / HTTP/1.0\r\n\r\n")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			par, err := firewall.RunParity(ctx, cfg(r.TargetAddr), cfg(r.TargetAddr6))
			if err != nil {
				t.Fatalf("RunParity through %s: %v", fw, err)
			}
			if par.V4.Capture || par.V6.Capture {
				t.Fatalf("a capture was used")
			}
			var got []key
			for _, d := range par.Differences {
				got = append(got, key{d.State, d.Probe})
				if !(d.V4.Refused() || d.V4 == firewall.NoAnswer) || d.V6 != firewall.Delivered {
					t.Errorf("%s: IPv4 %s (%s), IPv6 %s (%s); want refused or no-answer, delivered", d, d.V4, d.V4Detail, d.V6, d.V6Detail)
				}
			}
			var want []key
			if fw == lab.FirewallV6Open {
				want = answered
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(key{})); diff != "" {
				t.Errorf("%s without a capture: differing rows (-want +got):\n%s", fw, diff)
			}
		})
	}
}
