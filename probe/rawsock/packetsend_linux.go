package rawsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoLinkLayer is matched by the errors of FindLink and ResolveNextHop when a destination cannot be reached with
// a PacketSender: it is local or on loopback, behind a point-to-point or other non-Ethernet interface, on a route
// that splits a range, or its next hop's MAC address did not resolve. Callers fall back to a Sender.
var ErrNoLinkLayer = errors.New("no Ethernet next hop")

// Link is the Ethernet path to a next hop: what a PacketSender needs to put IPv4 packets on the wire itself.
type Link struct {
	Index   int        // the egress interface's index
	Name    string     // and name
	MTU     int        // its MTU: the longest IPv4 packet it carries
	Src     [6]byte    // the interface's MAC address
	NextHop netip.Addr // the route's gateway, or the destination itself when it is on the link
	Dst     [6]byte    // the next hop's MAC address (set by ResolveNextHop)
}

func (l Link) String() string {
	return fmt.Sprintf("%s via %v (%v)", l.Name, l.NextHop, net.HardwareAddr(l.Dst[:]))
}

// FindLink asks the routing table of the calling thread's namespace (RTM_GETROUTE, with mark as the packets'
// SO_MARK for policy routing) how every address from first to last is reached, and returns the Link if they all
// leave through one Ethernet interface to one next hop: a single address, or a range behind one gateway that no
// more specific route splits. The Link's Dst is not set yet: see ResolveNextHop. Errors match ErrNoLinkLayer
// when AF_PACKET sends cannot be used (a Sender still can).
//
// Policy rules other than the mark are not consulted for the addresses between first and last; a range that
// they split is sent to the next hop of first.
func FindLink(first, last netip.Addr, mark uint32) (Link, error) {
	first, last = first.Unmap(), last.Unmap()
	if !first.Is4() || !last.Is4() || last.Less(first) {
		return Link{}, fmt.Errorf("rawsock: find the link to %v-%v: want an IPv4 range", first, last)
	}
	noLink := func(format string, args ...any) (Link, error) {
		return Link{}, fmt.Errorf("rawsock: AF_PACKET sends to %v: "+format+": %w", append(append([]any{first}, args...), ErrNoLinkLayer)...)
	}
	rt, err := routeTo(first, mark)
	if err != nil {
		return Link{}, err
	}
	switch {
	case rt.Type == unix.RTN_LOCAL:
		return noLink("it is a local address (the kernel delivers it over loopback)")
	case rt.Type != unix.RTN_UNICAST:
		return noLink("the route is not unicast (type %d; a local address?)", rt.Type)
	case len(rt.MultiPath) > 0:
		return noLink("a multipath route")
	}
	if first != last {
		if rt.Gw == nil {
			return noLink("%v-%v are on the link itself, each with its own MAC address", first, last)
		}
		rl, err := routeTo(last, mark)
		if err != nil {
			return Link{}, err
		}
		if rl.LinkIndex != rt.LinkIndex || !rl.Gw.Equal(rt.Gw) || rl.Type != rt.Type || len(rl.MultiPath) > 0 {
			return noLink("%v and %v leave by different routes", first, last)
		}
		if p, err := splitting(first, last); err != nil || p.IsValid() {
			if err != nil {
				return Link{}, err
			}
			return noLink("the route to %v takes part of the range elsewhere", p)
		}
	}
	lk, err := netlink.LinkByIndex(rt.LinkIndex)
	if err != nil {
		return Link{}, fmt.Errorf("rawsock: find the interface of the route to %v (index %d): %w", first, rt.LinkIndex, err)
	}
	a := lk.Attrs()
	if a.EncapType != "ether" || len(a.HardwareAddr) != 6 || a.Flags&net.FlagUp == 0 {
		return noLink("interface %s is not an Ethernet interface that is up (type %s)", a.Name, a.EncapType)
	}
	l := Link{Index: a.Index, Name: a.Name, MTU: a.MTU, Src: [6]byte(a.HardwareAddr), NextHop: first}
	if rt.Gw != nil {
		gw, ok := netip.AddrFromSlice(rt.Gw.To4())
		if !ok {
			return noLink("gateway %v is not IPv4", rt.Gw)
		}
		l.NextHop = gw
	}
	return l, nil
}

