package scan

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tcpwalk/tcpwalk/craft"
)

// skipScanner is a scanner of 198.18.0.0/24 × ports, shard sh, with 198.18.0.255 and an address outside the
// hosts marked as broadcast.
func skipScanner(t *testing.T, ports []PortRange, sh Shard) *scanner {
	t.Helper()
	s, err := newScanner(&Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Ports: ports,
		Shard: sh, Seed: 7, SourcePort: 61234, key: &sipKey{1, 2}},
		func(*plan) (netip.Addr, error) { return testLocal, nil })
	if err != nil {
		t.Fatal(err)
	}
	s.skip([]broadcastAddr{
		{addr: limitedBroadcast, why: "the limited broadcast address"},
		{addr: u32(netip.MustParseAddr("198.18.0.255")), why: "the broadcast address of 198.18.0.0/24 on v0"},
		{addr: u32(netip.MustParseAddr("198.18.1.255")), why: "not scanned"},
	})
	return s
}

// Skipping marks exactly the targets at the broadcast address, shard by shard: the shards together skip each of
// its ports once, and probe every other target once (no gap, no overlap).
func TestSkipMarksBroadcastTargets(t *testing.T) {
	ports := []PortRange{{1, 5}, {80, 80}}
	bcast := netip.MustParseAddr("198.18.0.255")
	const n = 3
	var skipped uint64
	probed := map[netip.AddrPort]int{}
	for i := uint64(1); i <= n; i++ {
		s := skipScanner(t, ports, Shard{i, n})
		var got uint64
		for _, sk := range s.skipped {
			if sk.Addr != bcast || sk.Reason != "the broadcast address of 198.18.0.0/24 on v0" {
				t.Errorf("shard %d: skipped %+v, want only %v", i, sk, bcast)
			}
			got += sk.Targets
		}
		if got != s.nSkipped {
			t.Errorf("shard %d: hosts list %d skipped targets, counter %d", i, got, s.nSkipped)
		}
		skipped += s.nSkipped
		b := make([]byte, s.tmpl.Len())
		for k := range s.size {
			dst, _, _ := s.build(b, k)
			if s.table.get(k) == ansSkipped {
				if dst != bcast {
					t.Errorf("shard %d slot %d: %v marked skipped", i, k, dst)
				}
				continue
			}
			if dst == bcast {
				t.Errorf("shard %d slot %d: probe to the broadcast address not skipped", i, k)
			}
			p, err := craft.ParsePacket(b)
			if err != nil {
				t.Fatal(err)
			}
			probed[netip.AddrPortFrom(dst, p.TCP.DestinationPort())]++
		}
	}
	if skipped != 6 {
		t.Errorf("%d targets skipped over the shards, want 6 (the broadcast address's ports)", skipped)
	}
	if len(probed) != 255*6 {
		t.Errorf("%d targets probed over the shards, want %d", len(probed), 255*6)
	}
	for ap, c := range probed {
		if c != 1 {
			t.Errorf("%v probed by %d shards", ap, c)
		}
	}
}

// A skipped target keeps its mark whatever comes back, and counts as settled.
func TestSkippedNotReplaced(t *testing.T) {
	s := skipScanner(t, []PortRange{{80, 80}}, Shard{})
	var slot uint64
	found := false
	for k := range s.size {
		if s.table.get(k) == ansSkipped {
			slot, found = k, true
		}
	}
	if !found {
		t.Fatal("no slot skipped")
	}
	for _, a := range []answer{ansSynAck, ansSyn, ansRST, ansRSTWin, ansUnreach + 3, ansTimeEx} {
		if _, stored := s.table.offer(slot, a); stored || s.table.get(slot) != ansSkipped {
			t.Errorf("answer %d replaced the skipped mark", a)
		}
	}
	if s.settled() {
		t.Error("settled with 255 targets unanswered")
	}
	s.answered.Store(s.size - 1)
	if !s.settled() {
		t.Error("not settled: every target but the skipped one answered")
	}
	if diff := cmp.Diff([]SkippedHost{{Addr: netip.MustParseAddr("198.18.0.255"),
		Reason: "the broadcast address of 198.18.0.0/24 on v0", Targets: 1}}, s.skipped, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}
