package rawsock

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// The IPv6 tests run over the loopback of a fresh namespace too: ::1, and spoofed sources from the lab's
// 2001:2::/48 (a raw send may carry any source; the packets never leave lo).

var (
	lo6   = netip.MustParseAddr("::1")
	spoof = netip.MustParseAddr("2001:2::5")
)

// seg6 describes an IPv6 test segment, built by hand like seg.
type seg6 struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        byte
	hopLimit     uint8
	flow         uint32 // traffic class and flow label: the first word without the version
	plen         int    // payload length field; 0 means the real one (20)
}

// packet returns a 60-byte IPv6+TCP packet with the TCP checksum right (RFC 8200 §8.1 pseudo-header).
func (s seg6) packet() []byte {
	b := make([]byte, 60)
	ip, tcp := b[:40], b[40:]
	binary.BigEndian.PutUint32(ip, 6<<28|s.flow)
	plen := s.plen
	if plen == 0 {
		plen = 20
	}
	binary.BigEndian.PutUint16(ip[4:], uint16(plen))
	ip[6], ip[7] = protoTCP, s.hopLimit
	if ip[7] == 0 {
		ip[7] = 64
	}
	src, dst := s.src.As16(), s.dst.As16()
	if !s.src.IsValid() {
		src = [16]byte{}
	}
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	binary.BigEndian.PutUint16(tcp[0:], s.sport)
	binary.BigEndian.PutUint16(tcp[2:], s.dport)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = 5 << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	pseudo := uint32(sum(src[:], 0)) + uint32(sum(dst[:], 0)) + protoTCP + 20
	binary.BigEndian.PutUint16(tcp[16:], ^sum(tcp, pseudo))
	return b
}

// parsed6 is what the tests read back from a received IPv6+TCP packet.
type parsed6 struct {
	src, dst     netip.Addr
	next, hop    uint8
	plen         uint16
	sport, dport uint16
	seq, ack     uint32
	flags        byte
}

func parse6(b []byte) (parsed6, bool) {
	if len(b) < 60 || b[0]>>4 != 6 || b[6] != protoTCP {
		return parsed6{}, false
	}
	t := b[40:]
	return parsed6{
		src: netip.AddrFrom16([16]byte(b[8:24])), dst: netip.AddrFrom16([16]byte(b[24:40])),
		next: b[6], hop: b[7], plen: binary.BigEndian.Uint16(b[4:]),
		sport: binary.BigEndian.Uint16(t[0:]), dport: binary.BigEndian.Uint16(t[2:]),
		seq: binary.BigEndian.Uint32(t[4:]), ack: binary.BigEndian.Uint32(t[8:]), flags: t[13],
	}, true
}

func newSender6(t *testing.T, ns *netns.NS) *Sender6 {
	t.Helper()
	var s *Sender6
	in(t, ns, "NewSender6", func() (err error) { s, err = NewSender6(0x7777); return err })
	t.Cleanup(func() { s.Close() })
	return s
}

func newReceiver6(t *testing.T, ns *netns.NS, f Filter) *Receiver6 {
	t.Helper()
	var r *Receiver6
	in(t, ns, "NewReceiver6", func() (err error) { r, err = NewReceiver6(f); return err })
	t.Cleanup(func() { r.Close() })
	return r
}

func readTCP6(t *testing.T, r *Receiver6, d time.Duration) (parsed6, []byte, time.Time, error) {
	t.Helper()
	buf := make([]byte, 2048)
	if err := r.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	n, ts, err := r.Read(buf)
	if err != nil {
		return parsed6{}, nil, ts, err
	}
	p, ok := parse6(buf[:n])
	if !ok {
		t.Fatalf("Read returned %d bytes that are not IPv6+TCP: %x", n, buf[:n])
	}
	return p, buf[:n], ts, nil
}

