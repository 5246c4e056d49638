package walk_test

// Throughput benchmarks of tcpwalk's walks against the lab's Linux target,
// with the kernel's own connect()+close() beside them in the same run
// (scripts/bench-walks.sh runs both in one `go test -bench` and prints the
// table). They need root for the lab's namespaces, and skip without it
// (fail under CI=true, as every privileged test).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// benchTiming is walk.DefaultTiming with Quiet cut from 300 ms to 20 ms.
// Quiet is how long a walk listens to conclude "no reply" after the ACK of
// the remote's FIN; at 300 ms it would be most of a walk's duration. On the
// lab's veth every reply comes within a millisecond, so 20 ms still proves
// silence; the walks must all pass with it or the benchmark fails. The other
// waits stay as they are: they only bound a wait for a reply that normally
// comes at once, and a loaded machine needs their margin.
var benchTiming = func() walk.Timing {
	t := walk.DefaultTiming
	t.Quiet = 20 * time.Millisecond
	return t
}()

// benchConcurrency are the numbers of walks (or kernel connections) kept in
// flight at once. Each walk holds its own source port in the prober's range
// (61000-65535), so the largest must stay well below its 4536 ports.
var benchConcurrency = []int{16, 64, 256, 1024}

// benchWalkName names the walk measured: the passive-close scenario (a
// complete handshake and four-way teardown, every step judged) against the
// lab's echo server (lab.PortEcho, which close()s at EOF, so no trigger is
// needed):
//
//	SYN x             → <SEQ=ISS><ACK=x+1><CTL=SYN,ACK>   LISTEN → SYN_RCVD
//	ACK, probe        → <SEQ=ISS+1><ACK=x+1><CTL=ACK>     ESTABLISHED
//	FIN               → <SEQ=F><ACK=x+2><CTL=FIN,ACK>     CLOSE_WAIT → LAST_ACK
//	KA1               → <SEQ=F+1><ACK=x+2><CTL=ACK>       LAST_ACK
//	ACK F+1           → nothing for Timing.Quiet          CLOSED
//	KA1               → <SEQ=F+1><CTL=RST>                CLOSED
const benchWalkName = "passive-close"

var benchScenario = func() walk.Scenario {
	s, ok := walk.Lookup(benchWalkName)
	if !ok {
		panic("no scenario " + benchWalkName)
	}
	return s
}()

// handshakeTeardown runs one benchWalkName walk.
func handshakeTeardown(ctx context.Context, cfg walk.Config) walk.Result {
	return walk.Run(ctx, cfg, []walk.Scenario{benchScenario})[0]
}

// benchLab opens a prober in a fresh lab and returns a walk config for the
// throughput walks: echo port, no trigger, no oracle (the kernel side has no
// sock_diag reads either), benchTiming.
func benchLab(b *testing.B) (walk.Config, *lab.Lab) {
	b.Helper()
	l := labtest.New(b)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { b.Logf("warning: %s", m) }})
	if err != nil {
		labtest.SkipUnlessPermitted(b, err)
		b.Fatalf("probe.Open: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	trig, err := walk.ParseTrigger("none", nil)
	if err != nil {
		b.Fatalf("trigger none: %v", err)
	}
	return walk.Config{Prober: p, Port: lab.PortEcho, Trigger: trig, Timing: benchTiming}, l
}

// walkTally counts verdicts and keeps the first walk that did not pass.
type walkTally struct {
	mu     sync.Mutex
	pass   int
	other  int
	failed *walk.Result
}

func (t *walkTally) add(r walk.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Verdict == walk.Pass {
		t.pass++
		return
	}
	t.other++
	if t.failed == nil {
		t.failed = &r
	}
}

// check fails b when any walk did not pass: a benchmark of failing walks
// measures nothing. The first failure's checks and segments, and the
// prober's receive counters, say why.
func (t *walkTally) check(b *testing.B, want int, st probe.Stats) {
	b.Helper()
	if t.pass == want && t.other == 0 {
		return
	}
	var sb strings.Builder
	if r := t.failed; r != nil {
		fmt.Fprintf(&sb, "first failure: %s %s -> %s: %s (%s)\n", r.Scenario, r.Local, r.Target, r.Verdict, r.Reason)
		for _, c := range r.Checks {
			fmt.Fprintf(&sb, "  %-50s %-12s expected %s, got %s %s\n", c.Name, c.Verdict, c.Expected, c.Received, c.Reason)
		}
		for _, g := range r.Segments {
			fmt.Fprintf(&sb, "    %s %-3s %-3s seq=%d ack=%d len=%d %s\n", g.At.Format("15:04:05.000000"), g.Dir, g.Flags, g.RelSeq, g.RelAck, g.Len, g.Note)
		}
	}
	b.Fatalf("%d of %d walks passed, %d did not; prober %+v\n%s", t.pass, want, t.other, st, sb.String())
}

// runWalks runs n benchWalkName walks, c at a time: c workers each start
// the next walk as soon as their last one ends, so c walks stay in flight
// (each on its own source port) until the last ones.
func runWalks(ctx context.Context, cfg walk.Config, n, c int) *walkTally {
	var t walkTally
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t.add(handshakeTeardown(ctx, cfg))
			}
		})
	}
	wg.Wait()
	return &t
}

