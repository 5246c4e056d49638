package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/privs"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	"golang.org/x/sys/unix"
)

// Prober owns the sockets and the guard for probing one remote host.
type Prober struct {
	cfg    Config
	local  netip.Addr
	v6     bool // Remote is IPv6
	sender packetSender
	recv   packetReader // TCP segments, from the IP header on
	icmp   packetReader // ICMP or ICMPv6 errors, from the outer IP header on
	guard  *guard.Guard
	watch  *guard.Watch

	// Found when the prober opened, in its namespace: the MTU of the route
	// to the remote (see PathMTU), and which local input hook may drop
	// replies, "" none (see InputRules).
	mtu        int
	inputRules string

	mu    sync.RWMutex
	flows map[flowKey]*Flow
	// portMu guards ports on its own: reserving a port binds a socket in
	// the prober's namespace (netns.NS.Do: a locked thread, two setns), far
	// too long to hold mu, which the receive loop takes for every packet.
	portMu sync.Mutex
	ports  map[uint16]*reservation // local ports held, see reservePort

	// coverMu orders the guard's set changes, and covered counts the
	// flows behind each element the guard holds (see cover): a flow that
	// Connect pinned keeps its listening element (remote address, port 0,
	// local port), which a new listening flow on that port shares, and the
	// first of them to go must not uncover the other.
	coverMu sync.Mutex
	covered map[flowKey]int

	pool sync.Pool
	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once

	received, unmatched, malformed, badSum, overflow, icmpCount atomic.Uint64

	// The last malformed packet and the warning rate limit, see
	// noteMalformed.
	oddMu       sync.Mutex
	lastOdd     oddity
	oddWarned   time.Time
	oddUnwarned uint64 // malformed packets not yet told in a warning
}

// packetSender is rawsock's Sender (IPv4) or Sender6 (IPv6).
type packetSender interface {
	Send(pkt []byte, dst netip.Addr) error
	Close() error
}

// packetReader is one of rawsock's receivers: Receiver, ICMPReceiver, or
// their IPv6 twins, which rebuild the IPv6 header in front of each packet.
type packetReader interface {
	Read(buf []byte) (int, time.Time, error)
	Close() error
}

type flowKey struct {
	remote    netip.AddrPort
	localPort uint16
}

// Open makes the sockets, installs the RST guard (unless NoGuard) and starts
// the receive loops. Close undoes all of it.
func Open(cfg Config) (*Prober, error) {
	if err := CheckDestination(cfg.Remote); err != nil {
		return nil, err
	}
	if cfg.LocalLo == 0 && cfg.LocalHi == 0 {
		cfg.LocalLo, cfg.LocalHi = DefaultLocalLo, DefaultLocalHi
	}
	if cfg.LocalLo == 0 || cfg.LocalLo > cfg.LocalHi {
		return nil, usagef(fmt.Errorf("bad local port range %d-%d", cfg.LocalLo, cfg.LocalHi))
	}
	if cfg.Mark == 0 {
		cfg.Mark = DefaultMark
	}
	if cfg.Source.IsValid() {
		if err := CheckSource(cfg.Source); err != nil {
			return nil, err
		}
		if cfg.Source.Is4() != cfg.Remote.Is4() {
			return nil, usagef(fmt.Errorf("source %s and destination %s are of different address families: give a source of the destination's family", cfg.Source, cfg.Remote))
		}
	}
	if err := privs.Check(true); err != nil {
		return nil, envf(err)
	}
	p := &Prober{cfg: cfg, v6: cfg.Remote.Is6(), flows: make(map[flowKey]*Flow), ports: make(map[uint16]*reservation), done: make(chan struct{})}
	p.pool.New = func() any { return new(Event) }
	setup := func() error { return p.open() }
	var err error
	if cfg.NetNS != nil {
		err = cfg.NetNS.Do(setup)
	} else {
		err = setup()
	}
	if err != nil {
		p.closeSockets()
		return nil, err
	}
	p.wg.Add(2)
	go p.readSegments()
	go p.readICMP()
	if p.watch != nil {
		p.wg.Add(1)
		go p.watchLeaks()
	}
	return p, nil
}

