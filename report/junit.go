package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// JUnit XML has no standard; this follows the dialect Jenkins' JUnit plugin
// and GitLab's unit test reports both read (the Ant/Surefire schema):
//
//	<testsuites name tests failures errors skipped time>
//	  <testsuite name tests failures errors skipped time timestamp>
//	    <testcase classname name time>
//	      <failure message type>body</failure>   a check failed
//	      <error message type>body</error>       no answer: inconclusive
//	      <skipped message/>                     the walk could not run here
//	      <system-out>every check, deviations named</system-out>
//
// An inconclusive walk is an <error>, not a <failure>: in JUnit an error is
// a test that could not reach its assertion, which is what "no answer after
// our retries" is. Jenkins and GitLab both mark it red (GitLab labels it
// "error"), so CI never goes green on a target that stopped answering, yet a
// reader can tell "the stack is wrong" from "we could not tell".
// A deviation passes (tcpwalk's exit status is 0 without --strict) and is
// named in <system-out>, which both tools show beside the test case.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string `xml:"name,attr"`
	Tests     int    `xml:"tests,attr"`
	Failures  int    `xml:"failures,attr"`
	Errors    int    `xml:"errors,attr"`
	Skipped   int    `xml:"skipped,attr"`
	Time      string `xml:"time,attr"`
	Timestamp string `xml:"timestamp,attr,omitempty"`
	// Properties come before the test cases in the Ant schema.
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []Property `xml:"property"`
}

// Property is one <property name value/> of a JUnit test suite: the stack
// profile of a conformance run, for CI to keep beside the verdicts.
type Property struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is text in CDATA, so the "<SEQ=..>" notation and line breaks
// stay readable in the file; xmlText makes it legal XML first.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// junitTime is JUnit's time attribute: seconds, as a decimal.
func junitTime(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes JUnit XML for CI: one <testsuite name=suite> with one
// <testcase> per walk.Result (classname = suite, name = Result.Scenario,
// time in seconds), inside a <testsuites> root carrying the same counts.
//
//	verdict       element        body
//	pass          -              -
//	deviation     -              <system-out> names the deviation
//	fail          <failure>      each failed check: name, rule, expected, received, reason
//	inconclusive  <error type="inconclusive">  each check without an answer, and why
//	skipped       <skipped message=reason/>
//	interrupted   <error type="interrupted">  the user stopped the run before the walk ended
//
// A verdict outside these (package walk never makes one) is an <error>, so
// the counts always add up to the number of test cases. Every test case's
// <system-out> lists its target and all its checks. Attributes are
// escaped by encoding/xml, bodies are CDATA; in both, characters XML 1.0
// cannot carry (control characters, invalid UTF-8) become U+FFFD.
func WriteJUnit(w io.Writer, suite string, results []walk.Result) error {
	return WriteJUnitProperties(w, suite, results, nil)
}

// WriteJUnitProperties is WriteJUnit with <properties> in the test suite
// (none when props is empty).
func WriteJUnitProperties(w io.Writer, suite string, results []walk.Result, props []Property) error {
	s := junitSuite{Name: suite, Cases: make([]junitCase, 0, len(results))}
	if len(props) > 0 {
		s.Properties = &junitProperties{Props: make([]Property, len(props))}
		for i, p := range props {
			s.Properties.Props[i] = Property{Name: xmlText(p.Name), Value: xmlText(p.Value)}
		}
	}
	var total time.Duration
	var first time.Time
	for _, r := range results {
		c := junitCase{ClassName: suite, Name: r.Scenario, Time: junitTime(r.Duration), SystemOut: &junitText{xmlText(junitOut(r))}}
		switch r.Verdict {
		case walk.Pass, walk.Deviation:
		case walk.Fail:
			s.Failures++
			c.Failure = &junitProblem{Message: junitMessage(r, walk.Fail), Type: walk.Fail.String(),
				Body: xmlText(junitBody(r, walk.Fail))}
		case walk.Skipped:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: orElse(r.Reason, "skipped")}
		default:
			s.Errors++
			typ := r.Verdict.String()
			if typ == "" {
				typ = "no verdict"
			}
			c.Error = &junitProblem{Message: junitMessage(r, r.Verdict), Type: typ, Body: xmlText(junitBody(r, r.Verdict))}
		}
		s.Cases = append(s.Cases, c)
		total += r.Duration
		if !r.Start.IsZero() && (first.IsZero() || r.Start.Before(first)) {
			first = r.Start
		}
	}
	s.Tests = len(results)
	s.Time = junitTime(total)
	if !first.IsZero() {
		// The Ant schema's timestamp is an xs:dateTime without a zone.
		s.Timestamp = first.UTC().Format("2006-01-02T15:04:05")
	}
	root := junitSuites{Name: suite, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped,
		Time: s.Time, Suites: []junitSuite{s}}
	out, err := xml.MarshalIndent(root, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode %d results of suite %q as JUnit XML: %w", len(results), suite, err)
	}
	if _, err := io.WriteString(w, xml.Header+string(out)+"\n"); err != nil {
		return fmt.Errorf("report: write JUnit XML of suite %q: %w", suite, err)
	}
	return nil
}

