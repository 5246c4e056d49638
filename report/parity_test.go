package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/firewall"
)

// sampleParity: the sample matrix on IPv4, and on IPv6 the same but the FIN
// scan delivered (an IPv6 side left open).
func sampleParity() *firewall.Parity {
	v4, v6 := sampleMatrix(), sampleMatrix()
	v6.Target, v6.Local = netip.MustParseAddrPort("[2001:2:0:2::2]:7001"), netip.MustParseAddr("2001:2::1")
	v6.Cells[1].Outcome, v6.Cells[1].Detail = firewall.Delivered, "arrived unchanged"
	v6.Cells[2].RejectedBy = netip.MustParseAddr("2001:2:0:2::2")
	return firewall.CompareFamilies(v4, v6)
}

// TestWriteParity: the text report opens with the finding, the differing
// row with both outcomes and what each rests on, before either matrix; a
// run without difference says so first.
func TestWriteParity(t *testing.T) {
	p := sampleParity()
	var b bytes.Buffer
	if err := WriteParity(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	finding := strings.Index(out, "FINDING: 1 of 4 compared rows differ between IPv4 and IPv6")
	row := strings.Index(out, "IPv4 dropped: never reached the target\n  IPv6 delivered: arrived unchanged")
	matrix := strings.Index(out, "firewall matrix 198.18.2.2:7001")
	matrix6 := strings.Index(out, "firewall matrix [2001:2:0:2::2]:7001")
	if finding < 0 || row < 0 || matrix < 0 || matrix6 < 0 || !(finding < row && row < matrix && matrix < matrix6) {
		t.Errorf("want the finding, the row, then the IPv4 and IPv6 matrices, in that order:\n%s", out)
	}
	if !strings.Contains(out, "parity: 1 of 4 compared rows differ; verdict fail\n") {
		t.Errorf("summary line missing:\n%s", out)
	}
	b.Reset()
	same := firewall.CompareFamilies(sampleMatrix(), sampleMatrix())
	if err := WriteParity(&b, same); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.SplitN(b.String(), "\n", 3)[1], "no difference: each of the 4 compared rows") {
		t.Errorf("no-difference run:\n%s", b.String())
	}
	// Interrupted before the IPv6 matrix ran: never "no difference".
	cut := sampleMatrix()
	cut.Interrupted = true
	for i := range cut.Cells {
		cut.Cells[i].Outcome = firewall.Interrupted
	}
	b.Reset()
	if err := WriteParity(&b, firewall.CompareFamilies(sampleMatrix(), cut)); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "no difference:") || !strings.Contains(out, "interrupted: no difference among the 0 rows compared") ||
		!strings.Contains(out, "verdict interrupted") {
		t.Errorf("interrupted run:\n%s", out)
	}
}

// TestWriteParityJSON: the IPv4 matrix keeps its name ("matrix"), the IPv6
// one and the comparison are new fields; lists are never null.
func TestWriteParityJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteParityJSON(&b, sampleParity()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Event   string                  `json:"event"`
		Matrix  struct{ Target string } `json:"matrix"`
		Matrix6 struct{ Target string } `json:"matrix6"`
		Parity  struct {
			Differences []map[string]string `json:"differences"`
			Uncompared  []any               `json:"uncompared"`
			Verdict     string              `json:"verdict"`
		} `json:"parity"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if got.Event != "firewall" || got.Matrix.Target != "198.18.2.2:7001" || got.Matrix6.Target != "[2001:2:0:2::2]:7001" {
		t.Errorf("event %q, matrix %q, matrix6 %q", got.Event, got.Matrix.Target, got.Matrix6.Target)
	}
	d := got.Parity.Differences
	if len(d) != 1 || d[0]["probe"] != "FIN scan" || d[0]["ipv4"] != "dropped" || d[0]["ipv6"] != "delivered" || got.Parity.Verdict != "fail" {
		t.Errorf("parity %+v", got.Parity)
	}
	if !strings.Contains(b.String(), `"uncompared":[]`) {
		t.Errorf("uncompared is not an empty list: %s", b.String())
	}
}

// TestParityJUnit: the differing row is a failure of the "firewall parity"
// test case; the rows that agree are not.
func TestParityJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, "tcpwalk firewall", sampleParity().Results()); err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Cases []struct {
			Name     string `xml:"name,attr"`
			Failures []struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(b.Bytes(), &suite); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	var failed []string
	for _, c := range suite.Cases {
		if len(c.Failures) > 0 {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "parity") {
		t.Errorf("failed test cases %q, want the parity case only:\n%s", failed, b.String())
	}
	if !strings.Contains(b.String(), "none / FIN scan") {
		t.Errorf("the failing row is not named:\n%s", b.String())
	}
}
