package report

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

var update = flag.Bool("update", false, "rewrite report/testdata/*.golden from today's output")

// golden compares got with testdata/name byte for byte, so that a change of
// the result model cannot change a JSON field name or value, a JUnit
// attribute or a line of text unnoticed. go test ./report -run Golden
// -update rewrites the files; review the diff before committing it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -run Golden -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s changed (-want +got):\n%s", path, diff)
	}
}

// kernelErrorWalk has a check whose kernel read failed: JSON and text say
// "error: " and the error, as they always have.
func kernelErrorWalk() walk.Result {
	r := handshakeWalk()
	r.Scenario, r.Verdict = "kernel-error", walk.Pass
	r.Checks = append([]walk.Check(nil), r.Checks...)
	r.Checks[1].Kernel = result.NoState
	r.Checks[1].KernelErr = errors.New("sockdiag: dump TCP sockets in namespace mdl-t: permission denied")
	r.Checks[1].Disagree = true
	r.Disagreements = 1
	return r
}

func TestGoldenWalk(t *testing.T) {
	walks := append(someWalks(), kernelErrorWalk())
	var j, x, s, l bytes.Buffer
	if err := WriteWalkJSON(&j, walks); err != nil {
		t.Fatal(err)
	}
	if err := WriteJUnit(&x, "tcpwalk walk", walks); err != nil {
		t.Fatal(err)
	}
	if err := WalkSummary(&s, walks, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range walks {
		if err := WriteLadder(&l, r, LadderOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "walk.json.golden", j.Bytes())
	golden(t, "walk.junit.golden", x.Bytes())
	golden(t, "walk.txt.golden", s.Bytes())
	golden(t, "ladder.txt.golden", l.Bytes())
}

func TestGoldenConform(t *testing.T) {
	var j, s bytes.Buffer
	if err := WriteConformJSON(&j, someConform()); err != nil {
		t.Fatal(err)
	}
	if err := WriteConformTableWidth(&s, someConform(), false, 120); err != nil {
		t.Fatal(err)
	}
	golden(t, "conform.json.golden", j.Bytes())
	golden(t, "conform.txt.golden", s.Bytes())
}

func TestGoldenFirewall(t *testing.T) {
	m := sampleMatrix()
	m.Judge(firewall.PolicyStateless)
	tr := &firewall.Trace{Target: m.Target, Rewrites: []firewall.Rewrite{{Hop: 1, By: netip.MustParseAddr("198.18.0.254"),
		Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: "1000"}}}}}
	var j, s bytes.Buffer
	if err := WriteFirewallJSON(&j, m, tr); err != nil {
		t.Fatal(err)
	}
	if err := WriteFirewall(&s, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteTrace(&s, tr); err != nil {
		t.Fatal(err)
	}
	golden(t, "firewall.json.golden", j.Bytes())
	golden(t, "firewall.txt.golden", s.Bytes())
}
