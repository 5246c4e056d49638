package walk_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// TestStaleConnectionIsReset: the target still holds a connection on the
// 4-tuple our SYN uses (an earlier one whose reset was lost), in FIN_WAIT_1,
// retransmitting its FIN. Its answers to our SYN (a challenge ACK, its FIN
// again) are that connection's, not a failed LISTEN: the walk resets it as
// SYN-SENT does, <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.3), and its SYN
// then opens the connection.
func TestStaleConnectionIsReset(t *testing.T) {
	l := labtest.New(t)
	const port = 62222
	p := portProber(t, l, port)
	local := netip.AddrPortFrom(l.ProberAddr, port)

	// The lab trigger walks active-close on its closing server (7002).
	for _, tc := range []struct {
		name string
		port uint16
	}{{"handshake", lab.PortControl}, {"active-close", lab.PortClose}} {
		name := tc.name
		t.Run(name, func(t *testing.T) {
			remote := netip.AddrPortFrom(l.TargetAddr, tc.port)
			makeStale(t, l, remote, local)
			sc, _ := walk.Lookup(name)
			cfg := walk.Config{Prober: p, Port: lab.PortControl, Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober},
				Oracle: walk.SockDiag{NS: l.Target}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := walk.Run(ctx, cfg, []walk.Scenario{sc})
			if len(res) != 1 {
				t.Fatalf("%d results", len(res))
			}
			r := res[0]
			if r.Verdict != walk.Pass {
				for _, c := range r.Checks {
					t.Logf("%s: %s %s (%s) got %s", c.Name, c.Verdict, c.Wire, c.Reason, c.Received)
				}
				t.Errorf("%s over a stale connection: %s (%s)", name, r.Verdict, r.Reason)
			}
			reset := false
			for _, s := range r.Segments {
				reset = reset || (s.Dir == walk.Out && strings.HasPrefix(s.Note, "reset a stale connection"))
			}
			if !reset {
				t.Errorf("no reset of the stale connection among the segments: %+v", r.Segments)
			}
			// The stale connection's FIN is not this connection's: the
			// remote's FIN_WAIT_1 is shown by a FIN in the sequence space
			// of the connection our SYN opened (its IRS from the SYN,ACK).
			var irs uint32
			for _, s := range r.Segments {
				if s.Dir == walk.In && s.Flags == craft.FlagSYN|craft.FlagACK {
					irs = uint32(s.Seq)
				}
			}
			for _, c := range r.Checks {
				if c.Name != "ESTABLISHED → FIN_WAIT_1" {
					continue
				}
				var seq uint32
				if _, err := fmt.Sscanf(c.Received, "<SEQ=%d>", &seq); err != nil || !strings.Contains(c.Received, "FIN") ||
					seq-(irs+1) >= 1<<30 {
					t.Errorf("%s passed on %s, not a FIN of the connection with IRS %d", c.Name, c.Received, irs)
				}
			}
		})
	}
}

// makeStale leaves the target a connection on remote-local in FIN_WAIT_1,
// retransmitting its FIN, with no socket on our side: a kernel connection
// from our port, told to close and dropped at once (SO_LINGER 0). The guard
// drops its RST and the kernel's RST to the target's FIN.
func makeStale(t *testing.T, l *lab.Lab, remote, local netip.AddrPort) {
	t.Helper()
	// The lost reset: the prober's own guard covers only its flows, not
	// this kernel socket, so a guard of the test's drops the socket's RSTs
	// (its abort, and its answers to the FIN retransmissions) until the
	// subtest ends. Our crafted segments carry the mark and pass.
	g, err := guard.Install(guard.Config{Mark: probe.DefaultMark, Remotes: []netip.Prefix{netip.PrefixFrom(remote.Addr(), 32)},
		LocalLo: local.Port(), LocalHi: local.Port(), NetNSFd: l.Prober.Fd()})
	if err != nil {
		t.Fatalf("install the guard that loses the stale connection's reset: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	err = l.Prober.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", remote.String())
		if err != nil {
			return err
		}
		// Linger 0 first, then the word and the close back to back: the
		// socket must be gone before the target's FIN comes, or it would
		// acknowledge it (FIN_WAIT_2, not FIN_WAIT_1).
		if err := c.(*net.TCPConn).SetLinger(0); err != nil {
			c.Close()
			return err
		}
		_, werr := c.Write([]byte("close\n"))
		if err := c.Close(); werr == nil {
			werr = err
		}
		return werr
	})
	if err != nil {
		t.Fatalf("make the stale connection: %v", err)
	}
	oracle := walk.SockDiag{NS: l.Target}
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, err := oracle.State(remote, local)
		if err == nil && st == result.FinWait1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's connection is %q (%v), want FIN_WAIT_1", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let a FIN retransmission come too
	if st, err := oracle.State(remote, local); err != nil || st != result.FinWait1 {
		t.Fatalf("the target's stale connection went from FIN_WAIT_1 to %q (%v) by itself", st, err)
	}
}

