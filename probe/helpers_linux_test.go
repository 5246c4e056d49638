package probe_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
	"github.com/tcpwalk/tcpwalk/probe/rawsock/bpfasm"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// binDir holds the tcpwalk binary built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// tcpwalkBinary builds the tcpwalk command once per test run (go build from
// the module root) and returns its path.
func tcpwalkBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		if binDir, buildErr = os.MkdirTemp("", "tcpwalk-probe-test-"); buildErr != nil {
			return
		}
		buildPath = filepath.Join(binDir, "tcpwalk")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", buildPath, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build tcpwalk: %v", buildErr)
	}
	return buildPath
}

// privileged skips t on a missing privilege, except under CI=true, where it
// fails: there, privileged tests must run.
func privileged(t *testing.T, what string, err error) {
	t.Helper()
	if (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM)) && os.Getenv("CI") != "true" {
		t.Skipf("%s needs root (CAP_NET_RAW, CAP_NET_ADMIN): %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// warnings collects what a Prober warns about.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(m string) { w.mu.Lock(); w.msgs = append(w.msgs, m); w.mu.Unlock() }

// containing returns the warnings that contain s.
func (w *warnings) containing(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// labFamily is one address family of the dual-stack lab: the tests that
// hold for both run once per family (eachFamily).
type labFamily struct {
	name           string
	prober, target func(*lab.Lab) netip.Addr
}

var labFamilies = []labFamily{
	{"IPv4", func(l *lab.Lab) netip.Addr { return l.ProberAddr }, func(l *lab.Lab) netip.Addr { return l.TargetAddr }},
	{"IPv6", func(l *lab.Lab) netip.Addr { return l.ProberAddr6 }, func(l *lab.Lab) netip.Addr { return l.TargetAddr6 }},
}

// eachFamily runs fn as a parallel subtest per lab family.
func eachFamily(t *testing.T, fn func(t *testing.T, fam labFamily)) {
	for _, fam := range labFamilies {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			fn(t, fam)
		})
	}
}

// openProber opens a prober on the lab's prober namespace, towards its
// IPv4 target.
func openProber(t *testing.T, l *lab.Lab, noGuard bool) (*probe.Prober, *warnings) {
	t.Helper()
	return openProberTo(t, l, l.TargetAddr, noGuard)
}

// openProberTo opens a prober on the lab's prober namespace, towards
// remote (the lab target's IPv4 or IPv6 address).
func openProberTo(t *testing.T, l *lab.Lab, remote netip.Addr, noGuard bool) (*probe.Prober, *warnings) {
	t.Helper()
	w := new(warnings)
	p, err := probe.Open(probe.Config{Remote: remote, NetNS: l.Prober, NoGuard: noGuard,
		Warn: func(m string) { t.Logf("prober warning: %s", m); w.add(m) }})
	if err != nil {
		privileged(t, "probe.Open", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Prober.Close: %v", err)
		}
	})
	return p, w
}

func newFlow(t *testing.T, p *probe.Prober, port uint16) *probe.Flow {
	t.Helper()
	f, err := p.NewFlow(port, 0)
	if err != nil {
		t.Fatalf("NewFlow(%d): %v", port, err)
	}
	t.Cleanup(f.Close)
	return f
}

// send writes s on f and fails t on an error; it returns the send time.
func send(t *testing.T, f *probe.Flow, s craft.Segment) time.Time {
	t.Helper()
	at, err := f.Send(&s)
	if err != nil {
		t.Fatalf("send %s: %v", s.Flags, err)
	}
	return at
}

// seg is what a test checks of a reply segment.
type seg struct {
	Flags    craft.Flags
	Seq, Ack uint32
}

// expect returns the next segment of f (ICMP events are skipped and logged),
// with its kernel timestamp, or fails t after d.
func expect(t *testing.T, f *probe.Flow, d time.Duration) (seg, time.Time) {
	t.Helper()
	e, err := f.Expect(context.Background(), time.Now().Add(d),
		func(e *probe.Event) bool { return e.Kind == probe.EventSegment },
		func(e *probe.Event) { t.Logf("skipped: %s", e.ICMP) })
	if err != nil {
		t.Fatalf("%s -> %s: no reply segment within %v: %v", f.Local, f.Remote, d, err)
	}
	defer f.Release(e)
	tcp := e.Seg.TCP
	return seg{Flags: tcp.Flags(), Seq: tcp.SequenceNumber(), Ack: tcp.AckNumber()}, e.At
}