// A crafted SYN to a real IPv6 listener gets the kernel's SYN-ACK, read through the kernel filter with a kernel
// timestamp, its header rebuilt from the ancillary data.
func TestIPv6SYNGetsSYNACK(t *testing.T) {
	ns := newNS(t)
	var ln net.Listener
	in(t, ns, "listen", func() (err error) { ln, err = net.Listen("tcp6", "[::1]:0"); return err })
	t.Cleanup(func() { ln.Close() })
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	const ours = 40001
	r := newReceiver6(t, ns, Filter{Remote: netip.PrefixFrom(lo6, 128), RemotePort: port, LocalLo: ours, LocalHi: ours})
	s := newSender6(t, ns)

	const iss = 0x01020304
	if err := s.Send(seg6{src: lo6, dst: lo6, sport: ours, dport: port, seq: iss, flags: flagSYN}.packet(), lo6); err != nil {
		t.Fatalf("Send SYN: %v", err)
	}
	sent := time.Now()
	got, raw, ts, err := readTCP6(t, r, 2*time.Second)
	if err != nil {
		t.Fatalf("Read SYN-ACK: %v", err)
	}
	// Linux's SYN-ACK has options (mss, sackOK, TS, wscale): the payload length is the whole TCP header.
	want := parsed6{src: lo6, dst: lo6, next: protoTCP, hop: 64, plen: uint16(len(raw) - 40), sport: port, dport: ours,
		seq: got.seq, ack: iss + 1, flags: flagSYN | flagACK}
	if got != want {
		t.Errorf("reply = %+v, want %+v", got, want)
	}
	if off := int(raw[40+12]>>4) * 4; off+40 != len(raw) {
		t.Errorf("rebuilt packet is %d bytes, TCP data offset says %d", len(raw), off+40)
	}
	if ts.IsZero() {
		t.Error("no SCM_TIMESTAMPNS timestamp")
	} else if d := ts.Sub(sent); d < -time.Second || d > time.Second {
		t.Errorf("kernel timestamp %v is %v away from the send time %v", ts, d, sent)
	}
}

