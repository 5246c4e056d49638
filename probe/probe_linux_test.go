package probe_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	sendrun "github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// synTo sends a SYN with Linux's option set and random ISN x on f, and
// returns x.
func synTo(t *testing.T, f *probe.Flow) uint32 {
	t.Helper()
	x := probe.RandomUint32()
	send(t, f, craft.Segment{Seq: x, Flags: craft.FlagSYN, Window: 64240, Options: craft.DefaultSYNOptions(1)})
	return x
}

// TestGuardKeepsRemoteSynRcvd: a SYN to a listener draws a SYN-ACK, the target
// holds a SYN_RCVD request for us, and with the RST guard on the local
// kernel's RST for that SYN-ACK (RFC 9293 §3.10.7.1: no socket here) never
// reaches the target, so the request survives.
func TestGuardKeepsRemoteSynRcvd(t *testing.T) {
	t.Parallel()
	eachFamily(t, testGuardKeepsRemoteSynRcvd)
}

func testGuardKeepsRemoteSynRcvd(t *testing.T, fam labFamily) {
	l := labtest.New(t)
	capt := captureRSTs(t, l, fam.prober(l))
	p, warned := openProberTo(t, l, fam.target(l), false)
	if !p.Guarded() {
		t.Fatal("Guarded() = false on a prober opened with the guard")
	}
	f := newFlow(t, p, lab.PortHold)
	x := synTo(t, f)
	got, _ := expect(t, f, 2*time.Second)
	if got.Flags != craft.FlagSYN|craft.FlagACK || got.Ack != x+1 {
		t.Fatalf("reply to SYN seq=%d: %s seq=%d ack=%d; want S. ack=%d", x, got.Flags, got.Seq, got.Ack, x+1)
	}
	s, ok := remoteSocket(t, l, f)
	if !ok || s.State.String() != "SYN_RCVD" {
		t.Fatalf("target socket for %s: %v (found %v), want SYN_RCVD", f.Local, s.State, ok)
	}

	// Long enough for the local kernel's RST to the SYN-ACK and for the
	// target's first SYN-ACK retransmission (+1 s on Linux) to draw another.
	if sport, seq, ok := capt.next(t, time.Now().Add(1500*time.Millisecond)); ok {
		t.Errorf("a RST from the prober reached the target through the guard: port %d seq %d", sport, seq)
	}
	if s, ok := remoteSocket(t, l, f); !ok || s.State.String() != "SYN_RCVD" {
		t.Errorf("after 1.5 s the target socket is %v (found %v), want SYN_RCVD kept", s.State, ok)
	}
	if n := p.GuardDropped(); n == 0 {
		t.Error("GuardDropped() = 0: the guard did not count the local RST it must have dropped")
	}
	if w := warned.containing("local kernel sent a RST"); len(w) != 0 {
		t.Errorf("the prober's watch saw a local RST escape the guard: %q", w)
	}

	// Our own RST carries the mark and passes the guard: the exact reset
	// <SEQ=x+1><CTL=RST> (RFC 9293 §3.10.7.4) removes the request at once.
	send(t, f, craft.Segment{Seq: x + 1, Flags: craft.FlagRST})
	if _, seq, ok := capt.next(t, time.Now().Add(time.Second)); !ok || seq != x+1 {
		t.Errorf("our marked RST seq=%d: captured %v seq=%d", x+1, ok, seq)
	}
	if !poll(time.Second, func() bool { _, ok := remoteSocket(t, l, f); return !ok }) {
		t.Error("target still holds the request 1 s after our exact RST")
	}
}

// TestNoGuardRemoteLosesSynRcvd is the control for TestGuardKeepsRemoteSynRcvd:
// without the guard the local kernel's RST reaches the target, which drops
// the request. It proves the capture and the state check can fail.
func TestNoGuardRemoteLosesSynRcvd(t *testing.T) {
	t.Parallel()
	eachFamily(t, testNoGuardRemoteLosesSynRcvd)
}

