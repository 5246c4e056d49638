package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ipv6Header is the fixed IPv6 header (RFC 8200 §3): what an IPv6 send starts with and what a read rebuilds.
const ipv6Header = 40

// ipv6FlowInfo is IPV6_FLOWINFO from linux/in6.h (x/sys/unix lacks it): as a socket option it asks for the
// traffic class and flow label of each received packet as a control message of the same type.
const ipv6FlowInfo = 11

// Sender6 sends whole IPv6 packets, header included, on an AF_INET6 SOCK_RAW IPPROTO_RAW socket, marked with
// SO_MARK so the RST guard lets them through. Send, SendBatch and Close are Sender's (one send socket serves both
// families) and safe for concurrent use. See the package doc: unlike IPv4's IP_HDRINCL, the kernel rewrites
// nothing, so the caller writes every field (the payload length and the source address included).
type Sender6 struct {
	sendSocket
}

// NewSender6 opens the socket and sets SO_MARK to mark (0 leaves packets unmarked; a mark needs CAP_NET_ADMIN).
func NewSender6(mark uint32) (*Sender6, error) {
	s := &Sender6{}
	if err := s.open(true, mark); err != nil {
		return nil, err
	}
	return s, nil
}

// sockaddr6 is the destination as the kernel wants it; the port must stay 0 (it would name a protocol).
func sockaddr6(dst netip.Addr) unix.RawSockaddrInet6 {
	return unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
}

func checkPacket6(pkt []byte, dst netip.Addr) error {
	if !dst.Is6() || dst.Is4In6() {
		return fmt.Errorf("rawsock: send to %v: not an IPv6 address (IPv4 goes through Sender)", dst)
	}
	if dst.Zone() != "" || dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		return fmt.Errorf("rawsock: send to %v: link-local destinations are not supported (they need an interface); use a global address such as the lab's 2001:2::/48", dst)
	}
	if len(pkt) < ipv6Header {
		return fmt.Errorf("rawsock: send to %v: %d-byte packet is shorter than an IPv6 header", dst, len(pkt))
	}
	return nil
}

func sendError6(dst netip.Addr, n int, e unix.Errno) error {
	if e == unix.EINVAL {
		return fmt.Errorf("rawsock: send to %v: %w (the kernel rejected the packet: shorter than an IPv6 header, or the destination is not usable)", dst, e)
	}
	return sendError(dst, n, e)
}

// conn6 is a conn for an AF_INET6 raw socket, which hands user space the packet from the upper-layer header on
// (RFC 3542 §3: "the IPv6 header is never returned"). Its reads rebuild the 40-byte header in front from the
// source address (msg_name) and the control messages IPV6_PKTINFO (destination), IPV6_HOPLIMIT and IPV6_FLOWINFO
// (traffic class and flow label), so callers parse one whole packet as they do for IPv4.
type conn6 struct {
	*conn
	proto uint8                 // the next header written into the rebuilt header
	from  unix.RawSockaddrInet6 // per-read state, under conn.mu
	oob6  [256]byte             // timestamp 32 + pktinfo 40 + hop limit 24 + flow info 24, with room to spare
}

func newConn6(name string, proto int, prog []bpf.Instruction) (*conn6, error) {
	c, err := newConn(name, unix.AF_INET6, unix.SOCK_RAW, proto, prog)
	if err != nil {
		return nil, err
	}
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		for _, o := range [...]int{unix.IPV6_RECVPKTINFO, unix.IPV6_RECVHOPLIMIT, ipv6FlowInfo} {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, o, 1); serr != nil {
				serr = fmt.Errorf("setsockopt SOL_IPV6 %d: %w", o, serr)
				return
			}
		}
	}); err != nil || serr != nil {
		c.close()
		return nil, fmt.Errorf("rawsock: set up %s socket: %w", name, errors.Join(err, serr))
	}
	return &conn6{conn: c, proto: uint8(proto)}, nil
}

// read6 reads one packet into buf[40:], writes the rebuilt IPv6 header into buf[:40] and returns the length of
// the whole and the kernel's receive time. It allocates nothing.
func (c *conn6) read6(buf []byte) (int, time.Time, error) {
	if len(buf) <= ipv6Header {
		return 0, time.Time{}, fmt.Errorf("rawsock: read into a %d-byte buffer: an IPv6 read needs more than the 40-byte header", len(buf))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.iov.Base = &buf[ipv6Header]
	c.iov.SetLen(len(buf) - ipv6Header)
	c.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&c.from)), Namelen: unix.SizeofSockaddrInet6, Iov: &c.iov, Iovlen: 1, Control: &c.oob6[0]}
	c.hdr.SetControllen(len(c.oob6))
	err := c.rc.Read(c.readFn)
	c.iov.Base = nil
	if err != nil {
		if c.closed.Load() {
			return 0, time.Time{}, os.ErrClosed
		}
		return 0, time.Time{}, err
	}
	if c.errno != 0 {
		return 0, time.Time{}, fmt.Errorf("rawsock: recvmsg: %w", c.errno)
	}
	a := ancillary6(c.oob6[:c.hdr.Controllen])
	h := buf[:ipv6Header]
	binary.BigEndian.PutUint32(h[0:], 6<<28|a.flow&0x0fffffff)
	binary.BigEndian.PutUint16(h[4:], uint16(c.n))
	h[6], h[7] = c.proto, a.hopLimit
	copy(h[8:24], c.from.Addr[:])
	copy(h[24:40], a.dst[:])
	if c.hdr.Flags&unix.MSG_TRUNC != 0 {
		return len(buf), a.ts, ErrTruncated
	}
	return ipv6Header + c.n, a.ts, nil
}

