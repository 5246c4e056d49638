package craft

// Seq is a TCP sequence number. Sequence space is finite (2^32) and wraps,
// so every comparison is modulo 2^32 (RFC 9293 §3.4): a is before b when
// b−a, read as a signed 32-bit number, is positive. The methods say so once
// instead of each caller writing int32(b-a) again.
type Seq uint32

// Size is a length in sequence space: a number of bytes, a SYN or FIN
// counting one.
type Size uint32

// LessThan reports whether v comes before w (v < w modulo 2^32).
func (v Seq) LessThan(w Seq) bool { return int32(v-w) < 0 }

// LessEq reports whether v is w or comes before it.
func (v Seq) LessEq(w Seq) bool { return int32(v-w) <= 0 }

// InRange reports whether a ≤ v < b. An empty range (a = b) holds nothing.
func (v Seq) InRange(a, b Seq) bool { return v-a < b-a }

// InWindow reports whether v lies in the window of size bytes starting at
// first: first ≤ v < first+size (RFC 9293 §3.10.7.4's acceptability test
// for one octet). A zero window holds nothing.
func (v Seq) InWindow(first Seq, size Size) bool { return v.InRange(first, first.Add(size)) }

// Add returns v advanced by s.
func (v Seq) Add(s Size) Seq { return v + Seq(s) }

// Size returns the distance from v to w, w−v modulo 2^32.
func (v Seq) Size(w Seq) Size { return Size(w - v) }