// open runs in the prober's namespace: everything made here stays there.
func (p *Prober) open() error {
	local, mtu, err := p.sourceAddr()
	if err != nil {
		return err
	}
	p.local, p.mtu = local, mtu
	p.inputRules = InputRules()
	if p.v6 {
		return p.open6()
	}
	remote := netip.PrefixFrom(p.cfg.Remote, 32)
	sender, err := rawsock.NewSender(p.cfg.Mark)
	if err != nil {
		return envf(fmt.Errorf("probe: open raw send socket: %w", err))
	}
	p.sender = sender
	if p.cfg.Interface != "" {
		if err := sender.BindToDevice(p.cfg.Interface); err != nil {
			return envf(fmt.Errorf("probe: send by interface %s: %w", p.cfg.Interface, err))
		}
	}
	filter := rawsock.Filter{Remote: remote, LocalLo: p.cfg.LocalLo, LocalHi: p.cfg.LocalHi}
	if p.recv, err = rawsock.NewReceiver(filter); err != nil {
		return envf(fmt.Errorf("probe: open raw receive socket: %w", err))
	}
	if p.icmp, err = rawsock.NewICMPReceiver(filter); err != nil {
		return envf(fmt.Errorf("probe: open ICMP receive socket: %w", err))
	}
	// Per flow: the guard drops the kernel's RSTs for our own 4-tuples only,
	// so a local client that happens to use a port of our range keeps its.
	gcfg := guard.Config{Mark: p.cfg.Mark, Remotes: []netip.Prefix{remote}, LocalLo: p.cfg.LocalLo, LocalHi: p.cfg.LocalHi, PerFlow: true}
	if !p.cfg.NoGuard {
		if p.guard, err = guard.Install(gcfg); err != nil {
			return envf(err)
		}
	}
	p.startWatch(gcfg)
	return nil
}

// open6 is open for an IPv6 remote: rawsock's IPv6 sockets, a /128 filter,
// and the same per-flow RST guard and watch as over IPv4 (the guard's
// inet table has the ip6 rules and sets beside the ip ones).
func (p *Prober) open6() error {
	var err error
	remote := netip.PrefixFrom(p.cfg.Remote, 128)
	sender, err := rawsock.NewSender6(p.cfg.Mark)
	if err != nil {
		return envf(fmt.Errorf("probe: open raw IPv6 send socket: %w", err))
	}
	p.sender = sender
	if p.cfg.Interface != "" {
		if err := sender.BindToDevice(p.cfg.Interface); err != nil {
			return envf(fmt.Errorf("probe: send by interface %s: %w", p.cfg.Interface, err))
		}
	}
	filter := rawsock.Filter{Remote: remote, LocalLo: p.cfg.LocalLo, LocalHi: p.cfg.LocalHi}
	if p.recv, err = rawsock.NewReceiver6(filter); err != nil {
		return envf(fmt.Errorf("probe: open raw IPv6 receive socket: %w", err))
	}
	if p.icmp, err = rawsock.NewICMPv6Receiver(filter); err != nil {
		return envf(fmt.Errorf("probe: open ICMPv6 receive socket: %w", err))
	}
	gcfg := guard.Config{Mark: p.cfg.Mark, Remotes: []netip.Prefix{remote}, LocalLo: p.cfg.LocalLo, LocalHi: p.cfg.LocalHi, PerFlow: true}
	if !p.cfg.NoGuard {
		if p.guard, err = guard.Install(gcfg); err != nil {
			return envf(err)
		}
	}
	p.startWatch(gcfg)
	return nil
}

// startWatch starts the watch for local RSTs that escape the guard.
func (p *Prober) startWatch(gcfg guard.Config) {
	// The watch is a second line of defence: with the guard on it should see
	// nothing; without it, it tells the user why the remote went away.
	if w, err := guard.NewWatch(gcfg); err == nil {
		p.watch = w
	} else {
		p.warn(fmt.Sprintf("cannot watch for local RSTs: %v", err))
	}
}