// BenchmarkWalkHandshakeTeardown measures complete handshake + teardown walks
// (benchWalkName) against the lab's Linux echo server, C in flight at once.
// One op is one walk. It reports walks/s, CPU time per walk, segments
// received per walk, and, when the run kept C walks in flight (N >= C), the
// live memory one walk in flight holds (bytes/walk).
//
// Every run gets a fresh lab (made before the timer starts), as the kernel's
// peer does, so that no run inherits the state an earlier one left.
func BenchmarkWalkHandshakeTeardown(b *testing.B) {
	b.Logf("timing: reply %v x%d, quiet %v", benchTiming.Reply, benchTiming.Tries, benchTiming.Quiet)
	for _, c := range benchConcurrency {
		b.Run(fmt.Sprintf("C=%d", c), func(b *testing.B) {
			cfg, _ := benchLab(b)
			b.ReportAllocs()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rx0 := cfg.Prober.Stats().Received
			cpu0, start := cpuTime(b), time.Now()
			b.ResetTimer()
			t := runWalks(ctx, cfg, b.N, c)
			elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			st := cfg.Prober.Stats()
			t.check(b, b.N, st)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "walks/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			// Five without loss; more means retransmissions.
			b.ReportMetric(float64(st.Received-rx0)/float64(b.N), "rx/walk")
			if b.N >= c {
				b.ReportMetric(walkMemory(b, cfg, c), "bytes/walk")
			}
		})
	}
}

// cpuTime is the CPU time (user and system) the process used so far. Per op
// it depends less on other load than a rate does: on a shared machine a
// rate drops when other processes take the cores, the CPU time per op much
// less. Both sides count the lab's servers (goroutines of this process) and
// the kernel's packet processing done in our system calls.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// walkMemory measures the live memory of c walks in flight: it starts c
// walks whose Quiet is long, waits until every one has reached it (the
// receive path has delivered their replies up to the remote's LAST_ACK), and
// compares the live heap plus goroutine stacks after a GC with the idle
// figure. It returns bytes per walk.
func walkMemory(b *testing.B, cfg walk.Config, c int) float64 {
	b.Helper()
	const quiet = 2 * time.Second
	cfg.Timing.Quiet = quiet
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc + ms.StackInuse
	}
	idle := live()
	before := cfg.Prober.Stats().Received
	done := make(chan *walkTally, 1)
	go func() { done <- runWalks(ctx, cfg, c, c) }()
	// Up to LAST_ACK the remote sends four segments per walk at least:
	// SYN,ACK; the ACK of KA1; its FIN (the ACK of ours may ride on it);
	// the ACK of the second KA1.
	want := before + uint64(4*c)
	deadline := time.Now().Add(quiet / 2)
	for cfg.Prober.Stats().Received < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Let the last walks send their ACK of the FIN and enter Quiet.
	time.Sleep(10 * time.Millisecond)
	got := cfg.Prober.Stats().Received - before
	busy := live()
	select {
	case <-done:
		b.Fatalf("memory: the %d walks ended before they were measured", c)
	default:
	}
	if got < uint64(4*c) {
		b.Fatalf("memory: only %d segments received for %d walks after %v", got, c, quiet/2)
	}
	(<-done).check(b, c, cfg.Prober.Stats())
	if busy < idle {
		return 0
	}
	return float64(busy-idle) / float64(c)
}

