package rawsock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Receiver reads TCP segments of our flows from an AF_INET SOCK_RAW IPPROTO_TCP socket. Each packet starts at the
// IPv4 header. Read is safe for concurrent use but reads are serialised.
type Receiver struct {
	c *conn
}

// NewReceiver opens the socket with f compiled to a kernel filter and SO_TIMESTAMPNS on.
func NewReceiver(f Filter) (*Receiver, error) {
	prog, err := f.tcpProgram()
	if err != nil {
		return nil, err
	}
	c, err := newConn("tcp", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP, prog)
	if err != nil {
		return nil, err
	}
	return &Receiver{c: c}, nil
}

// Read reads one packet into buf and returns its length and the kernel's receive time (SCM_TIMESTAMPNS). It
// blocks until a packet arrives, the read deadline passes (an error matching os.ErrDeadlineExceeded) or the
// Receiver is closed (os.ErrClosed). It allocates nothing.
func (r *Receiver) Read(buf []byte) (n int, ts time.Time, err error) { return r.c.read(buf) }

// SetReadDeadline sets when a blocked or future Read gives up; the zero time means never.
func (r *Receiver) SetReadDeadline(t time.Time) error { return r.c.setReadDeadline(t) }

// Close closes the socket and unblocks a pending Read. It is idempotent.
func (r *Receiver) Close() error { return r.c.close() }

// ICMPReceiver reads ICMP errors (destination unreachable, time exceeded, parameter problem) that quote a TCP
// segment of our flows, from an AF_INET SOCK_RAW IPPROTO_ICMP socket. Each packet starts at the outer IPv4 header.
type ICMPReceiver struct {
	c *conn
}

// NewICMPReceiver opens the socket. The kernel filter checks the ICMP type, that the quoted packet is TCP to
// f.Remote (and to f.RemotePort, if set) and that its quoted source port is in [f.LocalLo, f.LocalHi].
func NewICMPReceiver(f Filter) (*ICMPReceiver, error) {
	prog, err := f.icmpProgram()
	if err != nil {
		return nil, err
	}
	c, err := newConn("icmp", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, prog)
	if err != nil {
		return nil, err
	}
	return &ICMPReceiver{c: c}, nil
}

// Read reads one ICMP error (the whole IPv4 packet) into buf; see Receiver.Read.
func (r *ICMPReceiver) Read(buf []byte) (n int, ts time.Time, err error) { return r.c.read(buf) }

// SetReadDeadline sets when a blocked or future Read gives up; the zero time means never.
func (r *ICMPReceiver) SetReadDeadline(t time.Time) error { return r.c.setReadDeadline(t) }

// Close closes the socket and unblocks a pending Read. It is idempotent.
func (r *ICMPReceiver) Close() error { return r.c.close() }
