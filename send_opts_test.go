package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
)

// sendLine is a line of `tcpwalk send --json`.
type sendLine struct {
	Event     string  `json:"event"`
	Src       string  `json:"src"`
	Dst       string  `json:"dst"`
	Flags     string  `json:"flags"`
	Seq       uint32  `json:"seq"`
	Ack       uint32  `json:"ack"`
	Fragments int     `json:"fragments"`
	Sent      int     `json:"sent"`
	Replies   int     `json:"replies"`
	Answered  int     `json:"answered"`
	FloodMs   float64 `json:"flood_ms"`
	FloodRate float64 `json:"flood_rate"`
}

func sendJSON(t *testing.T, stdout string) (sent, replies []sendLine, summary sendLine) {
	t.Helper()
	for _, l := range lines(stdout) {
		var o sendLine
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		switch o.Event {
		case "sent":
			sent = append(sent, o)
		case "reply":
			replies = append(replies, o)
		case "summary":
			summary = o
		}
	}
	return sent, replies, summary
}

// synAcked reports whether a SYN,ACK answering probe s came.
func synAcked(s sendLine, replies []sendLine) bool {
	for _, r := range replies {
		if r.Flags == "S." && r.Ack == s.Seq+1 && r.Dst == s.Src {
			return true
		}
	}
	return false
}

// reassembly reads the target kernel's IP reassembly counters (RFC 2011's
// ipReasmReqds: fragments received that needed reassembly; ipReasmOKs:
// datagrams reassembled) from /proc/net/snmp in its namespace.
func reassembly(t *testing.T, l *lab.Lab) (reqds, oks int) {
	t.Helper()
	var text []byte
	err := l.Target.Do(func() error {
		var err error
		text, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		t.Fatalf("read the target's /proc/net/snmp: %v", err)
	}
	var names, values []string
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
		} else {
			values = f
		}
	}
	get := func(name string) int {
		for i, n := range names {
			if n == name && i < len(values) {
				v, _ := strconv.Atoi(values[i])
				return v
			}
		}
		t.Fatalf("no %s in the target's /proc/net/snmp", name)
		return 0
	}
	return get("ReasmReqds"), get("ReasmOKs")
}

// TestSendFragments: a SYN cut into IP fragments is put back together by
// the target's kernel, which then answers it with a SYN,ACK; its
// reassembly counters show that the fragments arrived as fragments.
func TestSendFragments(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	for _, tt := range []struct {
		args  []string
		frags int // the IP payload: 40 bytes of TCP header (the default SYN options), and data
	}{
		{[]string{"--frag", "8"}, 5},
		{[]string{"--frag", "16", "--data-string", "0123456789abcdef"}, 4},       // 56 bytes
		{[]string{"--frag", "24", "--ip-option", "ra", "--ip-option", "nop"}, 2}, // 40 bytes; RA is copied, NOP not
	} {
		reqBefore, okBefore := reassembly(t, l)
		r := runApp(t, append(append([]string{"--netns", l.Prober.Name, "send", "--json", "--flags", "S"}, tt.args...), target)...)
		if r.code != exitOK {
			t.Fatalf("send %v: exit %d, want 0 (a SYN,ACK)", tt.args, r.code)
		}
		sent, replies, _ := sendJSON(t, r.stdout)
		if len(sent) != 1 || sent[0].Fragments != tt.frags || !synAcked(sent[0], replies) {
			t.Errorf("send %v: sent %+v, replies %+v; want one probe in %d fragments, answered with a SYN,ACK", tt.args, sent, replies, tt.frags)
		}
		req, ok := reassembly(t, l)
		// The lab sends nothing else fragmented; a SYN,ACK retransmission
		// never is.
		if req-reqBefore != tt.frags || ok-okBefore != 1 {
			t.Errorf("send %v: the target's kernel counted %d fragments and %d reassemblies, want %d and 1", tt.args, req-reqBefore, ok-okBefore, tt.frags)
		}
	}
}

// capture opens a packet socket in the target's namespace: it sees
// packets at the device, as they came off the wire.
func capture(t *testing.T, l *lab.Lab) *rawsock.PacketReceiver {
	t.Helper()
	var pr *rawsock.PacketReceiver
	if err := l.Target.Do(func() error {
		var err error
		pr, err = rawsock.NewPacketReceiver([]bpf.Instruction{bpf.RetConstant{Val: 0xffff}})
		return err
	}); err != nil {
		t.Fatalf("packet socket in %s: %v", l.Target.Name, err)
	}
	t.Cleanup(func() { pr.Close() })
	return pr
}