// sourceAddr is the source address of our packets: Config.Source, else
// the first address of Config.Interface in the remote's family, else the one the route to
// the remote picks; and the MTU of the route to the remote (0 when the
// kernel does not say, or the source is chosen).
func (p *Prober) sourceAddr() (netip.Addr, int, error) {
	if p.cfg.Interface != "" {
		ifi, err := net.InterfaceByName(p.cfg.Interface)
		if err != nil {
			return netip.Addr{}, 0, envf(fmt.Errorf("probe: interface %s: %w (list them with: ip -br link; in a namespace: ip -n NS -br link)", p.cfg.Interface, err))
		}
		if p.cfg.Source.IsValid() {
			return p.cfg.Source, 0, nil
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return netip.Addr{}, 0, envf(fmt.Errorf("probe: addresses of interface %s: %w", p.cfg.Interface, err))
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() == p.cfg.Remote.Is4() && !ip.IsLinkLocalUnicast() {
					return ip.Unmap(), 0, nil
				}
			}
		}
		fam := "IPv4"
		if p.v6 {
			fam = "global IPv6"
		}
		return netip.Addr{}, 0, usagef(fmt.Errorf("interface %s has no %s address to reach %s from: give the source with -S ADDR", p.cfg.Interface, fam, p.cfg.Remote))
	}
	if p.cfg.Source.IsValid() {
		return p.cfg.Source, 0, nil
	}
	return localAddrFor(p.cfg.Remote)
}

// CheckSource refuses source addresses no host may send from (RFC 1122
// §3.2.1.3: not multicast, not broadcast, not 0.0.0.0, which the kernel
// would replace anyway).
func CheckSource(a netip.Addr) error {
	switch {
	case a.Is4In6():
		return usagef(fmt.Errorf("source %s is an IPv4-mapped address: write the IPv4 address %s", a, a.Unmap()))
	case !a.IsValid():
		return usagef(errors.New("missing source address"))
	case a.IsUnspecified():
		return usagef(fmt.Errorf("source %s: the unspecified address is replaced by the kernel; leave -S out instead", a))
	case a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return usagef(fmt.Errorf("source %s: a multicast or broadcast address is never a source (RFC 1122 §3.2.1.3)", a))
	}
	return nil
}

// localAddrFor asks the routing table which local address reaches remote,
// and the route's MTU (0 when the kernel does not say). A connected UDP
// socket sends nothing.
func localAddrFor(remote netip.Addr) (netip.Addr, int, error) {
	if err := CheckLabRoute(remote); err != nil {
		return netip.Addr{}, 0, err
	}
	network := "udp4"
	if remote.Is6() {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, 9)))
	if err != nil {
		return netip.Addr{}, 0, envf(fmt.Errorf("probe: no route to %s: %w (check the address, or run in the right namespace with --netns)", remote, err))
	}
	defer c.Close()
	mtu := 0
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU); err == nil {
				mtu = v
			}
		})
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), mtu, nil
}

// InputRules says which netfilter rule on this host's receive path may drop
// the remote's replies (see the function InputRules), as found when the
// prober opened in its namespace, or "". Where replies are missing, a
// command says it.
func (p *Prober) InputRules() string { return p.inputRules }

// PathMTU is the MTU of the route to the remote when the prober opened (0:
// unknown). The kernel does not fragment raw packets: a longer one is
// refused with EMSGSIZE.
func (p *Prober) PathMTU() int { return p.mtu }

// Local is our address towards the remote.
func (p *Prober) Local() netip.Addr { return p.local }

// Remote is the probed host.
func (p *Prober) Remote() netip.Addr { return p.cfg.Remote }

// Guarded reports whether the RST guard is installed.
func (p *Prober) Guarded() bool { return p.guard != nil }

// GuardDropped is how many local-kernel RSTs the guard stopped so far.
func (p *Prober) GuardDropped() uint64 {
	if p.guard == nil {
		return 0
	}
	n, _ := p.guard.Dropped()
	return n
}

