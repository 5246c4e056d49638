package rawsock

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxBatch is how many packets one sendmmsg call carries.
const maxBatch = 64

// sendBuffer is the send buffer NewSender asks for. Packets to a host whose
// MAC address is still being resolved wait in the neighbour table charged to
// the socket (up to net.ipv4.neigh.*.unres_qlen_bytes each), so a fast scan
// of an on-link range with absent hosts fills the default ~200 KiB buffer in
// a blink and every send fails until the ARP entries time out. It is a limit,
// not an allocation: memory is used only by packets actually queued.
const sendBuffer = 64 << 20

// minIPv4 is the shortest packet the kernel accepts with IP_HDRINCL: a bare IPv4 header.
const minIPv4 = 20

// Sender sends whole IPv4 packets on an AF_INET SOCK_RAW IPPROTO_RAW socket (IP_HDRINCL is implied), marked with
// SO_MARK so the RST guard lets them through. See the package doc for what the kernel rewrites. Send and SendBatch
// are safe for concurrent use.
type Sender struct {
	mu     sync.RWMutex // Send and SendBatch hold it shared, Close exclusively, so fd is never used after close
	fd     int
	closed bool

	bmu  sync.Mutex // serialises SendBatch: the arrays below are its reused state
	msgs [maxBatch]unix.Mmsghdr
	iovs [maxBatch]unix.Iovec
	sas  [maxBatch]unix.RawSockaddrInet4
}

// NewSender opens the socket and sets SO_MARK to mark (0 leaves packets unmarked; setting a mark needs
// CAP_NET_ADMIN).
func NewSender(mark uint32) (*Sender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("rawsock: open raw IPv4 send socket: %w%s", err, hint(err))
	}
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("rawsock: set SO_MARK %#x on send socket: %w (needs CAP_NET_ADMIN; run as root or setcap cap_net_raw,cap_net_admin+ep)", mark, err)
		}
	}
	// SO_SNDBUFFORCE passes net.core.wmem_max but needs CAP_NET_ADMIN;
	// SO_SNDBUF is capped at wmem_max. Either is a best effort: the default
	// buffer still works, only a fast scan of absent hosts suffers.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
	}
	return &Sender{fd: fd}, nil
}

// BindToDevice makes every packet leave by the interface named ifname
// (SO_BINDTODEVICE): the route is then looked up among that device's
// routes only. It needs CAP_NET_RAW.
func (s *Sender) BindToDevice(ifname string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if err := unix.BindToDevice(s.fd, ifname); err != nil {
		return fmt.Errorf("rawsock: bind the send socket to %s: %w", ifname, err)
	}
	return nil
}

// sockaddr4 is the destination as the kernel wants it; the port is unused on raw sockets.
func sockaddr4(dst netip.Addr) unix.RawSockaddrInet4 {
	return unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Unmap().As4()}
}

func checkPacket(pkt []byte, dst netip.Addr) error {
	if !dst.Unmap().Is4() {
		return fmt.Errorf("rawsock: send to %v: not an IPv4 address", dst)
	}
	if len(pkt) < minIPv4 {
		return fmt.Errorf("rawsock: send to %v: %d-byte packet is shorter than an IPv4 header", dst, len(pkt))
	}
	return nil
}

// Send sends one IPv4 packet to dst (the route is looked up for dst, not for the header's destination; keep them
// equal). It allocates nothing unless it fails: sendto is called directly with a sockaddr on the stack, because
// unix.Sendto's Sockaddr interface allocates.
func (s *Sender) Send(pkt []byte, dst netip.Addr) error {
	if err := checkPacket(pkt, dst); err != nil {
		return err
	}
	sa := sockaddr4(dst)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
			0, uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return sendError(dst, len(pkt), e)
	}
}

var errClosed = errors.New("rawsock: send on closed Sender")

func sendError(dst netip.Addr, n int, e unix.Errno) error {
	switch e {
	case unix.EMSGSIZE:
		return fmt.Errorf("rawsock: send %d bytes to %v: %w (larger than the route's MTU; the kernel does not fragment raw packets)", n, dst, e)
	case unix.EPERM:
		return fmt.Errorf("rawsock: send to %v: %w (dropped by a local firewall rule, or missing CAP_NET_RAW)", dst, e)
	case unix.EINVAL:
		return fmt.Errorf("rawsock: send to %v: %w (the kernel rejected the IPv4 header)", dst, e)
	}
	return fmt.Errorf("rawsock: send to %v: %w", dst, e)
}

// SendBatch sends pkts[i] to dsts[i] with sendmmsg, up to 64 packets per system call, and returns how many were
// sent. It stops at the first packet the kernel refuses and returns its error. It allocates nothing unless it
// fails.
func (s *Sender) SendBatch(pkts [][]byte, dsts []netip.Addr) (int, error) {
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
	for sent < len(pkts) {
		k := min(len(pkts)-sent, maxBatch)
		for i := range k {
			pkt, dst := pkts[sent+i], dsts[sent+i]
			if err := checkPacket(pkt, dst); err != nil {
				if i == 0 {
					return sent, err
				}
				k = i // send the good ones before it; the next round reports the error
				break
			}
			s.sas[i] = sockaddr4(dst)
			s.iovs[i].Base = &pkt[0]
			s.iovs[i].SetLen(len(pkt))
			s.msgs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{
				Name:    (*byte)(unsafe.Pointer(&s.sas[i])),
				Namelen: unix.SizeofSockaddrInet4,
				Iov:     &s.iovs[i],
				Iovlen:  1,
			}}
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(k), 0, 0, 0)
		for i := range k {
			s.iovs[i].Base = nil // do not keep the caller's packets alive
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return sent, sendError(dsts[sent], len(pkts[sent]), e)
		}
		sent += int(n)
	}
	return sent, nil
}

// Close closes the socket. It waits for sends in progress and is idempotent.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("rawsock: close send socket: %w", err)
	}
	return nil
}
