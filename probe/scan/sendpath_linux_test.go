package scan

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

func TestParseSendPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SendPath
	}{{"auto", SendAuto}, {"raw", SendRaw}, {"PACKET", SendPacket}, {"", 0}, {"af_packet", 0}} {
		got, err := ParseSendPath(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseSendPath(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if tc.want != 0 && !strings.EqualFold(got.String(), tc.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	cfg := &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}, Ports: []PortRange{{1, 2}}}
	if n, err := cfg.normalize(); err != nil || n.SendPath != SendAuto {
		t.Errorf("normalize: send path %v, %v; want auto", n.SendPath, err)
	}
	cfg.SendPath = 9
	var ue *probe.UsageError
	if _, err := cfg.normalize(); !errors.As(err, &ue) {
		t.Errorf("normalize with send path 9 = %v, want a usage error", err)
	}
}

// Every send path classifies the same lab alike and counts each probe once; auto takes the packet path over the
// lab's veth, and the raw path where the packet path cannot go.
func TestSendPaths(t *testing.T) {
	sl := newScanLab(t, []uint16{22, 80}, 8, []uint16{25}, []uint16{23})
	ports := portRange(1, 3000)
	for _, p := range sl.Open {
		if p > 3000 {
			ports = append(ports, p)
		}
	}
	var pr []PortRange
	for _, p := range ports {
		pr = append(pr, PortRange{p, p})
	}
	pr = mergePorts(pr)
	for _, tc := range []struct {
		ask, want SendPath
	}{{SendRaw, SendRaw}, {SendPacket, SendPacket}, {SendAuto, SendPacket}} {
		t.Run(tc.ask.String(), func(t *testing.T) {
			res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)}, Ports: pr,
				Rate: 200_000, Retries: 1, Wait: 300 * time.Millisecond, SendPath: tc.ask, NetNS: sl.Prober})
			t.Logf("%v: %d probes at %.0f probes/s on %v (%s)", tc.ask, res.Sent, res.SendRate(), res.SendPath, res.SendPathNote)
			if res.SendPath != tc.want {
				t.Errorf("send path %v (%s), want %v", res.SendPath, res.SendPathNote, tc.want)
			}
			sl.check(t, res, ports)
			if res.Probed != uint64(len(ports)) || res.Sent-res.Retried != uint64(len(ports)) {
				t.Errorf("probed %d, sent %d with %d retried; want %d probed once each", res.Probed, res.Sent, res.Retried, len(ports))
			}
		})
	}
}

// Where the packet path cannot go, auto falls back with a note and an explicit packet path is an error.
func TestSendPathFallback(t *testing.T) {
	sl := newScanLab(t, []uint16{80}, 0, nil, nil)
	lo := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	onLink := []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 30)} // the target and its neighbours: one MAC each
	var warnings []string
	for _, tc := range []struct {
		name  string
		hosts []netip.Prefix
		note  string
	}{
		{"loopback", lo, "local address"},
		{"on-link range", onLink, "each with its own MAC address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Type: TypeSYN, Hosts: tc.hosts, Ports: []PortRange{{80, 80}}, Rate: 200_000,
				Wait: 100 * time.Millisecond, NetNS: sl.Prober, Warn: func(m string) { warnings = append(warnings, m) }}
			res := run(t, cfg)
			if res.SendPath != SendRaw || !strings.Contains(res.SendPathNote, tc.note) {
				t.Errorf("auto: send path %v (%s); want raw, saying %q", res.SendPath, res.SendPathNote, tc.note)
			}
			if len(warnings) == 0 {
				t.Errorf("auto at 200k probes/s fell back without a warning")
			}
			warnings = nil
			cfg.SendPath = SendPacket
			var ee *probe.EnvError
			if _, err := Run(t.Context(), cfg); !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.note) {
				t.Errorf("--send-path packet: %v; want an environment error saying %q", err, tc.note)
			}
		})
	}
	// A chain on the prober's input hook: auto will not send past conntrack's back.
	t.Run("input chain", func(t *testing.T) {
		c, err := nftables.New(nftables.WithNetNSFd(sl.Prober.Fd()))
		if err != nil {
			labtest.SkipUnlessPermitted(t, err)
		}
		var b [4]byte
		rand.Read(b[:])
		tab := c.AddTable(&nftables.Table{Name: "twt_sendpath_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyINet})
		pol := nftables.ChainPolicyAccept
		c.AddChain(&nftables.Chain{Name: "input", Table: tab, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &pol})
		if err := c.Flush(); err != nil {
			labtest.SkipUnlessPermitted(t, err)
		}
		t.Cleanup(func() {
			c.DelTable(tab)
			if err := c.Flush(); err != nil {
				t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
			}
		})
		res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.PrefixFrom(sl.TargetAddr, 32)},
			Ports: []PortRange{{80, 80}}, Wait: 100 * time.Millisecond, NetNS: sl.Prober})
		if res.SendPath != SendRaw || !strings.Contains(res.SendPathNote, tab.Name) {
			t.Errorf("send path %v (%s); want raw, naming table %s", res.SendPath, res.SendPathNote, tab.Name)
		}
		if st := func() State {
			for p := range res.PortResults(sl.TargetAddr) {
				return p.State
			}
			return 0
		}(); st != Open {
			t.Errorf("port 80 is %v, want open", st)
		}
	})
}
