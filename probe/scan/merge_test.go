package scan

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// mergeFixture is a scan of 198.18.0.0/29 × ports 1-40 (320 targets) cut into shards by the scan's own
// permutation, each shard's part listing what its output would.
type mergeFixture struct {
	hosts []netip.Prefix
	ports []PortRange
	seed  uint64
	n     uint64
}

func newMergeFixture() mergeFixture {
	return mergeFixture{hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/29")}, ports: []PortRange{{1, 40}}, seed: 42}
}

// truth is the verdict of every target: hosts .0-.2 answer (port 22 and 80 open, 33 filtered by an ICMP error,
// the rest closed), .3-.7 are silent.
func truth(a netip.Addr, port uint16) (State, Reason) {
	if a.As4()[3] > 2 {
		return Filtered, Reason{Kind: ReasonNoResponse}
	}
	switch port {
	case 22, 80:
		return Open, Reason{Kind: ReasonSynAck}
	case 33:
		return Filtered, Reason{Kind: ReasonICMP, ICMPType: 3, ICMPCode: 13, From: netip.MustParseAddr("198.18.0.254")}
	}
	return Closed, Reason{Kind: ReasonReset}
}

// parts cuts the scan into count shards. Silent hosts are left out, as outputs leave them out.
func (f mergeFixture) parts(t *testing.T, count uint64) []Part {
	t.Helper()
	pl, err := newPlan(f.hosts, f.ports)
	if err != nil {
		t.Fatal(err)
	}
	n := pl.targets()
	pm := newPerm(n, f.seed)
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var parts []Part
	for i := uint64(1); i <= count; i++ {
		sh := Shard{Index: i, Count: count}
		p := Part{Name: "shard" + sh.String(), Type: TypeSYN, Hosts: f.hosts, Ports: f.ports, Seed: f.seed, Retries: 1,
			Shard: sh, Targets: sh.size(n), Probed: sh.size(n), Sent: sh.size(n), Start: start, End: start.Add(time.Second)}
		for k := uint64(0); k < sh.size(n); k++ {
			a, port := pl.target(pm.at(sh.position(k)))
			addr := pl.addr(a)
			st, why := truth(addr, port)
			if why.Kind == ReasonNoResponse && addr.As4()[3] > 2 {
				continue
			}
			p.Verdicts = append(p.Verdicts, Verdicts{Addr: addr, Ports: []PortRange{{port, port}}, State: st, Reason: why})
		}
		parts = append(parts, p)
	}
	return parts
}

func TestMergeExact(t *testing.T) {
	f := newMergeFixture()
	for _, count := range []uint64{1, 3, 7} {
		res, err := Merge(f.parts(t, count))
		if err != nil {
			t.Fatalf("%d shards: %v", count, err)
		}
		if res.Targets != 320 || res.Probed != 320 || res.Sent != 320 {
			t.Errorf("%d shards: targets %d probed %d sent %d, want 320 each", count, res.Targets, res.Probed, res.Sent)
		}
		got := 0
		for _, h := range res.HostResults() {
			want := HostUp
			if h.Addr.As4()[3] > 2 {
				want = HostDown
			}
			if h.Status != want {
				t.Errorf("%d shards: host %s %s, want %s", count, h.Addr, h.Status, want)
			}
			for pr := range res.PortResults(h.Addr) {
				got++
				st, why := truth(pr.Addr, pr.Port)
				if pr.State != st || pr.Reason != why {
					t.Errorf("%d shards: %s:%d %s (%s), want %s (%s)", count, pr.Addr, pr.Port, pr.State, pr.Reason, st, why)
				}
			}
		}
		if got != 320 {
			t.Errorf("%d shards: %d verdicts, want 320", count, got)
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	f := newMergeFixture()
	for _, tc := range []struct {
		name  string
		edit  func([]Part) []Part
		error string
	}{
		{"none", func([]Part) []Part { return nil }, "no shard outputs"},
		{"one missing", func(p []Part) []Part { return append(p[:1], p[2:]...) }, "shard 2 of 3 is missing"},
		{"two missing", func(p []Part) []Part { return p[2:] }, "shards 1, 2 of 3 are missing"},
		{"twice", func(p []Part) []Part { return append(p, p[1]) }, "shard 2/3 is given twice"},
		{"another seed", func(p []Part) []Part { p[1].Seed++; return p }, "seed 42 and 43 differ"},
		{"another type", func(p []Part) []Part { p[2].Type = TypeACK; return p }, "type syn and ack differ"},
		{"other ports", func(p []Part) []Part { p[2].Ports = []PortRange{{1, 41}}; return p }, "ports 1-40 and 1-41 differ"},
		{"other hosts", func(p []Part) []Part { p[1].Hosts = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/28")}; return p }, "hosts"},
		{"other retries", func(p []Part) []Part { p[1].Retries = 3; return p }, "retries 1 and 3 differ"},
		{"other count", func(p []Part) []Part { p[1].Shard = Shard{2, 4}; return p }, "shard count 3 and 4 differ"},
		{"interrupted", func(p []Part) []Part { p[0].Interrupted = true; return p }, "interrupted"},
		{"incomplete", func(p []Part) []Part { p[0].Probed--; return p }, "incomplete"},
		{"another shard's target", func(p []Part) []Part {
			p[0].Verdicts = append(p[0].Verdicts, p[1].Verdicts[0])
			return p
		}, "is not a target of shard 1/3"},
		{"a target twice", func(p []Part) []Part {
			p[0].Verdicts = append(p[0].Verdicts, p[0].Verdicts[0])
			return p
		}, "reported twice"},
		{"a verdict no reply gives", func(p []Part) []Part {
			p[0].Verdicts[0].State, p[0].Verdicts[0].Reason = Open, Reason{Kind: ReasonReset}
			return p
		}, "a syn scan gives closed"},
		{"not a target", func(p []Part) []Part {
			p[0].Verdicts = append(p[0].Verdicts, Verdicts{Addr: netip.MustParseAddr("198.18.1.1"), Ports: []PortRange{{1, 1}}, State: Closed, Reason: Reason{Kind: ReasonReset}})
			return p
		}, "not a target of the scan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Merge(tc.edit(f.parts(t, 3)))
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("Merge = %v, %v; want an error with %q", res, err, tc.error)
			}
		})
	}
}

// A skipped host's targets are skipped in the merge too, counted in the shards they belong to.
func TestMergeSkipped(t *testing.T) {
	f := newMergeFixture()
	parts := f.parts(t, 2)
	bcast := netip.MustParseAddr("198.18.0.7")
	for i := range parts {
		parts[i].Skipped = []SkippedHost{{Addr: bcast, Reason: "the broadcast address of 198.18.0.0/29 on v0"}}
	}
	// The shards' counters as a run would give them: the skipped targets not probed.
	pl, _ := newPlan(f.hosts, f.ports)
	pm := newPerm(pl.targets(), f.seed)
	for i := range parts {
		sh := parts[i].Shard
		for k := uint64(0); k < sh.size(pl.targets()); k++ {
			if a, _ := pl.target(pm.at(sh.position(k))); pl.addr(a) == bcast {
				parts[i].Probed--
				parts[i].SkippedTargets++
			}
		}
	}
	res, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Addr != bcast || res.Skipped[0].Targets != 40 || res.SkippedTargets != 40 {
		t.Errorf("Skipped = %+v (%d targets), want %v with its 40 ports", res.Skipped, res.SkippedTargets, bcast)
	}
	for _, h := range res.HostResults() {
		if h.Addr == bcast {
			t.Errorf("the skipped host has verdicts: %+v", h)
		}
	}
}