// TestStaleHalfOpenIsReset: the target holds a half-open connection
// (SYN_RCVD) on the 4-tuple our SYN uses, one of an earlier SYN whose tidy
// RST was lost. Linux answers a new SYN on that 4-tuple with at most a
// rate-limited ACK (tcp_check_req), which this test uses up beforehand, so
// what comes is that connection's retransmitted SYN,ACK, acknowledging the
// old SYN. That is no failed LISTEN: SYN-SENT resets a SYN,ACK with an
// unacceptable ACK, <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.3), which
// removes the half-open connection, and the SYN sent again opens ours.
func TestStaleHalfOpenIsReset(t *testing.T) {
	l := labtest.New(t)
	const port = 62223
	p := portProber(t, l, port)
	remote := netip.AddrPortFrom(l.TargetAddr, lab.PortControl)
	local := netip.AddrPortFrom(l.ProberAddr, port)

	// One out-of-window ACK per minute from a half-open connection, in the
	// target's namespace only (the lab's own, removed with it).
	if err := l.Target.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/tcp_invalid_ratelimit", []byte("60000"), 0)
	}); err != nil {
		t.Fatalf("set tcp_invalid_ratelimit in the target: %v", err)
	}
	// Two SYNs with different ISNs, left open: the first makes the
	// half-open connection, the second draws its one ACK.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var acks int
	if _, err := send.Run(ctx, p, send.Spec{Target: remote, Flags: craft.FlagSYN, SrcPort: port, Count: 2,
		Interval: 50 * time.Millisecond, Wait: 200 * time.Millisecond, LeaveOpen: true},
		send.Observer{Reply: func(r send.Reply) {
			if r.Flags == craft.FlagACK {
				acks++
			}
		}}); err != nil {
		t.Fatalf("make the half-open connection: %v", err)
	}
	if acks != 1 {
		t.Fatalf("the second SYN drew %d ACKs, want the half-open connection's one", acks)
	}
	if st, err := (walk.SockDiag{NS: l.Target}).State(remote, local); err != nil || st != result.SynRcvd {
		t.Fatalf("the target's connection is %q (%v), want SYN_RCVD", st, err)
	}

	sc, _ := walk.Lookup("handshake")
	cfg := walk.Config{Prober: p, Port: lab.PortControl, Oracle: walk.SockDiag{NS: l.Target}}
	res := walk.Run(ctx, cfg, []walk.Scenario{sc})
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	r := res[0]
	var staleAck tcpconn.Seq
	for _, s := range r.Segments {
		if s.Dir == walk.In && s.Flags == craft.FlagSYN|craft.FlagACK && staleAck == 0 {
			staleAck = s.Ack
		}
	}
	reset := false
	for _, s := range r.Segments {
		t.Logf("%s %s seq %d ack %d %s", s.Dir, s.Flags, s.Seq, s.Ack, s.Note)
		reset = reset || s.Dir == walk.Out && s.Flags == craft.FlagRST && s.Seq == staleAck && strings.HasPrefix(s.Note, "reset a stale connection")
	}
	if r.Verdict != walk.Pass {
		for _, c := range r.Checks {
			t.Logf("%s: %s %s (%s) got %s", c.Name, c.Verdict, c.Wire, c.Reason, c.Received)
		}
		t.Errorf("handshake over a half-open connection: %s (%s)", r.Verdict, r.Reason)
	}
	if !reset {
		t.Errorf("the first SYN,ACK (ACK=%d, the half-open connection's) was not reset with <SEQ=SEG.ACK><CTL=RST>", staleAck)
	}
}
