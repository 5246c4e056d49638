package probe_test

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	probesend "github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// The IPv6 lab tests drive the dual-stack lab's real kernels with crafted
// segments from craft and rawsock's IPv6 sockets, and read the target's
// state with sock_diag. tcpwalk's RST guard (probe/guard, per flow, its
// ip6 set) keeps the prober's kernel quiet where a test needs it (v6Guard).

// v6Mark is the SO_MARK of the tests' crafted packets, which the drop table
// lets through.
const v6Mark = 0x7436

// v6Lab is the prober's side of the IPv6 tests: a sender and a receiver for
// one local port, opened in the prober namespace.
type v6Lab struct {
	l     *lab.Lab
	send  *rawsock.Sender6
	recv  *rawsock.Receiver6
	local netip.AddrPort
}

// newV6Lab opens the sockets for segments between local port and the
// target's port.
func newV6Lab(t *testing.T, l *lab.Lab, port, local uint16) *v6Lab {
	t.Helper()
	v := &v6Lab{l: l, local: netip.AddrPortFrom(l.ProberAddr6, local)}
	if err := l.Prober.Do(func() (err error) {
		if v.send, err = rawsock.NewSender6(v6Mark); err != nil {
			return err
		}
		v.recv, err = rawsock.NewReceiver6(rawsock.Filter{Remote: netip.PrefixFrom(l.TargetAddr6, 128), RemotePort: port, LocalLo: local, LocalHi: local})
		return err
	}); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() { v.send.Close(); v.recv.Close() })
	return v
}

// segment sends s from the lab's local address to the target's IPv6
// address, filling the addresses and the local port.
func (v *v6Lab) segment(t *testing.T, s craft.Segment) {
	t.Helper()
	s.Src, s.Dst, s.SrcPort = v.l.ProberAddr6, v.l.TargetAddr6, v.local.Port()
	b := make([]byte, s.Len())
	n, err := s.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.send.Send(b[:n], v.l.TargetAddr6); err != nil {
		t.Fatalf("send %v over IPv6: %v", s.Flags, err)
	}
}

// reply reads the next segment of the flow, or fails after d.
func (v *v6Lab) reply(t *testing.T, d time.Duration) craft.IPv6Packet {
	t.Helper()
	buf := make([]byte, 2048)
	v.recv.SetReadDeadline(time.Now().Add(d))
	n, ts, err := v.recv.Read(buf)
	if err != nil {
		t.Fatalf("read the target's reply over IPv6: %v", err)
	}
	if ts.IsZero() {
		t.Error("reply carries no kernel timestamp")
	}
	p, err := craft.ParseIPv6Packet(buf[:n])
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	return p
}

