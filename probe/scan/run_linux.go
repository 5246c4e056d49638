package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
	"github.com/tcpwalk/tcpwalk/probe/privs"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	"golang.org/x/sys/unix"
)

// batchMax is how many probes one sendmmsg carries (rawsock's batch).
const batchMax = 64

// replyBuf is the receive buffer per reply: headers are all we read, a longer reply is truncated harmlessly.
const replyBuf = 256

// interruptGrace bounds the wait for in-flight replies after SIGINT or
// SIGTERM: the scan stops within it, with the answers to its last probes.
const interruptGrace = time.Second

// io is what a run opens: sockets and the guard, all made in the scan's namespace.
type runIO struct {
	send   rawSender             // probes on the raw path: a rawsock.Sender, or a Sender6 in an IPv6 scan
	packet *rawsock.PacketSender // probes on the packet path, if chosen (chooseSendPath)
	reply  rawSender             // RSTs after SYN-ACKs, from the receive loop, so it never waits for the probe sender
	recv   *rawsock.Receiver
	icmp   *rawsock.ICMPReceiver
	recv6  *rawsock.Receiver6 // an IPv6 scan's receivers, in place of recv and icmp
	icmp6  *rawsock.ICMPv6Receiver
	guard  *guard.Guard
	hold   int // a TCP socket bound to the source port, holding it for the scan (0: none)
}

// rawSender is what both raw send sockets, rawsock.Sender (IPv4) and rawsock.Sender6, do.
type rawSender interface {
	batchSender
	Send(pkt []byte, dst netip.Addr) error
}

func (o *runIO) closeReceivers() error {
	var errs []error
	if o.recv != nil {
		errs = append(errs, o.recv.Close())
	}
	if o.icmp != nil {
		errs = append(errs, o.icmp.Close())
	}
	if o.recv6 != nil {
		errs = append(errs, o.recv6.Close())
	}
	if o.icmp6 != nil {
		errs = append(errs, o.icmp6.Close())
	}
	return errors.Join(errs...)
}

func (o *runIO) close() error {
	errs := []error{o.closeReceivers()}
	for _, s := range []rawSender{o.send, o.reply} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if o.packet != nil {
		errs = append(errs, o.packet.Close())
	}
	if o.guard != nil {
		errs = append(errs, o.guard.Close())
	}
	if o.hold > 0 {
		errs = append(errs, unix.Close(o.hold))
	}
	return errors.Join(errs...)
}

// holdPort binds a TCP socket to the source port, and neither listens nor connects with it: no local socket can
// take the port while the scan uses it, so the guard's RSTs from that port are only ever the scan's own.
func holdPort(port uint16, v6 bool) (int, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(port)})
	if v6 {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(port)}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return 0, fmt.Errorf("source port %d is in use on this host (another tcpwalk, or a local socket): pick another with --sport", port)
		}
		return 0, fmt.Errorf("hold source port %d: %w", port, err)
	}
	return fd, nil
}

