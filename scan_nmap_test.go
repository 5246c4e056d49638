package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/lab"
)

// needTool returns the path of a tool a test needs; without it the test skips, unless CI=true, where .ci/run
// installs it and the test fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package %s): .ci/run installs it", name, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", name, pkg)
	}
	return p
}

const nmapDTD = "/usr/share/nmap/nmap.dtd"

// validXML checks a file against nmap's DTD with xmllint.
func validXML(t *testing.T, path string) {
	t.Helper()
	xmllint := needTool(t, "xmllint", "libxml2-utils")
	if _, err := os.Stat(nmapDTD); err != nil {
		t.Fatalf("%s: %v (Debian package nmap-common)", nmapDTD, err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--dtdvalid", nmapDTD, path).CombinedOutput(); err != nil {
		t.Errorf("xmllint --dtdvalid %s %s: %v\n%s", nmapDTD, path, err, out)
	}
}

// listenIn opens a TCP listener in the lab's target namespace, closed at cleanup.
func listenIn(t *testing.T, l *lab.Lab, port uint16) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	err := l.Target.Do(func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.TargetAddr, port)))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %d in the target: %v", port, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Two scans of the lab, a listener started between them: the XML of both is valid against nmap's DTD, and
// ndiff, nmap's own comparison tool, reports the port that changed. -oA writes the three formats.
func TestScanXMLWithNdiff(t *testing.T) {
	ndiff := needTool(t, "ndiff", "ndiff")
	l := scanCLILab(t, []uint16{22})
	dir := t.TempDir()
	a, b := filepath.Join(dir, "before"), filepath.Join(dir, "after.xml")
	target := l.TargetAddr.String()
	scanArgs := []string{"--netns", l.Prober.Name, "scan", "-p", "1-100", "--rate", "20000", "--wait", "200ms"}
	if code, _, _ := runScanApp(t, append(scanArgs, "-oA", a, target)...); code != exitOK {
		t.Fatalf("first scan: exit %d", code)
	}
	listenIn(t, l, 80)
	code, stdout, _ := runScanApp(t, append(scanArgs, "-oX", b, target)...)
	if code != exitOK {
		t.Fatalf("second scan: exit %d", code)
	}
	if !strings.Contains(stdout, "Scan report for "+target) {
		t.Errorf("with -oX FILE, stdout lacks the usual text output")
	}
	validXML(t, a+".xml")
	validXML(t, b)

	out, err := exec.Command(ndiff, a+".xml", b).CombinedOutput()
	t.Logf("ndiff:\n%s", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("ndiff: %v, want exit 1 (the scans differ)", err)
	}
	for _, want := range []string{target + ":", "+80/tcp open", "-Not shown: 99 closed ports", "+Not shown: 98 closed ports"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ndiff output lacks %q", want)
		}
	}
	if strings.Contains(string(out), "22/tcp") {
		t.Errorf("ndiff reports port 22, which did not change")
	}
	// The same scan twice: ndiff finds nothing.
	if out, err := exec.Command(ndiff, b, b).CombinedOutput(); err != nil {
		t.Errorf("ndiff of a scan with itself: %v\n%s", err, out)
	}

	normal, err := os.ReadFile(a + ".nmap")
	if err != nil || !strings.Contains(string(normal), "Scan report for "+target) || !strings.Contains(string(normal), "22/tcp    open           ssh\n") {
		t.Errorf("-oA's .nmap (normal output): %v\n%s", err, normal)
	}
	grep, err := os.ReadFile(a + ".gnmap")
	if err != nil || !strings.Contains(string(grep), "Host: "+target+" ()\tStatus: Up\n") ||
		!strings.Contains(string(grep), "Host: "+target+" ()\tPorts: 22/open/tcp/////\tIgnored State: closed (99)") {
		t.Errorf("-oA's .gnmap (grepable output): %v\n%s", err, grep)
	}

	// -oX - writes the XML to stdout instead of the text.
	code, stdout, _ = runScanApp(t, append(scanArgs, "-oX", "-", target)...)
	if code != exitOK || !strings.HasPrefix(stdout, "<?xml") || strings.Contains(stdout, "Scan report") {
		t.Errorf("-oX -: exit %d, stdout starts %.60q; want the XML alone", code, stdout)
	}
}

