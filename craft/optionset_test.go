package craft

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// optionSetFromIter builds the OptionSet that ParseOptions should give,
// from the order-preserving iterator: an oracle written without the fast
// paths or the decoding loop.
func optionSetFromIter(b []byte) (OptionSet, error) {
	var s OptionSet
	it := NewOptionIter(b)
	for it.Next() {
		o := it.Option()
		s.kinds[o.Kind/64] |= 1 << (o.Kind % 64)
		switch o.Kind {
		case OptMSS:
			s.MSS = o.MSS()
		case OptWindowScale:
			s.WindowScale = o.WindowScale()
		case OptTimestamps:
			s.TSVal, s.TSEcr = o.Timestamps()
		case OptSACK:
			s.SACK, s.NumSACK = [4]SACKBlock{}, 0
			for i, blk := range o.SACKBlocks(nil) {
				s.SACK[i] = blk
				s.NumSACK++
			}
		}
	}
	if it.SawEOL() {
		s.kinds[0] |= 1 << OptEOL
	}
	return s, it.Err()
}

var optionSetCmp = cmp.AllowUnexported(OptionSet{})

func TestParseOptions(t *testing.T) {
	enc := func(opts ...Option) []byte {
		b := make([]byte, 40)
		n, err := EncodeOptions(b, opts)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	has := func(kinds ...OptionKind) (k [4]uint64) {
		for _, kind := range kinds {
			k[kind/64] |= 1 << (kind % 64)
		}
		return k
	}
	tests := []struct {
		name   string
		b      []byte
		want   OptionSet
		layout int // what fastOptionLayout must say
	}{
		{"none", nil, OptionSet{}, layoutNone},
		{"mss", enc(MSS(1400)), OptionSet{MSS: 1400, kinds: has(OptMSS)}, layoutMSS},
		{"nop nop TS", enc(NOP(), NOP(), Timestamps(7, 0xffffffff)),
			OptionSet{TSVal: 7, TSEcr: 0xffffffff, kinds: has(OptNOP, OptTimestamps)}, layoutNOPNOPTS},
		{"Linux SYN", enc(DefaultSYNOptions(99)...),
			OptionSet{MSS: 1460, WindowScale: 7, TSVal: 99, kinds: has(OptMSS, OptSACKPermitted, OptTimestamps, OptNOP, OptWindowScale)}, layoutLinuxSYN},
		{"Linux SYN, wscale 255 as sent", enc(MSS(0xffff), SACKPermitted(), Timestamps(1, 2), NOP(), WindowScale(255)),
			OptionSet{MSS: 0xffff, WindowScale: 255, TSVal: 1, TSEcr: 2, kinds: has(OptMSS, OptSACKPermitted, OptTimestamps, OptNOP, OptWindowScale)}, layoutLinuxSYN},
		// Layouts near the fast ones take the general loop.
		{"Linux SYN-ACK without sackOK", enc(MSS(1460), NOP(), NOP(), Timestamps(5, 6), NOP(), WindowScale(7)),
			OptionSet{MSS: 1460, WindowScale: 7, TSVal: 5, TSEcr: 6, kinds: has(OptMSS, OptNOP, OptTimestamps, OptWindowScale)}, layoutOther},
		{"mss padded with EOL", enc(MSS(536), SACKPermitted()),
			OptionSet{MSS: 536, kinds: has(OptMSS, OptSACKPermitted, OptEOL)}, layoutOther},
		{"nop nop sack", enc(NOP(), NOP(), SACK(SACKBlock{1, 2}, SACKBlock{3, 4})),
			OptionSet{NumSACK: 2, SACK: [4]SACKBlock{{1, 2}, {3, 4}}, kinds: has(OptNOP, OptSACK)}, layoutOther},
		{"four SACK blocks", enc(NOP(), NOP(), SACK(SACKBlock{1, 2}, SACKBlock{3, 4}, SACKBlock{5, 6}, SACKBlock{7, 8})),
			OptionSet{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}, kinds: has(OptNOP, OptSACK)}, layoutOther},
		{"the last SACK wins", enc(SACK(SACKBlock{1, 2}, SACKBlock{3, 4}), SACK(SACKBlock{5, 6})),
			OptionSet{NumSACK: 1, SACK: [4]SACKBlock{{5, 6}}, kinds: has(OptSACK)}, layoutOther},
		{"the last MSS wins", enc(MSS(1), MSS(2)), OptionSet{MSS: 2, kinds: has(OptMSS)}, layoutOther},
		{"unknown kinds recorded", enc(Option{Kind: 254, Data: []byte{0xf9, 0x89}}, Option{Kind: 34}, Option{Kind: 69, Data: []byte{1}}),
			OptionSet{kinds: has(254, 34, 69, OptEOL)}, layoutOther},
		{"EOL hides what follows", []byte{0, 2, 4, 5, 0xb4}, OptionSet{kinds: has(OptEOL)}, layoutOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fastOptionLayout(tt.b); got != tt.layout {
				t.Errorf("fastOptionLayout = %d, want %d", got, tt.layout)
			}
			got := OptionSet{MSS: 1, TSVal: 2, NumSACK: 3, kinds: has(200)} // stale values must go
			if err := ParseOptions(tt.b, &got); err != nil {
				t.Fatalf("ParseOptions: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, optionSetCmp); diff != "" {
				t.Errorf("ParseOptions (-want +got):\n%s", diff)
			}
			oracle, err := optionSetFromIter(tt.b)
			if err != nil || !cmp.Equal(oracle, got, optionSetCmp) {
				t.Errorf("the iterator decodes %+v, %v; ParseOptions %+v", oracle, err, got)
			}
		})
	}
}

