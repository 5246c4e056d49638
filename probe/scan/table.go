package scan

import "sync/atomic"

// table holds one answer byte per target of a shard, indexed by the shard's slot. Four bytes share a word so the
// receive loops (writers) and the sender (which reads it to pick retries) can use atomics without a lock and
// without 4 bytes per target.
type table struct {
	w []atomic.Uint32
	n uint64
}

func newTable(n uint64) *table { return &table{w: make([]atomic.Uint32, (n+3)/4), n: n} }

func (t *table) get(slot uint64) answer {
	return answer(t.w[slot/4].Load() >> (8 * (slot % 4)))
}

// offer stores a in slot if it wins over what is there (see answer.wins), and returns the old answer and whether
// it stored.
func (t *table) offer(slot uint64, a answer) (answer, bool) {
	w := &t.w[slot/4]
	shift := 8 * (slot % 4)
	for {
		v := w.Load()
		old := answer(v >> shift)
		if !a.wins(old) {
			return old, false
		}
		if w.CompareAndSwap(v, v&^(0xff<<shift)|uint32(a)<<shift) {
			return old, true
		}
	}
}
