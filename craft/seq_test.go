package craft

import (
	"math"
	"testing"
)

func TestSeqCompare(t *testing.T) {
	const top = math.MaxUint32
	tests := []struct {
		name     string
		v, w     Seq
		lt, le   bool
		distance Size // v.Size(w)
	}{
		{"equal", 7, 7, false, true, 0},
		{"before", 7, 8, true, true, 1},
		{"after", 8, 7, false, false, top},
		{"wrap: top before zero", top, 0, true, true, 1},
		{"wrap: zero after top", 0, top, false, false, top},
		{"wrap: near the top before near zero", top - 5, 10, true, true, 16},
		{"half the space ahead is still ahead", 0, 1<<31 - 1, true, true, 1<<31 - 1},
		// RFC 1982 §3.2 leaves numbers exactly 2^31 apart undefined; the
		// signed difference puts the first one before.
		{"exactly half the space apart", 0, 1 << 31, true, true, 1 << 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.LessThan(tt.w); got != tt.lt {
				t.Errorf("%d.LessThan(%d) = %v, want %v", tt.v, tt.w, got, tt.lt)
			}
			if got := tt.v.LessEq(tt.w); got != tt.le {
				t.Errorf("%d.LessEq(%d) = %v, want %v", tt.v, tt.w, got, tt.le)
			}
			if got := tt.v.Size(tt.w); got != tt.distance {
				t.Errorf("%d.Size(%d) = %d, want %d", tt.v, tt.w, got, tt.distance)
			}
			if got := tt.v.Add(tt.v.Size(tt.w)); got != tt.w {
				t.Errorf("%d.Add(%d.Size(%d)) = %d, want %d", tt.v, tt.v, tt.w, got, tt.w)
			}
		})
	}
}

func TestSeqWindow(t *testing.T) {
	const top = math.MaxUint32
	tests := []struct {
		name  string
		v     Seq
		first Seq
		size  Size
		want  bool
	}{
		{"first octet", 100, 100, 10, true},
		{"last octet", 109, 100, 10, true},
		{"one past the end", 110, 100, 10, false},
		{"one before", 99, 100, 10, false},
		{"zero window holds nothing", 100, 100, 0, false},
		{"window across the wrap: before it", top, top - 1, 4, true},
		{"window across the wrap: after it", 1, top - 1, 4, true},
		{"window across the wrap: past it", 2, top - 1, 4, false},
		{"window across the wrap: before its start", top - 2, top - 1, 4, false},
		{"the largest window holds the octet two before its start", 98, 100, top, true},
		{"the largest window excludes the octet before its start", 99, 100, top, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.InWindow(tt.first, tt.size); got != tt.want {
				t.Errorf("%d.InWindow(%d, %d) = %v, want %v", tt.v, tt.first, tt.size, got, tt.want)
			}
			if got := tt.v.InRange(tt.first, tt.first.Add(tt.size)); got != tt.want {
				t.Errorf("%d.InRange(%d, %d) = %v, want %v", tt.v, tt.first, tt.first.Add(tt.size), got, tt.want)
			}
		})
	}
}
