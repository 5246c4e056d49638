package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

func TestWriteCoverage(t *testing.T) {
	cov := []walk.Coverage{
		{State: result.Listen, By: []string{"handshake", "syn-rcvd"}, Kernel: true},
		{State: result.Closing, By: []string{"simultaneous-close"}},
		{State: result.SynSent, Kernel: true},
	}
	for _, tc := range []struct {
		name   string
		oracle bool
		header string
	}{
		{"oracle", true, "The 11 states of RFC 9293, each seen on the wire and in the target kernel (sock_diag):"},
		{"wire only", false, "The 11 states of RFC 9293, each seen on the wire (no kernel-state oracle for this target):"},
	} {
		var b bytes.Buffer
		WriteCoverage(&b, cov, tc.oracle)
		want := []string{"", tc.header,
			"  LISTEN       confirmed  by handshake, syn-rcvd",
			"  CLOSING      wire only  by simultaneous-close",
			"  SYN_SENT     NOT SEEN   by ",
		}
		if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")); diff != "" {
			t.Errorf("%s: WriteCoverage (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestWriteSkipReasons(t *testing.T) {
	results := []walk.Result{
		{Scenario: "a.pkt", Verdict: walk.Skipped, Reason: "line 3: uses a system call tcpwalk cannot make: `setsockopt(...)`"},
		{Scenario: "b.pkt", Verdict: walk.Pass},
	}
	var b bytes.Buffer
	WriteSkipReasons(&b, results)
	if got := b.String(); !strings.HasPrefix(got, "skipped, by reason:\n     1  ") {
		t.Errorf("WriteSkipReasons = %q, want a header and one reason counted once", got)
	}
	b.Reset()
	WriteSkipReasons(&b, results[1:])
	if b.Len() != 0 {
		t.Errorf("WriteSkipReasons without skipped scripts wrote %q, want nothing", b.String())
	}
}
