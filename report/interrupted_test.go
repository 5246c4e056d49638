package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// An interrupted run says so in every format: counted apart in the text and
// JSON, an <error type="interrupted"> in JUnit, never a pass (issue: conform
// cut by SIGINT printed "52 pass … 0 inconclusive" and JUnit 0 failures).
func TestInterruptedInEveryFormat(t *testing.T) {
	cut := walk.Result{Scenario: "ESTABLISHED/rst-exact", Verdict: walk.Interrupted, Reason: walk.ReasonInterrupted,
		Duration: time.Second, Checks: []walk.Check{{Name: "LISTEN → SYN_RCVD", Verdict: walk.Pass},
			{Name: "SYN_RCVD → ESTABLISHED", Verdict: walk.Interrupted, Reason: walk.ReasonInterrupted}}}
	done := walk.Result{Scenario: "LISTEN/syn", Verdict: walk.Pass, Duration: time.Second,
		Checks: []walk.Check{{Name: "LISTEN → SYN_RCVD", Verdict: walk.Pass}}}
	results := []walk.Result{done, cut}

	var b bytes.Buffer
	if err := WalkSummary(&b, results, false); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, "1 pass, 0 fail, 0 inconclusive, 0 skipped, 1 interrupted") || !strings.Contains(s, "results are partial") {
		t.Errorf("walk summary does not count the interruption:\n%s", s)
	}

	rep := conform.Report{Results: results, Interrupted: true,
		Measurements: []conform.Measurement{{ID: conform.MeasureFINBackoff, Interrupted: true, Value: walk.ReasonInterrupted + " before it was measured"}}}
	b.Reset()
	if err := WriteConformTable(&b, rep, false); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, "0 skipped, 1 interrupted") || !strings.Contains(s, "interrupted: the run was stopped") {
		t.Errorf("conform table does not say it was interrupted:\n%s", s)
	}
	b.Reset()
	if err := WriteConformJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Verdict      string         `json:"verdict"`
		Interrupted  bool           `json:"interrupted"`
		Counts       map[string]int `json:"counts"`
		Measurements []struct {
			Interrupted bool `json:"interrupted"`
			OK          bool `json:"ok"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Verdict != "interrupted" || !got.Interrupted || got.Counts["interrupted"] != 1 || got.Counts["pass"] != 1 ||
		len(got.Measurements) != 1 || !got.Measurements[0].Interrupted || got.Measurements[0].OK {
		t.Errorf("conform JSON: %+v, want verdict interrupted, interrupted true, counts 1 pass 1 interrupted, the measurement interrupted", got)
	}

	b.Reset()
	if err := WriteJUnit(&b, "s", results); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Errors   int `xml:"errors,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name  string `xml:"name,attr"`
				Error *struct {
					Type string `xml:"type,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Errors != 1 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 2 || doc.Suites[0].Cases[1].Error == nil ||
		doc.Suites[0].Cases[1].Error.Type != "interrupted" || doc.Suites[0].Cases[0].Error != nil {
		t.Errorf("JUnit: %+v, want the cut case as <error type=\"interrupted\"> and 1 error", doc)
	}
}