// routeTo is RTM_GETROUTE for one address.
func routeTo(dst netip.Addr, mark uint32) (netlink.Route, error) {
	rs, err := netlink.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{Mark: mark})
	if err != nil {
		return netlink.Route{}, fmt.Errorf("rawsock: look up the route to %v: %w (%w)", dst, err, ErrNoLinkLayer)
	}
	if len(rs) != 1 {
		return netlink.Route{}, fmt.Errorf("rawsock: look up the route to %v: %d answers: %w", dst, len(rs), ErrNoLinkLayer)
	}
	return rs[0], nil
}

// splitting returns a route of any table that covers part, but not all, of first..last (the zero prefix if none
// does). If no route does, the route that reaches first reaches every address of the range: any route more
// specific for one of them would overlap the range without covering it.
func splitting(first, last netip.Addr) (netip.Prefix, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("rawsock: list the routes: %w (%w)", err, ErrNoLinkLayer)
	}
	for _, r := range rs {
		if r.Dst == nil {
			continue // a default route covers everything
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		p := netip.PrefixFrom(a, ones).Masked()
		lo := p.Addr()
		hi := lastOf(p)
		overlaps := !hi.Less(first) && !last.Less(lo)
		covers := p.Contains(first) && p.Contains(last)
		if overlaps && !covers {
			return p, nil
		}
	}
	return netip.Prefix{}, nil
}

// lastOf is the highest address of an IPv4 prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(uint64(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// usableNeigh are the neighbour states whose address the kernel itself would send to (a STALE entry is used
// while it is being checked again).
const usableNeigh = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT

// neighPoll is how often ResolveNextHop reads the neighbour table while it waits.
const neighPoll = 5 * time.Millisecond

// ResolveNextHop reads l.NextHop's MAC address from the neighbour table of the calling thread's namespace and
// returns l with Dst set. If the entry is missing or not usable, it calls trigger once (nil: none) to make the
// kernel resolve it, which it does for any packet sent on the IP path to a destination behind that next hop, then
// polls the table for up to wait. Errors match ErrNoLinkLayer when the address did not resolve.
func ResolveNextHop(l Link, trigger func() error, wait time.Duration) (Link, error) {
	deadline := time.Now().Add(wait)
	triggered := false
	for {
		ns, err := netlink.NeighList(l.Index, netlink.FAMILY_V4)
		if err != nil {
			return l, fmt.Errorf("rawsock: read the neighbour table of %s: %w (%w)", l.Name, err, ErrNoLinkLayer)
		}
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP.To4()); ok && a == l.NextHop && n.State&usableNeigh != 0 && len(n.HardwareAddr) == 6 {
				l.Dst = [6]byte(n.HardwareAddr)
				return l, nil
			}
		}
		if !triggered && trigger != nil {
			triggered = true
			if err := trigger(); err != nil {
				return l, fmt.Errorf("rawsock: resolve the MAC address of %v on %s: trigger resolution: %w (%w)", l.NextHop, l.Name, err, ErrNoLinkLayer)
			}
		}
		if !time.Now().Before(deadline) {
			return l, fmt.Errorf("rawsock: resolve the MAC address of %v on %s: no usable neighbour entry after %v (no ARP reply?): %w", l.NextHop, l.Name, wait, ErrNoLinkLayer)
		}
		time.Sleep(min(neighPoll, time.Until(deadline)))
	}
}

// ethHeader is the Ethernet II header: destination, source, EtherType (IEEE 802.3 §3.2).
const ethHeader = 14

// busyLimit bounds how long SendBatch retries a packet the device's queue refused (ENOBUFS).
const busyLimit = time.Second