// Stats returns the receive counters.
func (p *Prober) Stats() Stats {
	return Stats{Received: p.received.Load(), Unmatched: p.unmatched.Load(), Malformed: p.malformed.Load(),
		BadChecksum: p.badSum.Load(), Overflow: p.overflow.Load(), ICMP: p.icmpCount.Load()}
}

// LastMalformed describes the last packet dropped as malformed ("" when
// none was): what was wrong with it and where it came from.
func (p *Prober) LastMalformed() string {
	p.oddMu.Lock()
	defer p.oddMu.Unlock()
	if p.malformed.Load() == 0 {
		return ""
	}
	return p.lastOdd.String()
}

// Close stops the receive loops, removes the guard and closes every socket.
// It is safe to call more than once.
func (p *Prober) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.closeSockets()
		p.wg.Wait()
		p.warnLeftovers()
	})
	return err
}

// warnLeftovers tells, once at the end, what the rate limits held back:
// malformed packets since the last warning, and events flows lost.
func (p *Prober) warnLeftovers() {
	p.oddMu.Lock()
	n, last := p.oddUnwarned, p.lastOdd
	p.oddUnwarned = 0
	p.oddMu.Unlock()
	if n > 0 {
		p.warn(fmt.Sprintf("%d more malformed packets dropped since the last warning; the last: %s", n, last))
	}
	if n := p.overflow.Load(); n > 0 {
		p.warn(fmt.Sprintf("%d replies were dropped because a walk or send did not read them in time "+
			"(more than %d queued on one flow: a storm of replies?)", n, flowQueue))
	}
}

func (p *Prober) closeSockets() error {
	var errs []error
	p.portMu.Lock()
	for port, r := range p.ports {
		unix.Close(r.fd)
		delete(p.ports, port)
	}
	p.portMu.Unlock()
	if p.guard != nil {
		errs = append(errs, p.guard.Close())
	}
	if p.watch != nil {
		errs = append(errs, p.watch.Close())
	}
	if p.recv != nil {
		errs = append(errs, p.recv.Close())
	}
	if p.icmp != nil {
		errs = append(errs, p.icmp.Close())
	}
	if p.sender != nil {
		errs = append(errs, p.sender.Close())
	}
	return errors.Join(errs...)
}

func (p *Prober) warn(msg string) {
	if p.cfg.Warn != nil {
		p.cfg.Warn(msg)
	}
}

func (p *Prober) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// NewFlow registers a 4-tuple towards remote port rport. A zero localPort
// picks a free random one in the configured range.
func (p *Prober) NewFlow(rport, localPort uint16) (*Flow, error) {
	if rport == 0 {
		return nil, usagef(errors.New("remote port 0 is not a TCP port"))
	}
	return p.newFlow(rport, localPort)
}

func (p *Prober) newFlow(rport, localPort uint16) (*Flow, error) {
	if p.closed() {
		return nil, ErrClosed
	}
	remote := netip.AddrPortFrom(p.cfg.Remote, rport)
	if localPort == 0 {
		span := uint32(p.cfg.LocalHi-p.cfg.LocalLo) + 1
		for range 64 {
			cand := p.cfg.LocalLo + uint16(RandomUint32()%span)
			if p.busy(remote, cand) || p.reservePort(cand) != nil {
				continue
			}
			if f := p.addFlow(remote, cand); f != nil {
				return p.cover(f)
			}
		}
		return nil, envf(fmt.Errorf("probe: no free local port in %d-%d (other tcpwalk processes or local sockets hold them)", p.cfg.LocalLo, p.cfg.LocalHi))
	}
	if localPort < p.cfg.LocalLo || localPort > p.cfg.LocalHi {
		// Outside the range the guard and filter cover: widen nothing
		// silently, say so.
		return nil, usagef(fmt.Errorf("source port %d is outside tcpwalk's port range %d-%d", localPort, p.cfg.LocalLo, p.cfg.LocalHi))
	}
	busy := fmt.Errorf("probe: flow %s -> %s is already open", netip.AddrPortFrom(p.local, localPort), remote)
	if p.busy(remote, localPort) {
		return nil, busy
	}
	if err := p.reservePort(localPort); err != nil {
		return nil, envf(fmt.Errorf("probe: source port %d: %w", localPort, err))
	}
	if f := p.addFlow(remote, localPort); f != nil {
		return p.cover(f)
	}
	return nil, busy
}