func TestOptionSetHas(t *testing.T) {
	var s OptionSet
	if err := ParseOptions([]byte{254, 4, 0xf9, 0x89, 4, 2, 1, 0}, &s); err != nil {
		t.Fatal(err)
	}
	for k := range 256 {
		want := k == 254 || k == int(OptSACKPermitted) || k == int(OptNOP) || k == int(OptEOL)
		if got := s.Has(OptionKind(k)); got != want {
			t.Errorf("Has(%d) = %v, want %v", k, got, want)
		}
	}
	if got := s.SACKBlocks(); len(got) != 0 {
		t.Errorf("SACKBlocks without SACK = %v", got)
	}
}

// Malformed options give the iterator's error, and s keeps what came
// before the bad option.
func TestParseOptionsMalformed(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string
		mss  uint16 // decoded before the error
	}{
		{"Linux layout, TS length 9", []byte{2, 4, 5, 0xb4, 4, 2, 8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, "TS at offset 6 has length 9, want 10", 1460},
		{"Linux layout, wscale length 4", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 4, 7}, "kind 3 at offset 17 has length 4, past the end", 1460},
		{"mss length 3", []byte{2, 3, 5, 0}, "mss at offset 0 has length 3, want 4", 0},
		{"nop nop TS cut short", []byte{1, 1, 8, 10, 0, 0, 0, 0}, "length 10, past the end", 0},
		{"SACK of five blocks", append([]byte{5, 42}, make([]byte, 40)...), "sack at offset 0 has length 42, want 2+8n for n from 1 to 4", 0},
		{"no length byte", []byte{2, 4, 1, 2, 1, 1, 1, 30}, "has no length byte", 0x102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s OptionSet
			err := ParseOptions(tt.b, &s)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseOptions error = %v, want ErrMalformed containing %q", err, tt.want)
			}
			it := NewOptionIter(tt.b)
			for it.Next() {
			}
			if it.Err() == nil || it.Err().Error() != err.Error() {
				t.Errorf("iterator error %v, ParseOptions error %v", it.Err(), err)
			}
			if s.MSS != tt.mss {
				t.Errorf("MSS decoded before the error = %d, want %d", s.MSS, tt.mss)
			}
		})
	}
}

// DecodeOptions reads the options of a parsed segment, the SYN-ACK's
// here, and nothing when there are none.
func TestDecodeOptions(t *testing.T) {
	p, err := ParsePacket(mustEncode(t, testSYNACK()))
	if err != nil {
		t.Fatal(err)
	}
	var s OptionSet
	if err := p.TCP.DecodeOptions(&s); err != nil {
		t.Fatal(err)
	}
	if s.MSS != 1460 || s.WindowScale != 7 || s.TSVal != 999 || s.TSEcr != 12345 || !s.Has(OptSACKPermitted) || s.Has(OptSACK) {
		t.Errorf("DecodeOptions(SYN-ACK) = %+v", s)
	}
	rst, err := ParsePacket(mustEncode(t, Segment{Src: testDst, Dst: testSrc, Flags: FlagRST}))
	if err != nil {
		t.Fatal(err)
	}
	if err := rst.TCP.DecodeOptions(&s); err != nil || s != (OptionSet{}) {
		t.Errorf("DecodeOptions(RST) = %+v, %v; want empty", s, err)
	}
	// A view whose data offset is out of range has no option bytes.
	bad := TCP(bytes.Clone(rst.TCP))
	bad[TCPDataOffset] = 0xf0
	if err := bad.DecodeOptions(&s); err != nil || s != (OptionSet{}) {
		t.Errorf("DecodeOptions(data offset past the end) = %+v, %v; want empty", s, err)
	}
}

