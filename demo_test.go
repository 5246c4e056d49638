package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

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
// It runs over IPv4 (the default) and over IPv6 (demo -6), whose JSON and
// JUnit name the IPv6 addresses.
func TestDemoLeavesNothing(t *testing.T) {
	skipUnlessRoot(t)
	for _, fam := range []struct {
		name string
		args []string
		v6   bool
	}{{"IPv4", nil, false}, {"IPv6", []string{"-6"}, true}} {
		t.Run(fam.name, func(t *testing.T) { testDemoLeavesNothing(t, fam.args, fam.v6) })
	}
}

func testDemoLeavesNothing(t *testing.T, famArgs []string, v6 bool) {
	if left := demoLeftovers(t); len(left) > 0 {
		t.Fatalf("not a clean state before the demo: %v", left)
	}
	page := filepath.Join(t.TempDir(), "demo.html")
	junit := filepath.Join(t.TempDir(), "demo.xml")
	r := runApp(t, append(append([]string{"demo"}, famArgs...), "--json", "--html", page, "--junit", junit)...)
	if r.code != exitOK {
		t.Fatalf("demo: exit %d, want 0", r.code)
	}
	walks, pass := 0, 0
	segments := map[string][]walkSegment{}
	var target string
	for _, line := range lines(r.stdout) {
		var ev struct {
			Event    string        `json:"event"`
			Scenario string        `json:"scenario"`
			Verdict  string        `json:"verdict"`
			Target   string        `json:"target"`
			Local    string        `json:"local"`
			Segments []walkSegment `json:"segments"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("demo --json line %q: %v", line, err)
		}
		if ev.Event == "walk" {
			walks++
			segments[ev.Scenario] = ev.Segments
			if ev.Verdict == "pass" {
				pass++
			}
			ta, terr := netip.ParseAddrPort(ev.Target)
			la, lerr := netip.ParseAddrPort(ev.Local)
			if terr != nil || lerr != nil || ta.Addr().Is6() != v6 || la.Addr().Is6() != v6 {
				t.Errorf("%s: target %q, local %q; want addresses of the family walked (IPv6 %v)", ev.Scenario, ev.Target, ev.Local, v6)
			}
			target = ev.Target
		}
	}
	if walks != 9 || pass != walks {
		t.Errorf("demo: %d of %d walks passed, want 9 of 9", pass, walks)
	}
	checkHTMLPage(t, page, segments)
	if x, err := os.ReadFile(junit); err != nil || target == "" || !strings.Contains(string(x), target) {
		t.Errorf("the JUnit file (%v) does not name the target %q", err, target)
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

// walkSegment is a segment of a walk's JSON line.
type walkSegment struct {
	Dir   string `json:"dir"`
	Flags string `json:"flags"`
	Seq   uint32 `json:"seq"`
	Ack   uint32 `json:"ack"`
	ICMP  string `json:"icmp"`
}

// checkHTMLPage reads the --html page of a run with an HTML5 parser: one
// section per walk whose SVG arrows are that walk's segments, in order,
// with their direction, flags and numbers (the same as its JSON line), and
// the 11 states all confirmed.
func checkHTMLPage(t *testing.T, path string, want map[string][]walkSegment) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("--html: %v", err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatalf("--html %s: %v", path, err)
	}
	var sections []*html.Node
	var visit func(n *html.Node, into *[]*html.Node, match func(*html.Node) bool)
	visit = func(n *html.Node, into *[]*html.Node, match func(*html.Node) bool) {
		if n.Type == html.ElementNode && match(n) {
			*into = append(*into, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c, into, match)
		}
	}
	get := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	visit(doc, &sections, func(n *html.Node) bool { return n.Data == "section" })
	if len(sections) != len(want) {
		t.Errorf("--html: %d walk sections, want %d", len(sections), len(want))
	}
	for _, sec := range sections {
		name := get(sec, "data-scenario")
		segs, ok := want[name]
		if !ok {
			t.Errorf("--html: a section for %q, which is no walk of the run", name)
			continue
		}
		var arrows []*html.Node
		visit(sec, &arrows, func(n *html.Node) bool { return n.Data == "g" && strings.HasPrefix(get(n, "class"), "seg") })
		if len(arrows) != len(segs) {
			t.Errorf("--html %s: %d arrows, the walk has %d segments", name, len(arrows), len(segs))
			continue
		}
		for i, s := range segs {
			dir := s.Dir
			if s.ICMP != "" {
				dir = "in"
			}
			g := arrows[i]
			got := fmt.Sprintf("%s %s %s %s", get(g, "data-dir"), get(g, "data-flags"), get(g, "data-seq"), get(g, "data-ack"))
			if w := fmt.Sprintf("%s %s %d %d", dir, s.Flags, s.Seq, s.Ack); got != w {
				t.Errorf("--html %s arrow %d: %q, want %q", name, i+1, got, w)
			}
		}
	}
	var cells []*html.Node
	visit(doc, &cells, func(n *html.Node) bool { return n.Data == "td" && get(n, "class") == "v-pass" })
	confirmed := 0
	for _, c := range cells {
		if c.FirstChild != nil && c.FirstChild.Data == "confirmed" {
			confirmed++
		}
	}
	if confirmed != 11 {
		t.Errorf("--html: %d states confirmed in the coverage table, want 11", confirmed)
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
