package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// demoLeftovers lists what a demo of this process could leave behind: its
// namespaces, veth ends in our namespace, tcpwalk nftables tables here.
func demoLeftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	names, err := netns.List(fmt.Sprintf("%s%d", demoPrefix, os.Getpid()))
	if err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	for _, n := range names {
		left = append(left, "netns "+n)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("list interfaces: %v", err)
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "tw-") {
			left = append(left, "link "+i.Name)
		}
	}
	tables, err := guard.Tables(0)
	if err != nil {
		t.Fatalf("list nftables tables: %v", err)
	}
	for _, tb := range tables {
		if strings.Contains(tb, fmt.Sprintf("_%d_", os.Getpid())) {
			left = append(left, "table "+tb)
		}
	}
	return left
}

// TestDemoLeavesNothing runs the README's first command in-process, from a
// clean state: every walk passes, the 11 states are confirmed, and no
// namespace, veth, firewall table or process of the demo is left.
func TestDemoLeavesNothing(t *testing.T) {
	skipUnlessRoot(t)
	if left := demoLeftovers(t); len(left) > 0 {
		t.Fatalf("not a clean state before the demo: %v", left)
	}
	r := runApp(t, "demo", "--json")
	if r.code != exitOK {
		t.Fatalf("demo: exit %d, want 0", r.code)
	}
	walks, pass := 0, 0
	for _, line := range lines(r.stdout) {
		var ev struct {
			Event   string `json:"event"`
			Verdict string `json:"verdict"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("demo --json line %q: %v", line, err)
		}
		if ev.Event == "walk" {
			walks++
			if ev.Verdict == "pass" {
				pass++
			}
		}
	}
	if walks != 9 || pass != walks {
		t.Errorf("demo: %d of %d walks passed, want 9 of 9", pass, walks)
	}
	if left := demoLeftovers(t); len(left) > 0 {
		t.Errorf("the demo left behind: %v", left)
	}
	// The demo's servers are goroutines of this process, and it starts no
	// other process: no child may remain.
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid()))
	if strings.TrimSpace(string(kids)) != "" {
		t.Errorf("the demo left child processes: %s", kids)
	}
}

// skipUnlessRoot skips a test that makes namespaces when not root, except
// under CI=true, where privileged tests must run.
func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (network namespaces), and CI=true: privileged tests must run")
	}
	t.Skip("needs root (network namespaces)")
}

// TestDemoGVisorLeavesNothing: `demo --stack gvisor` walks gVisor's
// netstack and removes everything, as the Linux demo does. The walks that
// need netstack to take our ACK stay inconclusive while tcpwalk sends no
// timestamps after the SYN (netstack drops such segments, RFC 7323 §3.2);
// none may fail, and the walks that need no ACK of ours pass.
func TestDemoGVisorLeavesNothing(t *testing.T) {
	skipUnlessRoot(t)
	if left := demoLeftovers(t); len(left) > 0 {
		t.Fatalf("not a clean state before the demo: %v", left)
	}
	r := runApp(t, "demo", "--stack", "gvisor", "--json")
	if r.code != exitOK && r.code != exitNoReply {
		t.Fatalf("demo --stack gvisor: exit %d, want 0 or 1", r.code)
	}
	verdicts := map[string]string{}
	for _, line := range lines(r.stdout) {
		var ev struct {
			Event    string `json:"event"`
			Scenario string `json:"scenario"`
			Verdict  string `json:"verdict"`
			Oracle   bool   `json:"oracle"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("demo --json line %q: %v", line, err)
		}
		if ev.Event != "walk" {
			continue
		}
		verdicts[ev.Scenario] = ev.Verdict
		if ev.Oracle {
			t.Errorf("walk %s read kernel states of a netstack target", ev.Scenario)
		}
		if ev.Verdict == "fail" {
			t.Errorf("walk %s failed against netstack", ev.Scenario)
		}
	}
	if len(verdicts) != 9 {
		t.Errorf("demo: %d walks, want 9: %v", len(verdicts), verdicts)
	}
	for _, s := range []string{"closed-port", "syn-rcvd", "syn-sent"} {
		if verdicts[s] != "pass" {
			t.Errorf("walk %s against netstack: %q, want pass", s, verdicts[s])
		}
	}
	if left := demoLeftovers(t); len(left) > 0 {
		t.Errorf("the demo left behind: %v", left)
	}
}
