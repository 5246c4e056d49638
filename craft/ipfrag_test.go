package craft

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func optionSegment(ipOpts []byte) Segment {
	return Segment{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 61000, DstPort: 7001,
		Seq: 1000, Flags: FlagSYN, Window: 64240, TTL: 64, ID: 0x1234, Options: DefaultSYNOptions(7), IPOptions: ipOpts}
}

// TestEncodeIPOptions: the options sit after the fixed header, padded to
// 4 bytes with EOL; IHL, total length and checksum count them; the TCP
// segment is byte for byte the one without options (gopacket decodes both).
func TestEncodeIPOptions(t *testing.T) {
	recordRoute := append([]byte{7, 11, 4}, make([]byte, 8)...) // RR, 2 slots: 11 bytes, padded to 12
	for _, opts := range [][]byte{{1}, {1, 1, 1, 1}, recordRoute, {0x94, 4, 0, 0}, bytes.Repeat([]byte{1}, 40)} {
		s := optionSegment(opts)
		buf := bytes.Repeat([]byte{0xff}, 200)
		n, err := s.Encode(buf)
		if err != nil {
			t.Fatalf("Encode with %d option bytes: %v", len(opts), err)
		}
		padded := (len(opts) + 3) &^ 3
		if n != s.Len() || n != 20+padded+20+20 {
			t.Errorf("%x: %d bytes, Len %d, want %d", opts, n, s.Len(), 20+padded+40)
		}
		if buf[n] != 0xff {
			t.Errorf("%x: wrote past the packet", opts)
		}
		ip := IPv4(buf[:n])
		if ip.HeaderLength() != 20+padded || int(ip.TotalLength()) != n || !ip.IsChecksumValid() {
			t.Errorf("%x: IHL %d total %d checksum valid %v", opts, ip.HeaderLength(), ip.TotalLength(), ip.IsChecksumValid())
		}
		want := append(append([]byte{}, opts...), make([]byte, padded-len(opts))...)
		if diff := cmp.Diff(want, ip.Options()); diff != "" {
			t.Errorf("IP options (-want +got):\n%s", diff)
		}
		plain := s
		plain.IPOptions = nil
		pb := make([]byte, 100)
		pn, _ := plain.Encode(pb)
		if !bytes.Equal(ip.Payload(), pb[20:pn]) {
			t.Errorf("%x: the TCP segment differs from the one sent without IP options", opts)
		}
		pkt := gopacket.NewPacket(buf[:n], layers.LayerTypeIPv4, gopacket.Default)
		gip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if el := pkt.ErrorLayer(); el != nil || gip == nil || tcp == nil {
			t.Fatalf("%x: gopacket: %v", opts, pkt.ErrorLayer())
		}
		if int(gip.IHL)*4 != 20+padded || !tcp.SYN || tcp.Seq != 1000 {
			t.Errorf("%x: gopacket reads IHL %d, SYN %v seq %d", opts, gip.IHL, tcp.SYN, tcp.Seq)
		}
		if err := tcp.SetNetworkLayerForChecksum(gip); err != nil {
			t.Fatal(err)
		}
		if c, err := tcp.ComputeChecksum(); err != nil || c != 0 {
			t.Errorf("%x: gopacket's TCP checksum over our segment: %#x, %v; want 0", opts, c, err)
		}
		if got, err := ParsePacket(buf[:n]); err != nil || got.TCP.SequenceNumber() != 1000 {
			t.Errorf("%x: ParsePacket: %v", opts, err)
		}
	}
	long, short := optionSegment(make([]byte, 41)), optionSegment([]byte{1})
	if _, err := long.Encode(make([]byte, 200)); err == nil {
		t.Error("41 IP option bytes: no error")
	}
	if _, err := short.Encode(make([]byte, 60)); err == nil {
		t.Error("a short buffer: no error")
	}
}

// reassemble puts fragments together the way a receiver does (RFC 791
// §3.2, RFC 815): by offset, and checks each header on the way.
func reassemble(t *testing.T, frags [][]byte) (hdr IPv4, payload []byte) {
	t.Helper()
	for i, f := range frags {
		ip := IPv4(f)
		if !ip.IsChecksumValid() || int(ip.TotalLength()) != len(f) {
			t.Errorf("fragment %d: checksum valid %v, total length %d of %d bytes", i, ip.IsChecksumValid(), ip.TotalLength(), len(f))
		}
		if last := i == len(frags)-1; ip.MoreFragments() == last {
			t.Errorf("fragment %d of %d: MF %v", i+1, len(frags), ip.MoreFragments())
		}
		if ip.FragmentOffset() != len(payload) {
			t.Errorf("fragment %d: offset %d, want %d", i, ip.FragmentOffset(), len(payload))
		}
		if i == 0 {
			hdr = append(IPv4{}, f[:ip.HeaderLength()]...)
		}
		payload = append(payload, ip.Payload()...)
	}
	return hdr, payload
}