// cover adds a new flow's 4-tuple to the RST guard (a listening flow covers
// every port of the remote), before the flow sends anything; the flow is
// removed again if that fails.
func (p *Prober) cover(f *Flow) (*Flow, error) {
	if p.guard == nil {
		return f, nil
	}
	k := flowKey{f.Remote, f.Local.Port()}
	p.coverMu.Lock()
	err := error(nil)
	if p.covered[k] == 0 {
		err = p.guard.Add(f.Remote, f.Local.Port())
	}
	if err == nil {
		if p.covered == nil {
			p.covered = make(map[flowKey]int)
		}
		p.covered[k]++
		f.guarded = f.Remote
	}
	p.coverMu.Unlock()
	if err != nil {
		p.removeFlow(f)
		return nil, envf(err)
	}
	return f, nil
}

// uncover drops f's use of its guard element, and the element itself
// with the last flow that uses it.
func (p *Prober) uncover(f *Flow) {
	if !f.guarded.IsValid() {
		return
	}
	k := flowKey{f.guarded, f.Local.Port()}
	p.coverMu.Lock()
	defer p.coverMu.Unlock()
	f.guarded = netip.AddrPort{}
	if p.covered[k]--; p.covered[k] > 0 {
		return
	}
	delete(p.covered, k)
	// Best effort: the table goes with the prober anyway.
	p.guard.Remove(k.remote, k.localPort)
}

// busy reports whether a flow to remote from localPort is open.
func (p *Prober) busy(remote netip.AddrPort, localPort uint16) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.flows[flowKey{remote, localPort}]
	return ok
}

// addFlow registers a flow on a reserved localPort, or releases the
// reservation and returns nil when another flow took the 4-tuple since busy
// was asked (the reservation is made without mu held).
func (p *Prober) addFlow(remote netip.AddrPort, localPort uint16) *Flow {
	k := flowKey{remote, localPort}
	p.mu.Lock()
	if _, taken := p.flows[k]; taken {
		p.mu.Unlock()
		p.releasePort(localPort)
		return nil
	}
	f := &Flow{p: p, Local: netip.AddrPortFrom(p.local, localPort), Remote: remote, in: make(chan *Event, flowQueue)}
	p.flows[k] = f
	p.mu.Unlock()
	return f
}

// reservation is a bound, never listening TCP socket that holds a local
// port for our flows, shared by the flows that use the port.
type reservation struct {
	fd   int
	refs int
}

// reservePort holds port with a TCP socket bound to 0.0.0.0:port in the
// prober's namespace. A bound socket that neither listens nor connects gets
// no segments (the kernel answers them with a RST, which the guard drops),
// but it keeps the port from every other socket: another tcpwalk process
// cannot pick the same port and take our replies for its own, and a local
// service's port is refused instead of probed over. The bind runs with no
// lock held; when two flows reserve one port at once, the loser's bind finds
// the winner's socket and shares it.
func (p *Prober) reservePort(port uint16) error {
	if p.shareReservation(port) {
		return nil
	}
	fd := -1
	bind := func() error {
		family := unix.AF_INET
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
		if p.v6 {
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(port)}
		}
		s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(s, sa); err != nil {
			unix.Close(s)
			return err
		}
		fd = s
		return nil
	}
	var err error
	if p.cfg.NetNS != nil {
		err = p.cfg.NetNS.Do(bind)
	} else {
		err = bind()
	}
	if errors.Is(err, unix.EADDRINUSE) && p.shareReservation(port) {
		return nil // our own socket, made meanwhile by another flow
	}
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("port %d is in use on this host (another tcpwalk, or a local socket)", port)
	}
	if err != nil {
		return fmt.Errorf("reserve port %d: %w", port, err)
	}
	p.portMu.Lock()
	defer p.portMu.Unlock()
	if r := p.ports[port]; r != nil {
		// Unreachable while our bound socket holds the port; kept so
		// that a reservation is never overwritten.
		unix.Close(fd)
		r.refs++
		return nil
	}
	p.ports[port] = &reservation{fd: fd, refs: 1}
	return nil
}

