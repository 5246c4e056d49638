//go:build linux

package probe_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/hostilepeer"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	sendrun "github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// hostilePort is the port the hostile peer answers on: nothing listens
// there, and the peer's table keeps the target's kernel from answering it.
const hostilePort = 7077

// hostileTiming keeps walks against the peer short.
var hostileTiming = walk.Timing{Reply: 300 * time.Millisecond, Tries: 2, RemoteRetransmit: time.Second,
	Quiet: 200 * time.Millisecond, RateLimit: 300 * time.Millisecond}

// Bounds a run against a hostile peer must stay within.
const (
	sendBound = 8 * time.Second  // Send with Wait 1 s
	walkBound = 10 * time.Second // the handshake walk with hostileTiming
	heapBound = 16 << 20         // live heap growth across a storm or flood
)

func startPeer(t *testing.T, l *lab.Lab, cfg hostilepeer.Config) *hostilepeer.Peer {
	t.Helper()
	cfg.NS, cfg.Ifname, cfg.Addr = l.Target, l.TargetIf, l.TargetAddr
	if cfg.Port == 0 {
		cfg.Port = hostilePort
	}
	p, err := hostilepeer.Start(cfg)
	if err != nil {
		privileged(t, "hostilepeer.Start", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("hostile peer Close: %v", err)
		}
	})
	return p
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sendOnce runs one SYN probe against the peer, bounded, and returns the
// result and the replies seen.
func sendOnce(t *testing.T, p *probe.Prober, target netip.AddrPort) (sendrun.Result, []sendrun.Reply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var replies []sendrun.Reply
	var n atomic.Int64
	start := time.Now()
	res, err := sendrun.Run(ctx, p, sendrun.Spec{Target: target, Flags: craft.FlagSYN, Count: 1, Wait: time.Second},
		sendrun.Observer{Reply: func(r sendrun.Reply) {
			if n.Add(1) <= 100 { // a storm's replies are counted, not kept
				replies = append(replies, r)
			}
		}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if d := time.Since(start); d > sendBound {
		t.Errorf("Send took %v, want at most %v", d, sendBound)
	}
	return res, replies
}

// walkHandshake runs the handshake walk against the peer, bounded.
func walkHandshake(t *testing.T, p *probe.Prober, port uint16) walk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := walk.Lookup("handshake")
	start := time.Now()
	res := walk.Run(ctx, walk.Config{Prober: p, Port: port, Timing: hostileTiming}, []walk.Scenario{s})[0]
	if d := time.Since(start); d > walkBound {
		t.Errorf("walk handshake took %v, want at most %v", d, walkBound)
	}
	for _, c := range res.Checks {
		t.Logf("check %q: %s; expected %s, received %s; %s", c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
	}
	return res
}

func check(res walk.Result, name string) (walk.Check, bool) {
	for _, c := range res.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return walk.Check{}, false
}

// TestHostilePeerMalformed: replies that cannot be parsed, or whose TCP
// checksum is wrong, are dropped, counted, warned about (rate-limited), named
// in Send's result, and turn the walk's step inconclusive with the reason,
// never into a verdict on what the remote "said".
func TestHostilePeerMalformed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		b    hostilepeer.Behaviour
		want string // in Prober.LastMalformed
	}{
		{hostilepeer.DataOffsetPastEnd, "data offset 60 bytes, past the end of the 20-byte segment"},
		{hostilepeer.OptionLength0, "has length 0"},
		{hostilepeer.OptionLength1, "has length 1"},
		{hostilepeer.OptionsPastHeader, "has length 10, past the end of the 4 option bytes"},
		{hostilepeer.BadChecksum, "TCP checksum"},
		{hostilepeer.TruncatedTCP, "8 bytes, shorter than the 20-byte minimum header"},
	}
	for _, tc := range cases {
		t.Run(tc.b.String(), func(t *testing.T) {
			t.Parallel()
			l := labtest.NewBare(t)
			peer := startPeer(t, l, hostilepeer.Config{Behaviour: tc.b})
			p, warns := openProber(t, l, false)
			target := netip.AddrPortFrom(l.TargetAddr, hostilePort)
			start := time.Now()

			res, replies := sendOnce(t, p, target)
			if res.Replies != 0 {
				t.Errorf("Send delivered %d replies (%+v); a malformed one must be dropped", res.Replies, replies)
			}
			if res.Malformed != 1 || !strings.Contains(res.LastMalformed, tc.want) {
				t.Errorf("Send result: %d malformed, last %q; want 1 and %q", res.Malformed, res.LastMalformed, tc.want)
			}
			w := walkHandshake(t, p, hostilePort)
			if w.Verdict != walk.Inconclusive {
				t.Errorf("walk verdict %s (%s), want inconclusive", w.Verdict, w.Reason)
			}
			c, _ := check(w, "LISTEN → SYN_RCVD")
			if !strings.Contains(c.Reason, "malformed replies on this connection were dropped") || !strings.Contains(c.Reason, tc.want) {
				t.Errorf("walk reason %q does not tell of the malformed replies (%q)", c.Reason, tc.want)
			}
			if peer.SYNs() < 1+hostileTiming.Tries {
				t.Errorf("the peer answered %d SYNs, want %d", peer.SYNs(), 1+hostileTiming.Tries)
			}
			st := p.Stats()
			if st.Malformed < 1+uint64(hostileTiming.Tries) || st.Received != 0 {
				t.Errorf("stats %+v: want every answer malformed, none received", st)
			}
			if tc.b == hostilepeer.BadChecksum && st.BadChecksum != st.Malformed {
				t.Errorf("stats %+v: every malformed packet had a bad checksum", st)
			}
			from := "malformed reply from " + l.TargetAddr.String()
			got := warns.containing(from)
			if len(got) == 0 || !strings.Contains(got[0], tc.want) {
				t.Errorf("warnings %q: want one with %q and %q", warns.containing(""), from, tc.want)
			}
			// At most one a second (the SYNs came within a few seconds).
			if limit := int(time.Since(start)/time.Second) + 1; len(got) > limit {
				t.Errorf("%d malformed warnings in %v: not rate-limited", len(got), time.Since(start))
			}
		})
	}
}

