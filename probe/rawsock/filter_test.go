package rawsock

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

var (
	local  = netip.MustParseAddr("198.18.0.1")
	remote = netip.MustParseAddr("198.18.0.2")
	other  = netip.MustParseAddr("198.18.1.2")
)

// run runs prog on pkt in x/net/bpf's VM and reports whether it accepts.
func run(t *testing.T, prog []bpf.Instruction, pkt []byte) bool {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("VM.Run: %v", err)
	}
	return n > 0
}

func TestTCPFilter(t *testing.T) {
	reply := seg{src: remote, dst: local, sport: 80, dport: 40001, flags: flagSYN | flagACK}
	tests := []struct {
		name   string
		filter Filter
		pkt    seg
		want   bool
	}{
		{"exact match", Filter{Remote: netip.PrefixFrom(remote, 32), RemotePort: 80, LocalLo: 40000, LocalHi: 40010}, reply, true},
		{"any remote port", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 40001, LocalHi: 40001}, reply, true},
		{"wider prefix", Filter{Remote: netip.MustParsePrefix("198.18.0.0/15"), LocalLo: 40000, LocalHi: 40010}, reply, true},
		{"any address", Filter{Remote: netip.MustParsePrefix("0.0.0.0/0"), LocalLo: 0, LocalHi: 65535}, reply, true},
		{"other host", Filter{Remote: netip.PrefixFrom(other, 32), RemotePort: 80, LocalLo: 40000, LocalHi: 40010}, reply, false},
		{"outside prefix", Filter{Remote: netip.MustParsePrefix("198.18.1.0/24"), LocalLo: 40000, LocalHi: 40010}, reply, false},
		{"other remote port", Filter{Remote: netip.PrefixFrom(remote, 32), RemotePort: 81, LocalLo: 40000, LocalHi: 40010}, reply, false},
		{"below local range", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 40002, LocalHi: 40010}, reply, false},
		{"above local range", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 39000, LocalHi: 40000}, reply, false},
		{"range edge low", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 40001, LocalHi: 40009}, reply, true},
		{"range edge high", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 30000, LocalHi: 40001}, reply, true},
		{"our own outgoing segment", Filter{Remote: netip.PrefixFrom(remote, 32), RemotePort: 80, LocalLo: 40000, LocalHi: 40010},
			seg{src: local, dst: remote, sport: 40001, dport: 80, flags: flagSYN}, false},
		{"non-first fragment", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 0, LocalHi: 65535},
			seg{src: remote, dst: local, sport: 80, dport: 40001, ipFlagsFrag: 0x2001}, false},
		{"first fragment", Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 0, LocalHi: 65535},
			seg{src: remote, dst: local, sport: 80, dport: 40001, ipFlagsFrag: 0x2000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := tt.filter.tcpProgram()
			if err != nil {
				t.Fatalf("tcpProgram: %v", err)
			}
			if got := run(t, prog, tt.pkt.packet()); got != tt.want {
				t.Errorf("filter %+v on %+v: accept = %v, want %v", tt.filter, tt.pkt, got, tt.want)
			}
		})
	}
}

func TestTCPFilterNotTCP(t *testing.T) {
	f := Filter{Remote: netip.MustParsePrefix("0.0.0.0/0"), LocalLo: 0, LocalHi: 65535}
	prog, err := f.tcpProgram()
	if err != nil {
		t.Fatal(err)
	}
	pkt := seg{src: remote, dst: local, sport: 80, dport: 40001}.packet()
	pkt[9] = 17 // UDP
	if run(t, prog, pkt) {
		t.Error("a UDP packet passed the TCP filter")
	}
	if run(t, prog, pkt[:10]) {
		t.Error("a 10-byte packet passed the TCP filter")
	}
}

func TestICMPFilter(t *testing.T) {
	ours := seg{src: local, dst: remote, sport: 40001, dport: 80, flags: flagSYN}.packet()
	router := netip.MustParseAddr("198.18.0.254")
	f := Filter{Remote: netip.PrefixFrom(remote, 32), LocalLo: 40000, LocalHi: 40010}
	udp := seg{src: local, dst: remote, sport: 40001, dport: 80}.packet()
	udp[9] = 17
	longIHL := make([]byte, 0, 64) // quoted header with 4 bytes of IP options
	longIHL = append(longIHL, ours[:20]...)
	longIHL[0] = 0x46
	longIHL = append(longIHL, 1, 1, 1, 0) // NOP NOP NOP EOL
	longIHL = append(longIHL, ours[20:]...)
	tests := []struct {
		name   string
		filter Filter
		pkt    []byte
		want   bool
	}{
		{"admin prohibited", f, icmpError(remote, local, 3, 13, ours), true},
		{"time exceeded from a router", f, icmpError(router, local, 11, 0, ours), true},
		{"parameter problem", f, icmpError(remote, local, 12, 0, ours), true},
		{"remote port match", Filter{Remote: f.Remote, RemotePort: 80, LocalLo: 40001, LocalHi: 40001}, icmpError(remote, local, 3, 13, ours), true},
		{"remote port mismatch", Filter{Remote: f.Remote, RemotePort: 81, LocalLo: 40001, LocalHi: 40001}, icmpError(remote, local, 3, 13, ours), false},
		{"quoted options", f, icmpError(remote, local, 3, 13, longIHL), true},
		{"quoted options, port outside", Filter{Remote: f.Remote, LocalLo: 40002, LocalHi: 40010}, icmpError(remote, local, 3, 13, longIHL), false},
		{"echo reply", f, icmpError(remote, local, 0, 0, ours), false},
		{"redirect", f, icmpError(remote, local, 5, 0, ours), false},
		{"quoted UDP", f, icmpError(remote, local, 3, 3, udp), false},
		{"quoted other destination", Filter{Remote: netip.PrefixFrom(other, 32), LocalLo: 40000, LocalHi: 40010}, icmpError(remote, local, 3, 13, ours), false},
		{"quoted port below range", Filter{Remote: f.Remote, LocalLo: 40002, LocalHi: 40010}, icmpError(remote, local, 3, 13, ours), false},
		{"quoted port above range", Filter{Remote: f.Remote, LocalLo: 30000, LocalHi: 40000}, icmpError(remote, local, 3, 13, ours), false},
		{"plain TCP", f, seg{src: remote, dst: local, sport: 80, dport: 40001}.packet(), false},
		{"truncated quote", f, icmpError(remote, local, 3, 13, ours)[:20+8+20], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := tt.filter.icmpProgram()
			if err != nil {
				t.Fatalf("icmpProgram: %v", err)
			}
			if got := run(t, prog, tt.pkt); got != tt.want {
				t.Errorf("accept = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterInvalid(t *testing.T) {
	for _, f := range []Filter{
		{},
		{Remote: netip.MustParsePrefix("2001:db8::/32"), LocalLo: 1, LocalHi: 2},
		{Remote: netip.PrefixFrom(remote, 32), LocalLo: 2, LocalHi: 1},
	} {
		if _, err := f.tcpProgram(); err == nil {
			t.Errorf("tcpProgram(%+v): no error", f)
		}
		if _, err := f.icmpProgram(); err == nil {
			t.Errorf("icmpProgram(%+v): no error", f)
		}
	}
}