// The kernel filter passes only segments of our flow: from the remote prefix, from the remote port, to our port
// range. Every packet here arrives on lo, so the raw socket would otherwise get a copy of each.
func TestIPv6FilterInKernel(t *testing.T) {
	ns := newNS(t)
	const ours = 40010
	r := newReceiver6(t, ns, Filter{Remote: netip.MustParsePrefix("2001:2::/64"), RemotePort: 80, LocalLo: ours, LocalHi: ours + 1})
	s := newSender6(t, ns)
	// Traffic class 0xb8, flow label 0x12345 and hop limit 7 come back in the rebuilt header.
	const flow, hop = 0xb8<<20 | 0x12345, 7
	send := func(src netip.Addr, sport, dport uint16, seq uint32) {
		t.Helper()
		if err := s.Send(seg6{src: src, dst: lo6, sport: sport, dport: dport, seq: seq, flags: flagRST, flow: flow, hopLimit: hop}.packet(), lo6); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	send(lo6, 80, ours, 1)                                   // source outside the prefix
	send(netip.MustParseAddr("2001:2:0:1::5"), 80, ours, 2)  // outside the /64 by one bit in the fourth word
	send(spoof, 81, ours, 3)                                 // other remote port
	send(spoof, 80, ours+2, 4)                               // other local port
	send(spoof, 80, ours+1, 5)                               // ours
	send(netip.MustParseAddr("2001:2::ffff:1"), 80, ours, 6) // ours
	for _, want := range []uint32{5, 6} {
		got, raw, _, err := readTCP6(t, r, 2*time.Second)
		if err != nil {
			t.Fatalf("Read seq %d: %v", want, err)
		}
		if got.seq != want {
			t.Errorf("got seq %d (%+v), want %d", got.seq, got, want)
		}
		if w := binary.BigEndian.Uint32(raw); w != 6<<28|flow || got.hop != hop || got.plen != 20 || got.dst != lo6 {
			t.Errorf("rebuilt header: first word %#08x hop %d length %d dst %v; want %#08x, %d, 20, %v", w, got.hop, got.plen, got.dst, 6<<28|flow, hop, lo6)
		}
	}
	if got, _, _, err := readTCP6(t, r, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a filtered segment got through: %+v, %v", got, err)
	}
}

// What the kernel does to an IPv6 IPPROTO_RAW send, as the package doc states: nothing. A zero source, a wrong
// payload length, a flow label and a traffic class all leave as written; an AF_PACKET tap on lo sees the bytes.
func TestSender6KernelRewritesNothing(t *testing.T) {
	ns := newNS(t)
	var tap *PacketReceiver
	in(t, ns, "NewPacketReceiver6", func() (err error) {
		// Outgoing copies only (PACKET_OUTGOING), TCP (next header at 6), to port 9.
		tap, err = NewPacketReceiver6([]bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipFalse: 5},
			bpf.LoadAbsolute{Off: 6, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoTCP, SkipFalse: 3},
			bpf.LoadAbsolute{Off: 42, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 9, SkipFalse: 1},
			bpf.RetConstant{Val: 1 << 16},
			bpf.RetConstant{Val: 0},
		})
		return err
	})
	defer tap.Close()
	s := newSender6(t, ns)
	cases := []struct {
		name string
		pkt  []byte
	}{
		{"zero source", seg6{dst: lo6, sport: 1, dport: 9, seq: 1, flags: flagSYN}.packet()},
		{"flow label, traffic class, hop limit 3", seg6{src: lo6, dst: lo6, sport: 2, dport: 9, seq: 2, flags: flagSYN, hopLimit: 3, flow: 0xb8<<20 | 0xabcde}.packet()},
		{"payload length 8, shorter than the segment", seg6{src: lo6, dst: lo6, sport: 3, dport: 9, seq: 3, flags: flagSYN, plen: 8}.packet()},
		{"payload length 100, longer than the packet", seg6{src: lo6, dst: lo6, sport: 4, dport: 9, seq: 4, flags: flagSYN, plen: 100}.packet()},
	}
	buf := make([]byte, 2048)
	for _, c := range cases {
		if err := s.Send(c.pkt, lo6); err != nil {
			t.Fatalf("%s: Send: %v", c.name, err)
		}
		tap.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := tap.Read(buf)
		if err != nil {
			t.Fatalf("%s: tap Read: %v", c.name, err)
		}
		if !bytes.Equal(buf[:n], c.pkt) {
			t.Errorf("%s: the kernel changed the packet:\nsent %x\nwire %x", c.name, c.pkt, buf[:n])
		}
	}
}