func testNoGuardRemoteLosesSynRcvd(t *testing.T, fam labFamily) {
	l := labtest.New(t)
	capt := captureRSTs(t, l, fam.prober(l))
	p, warned := openProberTo(t, l, fam.target(l), true)
	if p.Guarded() {
		t.Fatal("Guarded() = true with NoGuard")
	}
	f := newFlow(t, p, lab.PortHold)
	x := synTo(t, f)
	got, _ := expect(t, f, 2*time.Second)
	if got.Flags != craft.FlagSYN|craft.FlagACK || got.Ack != x+1 {
		t.Fatalf("reply to SYN seq=%d: %s ack=%d; want S. ack=%d", x, got.Flags, got.Ack, x+1)
	}
	// The kernel resets the SYN-ACK from the address the SYN-ACK went to:
	// <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.1).
	sport, seq, ok := capt.next(t, time.Now().Add(1500*time.Millisecond))
	if !ok {
		t.Fatal("no RST from the prober reached the target within 1.5 s without the guard")
	}
	if sport != f.Local.Port() || seq != x+1 {
		t.Errorf("captured RST port %d seq %d, want port %d seq %d", sport, seq, f.Local.Port(), x+1)
	}
	if !poll(time.Second, func() bool { _, ok := remoteSocket(t, l, f); return !ok }) {
		s, _ := remoteSocket(t, l, f)
		t.Errorf("target still holds a %v socket for %s after the local RST", s.State, f.Local)
	}
	if n := p.GuardDropped(); n != 0 {
		t.Errorf("GuardDropped() = %d without a guard", n)
	}
	// The prober's watch tells the user why the remote went away.
	want := fmt.Sprintf("local kernel sent a RST to %s from port %d", f.Remote, f.Local.Port())
	if !poll(time.Second, func() bool { return len(warned.containing(want)) > 0 }) {
		t.Errorf("no warning %q from the prober's watch", want)
	}
}

// TestClosedPort: a port with no listener answers as CLOSED does (RFC 9293
// §3.5.2 and §3.10.7.1).
func TestClosedPort(t *testing.T) {
	t.Parallel()
	eachFamily(t, testClosedPort)
}

func testClosedPort(t *testing.T, fam labFamily) {
	l := labtest.New(t)
	p, _ := openProberTo(t, l, fam.target(l), false)

	t.Run("SYN", func(t *testing.T) {
		f := newFlow(t, p, lab.PortClosed)
		x := synTo(t, f)
		got, _ := expect(t, f, 2*time.Second)
		if want := (seg{Flags: craft.FlagRST | craft.FlagACK, Seq: 0, Ack: x + 1}); got != want {
			t.Errorf("SYN seq=%d to a closed port: got %s seq=%d ack=%d, want %s seq=%d ack=%d",
				x, got.Flags, got.Seq, got.Ack, want.Flags, want.Seq, want.Ack)
		}
	})
	t.Run("ACK", func(t *testing.T) {
		f := newFlow(t, p, lab.PortClosed)
		y := probe.RandomUint32()
		send(t, f, craft.Segment{Seq: probe.RandomUint32(), Ack: y, Flags: craft.FlagACK, Window: 512})
		got, _ := expect(t, f, 2*time.Second)
		if got.Flags != craft.FlagRST || got.Seq != y {
			t.Errorf("ACK %d to a closed port: got %s seq=%d, want R seq=%d", y, got.Flags, got.Seq, y)
		}
	})
	t.Run("RST", func(t *testing.T) {
		// Never a reset in reply to a reset (RFC 9293 §3.10.7.1).
		f := newFlow(t, p, lab.PortClosed)
		send(t, f, craft.Segment{Seq: probe.RandomUint32(), Flags: craft.FlagRST})
		expectNothing(t, f, 300*time.Millisecond)
	})
}

