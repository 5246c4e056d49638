package firewall

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/craft"
)

func encode(t *testing.T, s craft.Segment) craft.IPv4 {
	t.Helper()
	s.Src, s.Dst = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.2.2")
	s.SrcPort, s.DstPort = 61000, 7001
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return craft.IPv4(b[:n])
}

func TestCompare(t *testing.T) {
	syn := craft.Segment{Seq: 100, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(7)}
	sent := encode(t, syn)
	tests := []struct {
		name     string
		got      func() craft.IPv4
		want     []Change
		complete bool
	}{
		{"unchanged but TTL and checksums", func() craft.IPv4 {
			s := syn
			s.TTL = 1
			return encode(t, s)
		}, nil, true},
		{"MSS clamped", func() craft.IPv4 {
			s := syn
			s.Options = append([]craft.Option{craft.MSS(1000)}, syn.Options[1:]...)
			return encode(t, s)
		}, []Change{{"mss", "1460", "1000"}}, true},
		{"seq randomized, window changed", func() craft.IPv4 {
			s := syn
			s.Seq, s.Window = 999, 1024
			return encode(t, s)
		}, []Change{{"seq", "100", "999"}, {"win", "64240", "1024"}}, true},
		{"timestamps and window scale stripped", func() craft.IPv4 {
			s := syn
			s.Options = []craft.Option{craft.MSS(1460), craft.SACKPermitted()}
			return encode(t, s)
		}, []Change{{"wscale", "7", "-"}, {"TS", "7/0", "-"}}, true},
		{"quote of 8 TCP bytes (RFC 792)", func() craft.IPv4 {
			b := encode(t, syn)
			return b[:craft.IPv4MinimumSize+8]
		}, nil, false},
		{"quote too short for the sequence number", func() craft.IPv4 {
			b := encode(t, syn)
			return b[:craft.IPv4MinimumSize+4]
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, complete := Compare(sent, tt.got())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if complete != tt.complete {
				t.Errorf("complete = %v, want %v", complete, tt.complete)
			}
		})
	}
}

// FuzzCompare: no input makes Compare panic.
func FuzzCompare(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 40}, []byte{0x4f})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		Compare(craft.IPv4(a), craft.IPv4(b))
	})
}

func TestClassify(t *testing.T) {
	rst64 := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 64, Flags: "R.", flags: craft.FlagRST | craft.FlagACK}
	rst63 := Reply{From: netip.MustParseAddr("198.18.2.2"), TTL: 63, Flags: "R.", flags: craft.FlagRST | craft.FlagACK}
	icmp := Reply{From: netip.MustParseAddr("198.18.0.254"), TTL: 64, ICMP: "ICMP 3/13"}
	tests := []struct {
		name string
		o    observation
		want Outcome
	}{
		{"captured", observation{capture: true, delivered: true}, Delivered},
		{"not captured, silent", observation{capture: true}, Dropped},
		{"not captured, RST", observation{capture: true, replies: []Reply{rst64}, targetTTL: 63}, Rejected},
		{"ICMP", observation{replies: []Reply{icmp}}, Rejected},
		{"no capture, target's RST", observation{replies: []Reply{rst63}, targetTTL: 63}, Delivered},
		{"no capture, closer RST", observation{replies: []Reply{rst64}, targetTTL: 63}, Rejected},
		{"no capture, silent, always answered", observation{answers: true}, Dropped},
		{"no capture, silent", observation{}, NoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Cell
			classify(&tt.o, &c)
			if c.Outcome != tt.want {
				t.Errorf("outcome %s (%s), want %s", c.Outcome, c.Detail, tt.want)
			}
		})
	}
}

func encode6(t *testing.T, s craft.Segment) []byte {
	t.Helper()
	s.Src, s.Dst = netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2:0:2::2")
	s.SrcPort, s.DstPort = 61000, 7001
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// TestCompareIPv6: over IPv6 Compare ignores the hop limit and the flow
// label (the probe's identifier) as it ignores IPv4's TTL and ID, reports
// the traffic class as tos and the TCP fields as for IPv4, the payload
// length from the payload length field; an IPv4 and an IPv6 packet are
// not compared; a quote cut after 8 TCP bytes compares the sequence only.
func TestCompareIPv6(t *testing.T) {
	syn := craft.Segment{Seq: 100, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(7), FlowLabel: 0x12345}
	sent := encode6(t, syn)
	got := syn
	got.TTL, got.FlowLabel, got.TOS = 3, 0x54321, 0x20
	got.Options = append([]craft.Option{craft.MSS(1000)}, syn.Options[1:]...)
	got.Payload = []byte("x")
	changes, complete := Compare(sent, encode6(t, got))
	want := []Change{{"tos", "0", "32"}, {"mss", "1460", "1000"}, {"len", "0", "1"}}
	if diff := cmp.Diff(want, changes); diff != "" || !complete {
		t.Errorf("changes (-want +got):\n%s complete %v", diff, complete)
	}
	if c, ok := Compare(sent, encode(t, syn)); c != nil || ok {
		t.Errorf("IPv6 against IPv4: %v %v, want nothing compared", c, ok)
	}
	short := encode6(t, got)[:craft.IPv6HeaderSize+8]
	if c, ok := Compare(sent, short); ok || len(c) != 1 || c[0].Field != "tos" {
		t.Errorf("cut quote: %v %v, want the tos only, incomplete", c, ok)
	}
	w, ok := parseWire(sent)
	if !ok || !w.v6 || w.id != 0x12345 || w.tcpLen != len(sent)-craft.IPv6HeaderSize {
		t.Errorf("parseWire: %+v %v", w, ok)
	}
}
