package guard

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// TestWatchPrograms runs the kernel filters in x/net/bpf's VM (an AF_PACKET
// SOCK_DGRAM packet starts at the IP header) and parse on the same bytes: a
// kernel RST from our range to a covered remote passes both, anything else
// neither. The VM has no skb type or mark, so the filters are run from their
// IP checks on (the head is the same for both families).
func TestWatchPrograms(t *testing.T) {
	cfg := Config{Mark: 0x7477, LocalLo: 40000, LocalHi: 40099, Remotes: []netip.Prefix{
		netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("2001:2::2/128"), netip.MustParsePrefix("2001:3::/33"),
	}}
	v4, v6 := byFamily(cfg.Remotes)
	p4, err := watchProgram(&cfg, v4)
	if err != nil {
		t.Fatal(err)
	}
	p6, err := watchProgram6(&cfg, v6)
	if err != nil {
		t.Fatal(err)
	}
	const head = 5 // the ExtType and ExtMark checks filterHead adds
	w := &Watch{remotes: cfg.Remotes, lo: cfg.LocalLo, hi: cfg.LocalHi}
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		src, dst netip.Addr
		sport    uint16
		flags    byte
		want     bool
	}{
		{"IPv4 RST", a("198.18.0.1"), a("198.18.0.2"), 40001, flagRST, true},
		{"IPv4 RST,ACK", a("198.18.0.1"), a("198.18.0.200"), 40099, flagRST | flagACK, true},
		{"IPv4 not RST", a("198.18.0.1"), a("198.18.0.2"), 40001, flagACK, false},
		{"IPv4 port out of range", a("198.18.0.1"), a("198.18.0.2"), 40100, flagRST, false},
		{"IPv4 remote not covered", a("198.18.0.1"), a("198.18.1.2"), 40001, flagRST, false},
		{"IPv6 RST", a("2001:2::1"), a("2001:2::2"), 40001, flagRST, true},
		{"IPv6 RST in /33", a("2001:2::1"), a("2001:3:7fff::9"), 40000, flagRST | flagACK, true},
		{"IPv6 outside /33", a("2001:2::1"), a("2001:3:8000::9"), 40000, flagRST, false},
		{"IPv6 other host", a("2001:2::1"), a("2001:2::3"), 40001, flagRST, false},
		{"IPv6 not RST", a("2001:2::1"), a("2001:2::2"), 40001, flagSYN, false},
		{"IPv6 port out of range", a("2001:2::1"), a("2001:2::2"), 39999, flagRST, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := tcpPacket(tt.src, tt.dst, tt.sport, 7001, 1, 2, tt.flags)
			// The other family's filter must refuse it too.
			own, other := p4, p6
			if tt.src.Is6() {
				own, other = p6, p4
			}
			for i, prog := range [][]bpf.Instruction{own, other} {
				vm, err := bpf.NewVM(prog[head:])
				if err != nil {
					t.Fatal(err)
				}
				n, err := vm.Run(pkt)
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.want && i == 0; (n > 0) != want {
					t.Errorf("filter %d kept %d bytes, want kept = %v", i, n, want)
				}
			}
			l, ok := w.parse(pkt)
			if ok != tt.want {
				t.Fatalf("parse = %+v, %v; want ok = %v", l, ok, tt.want)
			}
			if ok && (l.Remote != netip.AddrPortFrom(tt.dst, 7001) || l.LocalPort != tt.sport || l.Seq != 1) {
				t.Errorf("parse = %+v, want remote %v, local port %d, seq 1", l, netip.AddrPortFrom(tt.dst, 7001), tt.sport)
			}
		})
	}
}
