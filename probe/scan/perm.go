package scan

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// perm is a keyed pseudo-random permutation of [0, n): a Feistel network over the smallest power of two 2^d ≥ n
// (d ≥ 2), made a permutation of [0, n) by cycle walking (Black and Rogaway, "Ciphers with Arbitrary Finite
// Domains", 2002): apply the network again until the value falls inside the range. Since 2^d < 2n, that takes
// fewer than two rounds of the network on average. Each round splits the d bits into a high and a low part of
// alternating widths, so odd d need no padding.
//
// It is not cryptographic (the cookie is); it only has to scatter consecutive targets over hosts and ports, and
// be the same function on every machine given the same seed.
type perm struct {
	n    uint64
	d    uint // bits of the Feistel domain
	hi   [2]uint
	keys [feistelRounds]uint64
}

const feistelRounds = 6

func newPerm(n, seed uint64) perm {
	p := perm{n: n, d: 2}
	if n > 4 {
		p.d = uint(bits.Len64(n - 1))
	}
	p.hi = [2]uint{p.d / 2, p.d - p.d/2}
	s := seed
	for i := range p.keys {
		p.keys[i] = splitmix(&s)
	}
	return p
}

// splitmix is SplitMix64 (Steele, Lea, Flood 2014): expands the seed into round keys.
func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// round is the Feistel round function: a keyed mix of the low part.
func round(x, key uint64) uint64 {
	x ^= key
	x = (x ^ x>>33) * 0xff51afd7ed558ccd
	x = (x ^ x>>33) * 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}

// feistel maps x in [0, 2^d) to [0, 2^d), bijectively. Round r splits x into a high part of w bits and a low
// part of d-w bits, and returns low<<w | (high ^ F(low)) mod 2^w: a bijection, and the next round's split is the
// other way round.
func (p *perm) feistel(x uint64) uint64 {
	for r, key := range p.keys {
		w := p.hi[r&1]
		lo := x & (1<<(p.d-w) - 1)
		high := x >> (p.d - w)
		x = lo<<w | (high^round(lo, key))&(1<<w-1)
	}
	return x
}

// unfeistel is feistel's inverse.
func (p *perm) unfeistel(y uint64) uint64 {
	for r := len(p.keys) - 1; r >= 0; r-- {
		w := p.hi[r&1]
		lo := y >> w
		high := (y ^ round(lo, p.keys[r])) & (1<<w - 1)
		y = high<<(p.d-w) | lo
	}
	return y
}

// at returns the target probed at position i (i < n).
func (p *perm) at(i uint64) uint64 {
	if p.n <= 1 {
		return i
	}
	x := p.feistel(i)
	for x >= p.n {
		x = p.feistel(x)
	}
	return x
}

// index returns the position at which target t (t < n) is probed: at's inverse.
func (p *perm) index(t uint64) uint64 {
	if p.n <= 1 {
		return t
	}
	x := p.unfeistel(t)
	for x >= p.n {
		x = p.unfeistel(x)
	}
	return x
}

// Shard is one part of a scan split across machines: shard Index of Count, 1 ≤ Index ≤ Count. The zero value
// means the whole scan (1/1).
type Shard struct{ Index, Count uint64 }

// ParseShard reads "i/n", e.g. "2/4".
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	n, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if !ok || err1 != nil || err2 != nil || n == 0 || i == 0 || i > n {
		return Shard{}, fmt.Errorf("bad shard %q: want I/N with 1 ≤ I ≤ N, e.g. 2/4", s)
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) norm() Shard {
	if s.Count == 0 {
		return Shard{Index: 1, Count: 1}
	}
	return s
}

func (s Shard) validate() error {
	if s.Count == 0 && s.Index == 0 {
		return nil
	}
	if s.Count == 0 || s.Index == 0 || s.Index > s.Count {
		return errors.New("shard: want I/N with 1 ≤ I ≤ N")
	}
	return nil
}

// String returns "i/n".
func (s Shard) String() string {
	s = s.norm()
	return strconv.FormatUint(s.Index, 10) + "/" + strconv.FormatUint(s.Count, 10)
}

// size is how many of n positions the shard probes: those with position % Count == Index-1.
func (s Shard) size(n uint64) uint64 {
	s = s.norm()
	first := s.Index - 1
	if first >= n {
		return 0
	}
	return (n-first-1)/s.Count + 1
}

// position returns the permutation position of the shard's k-th probe.
func (s Shard) position(k uint64) uint64 {
	s = s.norm()
	return k*s.Count + s.Index - 1
}

// slot returns the shard's index of permutation position pos, and whether the position is the shard's.
func (s Shard) slot(pos uint64) (uint64, bool) {
	s = s.norm()
	if pos%s.Count != s.Index-1 {
		return 0, false
	}
	return pos / s.Count, true
}