func TestFragmentIPv4(t *testing.T) {
	// Options: NOP (not copied), RR (not copied), a copied option 0x88
	// (stream ID, 4 bytes), then EOL padding.
	opts := []byte{1, 7, 7, 4, 0, 0, 0, 0, 0x88, 4, 0xbe, 0xef}
	s := optionSegment(opts)
	s.Payload = bytes.Repeat([]byte("tcpwalk!"), 9)
	pkt := make([]byte, 200)
	n, err := s.Encode(pkt)
	if err != nil {
		t.Fatal(err)
	}
	pkt = pkt[:n]
	orig := IPv4(pkt)
	for _, size := range []int{8, 16, 24, 40, 64, 1480} {
		var frags [][]byte
		for off := 0; ; {
			buf := bytes.Repeat([]byte{0xff}, 1600)
			fn, next, err := FragmentIPv4(buf, orig, off, size)
			if err != nil {
				t.Fatalf("size %d, offset %d: %v", size, off, err)
			}
			if buf[fn] != 0xff {
				t.Errorf("size %d: wrote past the fragment", size)
			}
			frags = append(frags, buf[:fn])
			if next == 0 {
				break
			}
			if next != off+size {
				t.Fatalf("size %d: next offset %d after %d", size, next, off)
			}
			off = next
		}
		if want := (len(orig.Payload()) + size - 1) / size; len(frags) != want {
			t.Errorf("size %d: %d fragments, want %d", size, len(frags), want)
		}
		hdr, payload := reassemble(t, frags)
		if !bytes.Equal(payload, orig.Payload()) {
			t.Errorf("size %d: reassembled payload differs", size)
		}
		if !bytes.Equal(hdr.Options(), orig.Options()) {
			t.Errorf("size %d: first fragment options %x, want all of %x", size, hdr.Options(), orig.Options())
		}
		for i, f := range frags[1:] {
			if got := IPv4(f).Options(); !bytes.Equal(got, []byte{0x88, 4, 0xbe, 0xef}) {
				t.Errorf("size %d fragment %d: options %x, want only the copied one", size, i+2, got)
			}
		}
		for _, f := range frags {
			ip := IPv4(f)
			if ip.ID() != orig.ID() || ip.TTL() != orig.TTL() || ip.Protocol() != ProtocolTCP || ip.Source() != orig.Source() || ip.Destination() != orig.Destination() {
				t.Errorf("size %d: a fragment lost the datagram's identity", size)
			}
		}
		// gopacket reads the first fragment's TCP header when it is whole,
		// and sees the fragment flags as we wrote them.
		g := gopacket.NewPacket(frags[0], layers.LayerTypeIPv4, gopacket.Default)
		if gip, _ := g.Layer(layers.LayerTypeIPv4).(*layers.IPv4); gip == nil || (len(frags) > 1) != (gip.Flags&layers.IPv4MoreFragments != 0) || gip.FragOffset != 0 {
			t.Errorf("size %d: gopacket reads the first fragment as %v", size, gip)
		}
	}
	// A fragment cut again keeps MF and counts from its own offset.
	first := make([]byte, 100)
	fn, _, _ := FragmentIPv4(first, orig, 0, 32)
	second := make([]byte, 100)
	n2, next, err := FragmentIPv4(second, IPv4(first[:fn]), 16, 16)
	if err != nil || next != 0 || !IPv4(second[:n2]).MoreFragments() || IPv4(second[:n2]).FragmentOffset() != 16 {
		t.Errorf("re-cutting a fragment: err %v next %d MF %v offset %d", err, next, IPv4(second[:n2]).MoreFragments(), IPv4(second[:n2]).FragmentOffset())
	}
}