// junitMessage is the one line CI shows for a failed or erroneous test case:
// the walk's reason, else the first check with that verdict.
func junitMessage(r walk.Result, v walk.Verdict) string {
	if r.Reason != "" {
		return r.Reason
	}
	for _, c := range r.Checks {
		if c.Verdict != v {
			continue
		}
		if c.Reason != "" {
			return c.Name + ": " + c.Reason
		}
		return fmt.Sprintf("%s: expected %s, received %s", c.Name, orNothing(c.Expected), orNothing(c.Received))
	}
	return fmt.Sprintf("walk %s: %s", r.Scenario, orElse(v.String(), "no verdict"))
}

// junitBody lists the checks with verdict v, expected against received,
// with the rule each one comes from.
func junitBody(r walk.Result, v walk.Verdict) string {
	var b strings.Builder
	n := 0
	for _, c := range r.Checks {
		if c.Verdict != v {
			continue
		}
		n++
		writeJUnitCheck(&b, c)
	}
	if n == 0 {
		fmt.Fprintf(&b, "walk %s: %s: %s\n", r.Scenario, orElse(v.String(), "no verdict"), orElse(r.Reason, "no reason given"))
	}
	return b.String()
}

func writeJUnitCheck(b *strings.Builder, c walk.Check) {
	b.WriteString(c.Name)
	if c.Rule != "" {
		fmt.Fprintf(b, " (%s)", c.Rule)
	}
	fmt.Fprintf(b, ": %s\n", orElse(c.Verdict.String(), "no verdict"))
	if c.Probe != "" {
		fmt.Fprintf(b, "  probe:    %s\n", c.Probe)
	}
	fmt.Fprintf(b, "  expected: %s\n  received: %s\n", orNothing(c.Expected), orNothing(c.Received))
	if c.Reason != "" {
		fmt.Fprintf(b, "  reason:   %s\n", c.Reason)
	}
	if c.Deviation != "" {
		fmt.Fprintf(b, "  deviation: %s", c.Deviation)
		if c.Level != "" {
			fmt.Fprintf(b, " (departs from a %s", c.Level)
			if len(c.SeenOn) > 0 {
				fmt.Fprintf(b, "; seen on %s", strings.Join(c.SeenOn, ", "))
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	if c.Optional != "" {
		fmt.Fprintf(b, "  optional: %s: %s\n", c.Optional, map[bool]string{true: "implemented", false: "not implemented (optional)"}[c.Has])
	}
	if c.Disagree {
		fmt.Fprintf(b, "  DISAGREE: wire says %s, kernel says %s\n", orNothing(c.Wire.String()), orNothing(kernelText(c)))
	}
}

// junitOut is a test case's <system-out>: the walk's target, its deviations
// by name, then every check.
func junitOut(r walk.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "walk %s: %s\n", r.Scenario, orElse(r.Verdict.String(), "no verdict"))
	if r.Summary != "" {
		fmt.Fprintf(&b, "%s\n", r.Summary)
	}
	if r.Target.IsValid() {
		fmt.Fprintf(&b, "target %s", r.Target)
		if r.Local.IsValid() {
			fmt.Fprintf(&b, " from %s", r.Local)
		}
		b.WriteString("\n")
	}
	for _, c := range r.Checks {
		if c.Verdict == walk.Deviation {
			fmt.Fprintf(&b, "deviation %s at %s\n", orElse(c.Deviation, "(unnamed)"), c.Name)
		}
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", r.Reason)
	}
	for _, c := range r.Checks {
		writeJUnitCheck(&b, c)
	}
	if len(r.Assumptions) > 0 {
		b.WriteString("assumes (not checked):\n")
		for _, a := range r.Assumptions {
			fmt.Fprintf(&b, "  - %s\n", a)
		}
	}
	return b.String()
}

// orElse is s, or alt when s is empty.
func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// xmlText replaces what XML 1.0 §2.2 does not allow in a document (C0
// controls other than tab and line breaks, surrogates, U+FFFE, U+FFFF,
// invalid UTF-8) with U+FFFD. encoding/xml does this for escaped text but
// writes CDATA as given.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return utf8.RuneError
	}, s)
}