// checkOptionPaths is the differential check of the option fast paths
// against the general loops and the iterator, for any bytes.
func checkOptionPaths(t *testing.T, b []byte) {
	t.Helper()
	oracle, iterErr := optionSetFromIter(b)
	if l := fastOptionLayout(b); l != layoutOther && (iterErr != nil || !optionsValidLoop(b)) {
		t.Fatalf("fast layout %d for %x, which the iterator rejects: %v", l, b, iterErr)
	}
	if valid := optionsValid(b); valid != (iterErr == nil) || optionsValidLoop(b) != valid {
		t.Fatalf("%x: optionsValid %v, optionsValidLoop %v, iterator error %v", b, valid, optionsValidLoop(b), iterErr)
	}
	var fast, loop OptionSet
	fastErr, loopErr := ParseOptions(b, &fast), parseOptionsLoop(b, &loop)
	if (fastErr == nil) != (iterErr == nil) || (loopErr == nil) != (iterErr == nil) {
		t.Fatalf("%x: ParseOptions error %v, loop error %v, iterator error %v", b, fastErr, loopErr, iterErr)
	}
	if iterErr != nil && (fastErr.Error() != iterErr.Error() || loopErr.Error() != iterErr.Error()) {
		t.Fatalf("%x: errors differ:\n%v\n%v\n%v", b, fastErr, loopErr, iterErr)
	}
	if !cmp.Equal(oracle, fast, optionSetCmp) || !cmp.Equal(oracle, loop, optionSetCmp) {
		t.Fatalf("%x: iterator %+v, ParseOptions %+v, loop %+v", b, oracle, fast, loop)
	}
}

// The fast layouts with every byte flipped in turn: each flip either
// keeps a layout or falls to the loop, and all paths agree.
func TestOptionsFastPathMutations(t *testing.T) {
	bases := [][]byte{
		{2, 4, 5, 0xb4},
		{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2},
		{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, base := range bases {
		checkOptionPaths(t, base)
		for i := range base {
			for _, v := range []byte{0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 0xff, byte(r.Uint32())} {
				b := bytes.Clone(base)
				b[i] = v
				checkOptionPaths(t, b)
			}
		}
	}
}

// Go's fuzzer explores the rest: run with
// go test -fuzz FuzzOptionsFastPath ./craft.
func FuzzOptionsFastPath(f *testing.F) {
	// The fast layouts: mss; nop,nop,TS; Linux's SYN.
	f.Add([]byte{2, 4, 5, 0xb4})
	f.Add([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	// Near misses: TS length 9 in Linux's layout; sack after nops; junk after EOL.
	f.Add([]byte{2, 4, 5, 0xb4, 4, 2, 8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	f.Add([]byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{0, 2, 4, 5, 0xb4})
	f.Fuzz(checkOptionPaths)
}

// ParsePacket's fast checks and parsePacket's ordered ones accept the
// same packets, with the same views and errors.
func checkPacketPaths(t *testing.T, b []byte) {
	t.Helper()
	fast, fastErr := ParsePacket(b)
	slow, slowErr := parsePacket(b)
	if (fastErr == nil) != (slowErr == nil) {
		t.Fatalf("%x: ParsePacket error %v, parsePacket error %v", b, fastErr, slowErr)
	}
	if fastErr != nil {
		if fastErr.Error() != slowErr.Error() || fast.IP != nil || fast.TCP != nil {
			t.Fatalf("%x: errors differ or views not empty: %v / %v", b, fastErr, slowErr)
		}
		return
	}
	same := func(x, y []byte) bool { return len(x) == len(y) && cap(x) == cap(y) && (len(x) == 0 || &x[0] == &y[0]) }
	if !same(fast.IP, slow.IP) || !same(fast.TCP, slow.TCP) {
		t.Fatalf("%x: views differ: IP %d/%d bytes, TCP %d/%d bytes", b, len(fast.IP), len(slow.IP), len(fast.TCP), len(slow.TCP))
	}
}

func TestParsePacketFastPathMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range []Segment{testSYN(), testSYNACK(), {Src: testSrc, Dst: testDst, Flags: FlagACK, Payload: []byte("xy")}} {
		base := mustEncode(t, s)
		for i := range base {
			for range 16 {
				b := bytes.Clone(base)
				b[i] = byte(r.Uint32())
				checkPacketPaths(t, b)
				checkPacketPaths(t, b[:r.IntN(len(b)+1)])
			}
		}
	}
}

func FuzzParsePacketFastPath(f *testing.F) {
	// A SYN, a SYN-ACK, data with SACK, IP options (IHL 6), a fragment.
	f.Add(mustEncode(f, testSYN()))
	f.Add(mustEncode(f, testSYNACK()))
	f.Add(mustEncode(f, Segment{Src: testSrc, Dst: testDst, Flags: FlagACK, Options: []Option{NOP(), NOP(), SACK(SACKBlock{1, 2})}, Payload: []byte("abc")}))
	ipOpts := mustEncode(f, testSYN())
	ipOpts = append(ipOpts[:20:20], append([]byte{1, 1, 1, 0}, ipOpts[20:]...)...)
	ipOpts[0], ipOpts[3] = 0x46, byte(len(ipOpts))
	f.Add(ipOpts)
	frag := mustEncode(f, testSYN())
	frag[7] = 1
	f.Add(frag)
	f.Fuzz(checkPacketPaths)
}