func TestFragmentIPv4Refuses(t *testing.T) {
	s := optionSegment(nil)
	pkt := make([]byte, 100)
	n, _ := s.Encode(pkt)
	df := s
	df.DF = true
	dpkt := make([]byte, 100)
	dn, _ := df.Encode(dpkt)
	for _, tt := range []struct {
		name      string
		pkt       []byte
		off, size int
		dst       int
	}{
		{"DF", dpkt[:dn], 0, 8, 100},
		{"size 0", pkt[:n], 0, 0, 100},
		{"size not a multiple of 8", pkt[:n], 0, 12, 100},
		{"odd offset", pkt[:n], 4, 8, 100},
		{"offset past the end", pkt[:n], 48, 8, 100},
		{"short packet", pkt[:10], 0, 8, 100},
		{"short buffer", pkt[:n], 0, 32, 40},
		{"IHL past the end", append([]byte{0x4f}, pkt[1:24]...), 0, 8, 100},
	} {
		if _, _, err := FragmentIPv4(make([]byte, tt.dst), tt.pkt, tt.off, tt.size); !errors.Is(err, ErrFragment) {
			t.Errorf("%s: err %v, want ErrFragment", tt.name, err)
		}
	}
}

func TestFragmentIPv4Allocs(t *testing.T) {
	s := optionSegment([]byte{1})
	pkt := make([]byte, 100)
	n, _ := s.Encode(pkt)
	dst := make([]byte, 100)
	if a := testing.AllocsPerRun(100, func() {
		for off := 0; ; {
			_, next, err := FragmentIPv4(dst, pkt[:n], off, 8)
			if err != nil || next == 0 {
				return
			}
			off = next
		}
	}); a != 0 {
		t.Errorf("%v allocations per packet, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = s.Encode(pkt) }); a != 0 {
		t.Errorf("Encode with IP options: %v allocations, want 0", a)
	}
}

// FuzzFragmentIPv4: for any packet bytes, IP options and fragment size,
// encoding and fragmenting never panic, and when they succeed every
// fragment is a valid IPv4 header whose payloads, put back together by
// offset, are the original payload.
func FuzzFragmentIPv4(f *testing.F) {
	// A SYN with router alert and NOP options, cut in 8-byte pieces.
	f.Add([]byte{0x94, 4, 0, 0, 1}, []byte("data"), 8)
	// Record route (not copied) and a copied option, 16-byte pieces.
	f.Add([]byte{7, 7, 4, 0, 0, 0, 0, 0x88, 4, 1, 2}, []byte(nil), 16)
	// Option bytes that lie about their lengths, and a size not a multiple of 8.
	f.Add([]byte{0x83, 200, 1}, []byte("x"), 12)
	f.Fuzz(func(t *testing.T, opts, payload []byte, size int) {
		if len(payload) > 1500 {
			payload = payload[:1500]
		}
		s := optionSegment(opts)
		s.Payload = payload
		pkt := make([]byte, 1700)
		n, err := s.Encode(pkt)
		if err != nil {
			if len(opts) <= IPv4OptionsMaximumSize {
				t.Fatalf("Encode with %d option bytes: %v", len(opts), err)
			}
			return
		}
		ip := IPv4(pkt[:n])
		if len(opts) > 0 && (ip.HeaderLength() != 20+(len(opts)+3)&^3 || !bytes.Equal(ip.Options()[:len(opts)], opts)) {
			t.Fatalf("IP options %x, want %x", ip.Options(), opts)
		}
		if _, err := ParsePacket(ip); err != nil {
			t.Fatalf("ParsePacket of our own packet: %v", err)
		}
		var got []byte
		dst := make([]byte, 1700)
		for off, k := 0, 0; ; k++ {
			fn, next, err := FragmentIPv4(dst, ip, off, size)
			if err != nil {
				if size >= 8 && size%8 == 0 {
					t.Fatalf("fragment %d at %d, size %d: %v", k, off, size, err)
				}
				return
			}
			fr := IPv4(dst[:fn])
			if !fr.IsChecksumValid() || int(fr.TotalLength()) != fn || fr.FragmentOffset() != off || fr.MoreFragments() != (next != 0) {
				t.Fatalf("fragment %d: checksum %v, length %d of %d, offset %d (want %d), MF %v", k, fr.IsChecksumValid(), fr.TotalLength(), fn, fr.FragmentOffset(), off, fr.MoreFragments())
			}
			got = append(got, fr.Payload()...)
			if next == 0 {
				break
			}
			if next <= off {
				t.Fatalf("next offset %d after %d", next, off)
			}
			off = next
		}
		if !bytes.Equal(got, ip.Payload()) {
			t.Fatal("the fragments' payloads are not the packet's")
		}
	})
}