func TestIPv6SendErrors(t *testing.T) {
	ns := newNS(t)
	s := newSender6(t, ns)
	pkt := seg6{src: lo6, dst: lo6, sport: 1, dport: 9, flags: flagSYN}.packet()
	for _, c := range []struct {
		name string
		pkt  []byte
		dst  netip.Addr
		want string
	}{
		{"IPv4 destination", pkt, lo, "not an IPv6 address"},
		{"mapped destination", pkt, netip.MustParseAddr("::ffff:127.0.0.1"), "not an IPv6 address"},
		{"link-local", pkt, netip.MustParseAddr("fe80::1"), "link-local destinations are not supported"},
		{"short packet", pkt[:39], lo6, "shorter than an IPv6 header"},
		{"no route", pkt, netip.MustParseAddr("2001:2::77"), "network is unreachable"},
	} {
		err := s.Send(c.pkt, c.dst)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: Send = %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(pkt, lo6); !errors.Is(err, errClosed) {
		t.Errorf("Send after Close = %v, want errClosed", err)
	}
}

// Send, SendBatch and Read allocate nothing per packet, as on IPv4.
func TestIPv6Allocs(t *testing.T) {
	ns := newNS(t)
	r := newReceiver6(t, ns, Filter{Remote: netip.PrefixFrom(spoof, 128), RemotePort: 80, LocalLo: 40000, LocalHi: 40000})
	s := newSender6(t, ns)
	pkt := seg6{src: spoof, dst: lo6, sport: 80, dport: 40000, flags: flagRST}.packet()
	const runs = 100
	if a := testing.AllocsPerRun(runs, func() {
		if err := s.Send(pkt, lo6); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Send: %v allocs/op, want 0", a)
	}
	buf := make([]byte, 1500)
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(runs, func() {
		if _, _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Read: %v allocs/op, want 0", a)
	}
	pkts := [][]byte{pkt, pkt, pkt, pkt}
	dsts := []netip.Addr{lo6, lo6, lo6, lo6}
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := s.SendBatch(pkts, dsts); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SendBatch: %v allocs/op, want 0", a)
	}
	if n, err := s.SendBatch([][]byte{pkt, pkt[:10]}, []netip.Addr{lo6, lo6}); n != 1 || err == nil {
		t.Errorf("SendBatch with a short second packet = %d, %v; want 1 and an error", n, err)
	}
}

// A kernel reject rule answers our SYN with ICMPv6 1/1 (RFC 4443 §3.1: administratively prohibited) quoting
// it; the ICMPv6Receiver of our flow gets it, one for other ports does not.
func TestICMPv6AdminProhibited(t *testing.T) {
	ns := newNS(t)
	const ours, port = 40001, 9
	rejectInput6(t, ns, port)
	newICMP := func(f Filter) *ICMPv6Receiver {
		var ir *ICMPv6Receiver
		in(t, ns, "NewICMPv6Receiver", func() (err error) { ir, err = NewICMPv6Receiver(f); return err })
		t.Cleanup(func() { ir.Close() })
		return ir
	}
	ir := newICMP(Filter{Remote: netip.PrefixFrom(lo6, 128), RemotePort: port, LocalLo: ours, LocalHi: ours})
	other := newICMP(Filter{Remote: netip.PrefixFrom(lo6, 128), LocalLo: ours + 1, LocalHi: ours + 100})
	s := newSender6(t, ns)
	if err := s.Send(seg6{src: lo6, dst: lo6, sport: ours, dport: port, seq: 77, flags: flagSYN}.packet(), lo6); err != nil {
		t.Fatalf("Send SYN: %v", err)
	}
	buf := make([]byte, 1500)
	ir.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, ts, err := ir.Read(buf)
	if err != nil {
		t.Fatalf("Read ICMPv6: %v", err)
	}
	if ts.IsZero() {
		t.Error("no kernel timestamp")
	}
	pkt := buf[:n]
	if pkt[0]>>4 != 6 || pkt[6] != protoICMPv6 || int(binary.BigEndian.Uint16(pkt[4:])) != n-40 || len(pkt) < 40+8+60 {
		t.Fatalf("not an ICMPv6 error with a rebuilt header quoting a segment: %x", pkt)
	}
	if from := netip.AddrFrom16([16]byte(pkt[8:24])); from != lo6 {
		t.Errorf("rebuilt source %v, want %v", from, lo6)
	}
	icmp := pkt[40:]
	if icmp[0] != 1 || icmp[1] != 1 {
		t.Errorf("ICMPv6 type/code = %d/%d, want 1/1 (administratively prohibited)", icmp[0], icmp[1])
	}
	q, ok := parse6(icmp[8:])
	if !ok || q.sport != ours || q.dport != port || q.seq != 77 {
		t.Errorf("quoted segment = %+v (ok %v), want our SYN %d->%d seq 77", q, ok, ours, port)
	}
	other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := other.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("receiver for other ports: err = %v, want a deadline (filtered out)", err)
	}
}

// rejectInput6 installs `tcp dport PORT reject with icmpv6 type admin-prohibited` in an ip6 table of ns's
// input hook, removed at cleanup.
func rejectInput6(t *testing.T, ns *netns.NS, port uint16) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		privileged(t, "nftables", err)
	}
	var b [4]byte
	rand.Read(b[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_rawsock6_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyIPv6})
	pol := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &pol})
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p[:]},
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 1}, // ICMPv6 1/1 in an ip6 table (NF_REJECT_ICMP6_ADM_PROHIBITED)
	}})
	if err := c.Flush(); err != nil {
		privileged(t, "install nftables ip6 reject rule", err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
		}
	})
}
