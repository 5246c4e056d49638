package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// tunMTU is the TUN device's MTU, and so netstack's: the veth's, so that
// netstack's MSS (1460) is what a kernel on the veth would announce.
const tunMTU = 1500

// netstackNIC is the one NIC of the lab's netstack.
const netstackNIC tcpip.NICID = 1

// listenBacklog is netstack's listen backlog: large enough that conform's
// parallel connections never overflow it, as the kernel's (somaxconn) is.
const listenBacklog = 1024

// netstackNet serves the lab from gVisor's netstack, a TCP/IP stack written
// in Go that shares no code with Linux's: a second, independent TCP
// implementation behind the target address. It reads and writes IP packets
// on the lab's TUN device (see the package doc's layout), which the target
// namespace's kernel routes TargetAddr to.
type netstackNet struct {
	st    *stack.Stack
	fd    int
	addr  netip.Addr
	addr6 netip.Addr // invalid: IPv4 only
}

// openNetstack attaches to the persistent TUN device tunIf in ns and runs a
// netstack that owns addr on it, and addr6 too when valid. SACK is on;
// timestamps and window scaling are negotiated as gVisor ships them (always
// offered, used when the peer offers them too). Keep-alive is off on every
// endpoint by default.
//
// IPv6 runs with gVisor's zero NDP and DAD configurations: no duplicate
// address detection (the address is usable at once, as the kernel lab's
// IFA_F_NODAD ones), no router solicitations sent and router
// advertisements ignored, no link-local address made. A TUN device carries
// bare IP packets, so netstack resolves no neighbours itself: neighbour
// discovery on the veth is the target kernel's proxy NDP (see the package
// doc).
func openNetstack(ns *netns.NS, tunIf string, addr, addr6 netip.Addr) (*netstackNet, error) {
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = tun.Open(tunIf)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open TUN device %s in %s: %w", tunIf, ns.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: tunMTU})
	if err != nil {
		return nil, fmt.Errorf("netstack link endpoint on %s: %w", tunIf, err)
	}
	st := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocolWithOptions(ipv6.Options{})},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	n := &netstackNet{st: st, fd: fd, addr: addr, addr6: addr6}
	fail := func(what string, e tcpip.Error) (*netstackNet, error) {
		st.Close()
		st.Wait()
		return nil, fmt.Errorf("netstack: %s: %s", what, e)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if e := st.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fail("enable SACK", e)
	}
	if e := st.CreateNIC(netstackNIC, ep); e != nil {
		return fail("create NIC on "+tunIf, e)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix()}
	if e := st.AddProtocolAddress(netstackNIC, pa, stack.AddressProperties{}); e != nil {
		return fail("add address "+addr.String(), e)
	}
	if addr6.IsValid() {
		pa6 := tcpip.ProtocolAddress{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom16(addr6.As16()).WithPrefix()}
		if e := st.AddProtocolAddress(netstackNIC, pa6, stack.AddressProperties{}); e != nil {
			return fail("add address "+addr6.String(), e)
		}
	}
	// One route per family, for the lab's range: like the kernel side, no
	// default route.
	var routes []tcpip.Route
	for _, p := range []netip.Prefix{benchNet, benchNet6} {
		if p.Addr().Is6() && !addr6.IsValid() {
			continue
		}
		subnet, serr := tcpip.NewSubnet(tcpip.AddrFromSlice(p.Addr().AsSlice()), tcpip.MaskFromBytes(net.CIDRMask(p.Bits(), p.Addr().BitLen())))
		if serr != nil {
			st.Close()
			st.Wait()
			return nil, fmt.Errorf("netstack: route %s: %w", p, serr)
		}
		routes = append(routes, tcpip.Route{Destination: subnet, NIC: netstackNIC})
	}
	st.SetRouteTable(routes)
	ok = true
	return n, nil
}

// tcpipAddr is a's netstack address and network protocol.
func tcpipAddr(a netip.Addr) (tcpip.Address, tcpip.NetworkProtocolNumber) {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4()), ipv4.ProtocolNumber
	}
	return tcpip.AddrFrom16(a.As16()), ipv6.ProtocolNumber
}

// listen listens on one of the netstack's own addresses (an IPv6 endpoint
// bound to the IPv6 address takes IPv6 only, as the kernel's IPV6_V6ONLY
// listeners).
func (n *netstackNet) listen(local netip.Addr, port uint16) (listener, error) {
	if local != n.addr && (!n.addr6.IsValid() || local != n.addr6) {
		return nil, fmt.Errorf("netstack listen on %s: the netstack lab has addresses %s and %s only", local, n.addr, n.addr6)
	}
	a, proto := tcpipAddr(local)
	var wq waiter.Queue
	ep, e := n.st.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if e != nil {
		return nil, fmt.Errorf("netstack endpoint: %s", e)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if proto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	if e := ep.Bind(tcpip.FullAddress{NIC: netstackNIC, Addr: a, Port: port}); e != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack bind %s: %s", netip.AddrPortFrom(local, port), e)
	}
	if e := ep.Listen(listenBacklog); e != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack listen on %s: %s", netip.AddrPortFrom(local, port), e)
	}
	return &netstackListener{ep: ep, wq: &wq, done: make(chan struct{})}, nil
}

// dial connects from local (the netstack's address of to's family).
func (n *netstackNet) dial(ctx context.Context, local netip.Addr, to netip.AddrPort) (net.Conn, error) {
	if !local.IsValid() || local.Is4() != to.Addr().Is4() {
		return nil, fmt.Errorf("netstack dial %s: no local address of its family", to)
	}
	la, proto := tcpipAddr(local)
	ra, _ := tcpipAddr(to.Addr())
	return gonet.DialTCPWithBind(ctx, n.st, tcpip.FullAddress{NIC: netstackNIC, Addr: la}, tcpip.FullAddress{NIC: netstackNIC, Addr: ra, Port: to.Port()}, proto)
}

// close ends every endpoint, stops the link's packet dispatcher and
// closes the TUN file descriptor (the persistent device stays, for
// Destroy to remove).
func (n *netstackNet) close() error {
	n.st.Close()
	n.st.Wait()
	if err := unix.Close(n.fd); err != nil {
		return fmt.Errorf("close TUN device: %w", err)
	}
	return nil
}

// netstackListener accepts on a listening netstack endpoint. It is
// gonet.TCPListener's accept loop, kept here because gonet hides the
// accepted endpoint, and the control server needs it for SO_LINGER 0.
type netstackListener struct {
	ep   tcpip.Endpoint
	wq   *waiter.Queue
	once sync.Once
	done chan struct{}
}

var errListenerClosed = errors.New("netstack listener closed")

func (l *netstackListener) accept() (Conn, error) {
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		ep, wq, e := l.ep.Accept(nil)
		if e == nil {
			return netstackConn{TCPConn: gonet.NewTCPConn(wq, ep), ep: ep}, nil
		}
		if _, ok := e.(*tcpip.ErrWouldBlock); !ok {
			return nil, fmt.Errorf("netstack accept: %s", e)
		}
		select {
		case <-l.done:
			return nil, errListenerClosed
		case <-ch:
		}
	}
}

func (l *netstackListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.ep.Close()
	})
	return nil
}

// netstackConn is an accepted netstack connection with its endpoint.
type netstackConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
}

// SetLinger is net.TCPConn's: sec 0 makes Close send RST (gVisor aborts a
// synchronized connection closed with a zero linger, as Linux does).
func (c netstackConn) SetLinger(sec int) error {
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: sec >= 0, Timeout: time.Duration(max(sec, 0)) * time.Second})
	return nil
}
