package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrTruncated is returned by Read when the packet did not fit the buffer; the buffer holds its first len(buf)
// bytes.
var ErrTruncated = errors.New("rawsock: packet truncated: read buffer too small")

// rcvBuf is the receive buffer asked for, so bursts of replies (scans) are not dropped by the socket.
const rcvBuf = 4 << 20

// conn is a nonblocking receive socket wrapped in an *os.File, so the runtime poller parks a reader and deadlines
// and Close wake it. Reads go through a raw recvmsg on a preallocated msghdr: nothing is allocated per packet.
type conn struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	mu     sync.Mutex // serialises reads: everything below is per-read state
	hdr    unix.Msghdr
	iov    unix.Iovec
	oob    [64]byte // room for SCM_TIMESTAMPNS: CMSG_SPACE(sizeof(struct timespec)) = 32
	n      int
	errno  syscall.Errno
	readFn func(fd uintptr) bool // r.recv as a method value, made once so Read does not allocate a closure
	batch  *batch                // ReadBatch state, made on first use
}

// newConn opens a socket, attaches prog before anything is read, drains what queued before the filter was on,
// and turns on kernel receive timestamps.
func newConn(name string, domain, typ, proto int, prog []bpf.Instruction) (*conn, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("rawsock: assemble %s filter: %w", name, err)
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("rawsock: open %s socket: %w%s", name, err, hint(err))
	}
	if err := setup(fd, raw); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rawsock: set up %s socket: %w", name, err)
	}
	c := &conn{f: os.NewFile(uintptr(fd), name)}
	c.rc, err = c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return nil, fmt.Errorf("rawsock: %s socket: %w", name, err)
	}
	c.readFn = c.recv
	return c, nil
}

func setup(fd int, raw []bpf.RawInstruction) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	// Best effort: a bigger buffer only makes drops rarer. SO_RCVBUFFORCE needs CAP_NET_ADMIN.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := attach(fd, raw); err != nil {
		return err
	}
	// Packets that arrived between socket() and the filter were not filtered: throw them away (as libpcap does).
	var b [1]byte
	for i := 0; i < 1<<16; i++ {
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
			break
		}
	}
	return nil
}

// attach sets the classic BPF program on fd (SO_ATTACH_FILTER).
func attach(fd int, raw []bpf.RawInstruction) error {
	if len(raw) == 0 {
		return errors.New("SO_ATTACH_FILTER: empty program")
	}
	// bpf.RawInstruction has the layout of struct sock_filter.
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	return nil
}

// hint explains the usual reason a raw socket cannot be opened.
func hint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return " (needs CAP_NET_RAW; run as root or setcap cap_net_raw,cap_net_admin+ep)"
	}
	return ""
}

// recv runs on the poller's behalf: false means "would block, park me".
func (c *conn) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&c.hdr)), 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.n, c.errno = int(n), e
		return true
	}
}

// read reads one packet into buf and returns its kernel receive time.
func (c *conn) read(buf []byte) (int, time.Time, error) {
	if len(buf) == 0 {
		return 0, time.Time{}, errors.New("rawsock: read into an empty buffer")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.iov.Base = &buf[0]
	c.iov.SetLen(len(buf))
	c.hdr = unix.Msghdr{Iov: &c.iov, Iovlen: 1, Control: &c.oob[0]}
	c.hdr.SetControllen(len(c.oob))
	err := c.rc.Read(c.readFn)
	c.iov.Base = nil // do not keep the caller's buffer alive
	if err != nil {
		if c.closed.Load() {
			return 0, time.Time{}, os.ErrClosed
		}
		return 0, time.Time{}, err
	}
	if c.errno != 0 {
		return 0, time.Time{}, fmt.Errorf("rawsock: recvmsg: %w", c.errno)
	}
	ts := timestamp(c.oob[:c.hdr.Controllen])
	if c.hdr.Flags&unix.MSG_TRUNC != 0 {
		return len(buf), ts, ErrTruncated
	}
	return c.n, ts, nil
}

// timestamp finds SCM_TIMESTAMPNS (a struct timespec) in the control messages, by hand so nothing is allocated.
// It returns the zero time if the kernel sent none.
func timestamp(oob []byte) time.Time {
	const hdrLen = unix.SizeofCmsghdr
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= hdrLen+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdrLen:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdrLen+8:]))
			return time.Unix(sec, nsec)
		}
		next := (l + 7) &^ 7 // CMSG_ALIGN
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}
}

func (c *conn) setReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// close wakes a blocked reader, which then returns os.ErrClosed.
func (c *conn) close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.f.Close()
}