// addSilentHost gives the lab's target a second address that answers ARP but no TCP: a netdev ingress rule in
// the target drops every TCP segment to it.
func addSilentHost(t *testing.T, l *lab.Lab, addr netip.Addr) {
	t.Helper()
	err := l.Target.Do(func() error {
		lk, err := netlink.LinkByName(l.TargetIf)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lk, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})
	if err != nil {
		t.Fatalf("add %s to the target: %v", addr, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(l.Target.Fd()))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	defer c.CloseLasting()
	tb := c.AddTable(&nftables.Table{Name: "tcpwalk-test-silent", Family: nftables.TableFamilyNetdev})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "in", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter, Device: l.TargetIf, Policy: &accept})
	a4 := addr.As4()
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_IP)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a4[:]},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("nftables: add the drop rule: %v", err)
	}
}

// Targets as nmap takes them: a file (-iL), a range, an exclusion; host discovery says which hosts are down.
func TestScanTargetsAndHostDiscovery(t *testing.T) {
	l := scanCLILab(t, []uint16{22})
	silent := netip.MustParseAddr("198.18.0.5")
	addSilentHost(t, l, silent)
	list := filepath.Join(t.TempDir(), "targets.txt")
	if err := os.WriteFile(list, []byte("# the lab\n198.18.0.2-5 # target, two absent hosts, the silent one\n198.18.0.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "ssh,https", "--rate", "5000", "--wait", "300ms",
		"-iL", list, "--exclude", "198.18.0.4,9", "--json", "--all")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	status := map[string]string{}
	ports := map[string][]string{}
	var summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		switch m["event"] {
		case "host":
			status[m["host"].(string)] = m["status"].(string) + " " + m["reason"].(string)
		case "port":
			ports[m["host"].(string)] = append(ports[m["host"].(string)], fmt.Sprintf("%v/%v", m["port"], m["state"]))
		case "summary":
			summary = m
		}
	}
	want := map[string]string{"198.18.0.2": "up syn-ack", "198.18.0.3": "down no-response", "198.18.0.5": "up arp-response"}
	for h, w := range want {
		if status[h] != w {
			t.Errorf("host %s: %q, want %q", h, status[h], w)
		}
	}
	if len(status) != 3 {
		t.Errorf("hosts %v: want .2, .3 and .5 (.4 and .9 excluded)", status)
	}
	if got := ports["198.18.0.2"]; !slices.Equal(got, []string{"22/open", "443/closed"}) {
		t.Errorf("ports of the target: %v, want 22 open and 443 closed (-p ssh,https)", got)
	}
	if summary["targets"] != float64(6) || summary["ports"] != "22,443" {
		t.Errorf("summary: %v; want 6 targets, ports 22,443", summary)
	}

	// Without --all, the text says which hosts are down and leaves them out.
	code, stdout, _ = runScanApp(t, "--netns", l.Prober.Name, "scan", "--top-ports", "5", "--rate", "5000", "--wait", "300ms",
		"198.18.0.2-3,5")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"Scan report for 198.18.0.2\nHost is up (syn-ack).", "Scan report for 198.18.0.5\nHost is up (arp-response).",
		"1 hosts answered no probe at all"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("text lacks %q", w)
		}
	}
	if strings.Contains(stdout, "198.18.0.3\n") {
		t.Error("text lists the down host")
	}

	// A scan that fails before it has a result (no route to the host in the prober) leaves no empty output file.
	out := filepath.Join(t.TempDir(), "failed")
	code, _, _ = runScanApp(t, "--netns", l.Prober.Name, "scan", "-p", "22", "-oA", out, "198.18.9.9")
	if code != exitEnv {
		t.Errorf("scan with no route: exit %d, want %d", code, exitEnv)
	}
	if left, _ := filepath.Glob(out + "*"); len(left) > 0 {
		t.Errorf("a failed scan left %v", left)
	}
}

func TestScanTargetUsageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	for _, args := range [][]string{
		{"scan", "-iL", filepath.Join(dir, "missing")},
		{"scan", "-iL", empty},
		{"scan", "198.18.0.5-2"},
		{"scan", "198.18.0.2", "--exclude", "198.18.0.0/24"},
		{"scan", "-p", "nosuchservice", "198.18.0.2"},
		{"scan", "--top-ports", "0", "198.18.0.2"},
		{"scan", "--top-ports", "10", "-p", "22", "198.18.0.2"},
		{"scan", "-oA", "-", "198.18.0.2"},
		{"scan", "-oX", "-", "-oG", "-", "198.18.0.2"},
		{"scan", "-oX", "-", "--json", "198.18.0.2"},
		{"merge"},
		{"merge", "--json", "--grepable", "x.json"},
	} {
		code, _, stderr := runScanApp(t, args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "tcpwalk: ") {
			t.Errorf("tcpwalk %s: exit %d, stderr %q; want exit %d and a message", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
	code, _, stderr := runScanApp(t, "scan", "-oX", filepath.Join(dir, "no", "such", "dir.xml"), "198.18.0.2")
	if code != exitEnv || !strings.Contains(stderr, "-oX") {
		t.Errorf("unwritable -oX: exit %d, %q; want exit %d naming -oX", code, stderr, exitEnv)
	}

}

// runTcpwalk runs the built binary with args and stdin, bounded to 60 s.
func runTcpwalk(t *testing.T, stdin string, args ...string) (stdout string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tcpwalkBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpwalk %s: %v\nstderr:\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String()
}

// verdictLines are the lines of a JSON output that say what was found (host, port, not_shown, skipped), and
// the summary's counts of states and targets: what a merge must give exactly as one run.
func verdictLines(t *testing.T, out string) []string {
	t.Helper()
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["event"] == "summary" {
			line = fmt.Sprintf("summary: type %v hosts %v ports %v seed %v targets %v probed %v skipped %v states %v",
				m["type"], m["hosts"], m["ports"], m["seed"], m["targets"], m["probed"], m["skipped"], m["states"])
		}
		keep = append(keep, line)
	}
	return keep
}

// N shards of a scan, run as separate processes (targets read from stdin with -iL -), written as JSON and
// XML, merged: exactly the result of one run of the whole scan.
func TestMergeShardsAsProcesses(t *testing.T) {
	l := scanCLILab(t, []uint16{22, 80, 7000})
	dir := t.TempDir()
	const n = 3
	scan := []string{"--netns", l.Prober.Name, "scan", "-p", "1-200,7000", "--rate", "20000", "--wait", "200ms", "--seed", "1234", "-iL", "-"}
	targets := "198.18.0.2-4\n"
	var files []string
	for i := 1; i <= n; i++ {
		shard := []string{"--shard", fmt.Sprintf("%d/%d", i, n)}
		f := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		if i == 2 {
			f += ".xml"
			runTcpwalk(t, targets, append(append(slices.Clone(scan), shard...), "-oX", f)...)
		} else {
			f += ".json"
			out := runTcpwalk(t, targets, append(append(slices.Clone(scan), shard...), "--json")...)
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		files = append(files, f)
	}
	merged := runTcpwalk(t, "", append([]string{"merge", "--json"}, files...)...)
	single := runTcpwalk(t, targets, append(slices.Clone(scan), "--json")...)
	want, got := verdictLines(t, single), verdictLines(t, merged)
	if !slices.Equal(want, got) {
		t.Errorf("merged shards differ from one run:\none run:\n%s\nmerged:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	if !strings.Contains(merged, `"port":7000`) || !strings.Contains(merged, `"status":"up"`) {
		t.Errorf("merged output lacks the open port 7000 or the host status:\n%s", merged)
	}

	// The merge writes valid XML, and refuses an incomplete set of shards.
	mx := filepath.Join(dir, "merged.xml")
	runTcpwalk(t, "", append([]string{"merge", "-oX", mx}, files...)...)
	validXML(t, mx)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tcpwalkBinary(t), "merge", files[0], files[2]).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "shard 2 of 3 is missing") {
		t.Errorf("merge without shard 2: %v\n%s\nwant exit %d naming shard 2", err, out, exitUsage)
	}
}
