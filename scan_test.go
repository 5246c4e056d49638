package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// scanOut is a buffer safe for the app's goroutines.
type scanOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *scanOut) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// runScanApp runs `tcpwalk args...` in-process, bounded to 60 s.
func runScanApp(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var o, e scanOut
	code = run(ctx, append([]string{"tcpwalk"}, args...), &o, &e)
	stdout, stderr = o.b.String(), e.b.String()
	t.Logf("tcpwalk %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	return code, stdout, stderr
}

func TestScanUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"scan"},
		{"scan", "-p", "0-10", "198.18.0.2"},
		{"scan", "-p", "10-1", "198.18.0.2"},
		{"scan", "--type", "connect", "198.18.0.2"},
		{"scan", "--shard", "2/4", "198.18.0.2"},
		{"scan", "--shard", "5/4", "--seed", "1", "198.18.0.2"},
		{"scan", "--json", "--grepable", "198.18.0.2"},
		{"scan", "-p-", "-p", "80", "198.18.0.2"},
		{"scan", "-sS", "-sA", "198.18.0.2"},
		{"scan", "--rate", "0", "198.18.0.2"},
		{"scan", "--retries", "-1", "198.18.0.2"},
		{"scan", "--wait", "0s", "198.18.0.2"},
		{"scan", "224.0.0.1"},
		{"scan", "198.18.0.0/33"},
		{"scan", "--sport", "70000", "198.18.0.2"},
		{"scan", "2001:2::/64"},
		{"scan", "ff02::1"},
		{"scan", "2001:2::1-2001:3::"},
		{"scan", "198.18.0.2", "2001:2::2"},
	} {
		code, _, stderr := runScanApp(t, args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "tcpwalk: ") {
			t.Errorf("tcpwalk %s: exit %d, stderr %q; want exit %d and a message", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
}

// scanCLILab is a lab with listeners on open, on both of the target's addresses (IPv4 and IPv6); every other port
// of the target is closed.
func scanCLILab(t *testing.T, open []uint16) *lab.Lab {
	t.Helper()
	l := labtest.NewBare(t)
	err := l.Target.Do(func() error {
		for _, p := range open {
			for _, a := range []netip.Addr{l.TargetAddr, l.TargetAddr6} {
				ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, p)))
				if err != nil {
					return err
				}
				t.Cleanup(func() { ln.Close() })
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listen in the lab's target: %v", err)
	}
	return l
}

func TestScanJSON(t *testing.T) {
	open := []uint16{22, 80, 8080}
	l := scanCLILab(t, open)
	code, stdout, _ := runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "1-200,8080", "--rate", "20000", "--wait", "200ms",
		"--seed", "5", "--json", l.TargetAddr.String())
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var ports []uint16
	var notShown, summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		switch m["event"] {
		case "port":
			if m["host"] != l.TargetAddr.String() || m["state"] != "open" || m["reason"] != "syn-ack" || m["proto"] != "tcp" {
				t.Errorf("port line %v: want an open port of %v, reason syn-ack", m, l.TargetAddr)
			}
			ports = append(ports, uint16(m["port"].(float64)))
		case "not_shown":
			notShown = m
		case "summary":
			summary = m
		case "host":
			if m["host"] != l.TargetAddr.String() || m["status"] != "up" || m["reason"] != "syn-ack" {
				t.Errorf("host line %v: want %v up (syn-ack)", m, l.TargetAddr)
			}
		default:
			t.Errorf("unknown event in %q", line)
		}
	}
	if !slices.Equal(ports, open) {
		t.Errorf("open ports %v, want %v", ports, open)
	}
	if notShown == nil || notShown["state"] != "closed" || notShown["count"] != float64(198) || notShown["reason"] != "reset" {
		t.Errorf("not_shown = %v, want 198 closed (reset)", notShown)
	}
	if summary == nil || summary["type"] != "syn" || summary["targets"] != float64(201) || summary["seed"] != float64(5) ||
		summary["shard"] != "1/1" || summary["interrupted"] != false || summary["ports"] != "1-200,8080" {
		t.Errorf("summary = %v", summary)
	}
	if st, _ := summary["states"].(map[string]any); st["open"] != float64(3) || st["closed"] != float64(198) {
		t.Errorf("summary states = %v, want 3 open, 198 closed", summary["states"])
	}
}