// v6Guard installs tcpwalk's RST guard (package guard, per flow, as a
// Prober does) in the lab's prober namespace, covering the flow from local
// to the target's IPv6 port, and returns its drop counter. The guard's
// table goes at cleanup.
func v6Guard(t *testing.T, l *lab.Lab, port, local uint16) func() uint64 {
	t.Helper()
	g, err := guard.Install(guard.Config{Mark: v6Mark, Remotes: []netip.Prefix{netip.PrefixFrom(l.TargetAddr6, 128)},
		LocalLo: local, LocalHi: local, NetNSFd: l.Prober.Fd(), PerFlow: true})
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := g.Add(netip.AddrPortFrom(l.TargetAddr6, port), local); err != nil {
		t.Fatal(err)
	}
	return func() uint64 {
		n, err := g.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// v6Socket looks up the target's socket for the flow.
func v6Socket(t *testing.T, v *v6Lab, port uint16) (sockdiag.Socket, bool) {
	t.Helper()
	s, ok, err := sockdiag.Lookup(v.l.Target, netip.AddrPortFrom(v.l.TargetAddr6, port), v.local)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}

// A crafted SYN to the target's IPv6 listener draws the kernel's SYN-ACK
// (RFC 9293 §3.10.7.2), and the target holds a request socket in SYN_RCVD
// for us. With the prober kernel's RST to that SYN-ACK dropped (no socket
// here: RFC 9293 §3.10.7.1) the request survives; without, the control,
// the RST reaches the target and removes it, which shows the state check
// can fail.
func TestIPv6LabSYNGetsSYNACKAndSynRcvd(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		name := "kernel RSTs dropped"
		if !guarded {
			name = "control: kernel RSTs pass"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := labtest.New(t)
			const local = 40600
			var dropped func() uint64
			if guarded {
				dropped = v6Guard(t, l, lab.PortHold, local)
			}
			v := newV6Lab(t, l, lab.PortHold, local)
			x := probe.RandomUint32()
			v.segment(t, craft.Segment{DstPort: lab.PortHold, Seq: x, Flags: craft.FlagSYN, Window: 64240,
				Options: craft.DefaultSYNOptions(1), FlowLabel: 0x6a5b4})
			p := v.reply(t, 2*time.Second)
			if f := p.TCP.Flags(); f != craft.FlagSYN|craft.FlagACK || p.TCP.AckNumber() != x+1 ||
				p.TCP.SourcePort() != lab.PortHold || p.IP.Source() != l.TargetAddr6 || p.IP.Destination() != l.ProberAddr6 {
				t.Fatalf("reply to SYN seq=%d: %s from [%v]:%d to %v ack=%d; want S. from [%v]:%d ack=%d",
					x, f, p.IP.Source(), p.TCP.SourcePort(), p.IP.Destination(), p.TCP.AckNumber(), l.TargetAddr6, lab.PortHold, x+1)
			}
			var opts craft.OptionSet
			if err := p.TCP.DecodeOptions(&opts); err != nil || !opts.Has(craft.OptMSS) || opts.MSS != 1440 {
				// 1500-byte veth MTU minus 40 (IPv6) and 20 (TCP) bytes.
				t.Errorf("SYN-ACK options %s (%v): want MSS 1440 for IPv6 on a 1500-byte link", p.TCP.OptionsText(nil), err)
			}
			if !guarded {
				// The prober kernel's RST may already have removed the
				// request: wait (bounded) until it has.
				deadline := time.Now().Add(1500 * time.Millisecond)
				for {
					s, ok := v6Socket(t, v, lab.PortHold)
					if !ok {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("without the drop table the target still holds %v after 1.5 s; the prober kernel's RST should have removed it", s.State)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			s, ok := v6Socket(t, v, lab.PortHold)
			if !ok || s.State.String() != "SYN_RCVD" {
				t.Fatalf("target socket for %v: %v (found %v), want SYN_RCVD", v.local, s.State, ok)
			}
			// Long enough for the prober kernel's RST to the SYN-ACK and
			// for the target's first SYN-ACK retransmission (after 1 s).
			time.Sleep(1500 * time.Millisecond)
			s, ok = v6Socket(t, v, lab.PortHold)
			if !ok || s.State.String() != "SYN_RCVD" {
				t.Errorf("after 1.5 s the target socket is %v (found %v), want SYN_RCVD kept", s.State, ok)
			}
			if n := dropped(); n == 0 {
				t.Error("the guard dropped no prober kernel RST, but one must have answered the SYN-ACK")
			}
			// Our own exact RST <SEQ=x+1><CTL=RST> (RFC 9293 §3.10.7.4) is
			// marked, passes, and removes the request at once.
			v.segment(t, craft.Segment{DstPort: lab.PortHold, Seq: x + 1, Flags: craft.FlagRST})
			deadline := time.Now().Add(time.Second)
			for {
				if _, ok := v6Socket(t, v, lab.PortHold); !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("target still holds the request 1 s after our exact RST")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// A SYN to a closed IPv6 port draws <SEQ=0><ACK=x+1><CTL=RST,ACK> (RFC 9293
// §3.10.7.1: the SYN carries no ACK).
func TestIPv6LabClosedPortRSTACK(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	const local = 40601
	v := newV6Lab(t, l, lab.PortClosed, local)
	const x = 0x6006_0001
	v.segment(t, craft.Segment{DstPort: lab.PortClosed, Seq: x, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(1)})
	p := v.reply(t, 2*time.Second)
	if f := p.TCP.Flags(); f != craft.FlagRST|craft.FlagACK || p.TCP.SequenceNumber() != 0 || p.TCP.AckNumber() != x+1 || p.TCP.DestinationPort() != local {
		t.Errorf("reply to SYN seq=%d on the closed port: %s seq=%d ack=%d to port %d; want R. seq=0 ack=%d to %d",
			x, f, p.TCP.SequenceNumber(), p.TCP.AckNumber(), p.TCP.DestinationPort(), x+1, local)
	}
	if _, ok := v6Socket(t, v, lab.PortClosed); ok {
		t.Error("the target holds a socket for a SYN to its closed port")
	}
}

// A target that rejects our IPv6 SYN with ICMPv6 1/1 (administratively
// prohibited, RFC 4443 §3.1) gets it to the prober's ICMPv6Receiver,
// quoting our SYN, and craft decodes it.
func TestIPv6LabICMPv6Error(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	const local, port = 40602, lab.PortEcho
	v6RejectInput(t, l.Target, port)
	var ir *rawsock.ICMPv6Receiver
	if err := l.Prober.Do(func() (err error) {
		ir, err = rawsock.NewICMPv6Receiver(rawsock.Filter{Remote: netip.PrefixFrom(l.TargetAddr6, 128), RemotePort: port, LocalLo: local, LocalHi: local})
		return err
	}); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	defer ir.Close()
	v := newV6Lab(t, l, port, local)
	const x = 0x6006_0002
	v.segment(t, craft.Segment{DstPort: port, Seq: x, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(1)})
	buf := make([]byte, 2048)
	ir.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := ir.Read(buf)
	if err != nil {
		t.Fatalf("read the ICMPv6 error: %v", err)
	}
	e, err := craft.ParseICMPv6Error(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if e.From != l.TargetAddr6 || e.Type != craft.ICMPv6DestinationUnreachable || e.Code != 1 ||
		e.SrcPort != local || e.DstPort != port || !e.HasSeq || e.Seq != x {
		t.Errorf("ICMPv6 error %v quoting %d -> %d seq %d (has %v); want 1/1 from %v quoting %d -> %d seq %d",
			e, e.SrcPort, e.DstPort, e.Seq, e.HasSeq, l.TargetAddr6, local, port, x)
	}
	// RFC 4443 quotes as much as fits: our whole 80-byte SYN.
	if q := e.QuotedTCP(); len(q) != 40 {
		t.Errorf("quoted TCP is %d bytes, want our whole 40-byte SYN header", len(q))
	}
}

// v6RejectInput rejects TCP to port in ns's input hook with ICMPv6 1/1, in
// a test-scoped ip6 table removed at cleanup.
func v6RejectInput(t *testing.T, ns *netns.NS, port uint16) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	var r [4]byte
	rand.Read(r[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_v6rej_" + hex.EncodeToString(r[:]), Family: nftables.TableFamilyIPv6})
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
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 1},
	}})
	if err := c.Flush(); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table ip6 %s in %s: %v", tab.Name, ns.Name, err)
		}
	})
}

// v6Prober opens a Prober on the lab target's IPv6 address, in the prober
// namespace, with its RST guard; warnings are logged.
func v6Prober(t *testing.T, l *lab.Lab) *probe.Prober {
	t.Helper()
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr6, NetNS: l.Prober, Warn: func(m string) { t.Logf("prober warning: %s", m) }})
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	if !p.Guarded() {
		t.Fatal("an IPv6 Prober opened with the guard is not Guarded()")
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Prober.Close: %v", err)
		}
	})
	return p
}

