package report_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
)

// The JUnit shape the tests read back, independent of report's own types.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name      string  `xml:"name,attr"`
	Tests     int     `xml:"tests,attr"`
	Failures  int     `xml:"failures,attr"`
	Errors    int     `xml:"errors,attr"`
	Skipped   int     `xml:"skipped,attr"`
	Time      string  `xml:"time,attr"`
	Timestamp string  `xml:"timestamp,attr"`
	Cases     []xCase `xml:"testcase"`
}

type xCase struct {
	ClassName string    `xml:"classname,attr"`
	Name      string    `xml:"name,attr"`
	Time      string    `xml:"time,attr"`
	Failure   *xProblem `xml:"failure"`
	Error     *xProblem `xml:"error"`
	Skipped   *xProblem `xml:"skipped"`
	SystemOut string    `xml:"system-out"`
}

type xProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// junitResults has one walk of each verdict, with text XML must escape.
func junitResults() []walk.Result {
	target := netip.MustParseAddrPort("198.18.0.2:7001")
	return []walk.Result{
		{Scenario: "handshake", Target: target, Start: t0.Add(time.Second), Duration: 1500 * time.Millisecond, Verdict: walk.Pass,
			Checks: []walk.Check{{Name: "LISTEN → SYN_RCVD", Rule: "RFC 9293 §3.5", Verdict: walk.Pass,
				Expected: "<SEQ=y><ACK=x+1><CTL=SYN,ACK>", Received: "<SEQ=7><ACK=2><CTL=SYN,ACK>"}}},
		{Scenario: "passive-close", Target: target, Start: t0, Duration: 250 * time.Millisecond, Verdict: walk.Fail,
			Checks: []walk.Check{
				{Name: "ESTABLISHED → CLOSE_WAIT", Rule: "RFC 9293 §3.6", Verdict: walk.Pass},
				{Name: "CLOSE_WAIT → LAST_ACK", Rule: "RFC 9293 §3.10.4", Verdict: walk.Fail,
					Expected: `<FIN> after our FIN & "quotes"`, Received: "<RST>]]>\x00\x1b[31m", Reason: "reset instead of FIN"},
			}},
		{Scenario: "keepalive", Start: t0.Add(2 * time.Second), Duration: 3 * time.Second, Verdict: walk.Inconclusive,
			Reason: "no answer to 3 keepalives",
			Checks: []walk.Check{{Name: "ESTABLISHED: keepalive answered", Rule: "RFC 9293 §3.8.4",
				Verdict: walk.Inconclusive, Expected: "<ACK>", Received: "nothing", Reason: "no reply after 3 tries"}}},
		{Scenario: "active-close", Verdict: walk.Skipped, Reason: "needs --close-trigger"},
		{Scenario: "retransmitted-syn", Duration: time.Second, Verdict: walk.Deviation,
			Checks: []walk.Check{{Name: "SYN_RCVD: retransmitted SYN", Rule: "RFC 9293 §3.10.7.4", Verdict: walk.Deviation,
				Deviation: "synack-on-retransmitted-syn", Expected: "<ACK>", Received: "<SYN,ACK>"}}},
	}
}

func decodeJUnit(t *testing.T, b []byte) xSuites {
	t.Helper()
	// A strict token pass first: well-formed XML, legal characters only.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("JUnit XML is not well-formed: %v\n%s", err, b)
		}
	}
	var s xSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode JUnit XML: %v\n%s", err, b)
	}
	return s
}

func TestWriteJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := report.WriteJUnit(&b, "tcpwalk walk <all> & co", junitResults()); err != nil {
		t.Fatalf("WriteJUnit: %v", err)
	}
	if !strings.HasPrefix(b.String(), xml.Header) {
		t.Errorf("no XML declaration: %.60q", b.String())
	}
	got := decodeJUnit(t, b.Bytes())
	t.Logf("\n%s", b.String())

	const suite = "tcpwalk walk <all> & co"
	counts := func(s xSuites) [5]int { return [5]int{s.Tests, s.Failures, s.Errors, s.Skipped, len(s.Suites)} }
	if diff := cmp.Diff([5]int{5, 1, 1, 1, 1}, counts(got)); diff != "" {
		t.Fatalf("<testsuites> tests, failures, errors, skipped, suites (-want +got):\n%s", diff)
	}
	s := got.Suites[0]
	if s.Name != suite || got.Name != suite {
		t.Errorf("suite names %q, %q, want %q", got.Name, s.Name, suite)
	}
	if diff := cmp.Diff([4]int{5, 1, 1, 1}, [4]int{s.Tests, s.Failures, s.Errors, s.Skipped}); diff != "" {
		t.Errorf("<testsuite> tests, failures, errors, skipped (-want +got):\n%s", diff)
	}
	if s.Time != "5.750" || s.Timestamp != "2025-03-01T12:00:00" {
		t.Errorf("suite time %q, timestamp %q, want 5.750 and the earliest start 2025-03-01T12:00:00", s.Time, s.Timestamp)
	}

	type row struct{ Name, Class, Time, Kind, Type string }
	var rows []row
	for _, c := range s.Cases {
		r := row{Name: c.Name, Class: c.ClassName, Time: c.Time, Kind: "pass"}
		switch {
		case c.Failure != nil:
			r.Kind, r.Type = "failure", c.Failure.Type
		case c.Error != nil:
			r.Kind, r.Type = "error", c.Error.Type
		case c.Skipped != nil:
			r.Kind = "skipped"
		}
		rows = append(rows, r)
	}
	want := []row{
		{"handshake", suite, "1.500", "pass", ""},
		{"passive-close", suite, "0.250", "failure", "fail"},
		{"keepalive", suite, "3.000", "error", "inconclusive"},
		{"active-close", suite, "0.000", "skipped", ""},
		{"retransmitted-syn", suite, "1.000", "pass", ""},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("test cases (-want +got):\n%s", diff)
	}

	fail := s.Cases[1].Failure
	if fail.Message != "CLOSE_WAIT → LAST_ACK: reset instead of FIN" {
		t.Errorf("failure message %q", fail.Message)
	}
	for _, w := range []string{"CLOSE_WAIT → LAST_ACK (RFC 9293 §3.10.4): fail",
		`expected: <FIN> after our FIN & "quotes"`, "received: <RST>]]>\uFFFD\uFFFD[31m", "reason:   reset instead of FIN"} {
		if !strings.Contains(fail.Body, w) {
			t.Errorf("failure body lacks %q:\n%s", w, fail.Body)
		}
	}
	if strings.Contains(fail.Body, "ESTABLISHED → CLOSE_WAIT") {
		t.Errorf("failure body lists a passing check:\n%s", fail.Body)
	}
	inc := s.Cases[2].Error
	if inc.Message != "no answer to 3 keepalives" || !strings.Contains(inc.Body, "reason:   no reply after 3 tries") ||
		!strings.Contains(inc.Body, "expected: <ACK>\n  received: nothing") {
		t.Errorf("inconclusive: message %q, body:\n%s", inc.Message, inc.Body)
	}
	if m := s.Cases[3].Skipped.Message; m != "needs --close-trigger" {
		t.Errorf("skipped message %q, want the reason", m)
	}
	if out := s.Cases[4].SystemOut; !strings.Contains(out, "deviation synack-on-retransmitted-syn at SYN_RCVD: retransmitted SYN") {
		t.Errorf("deviation not named in <system-out>:\n%s", out)
	}
	if out := s.Cases[0].SystemOut; !strings.Contains(out, "target 198.18.0.2:7001") || !strings.Contains(out, "LISTEN → SYN_RCVD (RFC 9293 §3.5): pass") {
		t.Errorf("pass <system-out> lacks target or check:\n%s", out)
	}
}

func TestWriteJUnitEdges(t *testing.T) {
	tests := []struct {
		name    string
		results []walk.Result
		want    [4]int // tests, failures, errors, skipped
		kind    string // of the first case: failure, error, skipped or pass
		msg     string
	}{
		{name: "no results", want: [4]int{0, 0, 0, 0}},
		{name: "fail without checks or reason", results: []walk.Result{{Scenario: "x", Verdict: walk.Fail}},
			want: [4]int{1, 1, 0, 0}, kind: "failure", msg: "walk x: fail"},
		{name: "unknown verdict is an error", results: []walk.Result{{Scenario: "x", Verdict: walk.Verdict(200)}},
			want: [4]int{1, 0, 1, 0}, kind: "error", msg: "walk x: Verdict(200)"},
		{name: "empty verdict is an error", results: []walk.Result{{Scenario: "x"}},
			want: [4]int{1, 0, 1, 0}, kind: "error", msg: "walk x: no verdict"},
		{name: "skipped without reason", results: []walk.Result{{Scenario: "x", Verdict: walk.Skipped}},
			want: [4]int{1, 0, 0, 1}, kind: "skipped", msg: "skipped"},
		{name: "invalid UTF-8 in a name", results: []walk.Result{{Scenario: "a\xffb", Verdict: walk.Pass}},
			want: [4]int{1, 0, 0, 0}, kind: "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.WriteJUnit(&b, "s", tt.results); err != nil {
				t.Fatalf("WriteJUnit: %v", err)
			}
			got := decodeJUnit(t, b.Bytes())
			if len(got.Suites) != 1 {
				t.Fatalf("%d suites, want 1", len(got.Suites))
			}
			s := got.Suites[0]
			if diff := cmp.Diff(tt.want, [4]int{s.Tests, s.Failures, s.Errors, s.Skipped}); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if len(s.Cases) != len(tt.results) {
				t.Fatalf("%d test cases for %d results", len(s.Cases), len(tt.results))
			}
			if len(s.Cases) == 0 {
				return
			}
			c := s.Cases[0]
			kind, msg := "pass", ""
			switch {
			case c.Failure != nil:
				kind, msg = "failure", c.Failure.Message
			case c.Error != nil:
				kind, msg = "error", c.Error.Message
			case c.Skipped != nil:
				kind, msg = "skipped", c.Skipped.Message
			}
			if kind != tt.kind || msg != tt.msg {
				t.Errorf("first case %s %q, want %s %q", kind, msg, tt.kind, tt.msg)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteJUnitWriteError(t *testing.T) {
	err := report.WriteJUnit(failWriter{}, "s", junitResults())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteJUnit to a failing writer: %v, want the writer's error", err)
	}
}
