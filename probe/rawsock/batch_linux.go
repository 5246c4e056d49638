package rawsock

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Message is one packet of a ReadBatch.
type Message struct {
	Buf       []byte    // the caller's buffer; the packet is Buf[:N]
	N         int       // bytes read
	TS        time.Time // kernel receive time
	Truncated bool      // the packet did not fit Buf
}

// batch is the reused recvmmsg state of a conn, made on the first ReadBatch.
type batch struct {
	msgs [maxBatch]unix.Mmsghdr
	iovs [maxBatch]unix.Iovec
	oobs [maxBatch][64]byte
	k    int // messages offered to this call
	n    int // messages received
	fn   func(fd uintptr) bool
}

func (c *conn) recvBatch(fd uintptr) bool {
	b := c.batch
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(b.k), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.n, c.errno = int(n), e
		return true
	}
}

// readBatch fills msgs with the packets queued (at least one; it blocks like read) with one recvmmsg call.
func (c *conn) readBatch(msgs []Message) (int, error) {
	k := min(len(msgs), maxBatch)
	if k == 0 {
		return 0, errors.New("rawsock: ReadBatch with no messages")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batch == nil {
		c.batch = new(batch)
		c.batch.fn = c.recvBatch
	}
	b := c.batch
	for i := range k {
		if len(msgs[i].Buf) == 0 {
			return 0, fmt.Errorf("rawsock: ReadBatch message %d has an empty buffer", i)
		}
		b.iovs[i].Base = &msgs[i].Buf[0]
		b.iovs[i].SetLen(len(msgs[i].Buf))
		b.msgs[i] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &b.iovs[i], Iovlen: 1, Control: &b.oobs[i][0]}}
		b.msgs[i].Hdr.SetControllen(len(b.oobs[i]))
	}
	b.k, b.n = k, 0
	err := c.rc.Read(b.fn)
	for i := range k {
		b.iovs[i].Base = nil
	}
	if err != nil {
		if c.closed.Load() {
			return 0, os.ErrClosed
		}
		return 0, err
	}
	if c.errno != 0 {
		return 0, fmt.Errorf("rawsock: recvmmsg: %w", c.errno)
	}
	for i := range b.n {
		m := &b.msgs[i]
		msgs[i].N = int(m.Len)
		msgs[i].Truncated = m.Hdr.Flags&unix.MSG_TRUNC != 0
		if msgs[i].Truncated {
			msgs[i].N = len(msgs[i].Buf)
		}
		msgs[i].TS = timestamp(b.oobs[i][:m.Hdr.Controllen])
	}
	return b.n, nil
}

// ReadBatch reads up to len(msgs) (at most 64) queued packets with one recvmmsg call and returns how many it
// filled. It blocks until at least one packet arrives, the deadline passes or the Receiver is closed, as Read
// does, and allocates nothing.
func (r *Receiver) ReadBatch(msgs []Message) (int, error) { return r.c.readBatch(msgs) }