// PacketSender sends whole IPv4 packets as Ethernet frames on an AF_PACKET SOCK_RAW socket bound to one
// interface, all to one next hop: it writes the Ethernet header (our MAC, the next hop's, EtherType IPv4) in front
// of each packet, and the kernel hands the frame to the driver with no routing, no neighbour lookup, no netfilter
// and, with PACKET_QDISC_BYPASS, no qdisc. That is what makes it 2-3 times faster than a Sender, whose IP_HDRINCL
// sends look up a route (and on a directly connected route, make an uncached dst entry) per packet.
//
// What that means for callers:
//   - The kernel rewrites nothing (compare the package doc): the IPv4 total length, header checksum,
//     identification and source address must be right as given.
//   - Netfilter never sees the frames: OUTPUT and POSTROUTING rules (the RST guard, NAT, conntrack) do not apply,
//     so a stateful firewall on this host will not know the flows its replies belong to. SO_MARK is still set, for
//     the record, but nothing on the path reads it.
//   - Packet taps on this host (tcpdump, a PacketReceiver) do not see the frames (qdisc bypass skips them), nor do
//     local raw sockets: capture at the far end.
//   - Every packet goes to the Link's next hop, whatever its destination address: send only to destinations that
//     FindLink resolved to that Link.
//
// Send and SendBatch are safe for concurrent use.
type PacketSender struct {
	mu     sync.RWMutex // Send and SendBatch hold it shared, Close exclusively
	fd     int
	closed bool
	link   Link
	cooked bool // SOCK_DGRAM: the kernel writes the Ethernet header (only to compare the two in benchmarks)

	eth [ethHeader]byte
	sa  unix.RawSockaddrLinklayer // destination of cooked sends

	bmu  sync.Mutex // serialises SendBatch: the arrays below are its reused state
	msgs [maxBatch]unix.Mmsghdr
	iovs [maxBatch][2]unix.Iovec
}

// NewPacketSender opens the socket on l's interface (l.Dst must be resolved, see ResolveNextHop) in the calling
// thread's namespace, turns on PACKET_QDISC_BYPASS and sets SO_MARK to mark (0: none; needs CAP_NET_ADMIN).
func NewPacketSender(l Link, mark uint32) (*PacketSender, error) {
	return newPacketSender(l, mark, false)
}

func newPacketSender(l Link, mark uint32, cooked bool) (*PacketSender, error) {
	if l.Index <= 0 || l.Dst == ([6]byte{}) {
		return nil, fmt.Errorf("rawsock: open a packet sender on %q: the link has no interface or no next-hop MAC address (see FindLink and ResolveNextHop)", l.Name)
	}
	typ := unix.SOCK_RAW
	if cooked {
		typ = unix.SOCK_DGRAM
	}
	// Protocol 0: the socket receives nothing, so it costs nothing on the receive path.
	fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rawsock: open AF_PACKET send socket: %w%s", err, hint(err))
	}
	fail := func(what string, err error) (*PacketSender, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("rawsock: packet send socket on %s: %s: %w", l.Name, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: l.Index}); err != nil {
		return fail("bind to the interface", err)
	}
	// Best effort (Linux 3.14+): without it the frames go through the device's qdisc, which is only slower.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			return fail(fmt.Sprintf("set SO_MARK %#x", mark), fmt.Errorf("%w (needs CAP_NET_ADMIN; run as root or setcap cap_net_raw,cap_net_admin+ep)", err))
		}
	}
	s := &PacketSender{fd: fd, link: l, cooked: cooked}
	copy(s.eth[0:6], l.Dst[:])
	copy(s.eth[6:12], l.Src[:])
	s.eth[12], s.eth[13] = unix.ETH_P_IP>>8, unix.ETH_P_IP&0xff
	s.sa = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(unix.ETH_P_IP), Ifindex: int32(l.Index), Halen: 6}
	copy(s.sa.Addr[:], l.Dst[:])
	return s, nil
}

// Link returns the link the sender sends on.
func (s *PacketSender) Link() Link { return s.link }

// checkFrame is checkPacket plus what the kernel no longer checks for us: an IPv4 header whose destination is dst.
func checkFrame(pkt []byte, dst netip.Addr) error {
	if err := checkPacket(pkt, dst); err != nil {
		return err
	}
	if pkt[0]>>4 != 4 || [4]byte(pkt[16:20]) != dst.Unmap().As4() {
		return fmt.Errorf("rawsock: send to %v: the packet is not IPv4 to that address", dst)
	}
	return nil
}

