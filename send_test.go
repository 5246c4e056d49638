package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// helpExamples returns the `tcpwalk send ...` lines of the send command's
// help, without "tcpwalk".
func helpExamples(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, line := range strings.Split(sendCommand().Description, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "tcpwalk" && f[1] == "send" {
			out = append(out, f[1:])
		}
	}
	if len(out) == 0 {
		t.Fatal("the send command's help has no examples")
	}
	return out
}

// labArgs points an example at the lab: the target becomes the lab's
// listening port (on its IPv6 address for an IPv6 example), and the prober
// namespace is chosen with --netns.
func labArgs(t *testing.T, l *lab.Lab, example []string) []string {
	t.Helper()
	args := []string{"--netns", l.Prober.Name}
	replaced := false
	_, _, defaultIf, _ := lab.Names(lab.DefaultPrefix)
	for _, a := range example {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			host := l.TargetAddr
			if ap.Addr().Is6() {
				host = l.TargetAddr6
			}
			a, replaced = netip.AddrPortFrom(host, lab.PortHold).String(), true
		} else if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() { // a bare IPv6 target with -p
			a, replaced = l.TargetAddr6.String(), true
		}
		if a == defaultIf { // the default lab's veth, in -e examples
			a = l.ProberIf
		}
		args = append(args, a)
	}
	if !replaced {
		t.Fatalf("example %q has no ADDR:PORT target", example)
	}
	return args
}

// Text lines of `tcpwalk send`, in tcpdump's words.
var (
	sentRE  = regexp.MustCompile(`^(\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\], seq (\d+)(?:, ack (\d+))?(?:, options \[([^\]]*)\])?, length (\d+)  \(probe (\d+)\)$`)
	replyRE = regexp.MustCompile(`^(\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\], seq (\d+)(?:, ack (\d+))?, win (\d+)(?:, options \[([^\]]*)\])?, length (\d+), ttl (\d+), rtt ([0-9.]+) ms`)
)

type textLine struct {
	src, dst netip.AddrPort
	flags    string
	seq, ack uint32
	hasAck   bool
	options  []string
	rttMs    float64
}

func addrPort(t *testing.T, a, p string) netip.AddrPort {
	t.Helper()
	if strings.Contains(a, ":") {
		a = "[" + a + "]" // tcpdump writes IPv6 without brackets: 2001:2::1.80
	}
	ap, err := netip.ParseAddrPort(a + ":" + p)
	if err != nil {
		t.Fatalf("bad address %s port %s: %v", a, p, err)
	}
	return ap
}

func u32(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return uint32(v)
}

// parseText splits send's text output into our probes and the replies; other
// lines (the summary) are ignored.
func parseText(t *testing.T, stdout string) (sent, replies []textLine) {
	t.Helper()
	for _, line := range lines(stdout) {
		if m := sentRE.FindStringSubmatch(line); m != nil {
			l := textLine{src: addrPort(t, m[1], m[2]), dst: addrPort(t, m[3], m[4]), flags: m[5], seq: u32(t, m[6])}
			if m[7] != "" {
				l.ack, l.hasAck = u32(t, m[7]), true
			}
			if m[8] != "" {
				l.options = strings.Split(m[8], ",")
			}
			sent = append(sent, l)
		} else if m := replyRE.FindStringSubmatch(line); m != nil {
			l := textLine{src: addrPort(t, m[1], m[2]), dst: addrPort(t, m[3], m[4]), flags: m[5], seq: u32(t, m[6])}
			if m[7] != "" {
				l.ack, l.hasAck = u32(t, m[7]), true
			}
			if m[9] != "" {
				l.options = strings.Split(m[9], ",")
			}
			l.rttMs, _ = strconv.ParseFloat(m[12], 64)
			replies = append(replies, l)
		}
	}
	return sent, replies
}

func hasPrefix(opts []string, prefix string) bool {
	return slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, prefix) })
}