// TestSendIPOptionsOnTheWire: --ip-option puts the bytes asked for in the
// IPv4 header of the SYN that reaches the target, and the target still
// answers it.
func TestSendIPOptionsOnTheWire(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	pr := capture(t, l)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold)
	r := runApp(t, "--netns", l.Prober.Name, "send", "--json", "--flags", "S", "--ip-option", "ra", "--ip-option", "01", target.String())
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	sent, replies, _ := sendJSON(t, r.stdout)
	if len(sent) != 1 || !synAcked(sent[0], replies) {
		t.Fatalf("sent %+v replies %+v: want a SYN answered", sent, replies)
	}
	want := []byte{0x94, 4, 0, 0, 1, 0, 0, 0} // router alert, NOP, EOL padding
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for {
		pr.SetReadDeadline(deadline)
		n, _, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("no SYN with our sequence number %d reached the target: %v", sent[0].Seq, err)
		}
		ip := craft.IPv4(buf[:n])
		p, err := craft.ParsePacket(buf[:n])
		if err != nil || ip.Destination() != target.Addr() || !p.TCP.Flags().Has(craft.FlagSYN) || p.TCP.SequenceNumber() != sent[0].Seq {
			continue
		}
		if got := ip.Options(); string(got) != string(want) || ip.HeaderLength() != 28 || !ip.IsChecksumValid() {
			t.Errorf("the SYN arrived with IHL %d, options %x, checksum valid %v; want 28, %x, valid", ip.HeaderLength(), got, ip.IsChecksumValid(), want)
		}
		return
	}
}

// TestSendSourceAndInterface: -S writes the given source, and replies to
// an address of ours come back to it; -e sends by the interface named
// (its address the source), and by one that does not reach the target no
// reply comes.
func TestSendSourceAndInterface(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	target6 := netip.AddrPortFrom(l.TargetAddr6, lab.PortHold).String()
	ipn := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", l.Prober.Name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	// A second address on the lab's link, and a veth pair in the prober
	// that leads nowhere (both go with the lab's namespace).
	second := netip.AddrFrom4([4]byte{198, 18, 0, 5})
	ipn("addr", "add", second.String()+"/24", "dev", l.ProberIf)
	ipn("link", "add", "twopt-a", "type", "veth", "peer", "name", "twopt-b")
	ipn("link", "set", "twopt-a", "up")
	ipn("link", "set", "twopt-b", "up")
	ipn("addr", "add", "198.18.9.1/24", "dev", "twopt-a")

	for _, tt := range []struct {
		name   string
		args   []string
		src    string
		answer bool
	}{
		{"-S an address of ours", []string{"-S", second.String()}, second.String(), true},
		{"--source after the target", []string{target, "--source", second.String()}, second.String(), true},
		{"-e the lab's link", []string{"-e", l.ProberIf}, l.ProberAddr.String(), true},
		{"-e and -S", []string{"--interface", l.ProberIf, "-S", second.String()}, second.String(), true},
		{"-e a link that leads nowhere", []string{"-e", "twopt-a", "--wait", "300ms"}, "198.18.9.1", false},
		{"-e the lab's link over IPv6", []string{"-e", l.ProberIf, target6}, l.ProberAddr6.String(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--netns", l.Prober.Name, "send", "--json", "--flags", "S"}, tt.args...)
			if !slices.Contains(tt.args, target) && !slices.Contains(tt.args, target6) {
				args = append(args, target)
			}
			r := runApp(t, args...)
			want := exitOK
			if !tt.answer {
				want = exitNoReply
			}
			if r.code != want {
				t.Fatalf("exit %d, want %d", r.code, want)
			}
			sent, replies, _ := sendJSON(t, r.stdout)
			if len(sent) != 1 {
				t.Fatalf("%d probes, want 1", len(sent))
			}
			if src, err := netip.ParseAddrPort(sent[0].Src); err != nil || src.Addr().String() != tt.src {
				t.Errorf("source %s, want %s", sent[0].Src, tt.src)
			}
			if synAcked(sent[0], replies) != tt.answer {
				t.Errorf("replies %+v; want a SYN,ACK to %s: %v", replies, sent[0].Src, tt.answer)
			}
		})
	}
	// Bound to a link with no route to the target, an IPv6 probe cannot
	// leave: the route lookup sees that device's routes only.
	ipn("addr", "add", "2001:2:9::1/64", "dev", "twopt-a", "nodad")
	if r := runApp(t, "--netns", l.Prober.Name, "send", "--flags", "S", "-e", "twopt-a", "--wait", "300ms", target6); r.code == exitOK || !strings.Contains(r.stderr, "unreachable") {
		t.Errorf("-e twopt-a to %s: exit %d, stderr %q; want a failure saying the network is unreachable from that link", target6, r.code, r.stderr)
	}
	r := runApp(t, "--netns", l.Prober.Name, "send", "-e", "twopt-nosuch", target)
	if r.code != exitEnv || !strings.Contains(r.stderr, "interface twopt-nosuch") {
		t.Errorf("-e twopt-nosuch: exit %d, stderr %q; want %d naming the interface", r.code, r.stderr, exitEnv)
	}
}

