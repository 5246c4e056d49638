package main

import (
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// TestConformCLI runs `tcpwalk conform` against a fresh lab's Linux target:
// exit status 0, every check pass or a named deviation, the JSON parses,
// and the JUnit and pcap files are written.
func TestConformCLI(t *testing.T) {
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	dir := t.TempDir()
	junit, pcap := filepath.Join(dir, "conform.xml"), filepath.Join(dir, "conform.pcapng")
	r := runApp(t, "--netns", l.Prober.Name, "conform", "--oracle-netns", l.Target.Name, "--json",
		"--junit", junit, "--pcap", pcap, target)
	if r.code != exitOK {
		t.Fatalf("exit status %d, want 0; stderr: %s", r.code, r.stderr)
	}
	var got struct {
		Verdict string `json:"verdict"`
		Trigger string `json:"trigger"`
		Oracle  bool   `json:"oracle"`
		Checks  []struct {
			ID         string   `json:"id"`
			Verdict    string   `json:"verdict"`
			Deviations []string `json:"deviations"`
			Kernel     string   `json:"kernel_state"`
			Wire       string   `json:"wire_state"`
		} `json:"checks"`
		Measurements []struct {
			ID string `json:"id"`
			OK bool   `json:"ok"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	if got.Trigger != "lab" || !got.Oracle {
		t.Errorf("trigger %q, oracle %v: want the lab's trigger and oracle, found from --netns", got.Trigger, got.Oracle)
	}
	if len(got.Checks) != len(conform.Checks()) {
		t.Errorf("%d checks, want %d", len(got.Checks), len(conform.Checks()))
	}
	for _, c := range got.Checks {
		switch {
		case c.Verdict == "pass":
		case c.Verdict == "deviation" && len(c.Deviations) > 0:
		default:
			t.Errorf("%s: verdict %s, deviations %v: want pass or a named deviation", c.ID, c.Verdict, c.Deviations)
		}
		if c.Wire != "" && c.Kernel != c.Wire {
			t.Errorf("%s: wire says %s, kernel says %s", c.ID, c.Wire, c.Kernel)
		}
	}
	if len(got.Measurements) != len(conform.Measurements()) {
		t.Errorf("%d measurements, want %d", len(got.Measurements), len(conform.Measurements()))
	}
	for _, m := range got.Measurements {
		if !m.OK {
			t.Errorf("measurement %s: not measured", m.ID)
		}
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatalf("--junit: %v", err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("--junit file does not parse: %v", err)
	}
	if suites.Tests != len(conform.Checks()) || suites.Failures != 0 {
		t.Errorf("JUnit: %d tests, %d failures; want %d and 0", suites.Tests, suites.Failures, len(conform.Checks()))
	}
	if st, err := os.Stat(pcap); err != nil || st.Size() == 0 {
		t.Errorf("--pcap file: %v (size %v)", err, st)
	}
}

// TestConformCLIStatuses: the table, --strict, an unreachable target and
// usage mistakes map to their exit statuses.
func TestConformCLIStatuses(t *testing.T) {
	l := labtest.New(t)
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()
	ns := l.Prober.Name

	r := runApp(t, "--netns", ns, "conform", "--only", "TIME_WAIT/*", "--only", "SYN_RCVD/syn-retransmit", target)
	if r.code != exitOK {
		t.Errorf("table: exit status %d, want 0", r.code)
	}
	// TIME_WAIT/rst-in-window is no deviation: a TIME-WAIT that drops an
	// in-window RST does what the RFC allows.
	for _, want := range []string{"TIME_WAIT/syn-higher-seq", "synack-on-retransmitted-syn", "TIME_WAIT/fingerprint",
		"ISS = old SND.NXT + 65537 (Linux)", " 1 deviation, 0 fail, 0 inconclusive, 0 skipped", "Stack profile", "rfc1337 "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table: no %q", want)
		}
	}

	if r := runApp(t, "--netns", ns, "conform", "--strict", "--only", "SYN_RCVD/syn-retransmit", target); r.code != exitNoReply {
		t.Errorf("--strict with a deviation: exit status %d, want %d", r.code, exitNoReply)
	}

	// Nobody has 198.18.0.77: no check gets an answer.
	silent := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, 77}), 80).String()
	r = runApp(t, "--netns", ns, "conform", "--only", "ESTABLISHED/syn", "--tries", "1", "--reply-timeout", "200ms", silent)
	if r.code != exitEnv || !strings.Contains(r.stderr, "answered none of the checks") {
		t.Errorf("unreachable target: exit status %d, stderr %q; want %d and a message", r.code, r.stderr, exitEnv)
	}

	for _, args := range [][]string{
		{"conform"},
		{"conform", target, target},
		{"conform", "--only", "NOSUCH/*", target},
		{"conform", "--only", "[", target},
		{"conform", "--tries", "0", target},
		{"conform", "--close-trigger", "bogus", target},
	} {
		r := runApp(t, append([]string{"--netns", ns}, args...)...)
		if r.code != exitUsage {
			t.Errorf("%q: exit status %d, want %d", args, r.code, exitUsage)
		}
		if n := len(lines(r.stderr)); n != 1 {
			t.Errorf("%q: %d lines on stderr, want 1", args, n)
		}
	}
}