// TestReplyTimes: a reply's kernel receive timestamp is after the send time,
// and the round trip on a veth pair is positive and well below a second, for
// a Flow and for Send.
func TestReplyTimes(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	p, _ := openProber(t, l, false)

	f := newFlow(t, p, lab.PortClosed)
	x := probe.RandomUint32()
	sentAt := send(t, f, craft.Segment{Seq: x, Flags: craft.FlagSYN})
	_, at := expect(t, f, 2*time.Second)
	if !at.After(sentAt) {
		t.Errorf("reply timestamp %v is not after the send time %v", at, sentAt)
	}
	if rtt := at.Sub(sentAt); rtt <= 0 || rtt >= time.Second {
		t.Errorf("Flow round trip = %v, want between 0 and 1 s", rtt)
	}

	var (
		mu      sync.Mutex
		sent    []sendrun.Probe
		replies []sendrun.Reply
	)
	spec := sendrun.Spec{Target: netip.AddrPortFrom(l.TargetAddr, lab.PortHold), Flags: craft.FlagSYN,
		Count: 2, Interval: 50 * time.Millisecond, Wait: 500 * time.Millisecond}
	res, err := sendrun.Run(context.Background(), p, spec, sendrun.Observer{
		Sent:  func(s sendrun.Probe) { mu.Lock(); sent = append(sent, s); mu.Unlock() },
		Reply: func(r sendrun.Reply) { mu.Lock(); replies = append(replies, r); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Sent != 2 || len(sent) != 2 || res.Answered != 2 {
		t.Fatalf("Send: sent %d (observed %d), answered %d; want 2, 2, 2 (result %+v)", res.Sent, len(sent), res.Answered, res)
	}
	for _, r := range replies {
		if r.Probe < 1 || r.Probe > len(sent) {
			t.Errorf("reply %+v names probe %d of %d", r, r.Probe, len(sent))
			continue
		}
		s := sent[r.Probe-1]
		if r.Kind != probe.EventSegment || r.Flags != craft.FlagSYN|craft.FlagACK || r.Ack != s.Seq+1 {
			t.Errorf("reply to probe %d (seq %d): kind %d %s ack=%d, want S. ack=%d", r.Probe, s.Seq, r.Kind, r.Flags, r.Ack, s.Seq+1)
		}
		if !r.At.After(s.At) {
			t.Errorf("reply %d: timestamp %v not after the send time %v", r.Probe, r.At, s.At)
		}
		if r.RTT <= 0 || r.RTT >= time.Second {
			t.Errorf("reply %d: RTT %v, want between 0 and 1 s", r.Probe, r.RTT)
		}
		if r.From != spec.Target || r.To != s.Local {
			t.Errorf("reply %d: %s > %s, want %s > %s", r.Probe, r.From, r.To, spec.Target, s.Local)
		}
	}
	if res.MinRTT <= 0 || res.MinRTT > res.AvgRTT || res.AvgRTT > res.MaxRTT || res.MaxRTT >= time.Second {
		t.Errorf("RTT min/avg/max = %v/%v/%v, want 0 < min <= avg <= max < 1 s", res.MinRTT, res.AvgRTT, res.MaxRTT)
	}
	if res.GuardDropped == 0 {
		t.Error("GuardDropped = 0 after two SYN-ACKs")
	}
	// Send resets the half-open connections it made (LeaveOpen unset).
	for _, s := range sent {
		if !poll(time.Second, func() bool {
			_, ok, err := sockdiag.Lookup(l.Target, s.Remote, s.Local)
			return err == nil && !ok
		}) {
			t.Errorf("target still holds a socket for probe %d from %s after Send", s.Index, s.Local)
		}
	}
}

// rejectPort makes the target namespace answer TCP to port with ICMP
// "communication administratively prohibited" (type 3 code 13, RFC 1812
// §5.2.7.1), in a table deleted at cleanup.
func rejectPort(t *testing.T, l *lab.Lab, port uint16) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(l.Target.Fd()))
	if err != nil {
		privileged(t, "nftables", err)
	}
	var b [4]byte
	rand.Read(b[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_probe_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyIPv4})
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
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 13},
	}})
	if err := c.Flush(); err != nil {
		privileged(t, "add nftables reject rule", err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
		}
	})
}

