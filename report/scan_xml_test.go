package report

import (
	"bytes"
	"encoding/xml"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// sampleScan is a whole scan (shard 1/1) of 198.18.0.0/30 × ports 1-30, built through scan.Merge from verdicts:
// .1 has 22 open, 25 filtered by an ICMP error from a router and the rest closed; .2 answers ARP only; .0 and
// .3 are silent.
func sampleScan(t *testing.T) *scan.Result {
	t.Helper()
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	p := scan.Part{Name: "sample", Type: scan.TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/30")},
		Ports: []scan.PortRange{{Lo: 1, Hi: 30}}, Seed: 3, Retries: 1, Shard: scan.Shard{Index: 1, Count: 1},
		Local: netip.MustParseAddrPort("198.18.0.9:40000"), Rate: 1000, Targets: 120, Probed: 120, Sent: 200, Retried: 80,
		Replies: 30, Start: start, End: start.Add(1500 * time.Millisecond), SendTime: 200 * time.Millisecond,
		ARPUp: []netip.Addr{netip.MustParseAddr("198.18.0.2")}}
	h := netip.MustParseAddr("198.18.0.1")
	closed := scan.Reason{Kind: scan.ReasonReset}
	p.Verdicts = []scan.Verdicts{
		{Addr: h, Ports: []scan.PortRange{{Lo: 1, Hi: 21}, {Lo: 23, Hi: 24}, {Lo: 26, Hi: 30}}, State: scan.Closed, Reason: closed},
		{Addr: h, Ports: []scan.PortRange{{Lo: 22, Hi: 22}}, State: scan.Open, Reason: scan.Reason{Kind: scan.ReasonSynAck}},
		{Addr: h, Ports: []scan.PortRange{{Lo: 25, Hi: 25}}, State: scan.Filtered,
			Reason: scan.Reason{Kind: scan.ReasonICMP, ICMPType: 3, ICMPCode: 13, From: netip.MustParseAddr("198.18.0.254")}},
	}
	r, err := scan.Merge([]scan.Part{p})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type verdict struct {
	Addr   string
	Port   uint16
	State  scan.State
	Reason string
}

func verdictsOf(r *scan.Result) []verdict {
	var out []verdict
	for _, h := range r.HostResults() {
		for pr := range r.PortResults(h.Addr) {
			out = append(out, verdict{pr.Addr.String(), pr.Port, pr.State, pr.Reason.String()})
		}
	}
	return out
}

func statusOf(r *scan.Result) map[string]string {
	out := map[string]string{}
	for _, h := range r.HostResults() {
		out[h.Addr.String()] = h.Status.String() + " " + h.StatusReason.String()
	}
	return out
}

// nmapDTD is the DTD Debian's nmap-common installs.
const nmapDTD = "/usr/share/nmap/nmap.dtd"

// needTool returns the path of a tool the test needs; without it the test skips, unless CI=true, where .ci/run
// installs it and the test fails instead.
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

// The XML output is valid against nmap's DTD (xmllint, an independent validator), has nmap's structure
// (read with a plain XML parse), and reads back to the same verdicts.
func TestScanXML(t *testing.T) {
	r := sampleScan(t)
	var b bytes.Buffer
	svc := scan.BuiltinServices()
	if err := (&ScanPrinter{W: &b, Format: ScanXML, Args: []string{"tcpwalk", "scan", "-p", "1-30", "198.18.0.0/30"}, Services: svc}).Print(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("XML:\n%s", b.String())

	xmllint := needTool(t, "xmllint", "libxml2-utils")
	if _, err := os.Stat(nmapDTD); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (Debian package nmap-common): .ci/run installs it", nmapDTD, err)
		}
		t.Skipf("%s: %v", nmapDTD, err)
	}
	f := filepath.Join(t.TempDir(), "scan.xml")
	if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--dtdvalid", nmapDTD, f).CombinedOutput(); err != nil {
		t.Errorf("xmllint --dtdvalid %s: %v\n%s", nmapDTD, err, out)
	}

	// The structure, as a consumer of nmap's XML reads it.
	var doc struct {
		XMLName  xml.Name `xml:"nmaprun"`
		Scanner  string   `xml:"scanner,attr"`
		Args     string   `xml:"args,attr"`
		ScanInfo struct {
			Type        string `xml:"type,attr"`
			Protocol    string `xml:"protocol,attr"`
			NumServices string `xml:"numservices,attr"`
			Services    string `xml:"services,attr"`
		} `xml:"scaninfo"`
		Hosts []struct {
			Status struct {
				State  string `xml:"state,attr"`
				Reason string `xml:"reason,attr"`
			} `xml:"status"`
			Address struct {
				Addr string `xml:"addr,attr"`
				Type string `xml:"addrtype,attr"`
			} `xml:"address"`
			Extra []struct {
				State   string `xml:"state,attr"`
				Count   string `xml:"count,attr"`
				Reasons []struct {
					Reason string `xml:"reason,attr"`
					Count  string `xml:"count,attr"`
					Ports  string `xml:"ports,attr"`
				} `xml:"extrareasons"`
			} `xml:"ports>extraports"`
			Ports []struct {
				Proto string `xml:"protocol,attr"`
				ID    string `xml:"portid,attr"`
				State struct {
					State    string `xml:"state,attr"`
					Reason   string `xml:"reason,attr"`
					ReasonIP string `xml:"reason_ip,attr"`
				} `xml:"state"`
				Service struct {
					Name string `xml:"name,attr"`
				} `xml:"service"`
			} `xml:"ports>port"`
		} `xml:"host"`
		Finished struct {
			Exit    string `xml:"exit,attr"`
			Elapsed string `xml:"elapsed,attr"`
		} `xml:"runstats>finished"`
		RunHosts struct {
			Up    string `xml:"up,attr"`
			Down  string `xml:"down,attr"`
			Total string `xml:"total,attr"`
		} `xml:"runstats>hosts"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if doc.Scanner != "nmap" || doc.Args != "tcpwalk scan -p 1-30 198.18.0.0/30" || doc.ScanInfo.Type != "syn" ||
		doc.ScanInfo.Protocol != "tcp" || doc.ScanInfo.NumServices != "30" || doc.ScanInfo.Services != "1-30" {
		t.Errorf("nmaprun and scaninfo: %+v", doc)
	}
	if len(doc.Hosts) != 2 {
		t.Fatalf("%d hosts, want the 2 up ones (down hosts are left out)", len(doc.Hosts))
	}
	h1, h2 := doc.Hosts[0], doc.Hosts[1]
	if h1.Address.Addr != "198.18.0.1" || h1.Address.Type != "ipv4" || h1.Status.State != "up" || h1.Status.Reason != "syn-ack" {
		t.Errorf("host 1: %+v", h1)
	}
	if len(h1.Extra) != 1 || h1.Extra[0].State != "closed" || h1.Extra[0].Count != "28" || len(h1.Extra[0].Reasons) != 1 ||
		h1.Extra[0].Reasons[0].Ports != "1-21,23-24,26-30" || h1.Extra[0].Reasons[0].Reason != "reset" {
		t.Errorf("host 1 extraports: %+v", h1.Extra)
	}
	if len(h1.Ports) != 2 || h1.Ports[0].ID != "22" || h1.Ports[0].State.State != "open" || h1.Ports[0].State.Reason != "syn-ack" ||
		h1.Ports[0].Service.Name != "ssh" || h1.Ports[1].ID != "25" || h1.Ports[1].State.State != "filtered" ||
		h1.Ports[1].State.Reason != "admin-prohibited" || h1.Ports[1].State.ReasonIP != "198.18.0.254" {
		t.Errorf("host 1 ports: %+v", h1.Ports)
	}
	if h2.Address.Addr != "198.18.0.2" || h2.Status.State != "up" || h2.Status.Reason != "arp-response" ||
		len(h2.Extra) != 1 || h2.Extra[0].State != "filtered" || h2.Extra[0].Count != "30" {
		t.Errorf("host 2 (up on ARP alone): %+v", h2)
	}
	if doc.Finished.Exit != "success" || doc.Finished.Elapsed != "1.50" || doc.RunHosts.Up != "2" || doc.RunHosts.Down != "2" || doc.RunHosts.Total != "4" {
		t.Errorf("runstats: %+v %+v", doc.Finished, doc.RunHosts)
	}

	// Back through tcpwalk's reader: the same verdicts and statuses.
	p, err := ReadScan(bytes.NewReader(b.Bytes()), "scan.xml")
	if err != nil {
		t.Fatal(err)
	}
	back, err := scan.Merge([]scan.Part{p})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(verdictsOf(r), verdictsOf(back)); d != "" {
		t.Errorf("verdicts after XML and back (-want +got):\n%s", d)
	}
	if d := cmp.Diff(statusOf(r), statusOf(back)); d != "" {
		t.Errorf("host status after XML and back (-want +got):\n%s", d)
	}
}

// The JSON output reads back to the same verdicts, also with ports summed up in not_shown.
func TestScanJSONReadBack(t *testing.T) {
	r := sampleScan(t)
	for _, all := range []bool{false, true} {
		var b bytes.Buffer
		if err := (&ScanPrinter{W: &b, Format: ScanJSON, All: all}).Print(r); err != nil {
			t.Fatal(err)
		}
		if !all && !strings.Contains(b.String(), `"reasons":[{"reason":"reset","count":28,"ports":"1-21,23-24,26-30"}]`) {
			t.Errorf("not_shown lacks its port list:\n%s", b.String())
		}
		p, err := ReadScan(&b, "scan.json")
		if err != nil {
			t.Fatal(err)
		}
		back, err := scan.Merge([]scan.Part{p})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(verdictsOf(r), verdictsOf(back)); d != "" {
			t.Errorf("all=%v: verdicts after JSON and back (-want +got):\n%s", all, d)
		}
		if d := cmp.Diff(statusOf(r), statusOf(back)); d != "" {
			t.Errorf("all=%v: host status after JSON and back (-want +got):\n%s", all, d)
		}
		if back.Seed != 3 || back.Sent != 200 || back.Retries != 1 || !back.Start.Equal(r.Start) {
			t.Errorf("all=%v: summary after JSON and back: seed %d sent %d retries %d start %v", all, back.Seed, back.Sent, back.Retries, back.Start)
		}
	}
}

func TestReadScanRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"text", "tcpwalk syn scan of 198.18.0.2\n", "cannot be merged"},
		{"no summary", `{"event":"port","host":"198.18.0.2","port":22,"proto":"tcp","state":"open","reason":"syn-ack"}`, "no summary"},
		{"bad JSON", `{"event":`, "object 1"},
		{"unknown event", `{"event":"walk"}`, "unknown event"},
		{"bad state", `{"event":"port","host":"198.18.0.2","port":22,"state":"ajar","reason":"syn-ack"}`, "unknown port state"},
		{"nmap's own XML", `<?xml version="1.0"?><nmaprun scanner="nmap" version="7.94"><runstats/></nmaprun>`, "only tcpwalk's own"},
		{"broken XML", `<nmaprun scanner="nmap"`, "not nmap XML"},
	} {
		if _, err := ReadScan(strings.NewReader(tc.in), tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadScan error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

// FuzzReadScan: no input panics the reader of scan outputs, nor the merge of what it reads.
func FuzzReadScan(f *testing.F) {
	for _, s := range []string{
		`{"event":"summary","type":"syn","hosts":["198.18.0.2/32"],"ports":"1-3","shard":"1/1","seed":1,"targets":3,"probed":3}`,
		`{"event":"not_shown","host":"198.18.0.2","state":"closed","count":2,"reason":"reset","reasons":[{"reason":"reset","count":2,"ports":"1-2"}]}` + "\n" +
			`{"event":"summary","type":"syn","hosts":["198.18.0.2/32"],"ports":"1-3","shard":"1/1","seed":1,"targets":3,"probed":3}`,
		`<nmaprun scanner="nmap" version="tcpwalk"><!-- tcpwalk-summary {"type":"syn","hosts":["198.18.0.2/32"],"ports":"1","shard":"1/1"} --><host><status state="up"/><address addr="198.18.0.2"/><ports><port portid="1"><state state="open" reason="syn-ack"/></port></ports></host></nmaprun>`,
		`<nmaprun`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ReadScan(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		// A merge of a large scan only takes time: up to 4096 targets.
		hosts, ports := 0, 0
		for _, h := range p.Hosts {
			if h.Bits() < 20 {
				return
			}
			hosts += 1 << (32 - h.Bits())
		}
		for _, r := range p.Ports {
			ports += int(r.Hi) - int(r.Lo) + 1
		}
		if hosts*ports > 4096 {
			return
		}
		scan.Merge([]scan.Part{p})
	})
}

// sampleScan6 is sampleScan's IPv6 twin: 2001:2::/126 × ports 1-30; ::1 has 22 open, 25 filtered by an ICMPv6
// administratively prohibited (1/1) from a router and the rest closed; ::2 answers neighbour discovery only.
func sampleScan6(t *testing.T) *scan.Result {
	t.Helper()
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	p := scan.Part{Name: "sample6", Type: scan.TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("2001:2::/126")},
		Ports: []scan.PortRange{{Lo: 1, Hi: 30}}, Seed: 3, Retries: 1, Shard: scan.Shard{Index: 1, Count: 1},
		Local: netip.MustParseAddrPort("[2001:2::9]:40000"), Rate: 1000, Targets: 120, Probed: 120, Sent: 200, Retried: 80,
		Replies: 30, Start: start, End: start.Add(1500 * time.Millisecond), SendTime: 200 * time.Millisecond,
		ARPUp: []netip.Addr{netip.MustParseAddr("2001:2::2")}}
	h := netip.MustParseAddr("2001:2::1")
	p.Verdicts = []scan.Verdicts{
		{Addr: h, Ports: []scan.PortRange{{Lo: 1, Hi: 21}, {Lo: 23, Hi: 24}, {Lo: 26, Hi: 30}}, State: scan.Closed, Reason: scan.Reason{Kind: scan.ReasonReset}},
		{Addr: h, Ports: []scan.PortRange{{Lo: 22, Hi: 22}}, State: scan.Open, Reason: scan.Reason{Kind: scan.ReasonSynAck}},
		{Addr: h, Ports: []scan.PortRange{{Lo: 25, Hi: 25}}, State: scan.Filtered,
			Reason: scan.Reason{Kind: scan.ReasonICMP, ICMPType: 1, ICMPCode: 1, ICMPv6: true, From: netip.MustParseAddr("2001:2::fe")}},
	}
	r, err := scan.Merge([]scan.Part{p})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every output format carries IPv6 addresses as they are written (RFC 5952), nmap's addrtype ipv6 and nmap's
// ICMPv6 reason names, and the JSON and XML outputs read back to the same verdicts.
func TestScanIPv6Outputs(t *testing.T) {
	r := sampleScan6(t)
	for _, tc := range []struct {
		f    ScanFormat
		want []string
	}{
		{ScanText, []string{"2001:2::1", "22/tcp", "open", "25/tcp", "filtered"}},
		{ScanGrepable, []string{"Host: 2001:2::1 ()\tPorts: 22/open/tcp/////, 25/filtered/tcp/////", "Host: 2001:2::2 ()\tStatus: Up"}},
		{ScanJSON, []string{`"host":"2001:2::1","port":25,"proto":"tcp","state":"filtered","reason":"icmp","icmp_type":1,"icmp_code":1,"icmp_from":"2001:2::fe"`,
			`"source":"[2001:2::9]:40000"`, `"hosts":["2001:2::/126"]`}},
		{ScanXML, []string{`<address addr="2001:2::1" addrtype="ipv6">`, `reason="admin-prohibited"`, `reason_ip="2001:2::fe"`}},
	} {
		var b bytes.Buffer
		if err := (&ScanPrinter{W: &b, Format: tc.f, Reason: true}).Print(r); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("format %d: no %q in\n%s", tc.f, w, b.String())
			}
		}
		if strings.Contains(b.String(), "ipv4") || strings.Contains(b.String(), "198.18.") {
			t.Errorf("format %d: an IPv4 trace in an IPv6 scan's output:\n%s", tc.f, b.String())
		}
		if tc.f == ScanText && !strings.Contains(b.String(), "icmpv6 1/1 from 2001:2::fe") {
			t.Errorf("text with --reason: no icmpv6 1/1 from 2001:2::fe in\n%s", b.String())
		}
		if tc.f != ScanJSON && tc.f != ScanXML {
			continue
		}
		p, err := ReadScan(bytes.NewReader(b.Bytes()), "scan")
		if err != nil {
			t.Fatalf("format %d: read back: %v", tc.f, err)
		}
		back, err := scan.Merge([]scan.Part{p})
		if err != nil {
			t.Fatalf("format %d: merge back: %v", tc.f, err)
		}
		if d := cmp.Diff(verdictsOf(r), verdictsOf(back)); d != "" {
			t.Errorf("format %d: verdicts after the output and back (-want +got):\n%s", tc.f, d)
		}
		if d := cmp.Diff(statusOf(r), statusOf(back)); d != "" {
			t.Errorf("format %d: host status after the output and back (-want +got):\n%s", tc.f, d)
		}
	}
}