// shareReservation takes one more use of port if it is already held.
func (p *Prober) shareReservation(port uint16) bool {
	p.portMu.Lock()
	defer p.portMu.Unlock()
	if r := p.ports[port]; r != nil {
		r.refs++
		return true
	}
	return false
}

// releasePort drops one use of port.
func (p *Prober) releasePort(port uint16) {
	p.portMu.Lock()
	defer p.portMu.Unlock()
	r := p.ports[port]
	if r == nil {
		return
	}
	if r.refs--; r.refs == 0 {
		unix.Close(r.fd)
		delete(p.ports, port)
	}
}

func (p *Prober) removeFlow(f *Flow) {
	p.mu.Lock()
	mine := p.flows[flowKey{f.Remote, f.Local.Port()}] == f
	if mine {
		delete(p.flows, flowKey{f.Remote, f.Local.Port()})
	}
	p.mu.Unlock()
	if mine {
		p.uncover(f)
		p.releasePort(f.Local.Port())
	}
}

// lookup finds the flow of a 4-tuple, or else a listening flow on the
// local port (registered with remote port 0).
func (p *Prober) lookup(remote netip.AddrPort, localPort uint16) *Flow {
	p.mu.RLock()
	f := p.flows[flowKey{remote, localPort}]
	if f == nil {
		f = p.flows[flowKey{netip.AddrPortFrom(remote.Addr(), 0), localPort}]
	}
	p.mu.RUnlock()
	return f
}

// Listen registers a flow for segments from any port of the remote to
// localPort (zero: a random free one), for walks where the remote connects to
// us (SYN_SENT). Once the remote's port is known, Connect pins the flow to it.
func (p *Prober) Listen(localPort uint16) (*Flow, error) {
	return p.newFlow(0, localPort)
}

// Connect pins a listening flow to the remote port that reached it.
func (f *Flow) Connect(rport uint16) error {
	p := f.p
	p.mu.Lock()
	defer p.mu.Unlock()
	old := flowKey{f.Remote, f.Local.Port()}
	remote := netip.AddrPortFrom(f.Remote.Addr(), rport)
	k := flowKey{remote, f.Local.Port()}
	if g, busy := p.flows[k]; busy && g != f {
		return fmt.Errorf("probe: flow %s -> %s is already open", f.Local, remote)
	}
	if p.flows[old] == f {
		delete(p.flows, old)
	}
	f.Remote = remote
	p.flows[k] = f
	return nil
}

// send writes one packet. Used by flows.
func (p *Prober) send(pkt []byte) error {
	return p.sender.Send(pkt, p.cfg.Remote)
}

func (p *Prober) getEvent() *Event { return p.pool.Get().(*Event) }

func (p *Prober) putEvent(e *Event) {
	e.Seg, e.IP6, e.ICMP, e.ICMP6 = craft.Packet{}, nil, craft.ICMPError{}, craft.ICMPv6Error{}
	p.pool.Put(e)
}

// deliver hands e to f without blocking: a flow that does not read in time
// loses events (counted), the receive loop never stalls.
func (p *Prober) deliver(f *Flow, e *Event) {
	select {
	case f.in <- e:
	default:
		p.overflow.Add(1)
		p.putEvent(e)
	}
}