// TestSendHelpExamples runs every example of `tcpwalk send --help` against
// the lab (the target made the lab's listener, 198.18.0.2:7001) and checks
// what each prints.
func TestSendHelpExamples(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold)
	checked := map[string]bool{}
	// Run one after another: the examples share the lab and one fixes
	// its source port.
	for _, ex := range helpExamples(t) {
		name := strings.Join(ex, " ")
		t.Run(name, func(t *testing.T) {
			r := runApp(t, labArgs(t, l, ex)...)
			if r.code != exitOK {
				t.Fatalf("exit status %d, want 0", r.code)
			}
			v6 := slices.ContainsFunc(ex, func(a string) bool {
				ip, err := netip.ParseAddr(strings.Trim(a, "[]"))
				return strings.HasPrefix(a, "[") || (err == nil && ip.Is6())
			})
			// Over IPv6 too the RST guard is on: no warning at all.
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
			switch {
			case v6:
				checked["IPv6"] = true
				checkSYNExample(t, r.stdout, netip.AddrPortFrom(l.TargetAddr6, lab.PortHold))
			case slices.Contains(ex, "--flood"):
				checked["flood"] = true
				checkFloodExample(t, r.stdout, ex)
			case slices.Contains(ex, "--frag"):
				checked["frag"] = true
				checkFragExample(t, r.stdout, target)
			case slices.Contains(ex, "-e"):
				checked["interface"] = true
				checkSYNExample(t, r.stdout, target)
			case slices.Contains(ex, "--json"):
				checked["json"] = true
				checkJSONExample(t, r.stdout, target)
			case slices.Contains(ex, "FA"):
				checked["FA"] = true
				checkFinAckExample(t, r.stdout, target)
			case slices.Contains(ex, "--no-options"):
				checked["no-options"] = true
				checkNoOptionsExample(t, r.stdout, target, exampleSport(t, ex))
			default:
				checked["S"] = true
				checkSYNExample(t, r.stdout, target)
			}
		})
	}
	for _, k := range []string{"S", "FA", "no-options", "json", "flood", "frag", "interface", "IPv6"} {
		if !checked[k] {
			t.Errorf("the help has no %s example any more: update this test", k)
		}
	}
}

// checkSYNExample: `send --flags S`: our SYN with Linux's options, and a
// SYN-ACK for it (RFC 9293 §3.5: ack = our ISN + 1) with the remote's options.
func checkSYNExample(t *testing.T, stdout string, target netip.AddrPort) {
	t.Helper()
	sent, replies := parseText(t, stdout)
	if len(sent) != 1 || len(replies) == 0 {
		t.Fatalf("got %d probes and %d replies, want 1 and at least 1", len(sent), len(replies))
	}
	s, r := sent[0], replies[0]
	if s.flags != "S" || s.dst != target {
		t.Errorf("probe: Flags [%s] to %s, want [S] to %s", s.flags, s.dst, target)
	}
	if want := []string{"mss 1460", "sackOK", "TS", "nop", "wscale 7"}; len(s.options) != len(want) || !hasPrefix(s.options, "TS val") ||
		s.options[0] != want[0] || s.options[4] != want[4] {
		t.Errorf("probe options %q, want Linux's set like %q", s.options, want)
	}
	if r.flags != "S." || !r.hasAck || r.ack != s.seq+1 || r.src != target || r.dst != s.src {
		t.Errorf("reply %s > %s [%s] ack %d, want %s > %s [S.] ack %d", r.src, r.dst, r.flags, r.ack, target, s.src, s.seq+1)
	}
	if !hasPrefix(r.options, "mss ") || !hasPrefix(r.options, "TS val") {
		t.Errorf("SYN-ACK options %q, want mss and TS printed", r.options)
	}
	if r.rttMs <= 0 || r.rttMs >= 1000 {
		t.Errorf("rtt %.3f ms, want between 0 and 1000", r.rttMs)
	}
	if !strings.Contains(stdout, "1 probe sent, 1 answered") {
		t.Errorf("no summary \"1 probe sent, 1 answered\"")
	}
}

// checkFinAckExample: a FIN,ACK to a listener is an ACK for a CLOSED
// connection: <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.2).
func checkFinAckExample(t *testing.T, stdout string, target netip.AddrPort) {
	t.Helper()
	sent, replies := parseText(t, stdout)
	if len(sent) != 1 || len(replies) != 1 {
		t.Fatalf("got %d probes and %d replies, want 1 and 1", len(sent), len(replies))
	}
	s, r := sent[0], replies[0]
	if s.flags != "F." || s.seq != 1000 || !s.hasAck || s.ack != 2000 || s.options != nil {
		t.Errorf("probe [%s] seq %d ack %d options %q, want [F.] seq 1000 ack 2000 and no options", s.flags, s.seq, s.ack, s.options)
	}
	if r.flags != "R" || r.seq != 2000 || r.src != target || r.dst != s.src {
		t.Errorf("reply %s > %s [%s] seq %d, want %s > %s [R] seq 2000", r.src, r.dst, r.flags, r.seq, target, s.src)
	}
}