// BenchmarkKernelConnectClose is the peer: the kernel's connect() and close()
// through Go's net package, from the prober namespace to the same echo port,
// C connections in flight at once. One op is one connect()+close().
//
// Every run gets a fresh lab: each close() leaves a TIME_WAIT socket on our
// side for 60 s (RFC 9293 §3.6.1), and with tens of thousands of them
// connect() spends its time searching for a free ephemeral port (and then
// fails with EADDRNOTAVAIL once the 28232 ports of 32768-60999 are used), a
// cost of reusing one namespace, not of a connection. N must stay below
// that range (scripts/bench-walks.sh allows 20000).
func BenchmarkKernelConnectClose(b *testing.B) {
	for _, c := range benchConcurrency {
		b.Run(fmt.Sprintf("C=%d", c), func(b *testing.B) {
			l := labtest.New(b)
			addr := netip.AddrPortFrom(l.TargetAddr, lab.PortEcho).String()
			b.ReportAllocs()
			var next, failed atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			cpu0, start := cpuTime(b), time.Now()
			b.ResetTimer()
			for range c {
				wg.Go(func() {
					// Do runs the loop on a thread locked into the
					// prober's namespace: the sockets are made there.
					err := l.Prober.Do(func() error {
						d := net.Dialer{Timeout: 5 * time.Second}
						for next.Add(1) <= int64(b.N) {
							conn, err := d.Dial("tcp4", addr)
							if err != nil {
								failed.Add(1)
								firstErr.CompareAndSwap(nil, err)
								continue
							}
							conn.Close()
						}
						return nil
					})
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				})
			}
			wg.Wait()
			elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d connects failed; first: %v", n, b.N, firstErr.Load())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "conns/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkWalkAllConcurrent runs every scenario at once, as `tcpwalk demo`
// does (lab trigger, sock_diag oracle, DefaultTiming), and compares the wall
// time of walk.Run with the slowest walk's Duration and with the sum of all
// Durations: concurrent walks finish in about the slowest one's time.
func BenchmarkWalkAllConcurrent(b *testing.B) {
	l := labtest.New(b)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { b.Logf("warning: %s", m) }})
	if err != nil {
		labtest.SkipUnlessPermitted(b, err)
		b.Fatalf("probe.Open: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	cfg := walk.Config{
		Prober:  p,
		Port:    lab.PortHold,
		Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober},
		Oracle:  walk.SockDiag{NS: l.Target},
	}
	var all, slowest, sum time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		res := walk.Run(ctx, cfg, walk.Scenarios())
		all += time.Since(start)
		cancel()
		var slow time.Duration
		for _, r := range res {
			if r.Verdict != walk.Pass && r.Verdict != walk.Deviation {
				b.Errorf("%s: %s (%s)", r.Scenario, r.Verdict, r.Reason)
			}
			slow = max(slow, r.Duration)
			sum += r.Duration
		}
		slowest += slow
	}
	n := float64(b.N)
	b.ReportMetric(all.Seconds()/n, "all_s")
	b.ReportMetric(slowest.Seconds()/n, "slowest_s")
	b.ReportMetric(sum.Seconds()/n, "sum_s")
	b.ReportMetric(float64(all)/float64(slowest), "all/slowest")
}
