package guard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	"github.com/tcpwalk/tcpwalk/probe/rawsock/bpfasm"
)

// Leak is a RST the local kernel sent for one of our flows that no guard stopped.
type Leak struct {
	Remote    netip.AddrPort // the RST's destination
	LocalPort uint16         // the RST's source port
	Seq       uint32         // the RST's sequence number
	At        time.Time      // when it left (kernel timestamp)
}

// CopyMark is the mark of a segment that the lab's impaired path copied
// (lab.Impair with duplication, in the sender's egress hook, which comes
// before the AF_PACKET tap). A RST carrying it is a copy of a RST, so not
// the kernel's own; the original, which keeps its mark, is judged instead.
const CopyMark = 0x7477_6475 // "twdu"

// leakBuffer is how many leaks wait for a slow reader before new ones are counted in Lost.
const leakBuffer = 64

// maxBPFRemotes bounds the remote prefixes checked in the kernel filter (each check may jump over the others;
// classic BPF jumps reach 255 instructions). With more, the kernel passes every remote and Go filters.
const maxBPFRemotes = 32

// Watch reports local-kernel RSTs for our flows that leave the host: with no guard, or one that does not cover
// the flow. It reads an AF_PACKET socket, which taps after netfilter, so a RST the guard drops is never seen.
type Watch struct {
	r       *rawsock.PacketReceiver
	remotes []netip.Prefix
	lo, hi  uint16
	leaks   chan Leak
	lost    atomic.Uint64
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// NewWatch starts watching in the namespace cfg.NetNSFd (0 = current). The kernel filter passes outgoing
// (PACKET_OUTGOING) IPv4 TCP segments with RST set, source port in [LocalLo, LocalHi], destination in Remotes,
// and an skb mark other than cfg.Mark (our own crafted RSTs are not leaks) and CopyMark (copies the lab's path made).
func NewWatch(cfg Config) (*Watch, error) {
	if len(cfg.Remotes) == 0 {
		return nil, errors.New("guard: watch: no remotes to watch")
	}
	for _, p := range cfg.Remotes {
		if !p.IsValid() || !p.Addr().Is4() {
			return nil, fmt.Errorf("guard: watch: remote %v is not an IPv4 prefix", p)
		}
	}
	prog, err := watchProgram(&cfg)
	if err != nil {
		return nil, fmt.Errorf("guard: watch: %w", err)
	}
	var r *rawsock.PacketReceiver
	err = inNetNS(cfg.NetNSFd, func() (err error) {
		r, err = rawsock.NewPacketReceiver(prog)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guard: watch: %w", err)
	}
	w := &Watch{
		r:       r,
		remotes: append([]netip.Prefix(nil), cfg.Remotes...),
		lo:      cfg.LocalLo,
		hi:      cfg.LocalHi,
		leaks:   make(chan Leak, leakBuffer),
		done:    make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// watchProgram is the AF_PACKET filter; the packet starts at the IPv4 header.
func watchProgram(cfg *Config) ([]bpf.Instruction, error) {
	const drop, accept = "drop", "accept"
	var p bpfasm.Program
	p.Add(bpf.LoadExtension{Num: bpf.ExtType})
	p.JumpIf(bpf.JumpEqual, unix.PACKET_OUTGOING, bpfasm.Next, drop)
	p.Add(bpf.LoadExtension{Num: bpf.ExtMark})
	p.JumpIf(bpf.JumpEqual, cfg.Mark, drop, bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, CopyMark, drop, bpfasm.Next)
	p.Add(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.JumpIf(bpf.JumpEqual, 0x40, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: 9, Size: 1})
	p.JumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: 6, Size: 2})
	p.JumpIf(bpf.JumpBitsSet, 0x1fff, drop, bpfasm.Next) // a later fragment has no TCP header
	if len(cfg.Remotes) <= maxBPFRemotes {
		for _, pfx := range cfg.Remotes {
			bits := pfx.Bits()
			if bits == 0 {
				p.Goto("remote")
				break
			}
			p.Add(bpf.LoadAbsolute{Off: 16, Size: 4})
			if bits < 32 {
				p.Add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(0) << (32 - bits)})
			}
			a := pfx.Masked().Addr().As4()
			p.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(a[:]), "remote", bpfasm.Next)
		}
		p.Goto(drop)
	}
	p.Label("remote")
	p.Add(bpf.LoadMemShift{Off: 0})
	p.Add(bpf.LoadIndirect{Off: 0, Size: 2})
	p.JumpIf(bpf.JumpGreaterOrEqual, uint32(cfg.LocalLo), bpfasm.Next, drop)
	p.JumpIf(bpf.JumpGreaterThan, uint32(cfg.LocalHi), drop, bpfasm.Next)
	p.Add(bpf.LoadIndirect{Off: 13, Size: 1})
	p.JumpIf(bpf.JumpBitsSet, rstFlag, accept, drop)
	p.Label(accept)
	p.Add(bpf.RetConstant{Val: 128}) // headers are enough
	p.Label(drop)
	p.Add(bpf.RetConstant{Val: 0})
	return p.Instructions()
}

// inNetNS runs fn on a locked thread switched into the namespace fd (0: just runs fn). Sockets made by fn stay in
// that namespace.
func inNetNS(fd int, fn func() error) error {
	if fd == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and the runtime discards it with this goroutine
		errc <- err
	}()
	return <-errc
}

func (w *Watch) run() {
	defer close(w.done)
	defer close(w.leaks)
	buf := make([]byte, 1<<16)
	for {
		n, ts, err := w.r.Read(buf)
		if errors.Is(err, rawsock.ErrTruncated) {
			err = nil // the filter keeps 128 bytes: the headers are there
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
			return
		}
		l, ok := w.parse(buf[:n])
		if !ok {
			continue
		}
		l.At = ts
		select {
		case w.leaks <- l:
		default:
			w.lost.Add(1)
		}
	}
}

// parse checks again in Go what the kernel filter checked, plus the remotes it could not hold.
func (w *Watch) parse(b []byte) (Leak, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_TCP {
		return Leak{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl+14 {
		return Leak{}, false
	}
	t := b[ihl:]
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	sport, dport := binary.BigEndian.Uint16(t[0:]), binary.BigEndian.Uint16(t[2:])
	if t[13]&rstFlag == 0 || sport < w.lo || sport > w.hi {
		return Leak{}, false
	}
	covered := false
	for _, p := range w.remotes {
		if p.Contains(dst) {
			covered = true
			break
		}
	}
	if !covered {
		return Leak{}, false
	}
	return Leak{Remote: netip.AddrPortFrom(dst, dport), LocalPort: sport, Seq: binary.BigEndian.Uint32(t[4:])}, true
}

// Leaked delivers each leaked RST. It is closed after Close, or when reading fails (see Err). If the reader falls
// more than 64 behind, further leaks are counted in Lost instead.
func (w *Watch) Leaked() <-chan Leak { return w.leaks }

// Lost returns how many leaks were not delivered because Leaked was full.
func (w *Watch) Lost() uint64 { return w.lost.Load() }

// Err returns the read error that stopped the watch, or nil.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops the watch and waits for Leaked to be closed. It is idempotent.
func (w *Watch) Close() error {
	err := w.r.Close()
	<-w.done
	return err
}