// Send sends one IPv4 packet to dst (which must be the packet's destination) through the Link's next hop. It
// allocates nothing unless it fails.
func (s *PacketSender) Send(pkt []byte, dst netip.Addr) error {
	var pkts [1][]byte
	var dsts [1]netip.Addr
	pkts[0], dsts[0] = pkt, dst
	_, err := s.SendBatch(pkts[:], dsts[:])
	return err
}

// SendBatch sends pkts[i] (to dsts[i], its destination address) with sendmmsg, up to 64 frames per system call,
// and returns how many were sent. A frame the device's queue refuses (ENOBUFS) is tried again for up to a second;
// it stops at the first packet the kernel rejects otherwise and returns its error. It allocates nothing unless
// it fails.
func (s *PacketSender) SendBatch(pkts [][]byte, dsts []netip.Addr) (int, error) {
	if len(pkts) != len(dsts) {
		return 0, fmt.Errorf("rawsock: SendBatch with %d packets but %d destinations", len(pkts), len(dsts))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	s.bmu.Lock()
	defer s.bmu.Unlock()
	sent := 0
	var busySince time.Time
	for sent < len(pkts) {
		k := min(len(pkts)-sent, maxBatch)
		for i := range k {
			pkt, dst := pkts[sent+i], dsts[sent+i]
			if err := checkFrame(pkt, dst); err != nil {
				if i == 0 {
					return sent, err
				}
				k = i // send the good ones before it; the next round reports the error
				break
			}
			s.fill(i, pkt)
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(k), 0, 0, 0)
		for i := range k {
			s.iovs[i][0].Base, s.iovs[i][1].Base = nil, nil // do not keep the caller's packets alive
		}
		switch e {
		case 0:
			sent += int(n)
			busySince = time.Time{}
			continue
		case unix.EINTR:
			continue
		case unix.ENOBUFS:
			// The device's queue is full (no qdisc buffers for us): wait for it to drain, boundedly.
			if busySince.IsZero() {
				busySince = time.Now()
			}
			if time.Since(busySince) <= busyLimit {
				time.Sleep(50 * time.Microsecond)
				continue
			}
		}
		return sent, s.sendError(dsts[sent], len(pkts[sent]), e)
	}
	return sent, nil
}

// fill points message i at pkt, behind the shared Ethernet header unless the kernel writes it.
func (s *PacketSender) fill(i int, pkt []byte) {
	m := &s.msgs[i]
	iov := &s.iovs[i]
	*m = unix.Mmsghdr{}
	if s.cooked {
		iov[0].Base = &pkt[0]
		iov[0].SetLen(len(pkt))
		m.Hdr.Iov, m.Hdr.Iovlen = &iov[0], 1
		m.Hdr.Name, m.Hdr.Namelen = (*byte)(unsafe.Pointer(&s.sa)), unix.SizeofSockaddrLinklayer
		return
	}
	iov[0].Base = &s.eth[0]
	iov[0].SetLen(ethHeader)
	iov[1].Base = &pkt[0]
	iov[1].SetLen(len(pkt))
	m.Hdr.Iov, m.Hdr.Iovlen = &iov[0], 2
}

func (s *PacketSender) sendError(dst netip.Addr, n int, e unix.Errno) error {
	switch e {
	case unix.EMSGSIZE:
		return fmt.Errorf("rawsock: send %d bytes to %v on %s: %w (larger than the interface's MTU %d)", n, dst, s.link.Name, e, s.link.MTU)
	case unix.ENETDOWN, unix.ENXIO, unix.ENODEV:
		return fmt.Errorf("rawsock: send to %v on %s: %w (the interface is down or gone)", dst, s.link.Name, e)
	case unix.ENOBUFS:
		return fmt.Errorf("rawsock: send to %v on %s: %w (the device's queue stayed full for %v)", dst, s.link.Name, e, busyLimit)
	}
	return fmt.Errorf("rawsock: send to %v on %s: %w", dst, s.link.Name, e)
}

// Close closes the socket. It waits for sends in progress and is idempotent.
func (s *PacketSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("rawsock: close packet send socket: %w", err)
	}
	return nil
}
