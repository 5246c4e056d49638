package scan

import (
	"testing"
)

// Every size from 1 to 600 and a few awkward ones: at is a bijection of [0, n) and index its inverse.
func TestPermIsBijection(t *testing.T) {
	sizes := []uint64{65535, 65536, 65537, 1 << 17, 3 * 65535, 256 * 1024}
	for n := uint64(1); n <= 600; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		for _, seed := range []uint64{0, 7, 0xdeadbeef} {
			p := newPerm(n, seed)
			seen := make([]bool, n)
			for i := range n {
				x := p.at(i)
				if x >= n {
					t.Fatalf("n=%d seed=%d: at(%d) = %d, out of range", n, seed, i, x)
				}
				if seen[x] {
					t.Fatalf("n=%d seed=%d: at(%d) = %d twice", n, seed, i, x)
				}
				seen[x] = true
				if back := p.index(x); back != i {
					t.Fatalf("n=%d seed=%d: index(at(%d)) = %d", n, seed, i, back)
				}
			}
		}
	}
}

// The order depends on the seed, and scatters: consecutive positions do not probe consecutive targets.
func TestPermSeedAndScatter(t *testing.T) {
	const n = 65535
	a, b := newPerm(n, 1), newPerm(n, 2)
	same, adjacent := 0, 0
	for i := uint64(0); i < n; i++ {
		if a.at(i) == b.at(i) {
			same++
		}
		if i > 0 && (a.at(i) == a.at(i-1)+1 || a.at(i-1) == a.at(i)+1) {
			adjacent++
		}
	}
	if same > n/100 {
		t.Errorf("seeds 1 and 2 agree on %d of %d positions", same, n)
	}
	if adjacent > n/100 {
		t.Errorf("%d of %d consecutive positions probe neighbouring targets", adjacent, n)
	}
	c := newPerm(n, 1)
	for i := uint64(0); i < n; i += 97 {
		if a.at(i) != c.at(i) {
			t.Fatalf("same seed, different order at %d", i)
		}
	}
}

// Shards 1..n of one scan (same seed) probe every target exactly once.
func TestShardsCoverEveryTargetOnce(t *testing.T) {
	for _, tc := range []struct{ targets, shards uint64 }{
		{1, 1}, {10, 3}, {65535, 1}, {65535, 4}, {65535, 7}, {16 * 1024, 16}, {5, 8}, {3 * 1000, 1000},
	} {
		p := newPerm(tc.targets, 42)
		count := make([]uint8, tc.targets)
		var total uint64
		for i := uint64(1); i <= tc.shards; i++ {
			sh := Shard{Index: i, Count: tc.shards}
			size := sh.size(tc.targets)
			for k := range size {
				pos := sh.position(k)
				if pos >= tc.targets {
					t.Fatalf("%d targets, shard %v: probe %d at position %d, past the end", tc.targets, sh, k, pos)
				}
				target := p.at(pos)
				count[target]++
				// The receive side finds the same slot back from the target.
				slot, ok := sh.slot(p.index(target))
				if !ok || slot != k {
					t.Fatalf("%d targets, shard %v: target %d maps back to slot %d (ok %v), want %d", tc.targets, sh, target, slot, ok, k)
				}
				// And no other shard claims it.
				for j := uint64(1); j <= tc.shards; j++ {
					if _, ok := (Shard{Index: j, Count: tc.shards}).slot(p.index(target)); ok && j != i {
						t.Fatalf("%d targets: target %d claimed by shards %d and %d", tc.targets, target, i, j)
					}
				}
			}
			total += size
		}
		if total != tc.targets {
			t.Errorf("%d targets in %d shards: sizes add up to %d", tc.targets, tc.shards, total)
		}
		for target, c := range count {
			if c != 1 {
				t.Fatalf("%d targets in %d shards: target %d probed %d times", tc.targets, tc.shards, target, c)
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"1/1", Shard{1, 1}, true},
		{"2/4", Shard{2, 4}, true},
		{" 3 / 3 ", Shard{3, 3}, true},
		{"0/4", Shard{}, false},
		{"5/4", Shard{}, false},
		{"1/0", Shard{}, false},
		{"1", Shard{}, false},
		{"a/b", Shard{}, false},
		{"-1/4", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func BenchmarkPermAt(b *testing.B) {
	p := newPerm(65535*256, 1)
	var sink uint64
	b.ReportAllocs()
	for i := range b.N {
		sink += p.at(uint64(i) % p.n)
	}
	_ = sink
}
