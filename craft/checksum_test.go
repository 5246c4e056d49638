package craft

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// RFC 1071 §3 works this example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
func TestChecksumRFC1071Example(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Errorf("Checksum(RFC 1071 example) = %#04x, want 0xddf2", got)
	}
}

// The fast 64-bit loop must agree with the plain 16-bit loop for every
// length (odd and even, every tail path) and any initial value.
func TestChecksumDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x7c9))
		for n := 0; n <= 200; n++ {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			initial := r.Uint32() >> r.UintN(32) // small and large initials
			if got, want := Checksum(b, initial), checksumRef(b, initial); got != want {
				t.Fatalf("seed %d len %d initial %#x: Checksum = %#04x, reference = %#04x", seed, n, initial, got, want)
			}
		}
		// Large buffers, up to a full IPv4 packet.
		n := 1 + r.IntN(65535)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := Checksum(b, 0), checksumRef(b, 0); got != want {
			t.Fatalf("seed %d len %d: Checksum = %#04x, reference = %#04x", seed, n, got, want)
		}
	}
}

// All-ones data exercises every carry: the 64-bit adds overflow on each word.
func TestChecksumCarries(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 9, 31, 32, 33, 64, 65535} {
		b := bytes.Repeat([]byte{0xff}, n)
		for _, initial := range []uint32{0, 1, 0xffff, 0xffffffff} {
			if got, want := Checksum(b, initial), checksumRef(b, initial); got != want {
				t.Errorf("len %d initial %#x: Checksum = %#04x, reference = %#04x", n, initial, got, want)
			}
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.19.255.254")
	// The pseudo-header as bytes: src, dst, zero, protocol, length.
	ph := []byte{198, 18, 0, 1, 198, 19, 255, 254, 0, 6, 0x01, 0x2c}
	got := Checksum(nil, PseudoHeaderSum(src, dst, 6, 300))
	if want := checksumRef(ph, 0); got != want {
		t.Errorf("folded PseudoHeaderSum = %#04x, want %#04x", got, want)
	}
}

func TestVerifyChecksum(t *testing.T) {
	b := mustEncode(t, testSYN())
	p, err := ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IP.IsChecksumValid() {
		t.Errorf("IP checksum of an encoded packet does not verify")
	}
	if !p.TCP.VerifyChecksum(testSrc, testDst) {
		t.Errorf("TCP checksum of an encoded packet does not verify")
	}
	if p.TCP.VerifyChecksum(testSrc, netip.MustParseAddr("198.18.0.3")) {
		t.Errorf("TCP checksum verifies against the wrong destination")
	}
	p.TCP.SetChecksum(p.TCP.Checksum() ^ 1)
	if p.TCP.VerifyChecksum(testSrc, testDst) {
		t.Errorf("TCP checksum verifies after it was broken")
	}
	p.TCP.UpdateChecksum(testSrc, testDst)
	if !p.TCP.VerifyChecksum(testSrc, testDst) {
		t.Errorf("TCP checksum does not verify after UpdateChecksum")
	}
	p.IP.SetTTL(1)
	if p.IP.IsChecksumValid() {
		t.Errorf("IP checksum verifies after the TTL changed")
	}
	p.IP.UpdateChecksum()
	if !p.IP.IsChecksumValid() {
		t.Errorf("IP checksum does not verify after UpdateChecksum")
	}
}