// The engine over IPv6: `send`'s run to a listener, a closed port and a
// rejecting port gives a SYN-ACK, a RST-ACK and an ICMPv6 error, each
// attributed to its probe with the IPv6 addresses and hop limit.
func TestIPv6ProberSend(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	if p := v6Prober(t, l); p.Local() != l.ProberAddr6 || p.Remote() != l.TargetAddr6 {
		t.Fatalf("prober local %v remote %v; want %v, %v", p.Local(), p.Remote(), l.ProberAddr6, l.TargetAddr6)
	}
	v6RejectInput(t, l.Target, lab.PortEcho)
	for _, tt := range []struct {
		name  string
		port  uint16
		kind  probe.EventKind
		flags craft.Flags
		icmp  string
	}{
		{"listener", lab.PortHold, probe.EventSegment, craft.FlagSYN | craft.FlagACK, ""},
		{"closed port", lab.PortClosed, probe.EventSegment, craft.FlagRST | craft.FlagACK, ""},
		{"rejected", lab.PortEcho, probe.EventICMP, 0, "ICMPv6 1/1 (communication with destination administratively prohibited) from " + l.TargetAddr6.String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := v6Prober(t, l)
			target := netip.AddrPortFrom(l.TargetAddr6, tt.port)
			var replies []probesend.Reply
			var sent []probesend.Probe
			// Wait past a lost neighbour solicitation (RFC 4861: sent
			// again after 1 s): a fresh lab's first IPv6 packet waits
			// for neighbour discovery, which a loaded machine may lose.
			res, err := probesend.Run(t.Context(), p, probesend.Spec{Target: target, Flags: craft.FlagSYN, FlowLabel: 0xbeef, Wait: 3 * time.Second},
				probesend.Observer{Sent: func(s probesend.Probe) { sent = append(sent, s) }, Reply: func(r probesend.Reply) { replies = append(replies, r) }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 1 || len(sent) != 1 || sent[0].Local.Addr() != l.ProberAddr6 || sent[0].Remote != target {
				t.Fatalf("sent %d probes %+v; want one from %v to %v", res.Sent, sent, l.ProberAddr6, target)
			}
			if len(replies) == 0 {
				t.Fatalf("no reply from %v", target)
			}
			r := replies[0]
			if r.Kind != tt.kind {
				t.Fatalf("reply %+v: kind %d, want %d", r, r.Kind, tt.kind)
			}
			switch tt.kind {
			case probe.EventSegment:
				if r.From != target || r.To != sent[0].Local || r.Flags != tt.flags || r.TTL != 64 || r.Ack != sent[0].Seq+1 {
					t.Errorf("reply %+v; want %s from %v to %v, hop limit 64, ack %d", r, tt.flags, target, sent[0].Local, sent[0].Seq+1)
				}
			case probe.EventICMP:
				if r.From.Addr() != l.TargetAddr6 || r.ICMPType != craft.ICMPv6DestinationUnreachable || r.ICMPCode != 1 || r.ICMPText != tt.icmp {
					t.Errorf("ICMPv6 reply %+v; want %q", r, tt.icmp)
				}
			}
		})
	}
}

// The engine refuses IPv6 destinations it cannot or must not probe.
func TestIPv6ProberRefuses(t *testing.T) {
	for _, a := range []string{"::", "ff02::1", "fe80::1", "::ffff:198.18.0.2"} {
		_, err := probe.Open(probe.Config{Remote: netip.MustParseAddr(a)})
		var ue *probe.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Open(%s) = %v; want a usage error", a, err)
		}
	}
}
