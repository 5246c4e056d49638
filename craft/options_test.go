package craft

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOptionString(t *testing.T) {
	tests := []struct {
		o    Option
		want string
	}{
		{MSS(1460), "mss 1460"},
		{SACKPermitted(), "sackOK"},
		{Timestamps(100, 0), "TS val 100 ecr 0"},
		{Timestamps(0xffffffff, 1), "TS val 4294967295 ecr 1"},
		{NOP(), "nop"},
		{EOL(), "eol"},
		{WindowScale(7), "wscale 7"},
		{SACK(SACKBlock{1000, 2000}), "sack 1 {1000:2000}"},
		{SACK(SACKBlock{1, 2}, SACKBlock{3, 4}), "sack 2 {1:2}{3:4}"},
		{Option{Kind: 30, Data: []byte{1, 2}}, "unknown-30 0x0102"},
		{Option{Kind: 253}, "unknown-253"},
		{Option{Kind: 254, Data: []byte{0xf9, 0x89}}, "unknown-254 0xf989"},
		// Wrong lengths print as tcpdump prints them.
		{Option{Kind: OptMSS, Data: []byte{5}}, "mss[len 3]"},
		{Option{Kind: OptMSS, Data: []byte{5, 0xb4, 0}}, "mss 1460[len 5]"},
		{Option{Kind: OptSACKPermitted, Data: []byte{0}}, "sackOK[len 3]"},
		{Option{Kind: OptTimestamps}, "TS[len 2]"},
		{Option{Kind: OptSACK, Data: []byte{1, 2, 3}}, "sack invalid sack"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.o, got, tt.want)
		}
		if got := string(tt.o.AppendText([]byte("x"))); got != "x"+tt.want {
			t.Errorf("AppendText = %q, want %q", got, "x"+tt.want)
		}
	}
}

func TestOptionGetters(t *testing.T) {
	if got := MSS(1460).MSS(); got != 1460 {
		t.Errorf("MSS = %d", got)
	}
	if got := WindowScale(14).WindowScale(); got != 14 {
		t.Errorf("WindowScale = %d", got)
	}
	if v, e := Timestamps(7, 8).Timestamps(); v != 7 || e != 8 {
		t.Errorf("Timestamps = %d, %d", v, e)
	}
	blocks := []SACKBlock{{1, 2}, {3, 4}, {0xffffffff, 0}}
	if diff := cmp.Diff(blocks, SACK(blocks...).SACKBlocks(nil)); diff != "" {
		t.Errorf("SACKBlocks (-want +got):\n%s", diff)
	}
	// Short data reads as zero instead of panicking.
	var empty Option
	if empty.MSS() != 0 || empty.WindowScale() != 0 || len(empty.SACKBlocks(nil)) != 0 {
		t.Errorf("getters on empty data are not zero")
	}
	if v, e := empty.Timestamps(); v != 0 || e != 0 {
		t.Errorf("Timestamps on empty data = %d, %d", v, e)
	}
	for k, want := range map[OptionKind]int{OptEOL: 1, OptNOP: 1, OptSACKPermitted: 2, OptMSS: 4} {
		o := Option{Kind: k}
		if k == OptMSS {
			o = MSS(1)
		}
		if o.Len() != want {
			t.Errorf("kind %d Len = %d, want %d", k, o.Len(), want)
		}
	}
}

// Linux writes mss, sackOK, TS, nop, wscale (tcp_options_write): compare
// with the bytes of a SYN captured from Linux 6.x.
func TestDefaultSYNOptionsWire(t *testing.T) {
	b := make([]byte, 40)
	n, err := EncodeOptions(b, DefaultSYNOptions(0x01020304))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7}
	if !bytes.Equal(b[:n], want) {
		t.Errorf("DefaultSYNOptions on the wire:\n got %x\nwant %x", b[:n], want)
	}
}

func TestEncodeOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want []byte
	}{
		{"none", nil, []byte{}},
		{"mss", []Option{MSS(1400)}, []byte{2, 4, 0x05, 0x78}},
		{"sackOK padded with EOL", []Option{SACKPermitted()}, []byte{4, 2, 0, 0}},
		{"wscale padded", []Option{WindowScale(2)}, []byte{3, 3, 2, 0}},
		{"nop eol nop", []Option{NOP(), EOL(), NOP()}, []byte{1, 0, 1, 0}},
		{"unknown empty", []Option{{Kind: 200}}, []byte{200, 2, 0, 0}},
	}
	for _, tt := range tests {
		b := bytes.Repeat([]byte{0xff}, 44)
		n, err := EncodeOptions(b, tt.opts)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !bytes.Equal(b[:n], tt.want) || n != OptionsLen(tt.opts) {
			t.Errorf("%s: EncodeOptions wrote %x (n=%d, OptionsLen %d), want %x", tt.name, b[:n], n, OptionsLen(tt.opts), tt.want)
		}
		if b[n] != 0xff {
			t.Errorf("%s: wrote past the padded length", tt.name)
		}
	}

	if _, err := EncodeOptions(make([]byte, 100), []Option{{Kind: 99, Data: make([]byte, 39)}}); err == nil || !strings.Contains(err.Error(), "41 option bytes") {
		t.Errorf("EncodeOptions(41 bytes) error = %v", err)
	}
	if _, err := EncodeOptions(make([]byte, 3), []Option{MSS(1)}); err == nil || !strings.Contains(err.Error(), "buffer holds 3 bytes") {
		t.Errorf("EncodeOptions(short buffer) error = %v", err)
	}
	// Padding counts against the buffer too.
	if _, err := EncodeOptions(make([]byte, 2), []Option{SACKPermitted()}); err == nil {
		t.Errorf("EncodeOptions wrote 4 padded bytes into a 2-byte buffer")
	}
}

func TestOptionIter(t *testing.T) {
	raw := []byte{1, 2, 4, 0x05, 0xb4, 30, 4, 0xab, 0xcd, 4, 2, 0, 2, 4, 0, 0} // nop, mss, unknown, sackOK, eol, junk
	it := NewOptionIter(raw)
	var got []string
	for it.Next() {
		got = append(got, it.Option().String())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"nop", "mss 1460", "unknown-30 0xabcd", "sackOK"}; !cmp.Equal(want, got) {
		t.Errorf("iterated %q, want %q", got, want)
	}
	if !it.SawEOL() {
		t.Errorf("SawEOL = false after an EOL")
	}
	if it.Next() {
		t.Errorf("Next after the end returned true")
	}

	empty := NewOptionIter(nil)
	if empty.Next() || empty.Err() != nil || empty.SawEOL() {
		t.Errorf("empty iterator: Next true, Err %v or SawEOL", empty.Err())
	}

	bad := NewOptionIter([]byte{2, 4, 1})
	if bad.Next() || !errors.Is(bad.Err(), ErrMalformed) {
		t.Errorf("truncated MSS: Err = %v, want ErrMalformed", bad.Err())
	}
	if bad.Next() {
		t.Errorf("Next after an error returned true")
	}
}

func TestOptionsText(t *testing.T) {
	mk := func(opts ...Option) TCP {
		s := testSYN()
		s.Options = opts
		return TCP(mustEncode(t, s)[20:])
	}
	tests := []struct {
		name string
		tcp  TCP
		want string
	}{
		{"Linux SYN", mk(DefaultSYNOptions(1)...), "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7"},
		{"none", mk(), ""},
		{"padded", mk(MSS(1400), SACKPermitted()), "mss 1400,sackOK,eol"},
		{"sack", mk(NOP(), NOP(), SACK(SACKBlock{1, 2})), "nop,nop,sack 1 {1:2}"},
	}
	for _, tt := range tests {
		if got := string(tt.tcp.OptionsText(nil)); got != tt.want {
			t.Errorf("%s: OptionsText = %q, want %q", tt.name, got, tt.want)
		}
	}
	bad := mk(MSS(1400), SACKPermitted())
	bad[20+4+1] = 3 // sackOK length 3
	if got, want := string(bad.OptionsText(nil)), "mss 1400,[bad opt]"; got != want {
		t.Errorf("malformed: OptionsText = %q, want %q", got, want)
	}
}