// exampleSport returns the --sport of an example.
func exampleSport(t *testing.T, ex []string) uint16 {
	t.Helper()
	i := slices.Index(ex, "--sport")
	if i < 0 || i+1 >= len(ex) {
		t.Fatalf("example %q has no --sport", ex)
	}
	p, err := strconv.ParseUint(ex[i+1], 10, 16)
	if err != nil {
		t.Fatalf("example %q: --sport %q: %v", ex, ex[i+1], err)
	}
	return uint16(p)
}

// checkNoOptionsExample: three option-less SYNs, all from source port sport,
// and a SYN-ACK to the first.
func checkNoOptionsExample(t *testing.T, stdout string, target netip.AddrPort, sport uint16) {
	t.Helper()
	sent, replies := parseText(t, stdout)
	if len(sent) != 3 || len(replies) == 0 {
		t.Fatalf("got %d probes and %d replies, want 3 and at least 1", len(sent), len(replies))
	}
	for i, s := range sent {
		if s.flags != "S" || s.src.Port() != sport || s.dst != target || s.options != nil {
			t.Errorf("probe %d: [%s] %s > %s options %q, want [S] from port %d to %s, no options", i+1, s.flags, s.src, s.dst, s.options, sport, target)
		}
	}
	for _, r := range replies {
		if r.dst.Port() != sport {
			t.Errorf("reply to port %d, want %d", r.dst.Port(), sport)
		}
	}
	r := replies[0]
	if r.flags != "S." || r.ack != sent[0].seq+1 {
		t.Errorf("first reply [%s] ack %d, want [S.] ack %d", r.flags, r.ack, sent[0].seq+1)
	}
	// The remote answers an option-less SYN without options it was not
	// offered (RFC 7323 §1.3: no TS, no wscale), but with its MSS.
	if hasPrefix(r.options, "TS") || hasPrefix(r.options, "wscale") || hasPrefix(r.options, "sackOK") || !hasPrefix(r.options, "mss ") {
		t.Errorf("SYN-ACK options %q, want only mss", r.options)
	}
}

// checkJSONExample: every line is a JSON object; the probe carries exactly
// the options asked for; the SYN-ACK answers each (MSS, sackOK, wscale, and a
// TS echoing our value 100, RFC 7323 §3.2).
func checkJSONExample(t *testing.T, stdout string, target netip.AddrPort) {
	t.Helper()
	type obj struct {
		Event   string   `json:"event"`
		Src     string   `json:"src"`
		Dst     string   `json:"dst"`
		Flags   string   `json:"flags"`
		Seq     uint32   `json:"seq"`
		Ack     uint32   `json:"ack"`
		Options []string `json:"options"`
		RTTMs   float64  `json:"rtt_ms"`
		Sent    int      `json:"sent"`
		Replies int      `json:"replies"`
		Target  string   `json:"target"`
	}
	var sent, replies, summaries []obj
	for _, line := range lines(stdout) {
		var o obj
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		switch o.Event {
		case "sent":
			sent = append(sent, o)
		case "reply":
			replies = append(replies, o)
		case "summary":
			summaries = append(summaries, o)
		default:
			t.Errorf("unexpected event %q in %q", o.Event, line)
		}
	}
	if len(sent) != 1 || len(replies) == 0 || len(summaries) != 1 {
		t.Fatalf("got %d sent, %d replies, %d summaries; want 1, at least 1, 1", len(sent), len(replies), len(summaries))
	}
	s, r, sum := sent[0], replies[0], summaries[0]
	if want := []string{"mss 536", "sackOK", "TS val 100 ecr 0", "nop", "wscale 2"}; !slices.Equal(s.Options, want) {
		t.Errorf("sent options %q, want %q", s.Options, want)
	}
	if s.Dst != target.String() || s.Flags != "S" {
		t.Errorf("sent %s to %s, want S to %s", s.Flags, s.Dst, target)
	}
	if r.Flags != "S." || r.Ack != s.Seq+1 || r.Src != target.String() || r.Dst != s.Src {
		t.Errorf("reply %s > %s %s ack %d, want %s > %s S. ack %d", r.Src, r.Dst, r.Flags, r.Ack, target, s.Src, s.Seq+1)
	}
	if !hasPrefix(r.Options, "mss ") || !slices.Contains(r.Options, "sackOK") || !hasPrefix(r.Options, "wscale ") ||
		!slices.ContainsFunc(r.Options, func(o string) bool { return strings.HasPrefix(o, "TS val ") && strings.HasSuffix(o, " ecr 100") }) {
		t.Errorf("SYN-ACK options %q, want mss, sackOK, wscale and TS ... ecr 100", r.Options)
	}
	if r.RTTMs <= 0 || r.RTTMs >= 1000 {
		t.Errorf("rtt_ms %v, want between 0 and 1000", r.RTTMs)
	}
	if sum.Sent != 1 || sum.Replies < 1 || sum.Target != target.String() {
		t.Errorf("summary %+v, want 1 sent, replies, target %s", sum, target)
	}
}