// TestHostilePeerIHLPastEnd: a reply whose IPv4 header claims more bytes
// than the packet has is dropped by the prober's kernel (ip_rcv) before any
// socket sees it; tcpwalk sees no reply, says so and stops in time.
func TestHostilePeerIHLPastEnd(t *testing.T) {
	t.Parallel()
	l := labtest.NewBare(t)
	peer := startPeer(t, l, hostilepeer.Config{Behaviour: hostilepeer.IHLPastEnd})
	p, _ := openProber(t, l, false)
	res, _ := sendOnce(t, p, netip.AddrPortFrom(l.TargetAddr, hostilePort))
	if res.Replies != 0 || res.Answered != 0 {
		t.Errorf("Send result %+v: want no reply", res)
	}
	w := walkHandshake(t, p, hostilePort)
	if w.Verdict != walk.Inconclusive {
		t.Errorf("walk verdict %s, want inconclusive", w.Verdict)
	}
	if peer.Sent() < 2 {
		t.Errorf("the peer sent %d packets; the test proves nothing", peer.Sent())
	}
	if st := p.Stats(); st.Received != 0 {
		t.Errorf("stats %+v: a packet with a bad IHL was delivered", st)
	}
}

// TestHostilePeerWrongAck: a SYN-ACK that acknowledges the wrong number is
// printed as received by send, and fails the walk with expected and received.
func TestHostilePeerWrongAck(t *testing.T) {
	t.Parallel()
	l := labtest.NewBare(t)
	startPeer(t, l, hostilepeer.Config{Behaviour: hostilepeer.WrongAck})
	p, _ := openProber(t, l, false)
	var sent sendrun.Probe
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var replies []sendrun.Reply
	res, err := sendrun.Run(ctx, p, sendrun.Spec{Target: netip.AddrPortFrom(l.TargetAddr, hostilePort), Flags: craft.FlagSYN,
		Count: 1, Wait: time.Second}, sendrun.Observer{Sent: func(s sendrun.Probe) { sent = s },
		Reply: func(r sendrun.Reply) { replies = append(replies, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replies != 1 || len(replies) != 1 || replies[0].Flags != craft.FlagSYN|craft.FlagACK || replies[0].Ack != sent.Seq+1001 {
		t.Errorf("replies %+v to seq %d: want one SYN-ACK acknowledging seq+1001 as received", replies, sent.Seq)
	}
	w := walkHandshake(t, p, hostilePort)
	c, ok := check(w, "LISTEN → SYN_RCVD")
	if w.Verdict != walk.Fail || !ok || c.Verdict != walk.Fail {
		t.Fatalf("walk verdict %s, check %+v: want the SYN-ACK step failed", w.Verdict, c)
	}
	// Expected <ACK=x+1>, received <ACK=x+1001>: the two differ by 1000.
	var exp, got uint32
	if _, err := fmt.Sscanf(c.Expected, "<SEQ=*><ACK=%d>", &exp); err != nil {
		t.Fatalf("expected %q: %v", c.Expected, err)
	}
	if _, err := fmt.Sscanf(c.Received[strings.Index(c.Received, "<ACK="):], "<ACK=%d>", &got); err != nil {
		t.Fatalf("received %q: %v", c.Received, err)
	}
	if got-exp != 1000 || !strings.Contains(c.Received, "<CTL=SYN,ACK>") {
		t.Errorf("check expected %q, received %q: want the wrong ack shown against the right one", c.Expected, c.Received)
	}
}

// TestHostilePeerRSTStorm: 10 000 RST,ACKs per SYN. Send and the walk end in
// time, the walk fails on the first RST, and memory stays bounded.
func TestHostilePeerRSTStorm(t *testing.T) {
	t.Parallel()
	const storm = 10000
	l := labtest.NewBare(t)
	peer := startPeer(t, l, hostilepeer.Config{Behaviour: hostilepeer.RSTStorm, Count: storm})
	p, warns := openProber(t, l, false)
	before := liveHeap()
	res, replies := sendOnce(t, p, netip.AddrPortFrom(l.TargetAddr, hostilePort))
	if res.Replies < 1 || len(replies) == 0 || !replies[0].Flags.Has(craft.FlagRST) {
		t.Errorf("Send result %+v: want the RSTs reported", res)
	}
	w := walkHandshake(t, p, hostilePort)
	c, _ := check(w, "LISTEN → SYN_RCVD")
	if w.Verdict != walk.Fail || !strings.Contains(c.Received, "<CTL=RST,ACK>") {
		t.Errorf("walk verdict %s, received %q: want failed on the RST", w.Verdict, c.Received)
	}
	if !poll(10*time.Second, func() bool { return peer.Sent() >= peer.SYNs()*storm }) {
		t.Errorf("the peer sent %d RSTs for %d SYNs in 10 s", peer.Sent(), peer.SYNs())
	}
	time.Sleep(200 * time.Millisecond) // the last of the storm drains
	if after := liveHeap(); after > before+heapBound {
		t.Errorf("live heap grew from %d to %d bytes across a storm", before, after)
	}
	st := p.Stats()
	t.Logf("peer sent %d; stats %+v", peer.Sent(), st)
	if total := st.Received + st.Unmatched; total < storm {
		t.Errorf("stats %+v: the prober saw %d of the %d RSTs", st, total, peer.Sent())
	}
	// What flows could not take is told once, at Close.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := warns.containing("replies were dropped because"); st.Overflow > 0 && len(got) != 1 {
		t.Errorf("overflow %d, warnings %q: want one warning that says so", st.Overflow, warns.containing(""))
	}
}

// TestHostilePeerRetransmits: the peer sends its SYN-ACK again and again
// and never completes the handshake. Send marks the copies as
// retransmissions of one reply; the walk passes the SYN-ACK step and ends,
// in time, without a verdict of ESTABLISHED.
func TestHostilePeerRetransmits(t *testing.T) {
	t.Parallel()
	l := labtest.NewBare(t)
	startPeer(t, l, hostilepeer.Config{Behaviour: hostilepeer.Retransmit, Count: 200, Interval: 3 * time.Millisecond})
	p, _ := openProber(t, l, false)
	res, replies := sendOnce(t, p, netip.AddrPortFrom(l.TargetAddr, hostilePort))
	if res.Answered != 1 || res.Replies < 10 {
		t.Fatalf("Send result %+v: want one probe answered by many copies", res)
	}
	for i, r := range replies {
		if r.Retransmission != (i > 0) || r.Probe != 1 {
			t.Errorf("reply %d: retransmission %v probe %d; want the first new, the rest retransmissions of probe 1", i, r.Retransmission, r.Probe)
			break
		}
	}
	w := walkHandshake(t, p, hostilePort)
	c, _ := check(w, "LISTEN → SYN_RCVD")
	if c.Verdict != walk.Pass || w.Verdict == walk.Pass {
		t.Errorf("walk %s, SYN-ACK step %s: want the SYN-ACK accepted and the walk not passed", w.Verdict, c.Verdict)
	}
}

// TestHostilePeerFlood: 50 000 packets of unrelated traffic (a twentieth of
// them malformed) arrive while a walk and a send run against a real
// listener. Both get the right answers, the flood is counted as unmatched,
// malformed warnings stay at one a second, and the heap stays bounded.
func TestHostilePeerFlood(t *testing.T) {
	t.Parallel()
	const flood = 50000
	l := labtest.New(t)
	var mac net.HardwareAddr
	if err := l.Prober.Do(func() error {
		ifi, err := net.InterfaceByName(l.ProberIf)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, warns := openProber(t, l, false)
	before := liveHeap()
	start := time.Now()
	peer := startPeer(t, l, hostilepeer.Config{Behaviour: hostilepeer.Flood, Count: flood, Peer: l.ProberAddr, PeerMAC: mac})

	done := make(chan walk.Result)
	go func() { done <- walkHandshake(t, p, lab.PortHold) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := sendrun.Run(ctx, p, sendrun.Spec{Target: netip.AddrPortFrom(l.TargetAddr, lab.PortHold), Flags: craft.FlagSYN,
		Count: 3, Interval: 100 * time.Millisecond, Wait: time.Second}, sendrun.Observer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 3 {
		t.Errorf("Send during the flood: %+v, want all 3 probes answered", res)
	}
	if w := <-done; w.Verdict != walk.Pass {
		t.Errorf("walk during the flood: %s (%s), want pass", w.Verdict, w.Reason)
	}
	if !peer.Wait(30 * time.Second) {
		t.Fatal("the flood did not end in 30 s")
	}
	time.Sleep(300 * time.Millisecond) // the receive loop drains the socket
	elapsed := time.Since(start)
	if after := liveHeap(); after > before+heapBound {
		t.Errorf("live heap grew from %d to %d bytes across a flood", before, after)
	}
	st := p.Stats()
	t.Logf("peer sent %d in %v; stats %+v", peer.Sent(), elapsed, st)
	if peer.Sent() < flood*9/10 {
		t.Errorf("the peer sent only %d of %d packets", peer.Sent(), flood)
	}
	if st.Unmatched < flood/10 || st.Malformed == 0 {
		t.Errorf("stats %+v: the flood should show as unmatched and malformed packets", st)
	}
	if n, limit := len(warns.containing("malformed reply")), int(elapsed/time.Second)+2; n > limit {
		t.Errorf("%d malformed warnings in %v, want at most %d", n, elapsed, limit)
	}
}
