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
	st   *stack.Stack
	fd   int
	addr netip.Addr
}

// openNetstack attaches to the persistent TUN device tunIf in ns and runs a
// netstack that owns addr on it. SACK is on; timestamps and window scaling
// are negotiated as gVisor ships them (always offered, used when the peer
// offers them too). Keep-alive is off on every endpoint by default.
func openNetstack(ns *netns.NS, tunIf string, addr netip.Addr) (*netstackNet, error) {
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
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	n := &netstackNet{st: st, fd: fd, addr: addr}
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
	// One route, for the lab's range: like the kernel side, no default route.
	subnet, serr := tcpip.NewSubnet(tcpip.AddrFrom4(benchNet.Addr().As4()), tcpip.MaskFromBytes(net.CIDRMask(benchNet.Bits(), 32)))
	if serr != nil {
		st.Close()
		st.Wait()
		return nil, fmt.Errorf("netstack: route %s: %w", benchNet, serr)
	}
	st.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: netstackNIC}})
	ok = true
	return n, nil
}

// listen listens on the netstack's own address, which speaks IPv4 only.
func (n *netstackNet) listen(local netip.Addr, port uint16) (listener, error) {
	if local != n.addr {
		return nil, fmt.Errorf("netstack listen on %s: the netstack lab has address %s only", local, n.addr)
	}
	var wq waiter.Queue
	ep, e := n.st.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if e != nil {
		return nil, fmt.Errorf("netstack endpoint: %s", e)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if e := ep.Bind(tcpip.FullAddress{NIC: netstackNIC, Addr: tcpip.AddrFrom4(n.addr.As4()), Port: port}); e != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack bind %s:%d: %s", n.addr, port, e)
	}
	if e := ep.Listen(listenBacklog); e != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack listen on %s:%d: %s", n.addr, port, e)
	}
	return &netstackListener{ep: ep, wq: &wq, done: make(chan struct{})}, nil
}

func (n *netstackNet) dial(ctx context.Context, _ netip.Addr, to netip.AddrPort) (net.Conn, error) {
	local := tcpip.FullAddress{NIC: netstackNIC, Addr: tcpip.AddrFrom4(n.addr.As4())}
	remote := tcpip.FullAddress{NIC: netstackNIC, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}
	return gonet.DialTCPWithBind(ctx, n.st, local, remote, ipv4.ProtocolNumber)
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
