package rawsock

import (
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendSocket is the one raw send socket under Sender (IPv4) and Sender6: the socket, its lock and its sendmmsg
// batch, with the family as a field. Only the destination checks, the sockaddr and the error texts differ by
// family.
type sendSocket struct {
	mu     sync.RWMutex // Send and SendBatch hold it shared, Close exclusively, so fd is never used after close
	fd     int
	closed bool
	v6     bool // AF_INET6: Sender6

	bmu  sync.Mutex // serialises SendBatch: the arrays below are its reused state
	msgs [maxBatch]unix.Mmsghdr
	iovs [maxBatch]unix.Iovec
	sas4 [maxBatch]unix.RawSockaddrInet4 // the destinations of an IPv4 batch
	sas6 [maxBatch]unix.RawSockaddrInet6 // of an IPv6 one
}

// BindToDevice makes every packet leave by the interface named ifname
// (SO_BINDTODEVICE): the route is then looked up among that device's
// routes only, for IPv4 and IPv6 alike. It needs CAP_NET_RAW.
func (s *sendSocket) BindToDevice(ifname string) error {
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

// family names the socket's family in messages: "IPv4" or "IPv6".
func (s *sendSocket) family() string {
	if s.v6 {
		return "IPv6"
	}
	return "IPv4"
}

// open opens the AF_INET or AF_INET6 SOCK_RAW IPPROTO_RAW socket and sets SO_MARK to mark (0 leaves packets
// unmarked; setting a mark needs CAP_NET_ADMIN) and the send buffer.
func (s *sendSocket) open(v6 bool, mark uint32) error {
	s.v6 = v6
	domain := unix.AF_INET
	if v6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("rawsock: open raw %s send socket: %w%s", s.family(), err, hint(err))
	}
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			unix.Close(fd)
			return fmt.Errorf("rawsock: set SO_MARK %#x on %s send socket: %w (needs CAP_NET_ADMIN; run as root or setcap cap_net_raw,cap_net_admin+ep)", mark, s.family(), err)
		}
	}
	// SO_SNDBUFFORCE passes net.core.wmem_max but needs CAP_NET_ADMIN;
	// SO_SNDBUF is capped at wmem_max. Either is a best effort: the default
	// buffer still works, only a fast scan of absent hosts suffers.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
	}
	s.fd = fd
	return nil
}

// check refuses a packet or destination of the other family, or a packet shorter than the IP header.
func (s *sendSocket) check(pkt []byte, dst netip.Addr) error {
	if s.v6 {
		return checkPacket6(pkt, dst)
	}
	return checkPacket(pkt, dst)
}

// sendErr is the error of a refused send, in the family's words.
func (s *sendSocket) sendErr(dst netip.Addr, n int, e unix.Errno) error {
	if s.v6 {
		return sendError6(dst, n, e)
	}
	return sendError(dst, n, e)
}

// Send sends one packet to dst (the route is looked up for dst, not for the header's destination; keep them
// equal). It allocates nothing unless it fails: sendto is called directly with a sockaddr on the stack, because
// unix.Sendto's Sockaddr interface allocates.
func (s *sendSocket) Send(pkt []byte, dst netip.Addr) error {
	if err := s.check(pkt, dst); err != nil {
		return err
	}
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	if s.v6 {
		sa6 = sockaddr6(dst)
	} else {
		sa4 = sockaddr4(dst)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	for {
		var e unix.Errno
		if s.v6 {
			_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
				0, uintptr(unsafe.Pointer(&sa6)), unix.SizeofSockaddrInet6)
		} else {
			_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
				0, uintptr(unsafe.Pointer(&sa4)), unix.SizeofSockaddrInet4)
		}
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return s.sendErr(dst, len(pkt), e)
	}
}

// SendBatch sends pkts[i] to dsts[i] with sendmmsg, up to 64 packets per system call, and returns how many were
// sent. It stops at the first packet the kernel refuses and returns its error. It allocates nothing unless it
// fails.
func (s *sendSocket) SendBatch(pkts [][]byte, dsts []netip.Addr) (int, error) {
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
			if err := s.check(pkt, dst); err != nil {
				if i == 0 {
					return sent, err
				}
				k = i // send the good ones before it; the next round reports the error
				break
			}
			h := unix.Msghdr{Iov: &s.iovs[i], Iovlen: 1}
			if s.v6 {
				s.sas6[i] = sockaddr6(dst)
				h.Name, h.Namelen = (*byte)(unsafe.Pointer(&s.sas6[i])), unix.SizeofSockaddrInet6
			} else {
				s.sas4[i] = sockaddr4(dst)
				h.Name, h.Namelen = (*byte)(unsafe.Pointer(&s.sas4[i])), unix.SizeofSockaddrInet4
			}
			s.iovs[i].Base = &pkt[0]
			s.iovs[i].SetLen(len(pkt))
			s.msgs[i] = unix.Mmsghdr{Hdr: h}
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(k), 0, 0, 0)
		for i := range k {
			s.iovs[i].Base = nil // do not keep the caller's packets alive
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return sent, s.sendErr(dsts[sent], len(pkts[sent]), e)
		}
		sent += int(n)
	}
	return sent, nil
}

// Close closes the socket. It waits for sends in progress and is idempotent.
func (s *sendSocket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("rawsock: close %s send socket: %w", s.family(), err)
	}
	return nil
}
