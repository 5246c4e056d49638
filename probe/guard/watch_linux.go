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
// classic BPF jumps reach 255 instructions). With more, the kernel passes every remote and Go filters. An IPv6
// prefix takes up to four times the instructions of an IPv4 one, hence its lower bound.
const (
	maxBPFRemotes  = 32
	maxBPFRemotes6 = 16
)

// Watch reports local-kernel RSTs for our flows that leave the host: with no guard, or one that does not cover
// the flow. It reads AF_PACKET sockets (one per family of Config.Remotes), which tap after netfilter, so a RST
// the guard drops is never seen.
type Watch struct {
	rs      []*rawsock.PacketReceiver
	remotes []netip.Prefix
	lo, hi  uint16
	leaks   chan Leak
	lost    atomic.Uint64
	wg      sync.WaitGroup
	done    chan struct{}

	mu  sync.Mutex
	err error
}

// NewWatch starts watching in the namespace cfg.NetNSFd (0 = current). The kernel filter passes outgoing
// (PACKET_OUTGOING) TCP segments with RST set, source port in [LocalLo, LocalHi], destination in Remotes,
// and an skb mark other than cfg.Mark (our own crafted RSTs are not leaks) and CopyMark (copies the lab's path
// made). Over IPv6 it looks only at segments whose TCP header follows the fixed header (next header 6): the
// kernel's own RSTs carry no extension headers, and an IPv6 segment that does is not reported.
func NewWatch(cfg Config) (*Watch, error) {
	if len(cfg.Remotes) == 0 {
		return nil, errors.New("guard: watch: no remotes to watch")
	}
	if err := checkRemotes("guard: watch", cfg.Remotes); err != nil {
		return nil, err
	}
	v4, v6 := byFamily(cfg.Remotes)
	w := &Watch{
		remotes: append([]netip.Prefix(nil), cfg.Remotes...),
		lo:      cfg.LocalLo,
		hi:      cfg.LocalHi,
		leaks:   make(chan Leak, leakBuffer),
		done:    make(chan struct{}),
	}
	for _, f := range []struct {
		pfxs []netip.Prefix
		prog func(*Config, []netip.Prefix) ([]bpf.Instruction, error)
		open func([]bpf.Instruction) (*rawsock.PacketReceiver, error)
	}{
		{v4, watchProgram, rawsock.NewPacketReceiver},
		{v6, watchProgram6, rawsock.NewPacketReceiver6},
	} {
		if len(f.pfxs) == 0 {
			continue
		}
		prog, err := f.prog(&cfg, f.pfxs)
		if err == nil {
			err = inNetNS(cfg.NetNSFd, func() (err error) {
				var r *rawsock.PacketReceiver
				if r, err = f.open(prog); err == nil {
					w.rs = append(w.rs, r)
				}
				return err
			})
		}
		if err != nil {
			for _, r := range w.rs {
				r.Close()
			}
			return nil, fmt.Errorf("guard: watch: %w", err)
		}
	}
	for _, r := range w.rs {
		w.wg.Add(1)
		go w.run(r)
	}
	go func() {
		w.wg.Wait()
		close(w.leaks)
		close(w.done)
	}()
	return w, nil
}

// filterHead starts both filters: outgoing, and a mark other than ours and CopyMark.
func filterHead(p *bpfasm.Program, cfg *Config, drop string) {
	p.Add(bpf.LoadExtension{Num: bpf.ExtType})
	p.JumpIf(bpf.JumpEqual, unix.PACKET_OUTGOING, bpfasm.Next, drop)
	p.Add(bpf.LoadExtension{Num: bpf.ExtMark})
	p.JumpIf(bpf.JumpEqual, cfg.Mark, drop, bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, CopyMark, drop, bpfasm.Next)
}

// filterTail ends both filters: the X register holds the TCP header's offset; the source port is in range and
// RST is set.
func filterTail(p *bpfasm.Program, cfg *Config, accept, drop string) {
	p.Add(bpf.LoadIndirect{Off: 0, Size: 2})
	p.JumpIf(bpf.JumpGreaterOrEqual, uint32(cfg.LocalLo), bpfasm.Next, drop)
	p.JumpIf(bpf.JumpGreaterThan, uint32(cfg.LocalHi), drop, bpfasm.Next)
	p.Add(bpf.LoadIndirect{Off: 13, Size: 1})
	p.JumpIf(bpf.JumpBitsSet, rstFlag, accept, drop)
	p.Label(accept)
	p.Add(bpf.RetConstant{Val: 128}) // headers are enough
	p.Label(drop)
	p.Add(bpf.RetConstant{Val: 0})
}

// watchProgram is the AF_PACKET filter for IPv4; the packet starts at the IPv4 header.
func watchProgram(cfg *Config, remotes []netip.Prefix) ([]bpf.Instruction, error) {
	const drop, accept = "drop", "accept"
	var p bpfasm.Program
	filterHead(&p, cfg, drop)
	p.Add(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.JumpIf(bpf.JumpEqual, 0x40, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: 9, Size: 1})
	p.JumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: 6, Size: 2})
	p.JumpIf(bpf.JumpBitsSet, 0x1fff, drop, bpfasm.Next) // a later fragment has no TCP header
	if len(remotes) <= maxBPFRemotes {
		for _, pfx := range remotes {
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
	filterTail(&p, cfg, accept, drop)
	return p.Instructions()
}

// watchProgram6 is the AF_PACKET filter for IPv6; the packet starts at the IPv6 header (RFC 8200 §3), and the
// TCP header must follow it directly (next header 6, no extension headers).
func watchProgram6(cfg *Config, remotes []netip.Prefix) ([]bpf.Instruction, error) {
	const drop, accept = "drop", "accept"
	var p bpfasm.Program
	filterHead(&p, cfg, drop)
	p.Add(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.JumpIf(bpf.JumpEqual, 0x60, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: 6, Size: 1}) // next header
	p.JumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, bpfasm.Next, drop)
	if len(remotes) <= maxBPFRemotes6 {
		for i, pfx := range remotes {
			bits := pfx.Bits()
			if bits == 0 {
				p.Goto("remote")
				break
			}
			a := pfx.Masked().Addr().As16()
			miss := fmt.Sprintf("not%d", i)
			for w := 0; w*32 < bits; w++ {
				p.Add(bpf.LoadAbsolute{Off: uint32(24 + 4*w), Size: 4}) // a word of the destination address
				if left := bits - 32*w; left < 32 {
					p.Add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(0) << (32 - left)})
				}
				p.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(a[4*w:]), bpfasm.Next, miss)
			}
			p.Goto("remote")
			p.Label(miss)
		}
		p.Goto(drop)
	}
	p.Label("remote")
	p.Add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40})
	filterTail(&p, cfg, accept, drop)
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

func (w *Watch) run(r *rawsock.PacketReceiver) {
	defer w.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, ts, err := r.Read(buf)
		if errors.Is(err, rawsock.ErrTruncated) {
			err = nil // the filter keeps 128 bytes: the headers are there
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
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
	var dst netip.Addr
	var t []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4 && b[9] == unix.IPPROTO_TCP:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl+14 {
			return Leak{}, false
		}
		t = b[ihl:]
		dst = netip.AddrFrom4([4]byte(b[16:20]))
	case len(b) >= 40+14 && b[0]>>4 == 6 && b[6] == unix.IPPROTO_TCP:
		t = b[40:]
		dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return Leak{}, false
	}
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
	var errs []error
	for _, r := range w.rs {
		errs = append(errs, r.Close())
	}
	<-w.done
	return errors.Join(errs...)
}