// Run scans: it opens the sockets and the RST guard in cfg.NetNS, sends the probes in passes, classifies the
// replies, and removes everything before it returns. Targets at a broadcast address of cfg.NetNS (see
// localBroadcasts) are never probed: Result.Skipped lists them. Cancelling ctx stops it early: the Result then holds what
// was probed so far, with Interrupted set, after the replies to the last probes had Wait (at most a second) to
// come. Every sending loop is bounded: at most (1+Retries) probes per target,
// and a run that takes twice its planned time plus 30 s gives up.
func Run(ctx context.Context, cfg *Config) (*Result, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if _, err := cfg.normalize(); err != nil {
		return nil, err
	}
	if err := privs.Check(true); err != nil {
		return nil, &probe.EnvError{Err: err}
	}
	var (
		s   *scanner
		o   runIO
		err error
	)
	open := func() error {
		var err error
		if s, err = newScanner(cfg, localAddr); err != nil {
			return err
		}
		b, err := localBroadcasts()
		if err != nil {
			return &probe.EnvError{Err: fmt.Errorf("scan: read this namespace's broadcast addresses, which are never probed: %w", err)}
		}
		s.skip(b)
		s.skipOwnPort()
		return s.open(&o)
	}
	if cfg.NetNS != nil {
		err = cfg.NetNS.Do(open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, errors.Join(err, o.close())
	}
	res, err := s.run(ctx, &o)
	if cerr := o.close(); cerr != nil && err == nil {
		err = fmt.Errorf("scan: clean up: %w", cerr)
	}
	if res != nil {
		discover := func() error { res.arpUp, _ = neighboursUp(s.plan); return nil } // none known: silence decides
		if cfg.NetNS != nil {
			_ = cfg.NetNS.Do(discover)
		} else {
			_ = discover()
		}
	}
	return res, err
}

// newSender and newSender6 open the raw send sockets as rawSenders (a nil one on error, not a typed nil).
func newSender(mark uint32) (rawSender, error) {
	s, err := rawsock.NewSender(mark)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newSender6(mark uint32) (rawSender, error) {
	s, err := rawsock.NewSender6(mark)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// localAddr asks the routing table which local address reaches the hosts, and insists on one address for all
// of them: the cookie and the templates are built for it. A connected UDP socket sends nothing. An address with
// no route does not end the scan while another has one: its probes are refused at send time and marked
// (markNotSent).
func localAddr(pl *plan) (netip.Addr, error) {
	var local netip.Addr
	var unrouted error
	for _, r := range pl.hosts {
		for _, a := range []addrspan.U128{r.lo, r.lo.Add(r.count - 1)} {
			addr := pl.addr(a)
			if err := probe.CheckLabRoute(addr); err != nil {
				return netip.Addr{}, err
			}
			network := "udp4"
			if pl.v6 {
				network = "udp6"
			}
			c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 9)))
			if err != nil {
				if unrouted == nil {
					unrouted = &probe.EnvError{Err: fmt.Errorf("scan: no route to %s: %w (check the address, or run in the right namespace with --netns)", addr, err)}
				}
				continue
			}
			l := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			c.Close()
			if local.IsValid() && l != local {
				return netip.Addr{}, &probe.UsageError{Err: fmt.Errorf("scan: the hosts are reached from two local addresses, %s and %s: scan them separately", local, l)}
			}
			local = l
		}
	}
	if !local.IsValid() && unrouted != nil {
		return netip.Addr{}, unrouted
	}
	return local, nil
}

// open makes the sockets and the guard; it runs in the scan's namespace.
func (s *scanner) open(o *runIO) error {
	var err error
	env := func(what string, err error) error {
		return &probe.EnvError{Err: fmt.Errorf("scan: %s: %w", what, err)}
	}
	f := rawsock.Filter{Remote: s.plan.cover, LocalLo: s.sport, LocalHi: s.sport}
	if s.plan.v6 {
		if o.send, err = newSender6(s.cfg.Mark); err != nil {
			return env("open the raw IPv6 send socket", err)
		}
		if o.reply, err = newSender6(s.cfg.Mark); err != nil {
			return env("open the raw IPv6 send socket for RSTs", err)
		}
		if o.recv6, err = rawsock.NewReceiver6(f); err != nil {
			return env("open the raw IPv6 receive socket", err)
		}
		if o.icmp6, err = rawsock.NewICMPv6Receiver(f); err != nil {
			return env("open the ICMPv6 receive socket", err)
		}
	} else {
		if o.send, err = newSender(s.cfg.Mark); err != nil {
			return env("open the raw send socket", err)
		}
		if o.reply, err = newSender(s.cfg.Mark); err != nil {
			return env("open the raw send socket for RSTs", err)
		}
		if o.recv, err = rawsock.NewReceiver(f); err != nil {
			return env("open the raw receive socket", err)
		}
		if o.icmp, err = rawsock.NewICMPReceiver(f); err != nil {
			return env("open the ICMP receive socket", err)
		}
	}
	if o.hold, err = holdPort(s.sport, s.plan.v6); err != nil {
		return &probe.EnvError{Err: fmt.Errorf("scan: %w", err)}
	}
	if !s.cfg.NoGuard {
		g, err := guard.Install(guard.Config{Mark: s.cfg.Mark, Remotes: s.plan.prefixes, LocalLo: s.sport, LocalHi: s.sport})
		if err != nil {
			return &probe.EnvError{Err: err}
		}
		o.guard = g
	}
	return s.chooseSendPath(o)
}

