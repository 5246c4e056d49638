package script_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/script"
)

// suiteDir finds the FreeBSD tcp-testsuite scripts beside the checkout
// (../shared/suites/ from the module root), walking up from here.
func suiteDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		d := filepath.Join(dir, "..", "shared", "suites", "freebsd-tcp-testsuite-state-event-engine")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("the FreeBSD suite is not at ../shared/suites/freebsd-tcp-testsuite-state-event-engine beside the checkout")
		}
		dir = up
	}
}

// suiteScripts parses every IPv4 script of the FreeBSD suite.
func suiteScripts(t testing.TB) []*script.Script {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(suiteDir(t), "*-ipv4.pkt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts in the FreeBSD suite: %v", err)
	}
	var out []*script.Script
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := script.Parse(filepath.Base(p), src)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// TestParseFreeBSDSuite: every script of FreeBSD's state-event-engine
// suite parses (its system calls, shell lines and options mapped), and
// each records what it assumes about the remote.
func TestParseFreeBSDSuite(t *testing.T) {
	ss := suiteScripts(t)
	if len(ss) != 307 {
		t.Errorf("%d scripts parsed, want 307", len(ss))
	}
	kinds := map[script.EventKind]int{}
	for _, s := range ss {
		if !s.Packetdrill || len(s.Assumptions) == 0 {
			t.Errorf("%s: no packetdrill system calls or no assumptions recorded", s.Name)
		}
		if !s.Listens && !s.Dials {
			kinds[0]++ // a CLOSED socket: the target port must be closed
		}
		for _, e := range s.Events {
			kinds[e.Kind]++
		}
	}
	for _, k := range []script.EventKind{script.Packet, script.Dial, script.App, script.ExpectState, script.Note} {
		if kinds[k] == 0 {
			t.Errorf("no event of kind %d in the suite: a mapping is missing", k)
		}
	}
	t.Logf("events by kind: %v", kinds)
}