// TestSendReportsICMP: an ICMP error quoting our SYN is a reply of its own.
func TestSendReportsICMP(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	const port = 7099
	rejectPort(t, l, port)
	p, _ := openProber(t, l, false)
	var (
		mu      sync.Mutex
		replies []sendrun.Reply
	)
	spec := sendrun.Spec{Target: netip.AddrPortFrom(l.TargetAddr, port), Flags: craft.FlagSYN, Count: 1, Wait: time.Second}
	res, err := sendrun.Run(context.Background(), p, spec, sendrun.Observer{
		Reply: func(r sendrun.Reply) { mu.Lock(); replies = append(replies, r); mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(replies) != 1 || res.Replies != 1 || res.Answered != 1 {
		t.Fatalf("got %d replies (result %+v), want one ICMP error: %+v", len(replies), res, replies)
	}
	r := replies[0]
	if r.Kind != probe.EventICMP || r.ICMPType != 3 || r.ICMPCode != 13 || r.From.Addr() != l.TargetAddr {
		t.Errorf("reply = kind %d type %d code %d from %s, want ICMP 3/13 from %s", r.Kind, r.ICMPType, r.ICMPCode, r.From, l.TargetAddr)
	}
	if !strings.Contains(r.ICMPText, "3/13") {
		t.Errorf("ICMP text %q does not name 3/13", r.ICMPText)
	}
	if r.RTT <= 0 || r.RTT >= time.Second {
		t.Errorf("ICMP RTT = %v, want between 0 and 1 s", r.RTT)
	}
	if st := p.Stats(); st.ICMP != 1 {
		t.Errorf("Stats().ICMP = %d, want 1", st.ICMP)
	}
}

// TestGuardSparesLocalClientRST: the guard covers tcpwalk's own 4-tuples
// only. A local kernel client that happens to use a port of tcpwalk's range
// (61000-65535) and aborts its connection (SO_LINGER 0: a RST, RFC 9293
// §3.10.7.1's ABORT) must still reach the target with that RST while a
// prober's guard is up, and the prober must not call it a leak of its own.
func TestGuardSparesLocalClientRST(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	capt := captureRSTs(t, l, l.ProberAddr)
	p, warned := openProber(t, l, false)
	f := newFlow(t, p, lab.PortHold) // one flow of ours, so the guard covers something
	synTo(t, f)
	expect(t, f, 2*time.Second)

	const clientPort = 61234
	if f.Local.Port() == clientPort {
		t.Skip("the prober's random port is the client's") // 1 in 4536
	}
	var fd int
	err := l.Prober.Do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fd = s
		if err := unix.Bind(s, &unix.SockaddrInet4{Port: clientPort}); err != nil {
			return fmt.Errorf("bind %d: %w", clientPort, err)
		}
		return unix.Connect(s, &unix.SockaddrInet4{Port: lab.PortHold, Addr: l.TargetAddr.As4()})
	})
	if err != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		t.Fatalf("local client: %v", err)
	}
	remote := netip.AddrPortFrom(l.TargetAddr, lab.PortHold)
	client := netip.AddrPortFrom(l.ProberAddr, clientPort)
	if !poll(2*time.Second, func() bool {
		s, ok, err := sockdiag.Lookup(l.Target, remote, client)
		return err == nil && ok && s.State.String() == "ESTABLISHED"
	}) {
		unix.Close(fd)
		t.Fatalf("the target has no ESTABLISHED socket for the local client %s", client)
	}
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)

	got := false
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		sport, _, ok := capt.next(t, end)
		if !ok {
			break
		}
		if sport == clientPort {
			got = true
			break
		}
	}
	if !got {
		t.Errorf("the local client's RST from port %d never reached the target: the guard dropped a RST that is not tcpwalk's", clientPort)
	}
	if !poll(time.Second, func() bool { _, ok, err := sockdiag.Lookup(l.Target, remote, client); return err == nil && !ok }) {
		t.Errorf("the target still holds the local client's connection %s after its RST", client)
	}
	if w := warned.containing(fmt.Sprintf("from port %d", clientPort)); len(w) != 0 {
		t.Errorf("the prober called the local client's RST its own leak: %q", w)
	}
}

// TestGuardSharedListenElement: a flow that Connect pinned keeps its guard
// element (remote address, any port, local port), and a new listening flow
// on the same local port needs the same element. Closing the first must
// leave the second covered: the target's SYN to that port then draws the
// local kernel's RST (no socket, RFC 9293 §3.10.7.1), and the guard must
// still drop it. Before the prober counted the flows behind an element,
// the first Close removed it and the RST reached the target.
func TestGuardSharedListenElement(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	capt := captureRSTs(t, l, l.ProberAddr)
	p, warned := openProber(t, l, false)
	a, err := p.Listen(0)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(a.Close)
	if err := a.Connect(40000); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	b, err := p.Listen(a.Local.Port())
	if err != nil {
		t.Fatalf("Listen(%d) beside a pinned flow: %v", a.Local.Port(), err)
	}
	t.Cleanup(b.Close)
	a.Close()

	// The target dials the shared port: a SYN the local kernel resets.
	var fd int
	err = l.Target.Do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fd = s
		err = unix.Connect(s, &unix.SockaddrInet4{Port: int(b.Local.Port()), Addr: l.ProberAddr.As4()})
		if errors.Is(err, unix.EINPROGRESS) {
			return nil
		}
		return err
	})
	if fd > 0 {
		defer unix.Close(fd)
	}
	if err != nil {
		t.Fatalf("the target's connect to %s: %v", b.Local, err)
	}
	got, _ := expect(t, b, 2*time.Second)
	if got.Flags != craft.FlagSYN {
		t.Fatalf("the listening flow got %s, want the target's SYN", got.Flags)
	}
	if sport, seq, ok := capt.next(t, time.Now().Add(1500*time.Millisecond)); ok {
		t.Errorf("a RST from port %d seq %d reached the target: closing the pinned flow uncovered the listening one", sport, seq)
	}
	if w := warned.containing("local kernel sent a RST"); len(w) != 0 {
		t.Errorf("the prober's watch saw a local RST escape the guard: %q", w)
	}
}
