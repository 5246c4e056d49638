package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// A skipped broadcast address is reported as skipped, with its reason, in every format; never as filtered.
func TestScanSkippedPrinted(t *testing.T) {
	now := time.Now()
	r := &scan.Result{Type: scan.TypeSYN, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
		Ports: []scan.PortRange{{Lo: 80, Hi: 80}}, Targets: 256, Probed: 255, Sent: 255, SkippedTargets: 1,
		Skipped: []scan.SkippedHost{{Addr: netip.MustParseAddr("198.18.0.255"), Reason: "the broadcast address of 198.18.0.0/24 on v0", Targets: 1}},
		Start:   now, End: now.Add(time.Second)}
	for _, tc := range []struct {
		f    ScanFormat
		want []string
	}{
		{f: ScanText, want: []string{"Skipped 198.18.0.255 (1 tcp ports): the broadcast address of 198.18.0.0/24 on v0", "Done: 256 targets (1 skipped),"}},
		{f: ScanGrepable, want: []string{"Host: 198.18.0.255 ()\tStatus: Skipped\tReason: the broadcast address of 198.18.0.0/24 on v0\n", ", 1 skipped, in "}},
		{f: ScanJSON, want: []string{`{"event":"skipped","host":"198.18.0.255","reason":"the broadcast address of 198.18.0.0/24 on v0","targets":1}`, `"skipped":1,`}},
	} {
		var b bytes.Buffer
		if err := (&ScanPrinter{W: &b, Format: tc.f}).Print(r); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("format %d: no %q in\n%s", tc.f, w, b.String())
			}
		}
		if strings.Contains(b.String(), "filtered") {
			t.Errorf("format %d: the skipped address reads as filtered:\n%s", tc.f, b.String())
		}
		if tc.f == ScanJSON {
			for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("invalid JSON line %q", line)
				}
			}
		}
	}
}