// readSegments is the receive loop for TCP: parse, match the 4-tuple, deliver.
// It allocates nothing per packet (events come from a pool).
func (p *Prober) readSegments() {
	defer p.wg.Done()
	for {
		e := p.getEvent()
		n, ts, err := p.recv.Read(e.buf[:])
		if errors.Is(err, rawsock.ErrTruncated) {
			// Larger than MaxPacket: not a reply we could judge whole.
			p.dropMalformed(e.buf[:n], oddity{err: errTooLong})
			p.putEvent(e)
			continue
		}
		if err != nil {
			p.putEvent(e)
			if p.closed() || errors.Is(err, os.ErrClosed) {
				return
			}
			p.warn(fmt.Sprintf("receive: %v", err))
			if !sleepOrDone(p.done, 10*time.Millisecond) {
				return
			}
			continue
		}
		e.n, e.At, e.Kind = n, ts, EventSegment
		var src, dst netip.Addr // for the checksum: the segment's own addresses
		if p.v6 {
			pkt, err := craft.ParseIPv6Packet(e.buf[:n])
			if err != nil {
				p.dropMalformed(e.buf[:n], oddity{err: err})
				p.putEvent(e)
				continue
			}
			e.IP6, e.Seg.TCP = pkt.IP, pkt.TCP
			src, dst = pkt.IP.Source(), pkt.IP.Destination()
		} else {
			pkt, err := craft.ParsePacket(e.buf[:n])
			if err != nil {
				p.dropMalformed(e.buf[:n], oddity{err: err})
				p.putEvent(e)
				continue
			}
			e.Seg = pkt
			src, dst = pkt.IP.Source(), pkt.IP.Destination()
		}
		if ok, got, want := checksumOK(src, dst, e.Seg.TCP); !ok {
			p.badSum.Add(1)
			p.dropMalformed(e.buf[:n], oddity{sum: got, want: want})
			p.putEvent(e)
			continue
		}
		f := p.lookup(netip.AddrPortFrom(src, e.Seg.TCP.SourcePort()), e.Seg.TCP.DestinationPort())
		if f == nil {
			p.unmatched.Add(1)
			p.putEvent(e)
			continue
		}
		p.received.Add(1)
		p.deliver(f, e)
	}
}

// readICMP delivers ICMP errors that quote one of our segments.
func (p *Prober) readICMP() {
	defer p.wg.Done()
	for {
		e := p.getEvent()
		n, ts, err := p.icmp.Read(e.buf[:])
		if err != nil {
			p.putEvent(e)
			if p.closed() || errors.Is(err, os.ErrClosed) {
				return
			}
			if !sleepOrDone(p.done, 10*time.Millisecond) {
				return
			}
			continue
		}
		e.n, e.At, e.Kind = n, ts, EventICMP
		var quotedDst netip.Addr
		var qsport, qdport uint16
		if p.v6 {
			ie, err := craft.ParseICMPv6Error(e.buf[:n])
			if err != nil {
				p.noteMalformed(oddity{from: packetSource(e.buf[:n]), err: err})
				p.putEvent(e)
				continue
			}
			e.ICMP6 = ie
			quotedDst, qsport, qdport = ie.Quoted.Destination(), ie.SrcPort, ie.DstPort
		} else {
			ie, err := craft.ParseICMPError(e.buf[:n])
			if err != nil {
				// An ICMP error whose quote is unusable belongs to no flow
				// we can name: counted and told, not delivered.
				p.noteMalformed(oddity{from: packetSource(e.buf[:n]), err: err})
				p.putEvent(e)
				continue
			}
			e.ICMP = ie
			quotedDst, qsport, qdport = ie.Quoted.Destination(), ie.SrcPort, ie.DstPort
		}
		f := p.lookup(netip.AddrPortFrom(quotedDst, qdport), qsport)
		if f == nil {
			p.unmatched.Add(1)
			p.putEvent(e)
			continue
		}
		p.icmpCount.Add(1)
		p.deliver(f, e)
	}
}

// malformedWarnEvery is the least time between two warnings about malformed
// packets: a broken or hostile peer may send thousands a second, and one line
// a second (plus a count at Close) tells the user as much.
const malformedWarnEvery = time.Second

// errTooLong is the oddity of a packet the kernel truncated to MaxPacket.
var errTooLong = fmt.Errorf("longer than the %d-byte read buffer (truncated)", MaxPacket)

// oddity is a malformed packet kept as facts: the receive loop stores them
// without allocating, and the text is made only when a warning goes out.
type oddity struct {
	from netip.Addr
	err  error  // why it did not parse (craft made the error), or nil: a bad checksum
	sum  uint16 // the TCP checksum field as received
	want uint16 // the value that verifies
}