// TestScanIPv6CLI: `tcpwalk scan` of the lab's IPv6 address finds its open ports, in JSON and in nmap's XML
// (addrtype ipv6), and a /64 is refused with what to do instead.
func TestScanIPv6CLI(t *testing.T) {
	open := []uint16{22, 80, 8080}
	l := scanCLILab(t, open)
	target := l.TargetAddr6.String()
	code, stdout, _ := runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "1-200,8080", "--rate", "20000", "--wait", "200ms",
		"--json", target)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var ports []uint16
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		switch m["event"] {
		case "port":
			if m["host"] != target || m["state"] != "open" {
				t.Errorf("port line %v: want an open port of %v", m, target)
			}
			ports = append(ports, uint16(m["port"].(float64)))
		case "not_shown":
			if m["state"] != "closed" || m["count"] != float64(198) {
				t.Errorf("not_shown = %v, want 198 closed", m)
			}
		case "summary":
			if src, _ := m["source"].(string); !strings.HasPrefix(src, "["+l.ProberAddr6.String()+"]:") {
				t.Errorf("summary source %v, want [%v]:port", m["source"], l.ProberAddr6)
			}
		}
	}
	if !slices.Equal(ports, open) {
		t.Errorf("open ports over IPv6 %v, want %v", ports, open)
	}
	code, stdout, _ = runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "22,23", "--wait", "200ms", "-oX", "-", "2001:2::1-2")
	if code != exitOK || !strings.Contains(stdout, `<address addr="`+target+`" addrtype="ipv6">`) ||
		strings.Count(stdout, `<state state="open" reason="syn-ack"`) != 1 {
		t.Errorf("XML of an IPv6 scan (exit %d):\n%s", code, stdout)
	}
	code, _, stderr := runScanApp(t, "--netns", l.Prober.Name, "scan", "2001:2::/64")
	if code != exitUsage || !strings.Contains(stderr, "refusing to sweep 2001:2::/64") || !strings.Contains(stderr, "-iL") {
		t.Errorf("scan of a /64: exit %d, %q; want a usage error that says to list hosts", code, stderr)
	}
}

func TestScanTextAndGrepable(t *testing.T) {
	l := scanCLILab(t, []uint16{22, 443})
	target := l.TargetAddr.String()
	code, stdout, stderr := runScanApp(t, "--netns", l.Prober.Name, "scan", "-sA", "--reason", "-p", "20-25,443", "--rate", "5000",
		"--wait", "200ms", target)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(stderr, "\r") {
		t.Error("a progress line went to a stderr that is not a terminal")
	}
	for _, want := range []string{
		"tcpwalk ack scan of " + target + ", ports 20-25,443, from ",
		"Scan report for " + target,
		"PORT      STATE          SERVICE         REASON",
		"22/tcp    unfiltered     ssh             reset",
		"443/tcp   unfiltered     https           reset",
		"Done: 7 targets, ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q", want)
		}
	}
	code, stdout, _ = runScanApp(t, "--netns", l.Prober.Name, "scan", "-p-", "--rate", "200000", "--retries", "2", "--wait", "200ms", "--grepable", target)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	re := regexp.MustCompile(`(?m)^Host: ` + regexp.QuoteMeta(target) + ` \(\)\tPorts: 22/open/tcp/////, 443/open/tcp/////\tIgnored State: closed \((\d+)\)$`)
	m := re.FindStringSubmatch(stdout)
	if m == nil || m[1] != "65533" {
		t.Errorf("grepable output lacks the host line with 2 open and 65533 closed ports (match %v)", m)
	}
	if !strings.HasPrefix(stdout, "# tcpwalk syn scan of "+target+", ports 1-65535") || !strings.Contains(stdout, "# tcpwalk done: 65535 targets, 65535 probed, 2 open") {
		t.Error("grepable output lacks its comment lines")
	}
}

// Shards with one seed cover the scan between them, through the CLI.
func TestScanShardsCLI(t *testing.T) {
	l := scanCLILab(t, []uint16{10, 20, 30})
	seen := map[int]int{}
	for i := 1; i <= 2; i++ {
		code, stdout, _ := runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "1-50", "--all", "--json", "--rate", "10000", "--wait", "200ms",
			"--shard", strconv.Itoa(i)+"/2", "--seed", "77", l.TargetAddr.String())
		if code != exitOK {
			t.Fatalf("shard %d: exit %d", i, code)
		}
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var m struct {
				Event string `json:"event"`
				Port  int    `json:"port"`
				State string `json:"state"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			if m.Event == "port" {
				seen[m.Port]++
				if open := m.Port%10 == 0 && m.Port <= 30; open != (m.State == "open") {
					t.Errorf("shard %d: port %d %s", i, m.Port, m.State)
				}
			}
		}
	}
	for p := 1; p <= 50; p++ {
		if seen[p] != 1 {
			t.Errorf("port %d reported %d times by the two shards, want once", p, seen[p])
		}
	}
}