// anc6 is what the control messages of an IPv6 read say.
type anc6 struct {
	ts       time.Time
	dst      [16]byte
	hopLimit uint8
	flow     uint32 // traffic class and flow label, as in the header's first word without the version
}

// ancillary6 walks the control messages by hand, so nothing is allocated; see timestamp.
func ancillary6(oob []byte) (a anc6) {
	const hdrLen = unix.SizeofCmsghdr
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		d := oob[hdrLen:l]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(d) >= 16:
			a.ts = time.Unix(int64(binary.NativeEndian.Uint64(d)), int64(binary.NativeEndian.Uint64(d[8:])))
		case h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_PKTINFO && len(d) >= 16: // struct in6_pktinfo
			copy(a.dst[:], d[:16])
		case h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(d) >= 4:
			a.hopLimit = uint8(binary.NativeEndian.Uint32(d))
		case h.Level == unix.SOL_IPV6 && h.Type == ipv6FlowInfo && len(d) >= 4: // __be32
			a.flow = binary.BigEndian.Uint32(d)
		}
		next := (l + 7) &^ 7
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return a
}

// Receiver6 reads TCP segments of our IPv6 flows from an AF_INET6 SOCK_RAW IPPROTO_TCP socket. Each packet starts
// at an IPv6 header rebuilt from the socket's ancillary data (see the package doc): next header 6, no extension
// headers. Read is safe for concurrent use but reads are serialised.
type Receiver6 struct {
	c *conn6
}

// NewReceiver6 opens the socket with f (an IPv6 Remote prefix) compiled to a kernel filter and SO_TIMESTAMPNS on.
func NewReceiver6(f Filter) (*Receiver6, error) {
	prog, err := f.tcp6Program()
	if err != nil {
		return nil, err
	}
	c, err := newConn6("tcp6", unix.IPPROTO_TCP, prog)
	if err != nil {
		return nil, err
	}
	return &Receiver6{c: c}, nil
}

// Read reads one packet into buf (which must exceed 40 bytes) and returns its length, rebuilt header included,
// and the kernel's receive time; see Receiver.Read. It allocates nothing.
func (r *Receiver6) Read(buf []byte) (n int, ts time.Time, err error) { return r.c.read6(buf) }

// SetReadDeadline sets when a blocked or future Read gives up; the zero time means never.
func (r *Receiver6) SetReadDeadline(t time.Time) error { return r.c.setReadDeadline(t) }

// Close closes the socket and unblocks a pending Read. It is idempotent.
func (r *Receiver6) Close() error { return r.c.close() }

// ICMPv6Receiver reads ICMPv6 errors (destination unreachable, packet too big, time exceeded, parameter problem)
// that quote a TCP segment of our flows, from an AF_INET6 SOCK_RAW IPPROTO_ICMPV6 socket. Each packet starts at
// the outer IPv6 header, rebuilt as for Receiver6 (next header 58).
type ICMPv6Receiver struct {
	c *conn6
}

// NewICMPv6Receiver opens the socket. The kernel filter checks the ICMPv6 type, that the quoted packet is TCP
// (directly after the quoted IPv6 header: a quote with extension headers is dropped) to f.Remote (and to
// f.RemotePort, if set) and that its quoted source port is in [f.LocalLo, f.LocalHi]. The kernel drops
// messages whose ICMPv6 checksum is wrong before they reach the socket.
func NewICMPv6Receiver(f Filter) (*ICMPv6Receiver, error) {
	prog, err := f.icmp6Program()
	if err != nil {
		return nil, err
	}
	c, err := newConn6("icmp6", unix.IPPROTO_ICMPV6, prog)
	if err != nil {
		return nil, err
	}
	return &ICMPv6Receiver{c: c}, nil
}

// Read reads one ICMPv6 error (with the rebuilt outer IPv6 header) into buf; see Receiver6.Read.
func (r *ICMPv6Receiver) Read(buf []byte) (n int, ts time.Time, err error) { return r.c.read6(buf) }

// SetReadDeadline sets when a blocked or future Read gives up; the zero time means never.
func (r *ICMPv6Receiver) SetReadDeadline(t time.Time) error { return r.c.setReadDeadline(t) }

// Close closes the socket and unblocks a pending Read. It is idempotent.
func (r *ICMPv6Receiver) Close() error { return r.c.close() }