// TestSendNoReply: a SYN to a lab address where nobody answers exits with 1,
// and the summary says so.
func TestSendNoReply(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	silent := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, 77}), 80)
	r := runApp(t, "--netns", l.Prober.Name, "send", "--flags", "S", "--wait", "300ms", silent.String())
	if r.code != exitNoReply {
		t.Errorf("exit status %d, want %d", r.code, exitNoReply)
	}
	if sent, replies := parseText(t, r.stdout); len(sent) != 1 || len(replies) != 0 {
		t.Errorf("got %d probes and %d replies, want 1 and 0", len(sent), len(replies))
	}
	if !strings.Contains(r.stdout, "1 probe sent, 0 answered, 0 replies, 100% without reply") {
		t.Errorf("summary does not say no reply came")
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q, want nothing (no reply is not an error)", r.stderr)
	}
}

// TestNetNSMissing: a namespace that does not exist is an environment error
// (exit 3) named on one line.
func TestNetNSMissing(t *testing.T) {
	t.Parallel()
	r := runApp(t, "--netns", "doesnotexist", "send", "--flags", "S", "198.18.0.2:7001")
	if r.code != exitEnv {
		t.Errorf("exit status %d, want %d", r.code, exitEnv)
	}
	errLines := lines(r.stderr)
	if len(errLines) != 1 || !strings.Contains(errLines[0], "--netns doesnotexist") || !strings.Contains(errLines[0], "does not exist") {
		t.Errorf("stderr %q, want one line naming --netns doesnotexist and that it does not exist", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
}

// TestSendPayloadTooLong: a payload longer than the route's MTU (1600 bytes
// on the lab's 1500) and one longer than tcpwalk's packet buffer (3000) are
// the same mistake: exit 2, one line that says how much fits, before any
// probe or statistics.
func TestSendPayloadTooLong(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	for _, n := range []int{1600, 3000} {
		r := runApp(t, "--netns", l.Prober.Name, "send", "-c", "1", "--data-string", strings.Repeat("a", n),
			netip.AddrPortFrom(l.TargetAddr, lab.PortEcho).String())
		if r.code != exitUsage {
			t.Errorf("%d bytes: exit status %d, want %d", n, r.code, exitUsage)
		}
		if errLines := lines(r.stderr); len(errLines) != 1 || !strings.Contains(errLines[0], "at most 1440 payload bytes") {
			t.Errorf("%d bytes: stderr %q, want one line saying at most 1440 payload bytes fit", n, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%d bytes: stdout %q, want nothing sent and no statistics", n, r.stdout)
		}
	}
}

// TestWalkClosedPortWalksTheGivenPort: `walk closed-port HOST:PORT` walks
// PORT, as its help says, not the lab's 7009 in silence.
func TestWalkClosedPortWalksTheGivenPort(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	const port = 7077 // nothing listens
	r := runApp(t, "--netns", l.Prober.Name, "walk", "--json", "closed-port", netip.AddrPortFrom(l.TargetAddr, port).String())
	if r.code != 0 {
		t.Errorf("exit status %d, want 0", r.code)
	}
	want := fmt.Sprintf(`"target":"%s"`, netip.AddrPortFrom(l.TargetAddr, port))
	if !strings.Contains(strings.ReplaceAll(r.stdout, " ", ""), want) {
		t.Errorf("the walk's JSON does not name %s: %s", want, r.stdout)
	}
}