// run sends the passes and collects the replies.
func (s *scanner) run(ctx context.Context, o *runIO) (*Result, error) {
	res := &Result{Type: s.cfg.Type, Shard: s.shard, Seed: s.cfg.Seed, Ports: mergePorts(s.cfg.Ports),
		Hosts: s.plan.prefixes, Local: netip.AddrPortFrom(s.local, s.sport), Targets: s.size,
		Rate: s.cfg.Rate, Retries: s.cfg.Retries, SendPath: s.path, SendPathNote: s.pathNote, Start: time.Now(), s: s}

	// The bound on the whole run: twice the planned time, plus 30 s for slow starts.
	planned := time.Duration(float64(s.size*uint64(1+s.cfg.Retries))/float64(s.cfg.Rate)*float64(time.Second)) +
		time.Duration(1+s.cfg.Retries)*s.cfg.Wait
	limit := 2*planned + 30*time.Second
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(2)
	if s.plan.v6 {
		go func() { defer wg.Done(); s.receiveTCP6(o) }()
		go func() { defer wg.Done(); s.receiveICMPv6(o) }()
	} else {
		go func() { defer wg.Done(); s.receiveTCP(o) }()
		go func() { defer wg.Done(); s.receiveICMP(o) }()
	}
	stopProgress := s.startProgress(res.Start)

	var sendErr error
	pass := 0
	for ; pass <= s.cfg.Retries && sendErr == nil && runCtx.Err() == nil; pass++ {
		if pass > 0 && s.settled() {
			break
		}
		s.passTargets.Store(s.size - min(s.size, s.answered.Load()+s.nSkipped))
		s.passBase.Store(s.retried.Load())
		s.pass.Store(int64(pass))
		t0 := time.Now()
		var snd batchSender = o.send
		if o.packet != nil {
			snd = o.packet
		}
		sendErr = s.sendPass(runCtx, snd, pass)
		res.SendTime += time.Since(t0)
		if sendErr == nil {
			s.waitReplies(runCtx, s.cfg.Wait)
		}
	}
	if ctx.Err() != nil && sendErr == nil && s.sent.Load() > 0 {
		// Interrupted: the last probes are still in flight. Their replies
		// get the wait (at most interruptGrace), so that a port is not
		// called filtered only for want of time.
		s.waitReplies(context.Background(), min(s.cfg.Wait, interruptGrace))
	}
	stopProgress()
	if o.guard != nil {
		res.GuardDropped, _ = o.guard.Dropped()
	}
	cerr := o.closeReceivers()
	wg.Wait()
	res.End = time.Now()
	res.Passes = pass
	res.Probed, res.Sent, res.Retried = s.probed.Load(), s.sent.Load(), s.retried.Load()
	res.reached = s.reached.Load()
	res.Skipped, res.SkippedTargets = s.skipped, s.nSkipped
	res.NotSent = s.notSent
	res.Replies, res.Ignored = s.replies.Load(), s.ignored.Load()
	res.froms = make(map[uint64]netip.Addr, len(s.icmpFrom))
	for _, f := range s.icmpFrom {
		res.froms[f.slot] = f.from
	}
	switch {
	case sendErr != nil:
		return res, sendErr
	case ctx.Err() != nil:
		res.Interrupted = true
	case runCtx.Err() != nil:
		return res, &probe.EnvError{Err: fmt.Errorf("scan: gave up after %v, twice the planned time: sending is much slower than --rate %d (a busy machine, or a send path that blocks)", limit.Round(time.Second), s.cfg.Rate)}
	}
	if cerr != nil {
		return res, fmt.Errorf("scan: close the receive sockets: %w", cerr)
	}
	return res, nil
}