func (o oddity) String() string {
	if o.err != nil {
		return fmt.Sprintf("malformed reply from %s: %v", o.from, o.err)
	}
	return fmt.Sprintf("malformed reply from %s: TCP checksum %#04x does not verify (want %#04x); "+
		"dropped, as the remote's own TCP would drop ours (RFC 9293 §3.1)", o.from, o.sum, o.want)
}

// dropMalformed counts a malformed packet, against its flow too when its
// ports can be read, and notes it for the user.
func (p *Prober) dropMalformed(b []byte, o oddity) {
	o.from = packetSource(b)
	if len(b) >= craft.IPv4MinimumSize {
		hl := craft.IPv4(b).HeaderLength()
		if b[0]>>4 == craft.IPv6Version {
			hl = craft.IPv6HeaderSize // rawsock's IPv6 receivers rebuild a header without extensions
		}
		if hl >= craft.IPv4MinimumSize && len(b) >= hl+4 {
			t := craft.TCP(b[hl:])
			sport, dport := binary.BigEndian.Uint16(t[0:]), binary.BigEndian.Uint16(t[2:])
			if f := p.lookup(netip.AddrPortFrom(o.from, sport), dport); f != nil {
				f.malformed.Add(1)
			}
		}
	}
	p.noteMalformed(o)
}

// noteMalformed counts o, keeps it as the last one, and warns at most once
// per malformedWarnEvery. It allocates only when it warns.
func (p *Prober) noteMalformed(o oddity) {
	p.malformed.Add(1)
	now := time.Now()
	p.oddMu.Lock()
	p.lastOdd = o
	p.oddUnwarned++
	if now.Sub(p.oddWarned) < malformedWarnEvery {
		p.oddMu.Unlock()
		return
	}
	n := p.oddUnwarned
	p.oddWarned, p.oddUnwarned = now, 0
	p.oddMu.Unlock()
	msg := o.String()
	if n > 1 {
		msg += fmt.Sprintf(" (and %d more malformed packets in the last second)", n-1)
	}
	p.warn(msg)
}

// packetSource reads the IPv4 or IPv6 source of b, or the zero Addr if b is
// too short.
func packetSource(b []byte) netip.Addr {
	if len(b) >= craft.IPv6HeaderSize && b[0]>>4 == craft.IPv6Version {
		return craft.IPv6(b).Source()
	}
	if len(b) < craft.IPv4MinimumSize {
		return netip.Addr{}
	}
	return craft.IPv4(b).Source()
}

// checksumOK reports whether pkt's TCP checksum verifies, or else returns
// the field and the value that would. A field holding only the folded
// pseudo-header sum is accepted without verifying: that is a segment sent
// with checksum offload (CHECKSUM_PARTIAL) from another namespace of this
// host over veth, which the receiving kernel trusts as well (see package
// lab). Any other wrong checksum means the segment was damaged or forged; a
// TCP discards it (RFC 9293 §3.1), and so do we.
func checksumOK(src, dst netip.Addr, tcp craft.TCP) (ok bool, got, want uint16) {
	pseudo := craft.PseudoHeaderSum(src, dst, craft.ProtocolTCP, uint16(len(tcp)))
	all := craft.Checksum(tcp, pseudo)
	if all == 0xffff {
		return true, 0, 0
	}
	got = tcp.Checksum()
	if got == craft.Checksum(nil, pseudo) {
		return true, 0, 0
	}
	// The sum without the field, complemented, is the field that verifies.
	s := uint32(all) + uint32(^got)
	without := uint16(s&0xffff + s>>16)
	return false, got, ^without
}

// watchLeaks turns local RSTs that escaped the guard into warnings.
func (p *Prober) watchLeaks() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case l, ok := <-p.watch.Leaked():
			if !ok {
				return
			}
			if p.lookup(l.Remote, l.LocalPort) == nil {
				continue // a local client's own RST, not one of our flows
			}
			p.warn(fmt.Sprintf("the local kernel sent a RST to %s from port %d (seq %d): the remote has probably dropped this flow; "+
				"the RST guard is off or did not cover it", l.Remote, l.LocalPort, l.Seq))
		}
	}
}

func sleepOrDone(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}
