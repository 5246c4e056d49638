package scan

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// The broadcast addresses of the lab's prober (198.18.0.1/24) include 198.18.0.255 and not the network address
// 198.18.0.0, which this kernel routes as unicast.
func TestLocalBroadcastsInLab(t *testing.T) {
	l := labtest.NewBare(t)
	var got []broadcastAddr
	if err := l.Prober.Do(func() (err error) { got, err = localBroadcasts(); return err }); err != nil {
		t.Fatal(err)
	}
	want := u32(netip.MustParseAddr("198.18.0.255"))
	found := false
	for _, b := range got {
		switch b.addr {
		case want:
			found = true
			if !strings.Contains(b.why, "198.18.0.0/24") {
				t.Errorf("198.18.0.255: reason %q does not name the subnet", b.why)
			}
		case u32(netip.MustParseAddr("198.18.0.0")), u32(netip.MustParseAddr("198.18.0.1")):
			t.Errorf("%v listed as broadcast (%s)", addrOf(b.addr), b.why)
		}
	}
	if !found {
		t.Errorf("198.18.0.255 not among the broadcast addresses %v", got)
	}
}

// capture counts the IPv4 TCP packets that arrive in ns to each destination, until stop is called (at most 30 s).
func capture(t *testing.T, ns *netns.NS) (stop func() map[netip.Addr]int) {
	t.Helper()
	var fd int
	err := ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50_000})
	})
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
		t.Fatal(err)
	}
	counts := map[netip.Addr]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 256)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			select {
			case <-done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			if n >= 20 && buf[0]>>4 == 4 && buf[9] == unix.IPPROTO_TCP {
				mu.Lock()
				counts[netip.AddrFrom4([4]byte(buf[16:20]))]++
				mu.Unlock()
			}
		}
	}()
	var once sync.Once
	stop = func() map[netip.Addr]int {
		once.Do(func() { close(done); wg.Wait(); unix.Close(fd) })
		mu.Lock()
		defer mu.Unlock()
		return counts
	}
	t.Cleanup(func() { stop() })
	return stop
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// A scan of the prober's own /24 skips its broadcast address 198.18.0.255 (the kernel would refuse the send with
// EACCES and end the scan): it succeeds, sends nothing there, first pass or retry, reports the address as skipped
// and none of its ports as filtered, and still reads the target right. The target's interface sees no TCP to
// .255 but every probe to the target.
func TestScanSkipsBroadcast(t *testing.T) {
	sl := newScanLab(t, []uint16{80}, 0, nil, nil)
	bcast := netip.MustParseAddr("198.18.0.255")
	ports := []PortRange{{22, 22}, {80, 80}, {443, 443}}
	for _, path := range []SendPath{SendRaw, SendAuto} {
		t.Run(path.String(), func(t *testing.T) {
			stop := capture(t, sl.Target)
			res := run(t, &Config{Type: TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Ports: ports,
				Rate: 20_000, Retries: 1, Wait: 200 * time.Millisecond, SendPath: path, NetNS: sl.Prober})
			t.Logf("scan: %v, send %v, %d sent, %s", res.End.Sub(res.Start), res.SendTime, res.Sent, res.SendPathNote)
			time.Sleep(50 * time.Millisecond) // the last frames reach the capture
			seen := stop()
			if len(res.Skipped) != 1 || res.Skipped[0].Addr != bcast || res.Skipped[0].Targets != 3 ||
				!strings.Contains(res.Skipped[0].Reason, "broadcast address of 198.18.0.0/24") {
				t.Errorf("skipped %+v, want 198.18.0.255 with its 3 ports, as the broadcast address of 198.18.0.0/24", res.Skipped)
			}
			if res.Targets != 256*3 || res.SkippedTargets != 3 || res.Probed != 255*3 || res.Interrupted {
				t.Errorf("%d targets, %d skipped, %d probed, interrupted %v; want 768, 3, 765, false", res.Targets,
					res.SkippedTargets, res.Probed, res.Interrupted)
			}
			if res.Sent != res.Probed+res.Retried {
				t.Errorf("sent %d = probed %d + retried %d does not add up", res.Sent, res.Probed, res.Retried)
			}
			for pr := range res.PortResults(bcast) {
				t.Errorf("skipped address reported: %+v", pr)
			}
			for _, h := range res.HostResults() {
				if h.Addr == bcast {
					t.Errorf("skipped address among the host results: %+v", h)
				}
			}
			sl.check(t, res, []uint16{22, 80, 443})
			if seen[bcast] != 0 {
				t.Errorf("%d TCP packets to %v reached the target's link", seen[bcast], bcast)
			}
			if seen[sl.TargetAddr] < 3 {
				t.Errorf("the capture saw %d probes to the target, want 3 or more: it did not capture", seen[sl.TargetAddr])
			}
		})
	}
}