// sendPass probes the shard's targets in order: all of them in pass 0, the unanswered ones after. It paces to
// the rate against the pass's start, so a late batch does not slow the ones after it.
func (s *scanner) sendPass(ctx context.Context, snd batchSender, pass int) error {
	plen := s.tmpl.Len()
	buf := make([]byte, batchMax*plen)
	var pkts [batchMax][]byte
	var dsts [batchMax]netip.Addr
	var slots [batchMax]uint64 // the slot of each probe of the batch
	for i := range pkts {
		pkts[i] = buf[i*plen : (i+1)*plen]
	}
	batch := max(1, min(batchMax, s.cfg.Rate/200)) // about 5 ms of probes at low rates
	perProbe := float64(time.Second) / float64(s.cfg.Rate)
	start := time.Now()
	var n int
	var sentPass uint64
	flush := func() error {
		if n == 0 {
			return nil
		}
		if d := time.Until(start.Add(time.Duration(float64(sentPass) * perProbe))); d > 0 {
			time.Sleep(d)
		}
		for off := 0; off < n; {
			k, err := snd.SendBatch(pkts[off:n], dsts[off:n])
			sentPass += uint64(k)
			s.sent.Add(uint64(k))
			if pass > 0 {
				s.retried.Add(uint64(k))
			} else {
				s.probed.Add(uint64(k))
			}
			off += k
			if pass == 0 && off > 0 {
				s.reached.Store(slots[off-1] + 1)
			}
			if err == nil {
				break
			}
			// The kernel refused the probe at off: a local rule or route stops it. Mark it and carry on with
			// the rest; anything else ends the scan.
			if !s.markNotSent(slots[off], dsts[off], pkts[off], err) {
				n = 0
				return fmt.Errorf("scan: send probes: %w", err)
			}
			off++
			if pass == 0 {
				s.reached.Store(slots[off-1] + 1)
			}
		}
		n = 0
		return nil
	}
	if pass == 0 && s.firstSent {
		// Sent already, to resolve the next hop (chooseSendPath); the slots before it are skipped.
		sentPass = 1
		s.sent.Add(1)
		s.probed.Add(1)
		s.reached.Store(s.firstSlot + 1)
	}
	for k := uint64(0); k < s.size; k++ {
		switch {
		case pass == 0 && s.firstSent && k == s.firstSlot:
			continue
		default:
			// Retries probe only the silent targets; no pass probes a skipped one, nor one the kernel refused.
			if a := s.table.get(k); pass > 0 && a != ansNone || a == ansSkipped || a.notSent() {
				continue
			}
		}
		dst, _, err := s.build(pkts[n], k)
		if err != nil {
			return fmt.Errorf("scan: build the probe to %v: %w", dst, err)
		}
		dsts[n], slots[n] = dst, k
		n++
		if n == batch {
			if err := flush(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if pass == 0 {
		s.reached.Store(s.size) // every slot gone through, the skipped ones after the last probe included
	}
	return nil
}

// waitReplies waits d for late replies, less if every target has answered or ctx ends.
func (s *scanner) waitReplies(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(end) && !s.settled() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// receiveTCP is the TCP receive loop: recvmmsg batches, classified in place, RSTs after SYN-ACKs sent in one
// batch per read. It returns when the receiver is closed.
func (s *scanner) receiveTCP(o *runIO) {
	var msgs [batchMax]rawsock.Message
	bufs := make([]byte, batchMax*replyBuf)
	for i := range msgs {
		msgs[i].Buf = bufs[i*replyBuf : (i+1)*replyBuf]
	}
	rlen := s.rst.Len()
	rbuf := make([]byte, batchMax*rlen)
	var rsts [batchMax][]byte
	var rdsts [batchMax]netip.Addr
	for {
		n, err := o.recv.ReadBatch(msgs[:])
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			s.warn(fmt.Sprintf("receive replies: %v", err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		nr := 0
		for i := range n {
			m := &msgs[i]
			dst, l := s.handleTCP(m.Buf[:m.N], rbuf[nr*rlen:(nr+1)*rlen])
			if l > 0 {
				rsts[nr], rdsts[nr] = rbuf[nr*rlen:nr*rlen+l], dst
				nr++
			}
		}
		if nr > 0 {
			if _, err := o.reply.SendBatch(rsts[:nr], rdsts[:nr]); err != nil {
				s.warn(fmt.Sprintf("reset half-open connections: %v", err))
			}
		}
	}
}

// receiveTCP6 is receiveTCP for an IPv6 scan: Receiver6 reads one packet at a time (it rebuilds the IPv6 header
// from each read's control messages), and each RST after a SYN-ACK goes out at once.
func (s *scanner) receiveTCP6(o *runIO) {
	buf := make([]byte, replyBuf)
	rst := make([]byte, s.rst.Len())
	for {
		n, _, err := o.recv6.Read(buf)
		if err != nil && !errors.Is(err, rawsock.ErrTruncated) {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			s.warn(fmt.Sprintf("receive replies: %v", err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if dst, l := s.handleTCP(buf[:n], rst); l > 0 {
			if err := o.reply.Send(rst[:l], dst); err != nil {
				s.warn(fmt.Sprintf("reset half-open connections: %v", err))
			}
		}
	}
}

// receiveICMPv6 reads ICMPv6 errors quoting our probes, one at a time.
func (s *scanner) receiveICMPv6(o *runIO) {
	buf := make([]byte, 1500)
	for {
		n, _, err := o.icmp6.Read(buf)
		if err != nil && !errors.Is(err, rawsock.ErrTruncated) {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			s.warn(fmt.Sprintf("receive ICMPv6 errors: %v", err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		e, err := craft.ParseICMPv6Error(buf[:n])
		if err != nil {
			s.ignored.Add(1)
			continue
		}
		s.handleICMPv6(&e)
	}
}

// receiveICMP reads ICMP errors quoting our probes; they are rare, so one at a time.
func (s *scanner) receiveICMP(o *runIO) {
	buf := make([]byte, 1500)
	for {
		n, _, err := o.icmp.Read(buf)
		if err != nil && !errors.Is(err, rawsock.ErrTruncated) {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			s.warn(fmt.Sprintf("receive ICMP errors: %v", err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		e, err := craft.ParseICMPError(buf[:n])
		if err != nil {
			s.ignored.Add(1)
			continue
		}
		s.handleICMP(&e)
	}
}

func (s *scanner) warn(msg string) {
	if s.cfg.Warn != nil {
		s.cfg.Warn(msg)
	}
}

// startProgress calls cfg.Progress every ProgressEvery until the returned stop is called.
func (s *scanner) startProgress(start time.Time) (stop func()) {
	if s.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.ProgressEvery)
		defer t.Stop()
		lastSent, last := uint64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := s.progress(start, now)
				if dt := now.Sub(last).Seconds(); dt > 0 {
					p.Rate = float64(p.Sent-lastSent) / dt
				}
				lastSent, last = p.Sent, now
				s.cfg.Progress(p)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (s *scanner) progress(start, now time.Time) Progress {
	p := Progress{Pass: int(s.pass.Load()), Targets: s.size - s.nSkipped, Probed: s.probed.Load(), Sent: s.sent.Load(),
		Replies: s.replies.Load(), Found: s.found.Load(), Elapsed: now.Sub(start)}
	left := float64(p.Targets-min(p.Probed, p.Targets)) / float64(s.cfg.Rate)
	if p.Pass > 0 {
		// A retry pass has its own count: the targets still silent when it began.
		p.PassTargets = s.passTargets.Load()
		p.PassSent = min(s.retried.Load()-s.passBase.Load(), p.PassTargets)
		left = float64(p.PassTargets-p.PassSent) / float64(s.cfg.Rate)
	}
	p.ETA = time.Duration(left*float64(time.Second)) + time.Duration(1+s.cfg.Retries-p.Pass)*s.cfg.Wait
	return p
}

// markNotSent records a probe the local kernel refused to send, and reports whether err is such a refusal: one
// that stops that target only (a local firewall rule, no route to the host), not the scan. The first target
// of each reason is warned about, once; the rest are counted.
func (s *scanner) markNotSent(slot uint64, dst netip.Addr, pkt []byte, err error) bool {
	why := notSentReason(err)
	if why == "" {
		return false
	}
	i := slices.IndexFunc(s.notSent, func(n NotSent) bool { return n.Reason == why })
	if i < 0 {
		i = len(s.notSent)
		if i >= maxNotSent {
			i = maxNotSent - 1
		} else {
			var port uint16
			switch {
			case s.plan.v6 && len(pkt) >= craft.IPv6HeaderSize+4:
				port = craft.TCP(pkt[craft.IPv6HeaderSize:]).DestinationPort()
			case !s.plan.v6 && len(pkt) >= craft.IPv4MinimumSize+4:
				port = craft.TCP(pkt[craft.IPv4(pkt).HeaderLength():]).DestinationPort()
			}
			s.notSent = append(s.notSent, NotSent{Reason: why, First: netip.AddrPortFrom(dst, port)})
			s.warn(fmt.Sprintf("cannot send the probe to %v: %s; carrying on, such targets are reported filtered (not-sent)",
				s.notSent[i].First, why))
		}
	}
	if _, stored := s.table.offer(slot, ansNotSent+answer(i)); stored {
		s.notSent[i].Targets++
		s.answered.Add(1)
	}
	return true
}

// notSentReason says why the kernel refused a probe when that stops one target only, or "" when err is not
// such a refusal.
func notSentReason(err error) string {
	var e unix.Errno
	if !errors.As(err, &e) {
		return ""
	}
	switch e {
	case unix.EPERM:
		return "operation not permitted: a local OUTPUT firewall rule drops it?"
	case unix.EACCES:
		return "permission denied by the local kernel (a broadcast address, or a firewall rule)"
	case unix.ENETUNREACH:
		return "no route to the host here (network is unreachable)"
	case unix.EHOSTUNREACH:
		return "no route to the host here (host is unreachable)"
	case unix.EADDRNOTAVAIL, unix.EINVAL:
		return "the local kernel refused the address (" + e.Error() + ")"
	}
	return ""
}
