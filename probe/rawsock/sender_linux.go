package rawsock

import (
	"errors"
	"fmt"
	"net/netip"

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
// SO_MARK so the RST guard lets them through. See the package doc for what the kernel rewrites. Send, SendBatch
// and Close are one send socket's, Sender6's too, and safe for concurrent use.
type Sender struct {
	sendSocket
}

// NewSender opens the socket and sets SO_MARK to mark (0 leaves packets unmarked; setting a mark needs
// CAP_NET_ADMIN).
func NewSender(mark uint32) (*Sender, error) {
	s := &Sender{}
	if err := s.open(false, mark); err != nil {
		return nil, err
	}
	return s, nil
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
