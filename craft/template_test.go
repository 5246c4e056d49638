package craft

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// Build must give exactly the bytes a full Encode gives, checksums
// included, for any destination, ports and numbers.
func TestTemplateMatchesEncode(t *testing.T) {
	for _, base := range []Segment{testSYN(), testSYNACK(), {Src: testSrc, Dst: testDst, Flags: FlagRST, Payload: []byte("odd")}} {
		tmpl, err := NewTemplate(&base)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 2000 {
			s := base
			s.Dst = netip.AddrFrom4([4]byte{198, 18 + byte(r.IntN(2)), byte(r.Uint32()), byte(r.Uint32())})
			if r.IntN(10) == 0 {
				s.Dst = netip.AddrFrom4([4]byte{255, 255, 255, 255})
			}
			s.SrcPort, s.DstPort = uint16(r.Uint32()), uint16(r.Uint32())
			s.Seq, s.Ack = r.Uint32(), r.Uint32()
			want := mustEncode(t, s)
			got := bytes.Repeat([]byte{0xff}, tmpl.Len()+1)
			n, err := tmpl.Build(got, s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack)
			if err != nil {
				t.Fatalf("Build(%v, %d, %d, %#x, %#x): %v", s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack, err)
			}
			if n != len(want) || !bytes.Equal(got[:n], want) {
				t.Fatalf("Build(%v, %d, %d, %#x, %#x):\n got %x\nwant %x", s.Dst, s.DstPort, s.SrcPort, s.Seq, s.Ack, got[:n], want)
			}
			if got[n] != 0xff {
				t.Fatalf("Build wrote past the packet")
			}
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	s := testSYN()
	s.Src = netip.MustParseAddr("::ffff:198.18.0.1")
	if _, err := NewTemplate(&s); err == nil {
		t.Errorf("NewTemplate accepted an IPv4-mapped source")
	}
	s = testSYN()
	tmpl, err := NewTemplate(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		dst  netip.Addr
		want string
	}{
		{"short buffer", make([]byte, tmpl.Len()-1), testDst, fmt.Sprintf("buffer holds %d bytes, the packet needs %d", tmpl.Len()-1, tmpl.Len())},
		{"IPv6 destination", make([]byte, 100), netip.MustParseAddr("2001:db8::1"), "destination 2001:db8::1 is not IPv4"},
		{"no destination", make([]byte, 100), netip.Addr{}, "is not IPv4"},
	} {
		buf := bytes.Repeat([]byte{0xff}, len(tc.b))
		n, err := tmpl.Build(buf, tc.dst, 1, 2, 3, 4)
		if err == nil || !strings.Contains(err.Error(), tc.want) || n != 0 {
			t.Errorf("%s: Build = %d, %v; want 0 and an error containing %q", tc.name, n, err, tc.want)
		}
		if !bytes.Equal(buf, bytes.Repeat([]byte{0xff}, len(tc.b))) {
			t.Errorf("%s: Build wrote into the buffer although it failed", tc.name)
		}
	}
}