// TestSendFlood: --flood sends exactly --count probes, prints only the
// summary, and never goes faster than --rate: the i-th probe waits for
// its slot in the schedule, so the rate reached is at most the one asked.
func TestSendFlood(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	const count, rate = 300, 1000
	r := runApp(t, "--netns", l.Prober.Name, "send", "--json", "--flags", "S", "--flood", "-c", strconv.Itoa(count), "--rate", strconv.Itoa(rate), "--wait", "500ms", target)
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	sent, replies, sum := sendJSON(t, r.stdout)
	if len(sent)+len(replies) != 0 || len(lines(r.stdout)) != 1 {
		t.Errorf("a flood printed %d lines, want the summary only", len(lines(r.stdout)))
	}
	if sum.Sent != count || sum.Answered == 0 || sum.Replies < sum.Answered {
		t.Errorf("summary %+v: want %d sent, some answered", sum, count)
	}
	if minMs := float64(count-1) * 1000 / rate; sum.FloodMs < minMs || sum.FloodRate > rate*1.0001 {
		t.Errorf("flood took %.3f ms at %.1f per second; want at least %.0f ms and at most %d per second", sum.FloodMs, sum.FloodRate, minMs, rate)
	}
	text := runApp(t, "--netns", l.Prober.Name, "send", "--flags", "S", "--flood", "-c", "20", target)
	if text.code != exitOK || !strings.Contains(text.stdout, "flood: 20 probes in ") || strings.Contains(text.stdout, "(probe ") {
		t.Errorf("text flood: exit %d, stdout %q; want the summary with the flood line and no probe lines", text.code, text.stdout)
	}
}

// TestSendOptionUsage: the new options' mistakes are bad usage, said on one line.
func TestSendOptionUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--flood"}, "--flood needs --count"},
		{[]string{"--flood", "-c", "5", "-i", "10ms"}, "--interval"},
		{[]string{"--rate", "10"}, "--rate is the pace of a --flood"},
		{[]string{"--flood", "-c", "5", "--rate", "0"}, "--rate 0"},
		{[]string{"--flood", "-c", "5", "--rate", "1000000"}, "--rate 1000000"},
		{[]string{"--frag", "12"}, "--frag 12"},
		{[]string{"--frag", "0"}, "--frag 0"},
		{[]string{"--frag", "8", "--df"}, "--df"},
		{[]string{"--ip-option", "zz"}, "--ip-option"},
		{[]string{"--ip-option", "rr", "--ip-option", "ts"}, "at most 40"},
		{[]string{"-S", "not-an-address"}, "--source"},
		{[]string{"-S", "224.0.0.1"}, "multicast"},
		{[]string{"-S", "0.0.0.0"}, "unspecified"},
	} {
		r := runApp(t, append(append([]string{"send"}, tt.args...), "198.18.0.2:80")...)
		if r.code != exitUsage || len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("send %v: exit %d, stderr %q; want %d and one line naming %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
		}
	}
}

// checkFloodExample: `send --flood -c N --rate R`: the announcement, no
// probe lines, and the summary with N probes sent.
func checkFloodExample(t *testing.T, stdout string, ex []string) {
	t.Helper()
	count := ""
	for i, a := range ex {
		if (a == "-c" || a == "--count") && i+1 < len(ex) {
			count = ex[i+1]
		}
	}
	if sent, replies := parseText(t, stdout); len(sent)+len(replies) != 0 {
		t.Errorf("a flood printed %d probe and %d reply lines, want none", len(sent), len(replies))
	}
	if !strings.HasPrefix(stdout, "flooding ") || !strings.Contains(stdout, count+" probes sent, ") || !strings.Contains(stdout, "flood: "+count+" probes in ") {
		t.Errorf("flood output %q: want the announcement and a summary of %s probes", stdout, count)
	}
}

// checkFragExample: `send --frag 8 --ip-option rr`: the probe says it went
// in fragments (a 40-byte TCP header in 8-byte pieces: 5), and the SYN,ACK
// came: the target reassembled it.
func checkFragExample(t *testing.T, stdout string, target netip.AddrPort) {
	t.Helper()
	if !strings.Contains(stdout, "(probe 1, in 5 IP fragments)") {
		t.Errorf("output %q: want probe 1 in 5 IP fragments", stdout)
	}
	_, replies := parseText(t, stdout)
	if len(replies) == 0 || replies[0].flags != "S." || replies[0].src != target {
		t.Errorf("replies %+v, want a SYN,ACK from %s", replies, target)
	}
}