// expectNothing fails t if f gets any event within d.
func expectNothing(t *testing.T, f *probe.Flow, d time.Duration) {
	t.Helper()
	e, err := f.Next(context.Background(), time.Now().Add(d))
	if err == nil {
		defer f.Release(e)
		t.Errorf("%s -> %s: unexpected reply %d bytes: % x", f.Local, f.Remote, len(e.Bytes()), e.Bytes())
	} else if !errors.Is(err, probe.ErrTimeout) {
		t.Errorf("Next: %v, want ErrTimeout", err)
	}
}

// remoteSocket looks up the target's socket for flow f (sock_diag in the
// target namespace).
func remoteSocket(t *testing.T, l *lab.Lab, f *probe.Flow) (sockdiag.Socket, bool) {
	t.Helper()
	s, ok, err := sockdiag.Lookup(l.Target, f.Remote, f.Local)
	if err != nil {
		t.Fatalf("sockdiag.Lookup in %s: %v", l.Target.Name, err)
	}
	return s, ok
}

// rstCapture sees RSTs from one address arrive in the target namespace, on
// an AF_PACKET socket: what reaches the target's device, before its
// netfilter and whatever the prober's kernel believes it sent.
type rstCapture struct {
	r *rawsock.PacketReceiver
}

// captureRSTs captures IPv4 or IPv6 RSTs, after from's family (an IPv6
// segment's TCP header must follow the fixed header, as the kernel's do).
func captureRSTs(t *testing.T, l *lab.Lab, from netip.Addr) *rstCapture {
	t.Helper()
	var p bpfasm.Program
	p.Add(bpf.LoadExtension{Num: bpf.ExtType})
	p.JumpIf(bpf.JumpEqual, unix.PACKET_HOST, bpfasm.Next, "drop")
	src := from.AsSlice()
	if from.Is6() {
		p.Add(bpf.LoadAbsolute{Off: 6, Size: 1}) // next header
		p.JumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, bpfasm.Next, "drop")
		for w := range 4 {
			p.Add(bpf.LoadAbsolute{Off: uint32(8 + 4*w), Size: 4})
			p.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(src[4*w:]), bpfasm.Next, "drop")
		}
		p.Add(bpf.LoadConstant{Dst: bpf.RegX, Val: 40}, bpf.LoadIndirect{Off: 13, Size: 1})
	} else {
		p.Add(bpf.LoadAbsolute{Off: 9, Size: 1})
		p.JumpIf(bpf.JumpEqual, unix.IPPROTO_TCP, bpfasm.Next, "drop")
		p.Add(bpf.LoadAbsolute{Off: 12, Size: 4})
		p.JumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(src), bpfasm.Next, "drop")
		p.Add(bpf.LoadMemShift{Off: 0}, bpf.LoadIndirect{Off: 13, Size: 1})
	}
	p.JumpIf(bpf.JumpBitsSet, uint32(craft.FlagRST), bpfasm.Next, "drop")
	p.Add(bpf.RetConstant{Val: 256})
	p.Label("drop")
	p.Add(bpf.RetConstant{Val: 0})
	prog, err := p.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	open := rawsock.NewPacketReceiver
	if from.Is6() {
		open = rawsock.NewPacketReceiver6
	}
	var r *rawsock.PacketReceiver
	if err := l.Target.Do(func() (err error) { r, err = open(prog); return err }); err != nil {
		privileged(t, "capture in the target namespace", err)
	}
	t.Cleanup(func() { r.Close() })
	return &rstCapture{r: r}
}

// next returns the next captured RST (its source port and seq) or false when
// none arrives before deadline.
func (c *rstCapture) next(t *testing.T, deadline time.Time) (sport uint16, seq uint32, ok bool) {
	t.Helper()
	buf := make([]byte, 256)
	c.r.SetReadDeadline(deadline)
	n, _, err := c.r.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, 0, false
	}
	if err != nil && !errors.Is(err, rawsock.ErrTruncated) {
		t.Fatalf("capture: %v", err)
	}
	var tcp craft.TCP
	if buf[0]>>4 == 6 {
		pkt, perr := craft.ParseIPv6Packet(buf[:n])
		if perr != nil {
			t.Fatalf("capture: unparsable RST % x: %v", buf[:n], perr)
		}
		tcp = pkt.TCP
	} else {
		pkt, perr := craft.ParsePacket(buf[:n])
		if perr != nil {
			t.Fatalf("capture: unparsable RST % x: %v", buf[:n], perr)
		}
		tcp = pkt.TCP
	}
	return tcp.SourcePort(), tcp.SequenceNumber(), true
}

// poll calls cond every 20 ms until it holds or d passes.
func poll(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
