package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// conformWidth is the widest line of the conformance table (the details
// under a check that did not pass wrap to it).
const conformWidth = DefaultWidth

// conformColor is a check verdict's colour: deviations are documented
// behaviour, so they are not red.
func conformColor(v walk.Verdict) string {
	switch v {
	case walk.Pass:
		return sgrGreen
	case walk.Deviation:
		return sgrYellow
	case walk.Skipped:
		return sgrDim
	case walk.Interrupted:
		return sgrYellow
	}
	return sgrRed
}

// ruleSection is the RFC and section of a rule, without the explanation:
// "RFC 5961 §3.2 (RST in the window ...)" gives "RFC 5961 §3.2".
func ruleSection(rule string) string {
	if i := strings.Index(rule, " ("); i > 0 {
		return rule[:i]
	}
	return rule
}

// ruleOf is the rule of a check: the matrix's, else its deciding step's.
func ruleOf(r walk.Result) string {
	if ch, ok := conform.Lookup(r.Scenario); ok {
		return ch.Rule
	}
	c, _ := decisive(r)
	return c.Rule
}

// decisive is the check that decided a result: the last one that did not
// pass, else the last one (the event itself; earlier ones put the remote in
// its state).
func decisive(r walk.Result) (walk.Check, bool) {
	for i := len(r.Checks) - 1; i >= 0; i-- {
		if r.Checks[i].Verdict != walk.Pass {
			return r.Checks[i], true
		}
	}
	if len(r.Checks) == 0 {
		return walk.Check{}, false
	}
	return r.Checks[len(r.Checks)-1], true
}

// WriteConformTable writes the summary table of a conformance run: one row
// per check (ID, verdict, RFC section, and the deviation's name or the
// reason when it did not pass, under the row when it does not fit), the expected and received segments under a
// check that failed or was inconclusive, the measurements, and a total line
// "N checks: X pass, D deviation, F fail, I inconclusive, S skipped", then
// the run's duration against its longest check.
func WriteConformTable(w io.Writer, rep conform.Report, color bool) error {
	return WriteConformTableWidth(w, rep, color, conformWidth)
}

// WriteConformTableWidth is WriteConformTable to a width of its own (a
// terminal's columns): notes that do not fit go under their row, wrapped.
func WriteConformTableWidth(w io.Writer, rep conform.Report, color bool, width int) error {
	if width <= 0 {
		width = conformWidth
	}
	conformWidth := min(max(width, 40), maxWidth)
	p := painter(color)
	idW, ruleW := len("check"), len("rule")
	for _, r := range rep.Results {
		idW = max(idW, runeLen(r.Scenario))
		ruleW = max(ruleW, runeLen(ruleSection(ruleOf(r))))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Conformance of %s (trigger %s, kernel states %s)\n\n", rep.Target, rep.Trigger, map[bool]string{true: "read with sock_diag", false: "not read"}[rep.Oracle])
	fmt.Fprintf(&b, "%-*s  %-12s  %-*s  %s\n", idW, "check", "verdict", ruleW, "rule", "note")
	for _, r := range rep.Results {
		c, _ := decisive(r)
		note := r.Reason
		if d := conform.Deviations(r); len(d) > 0 {
			note = strings.Join(d, ", ")
		} else if note == "" && r.Verdict != walk.Pass {
			note = c.Reason
		}
		row := fmt.Sprintf("%s  %s  %s", padRight(r.Scenario, idW), p.paint(conformColor(r.Verdict), padRight(r.Verdict.String(), 12)),
			padRight(ruleSection(ruleOf(r)), ruleW))
		// A note that does not fit on the row goes under it, wrapped.
		avail := conformWidth - idW - ruleW - 18
		if note != "" && runeLen(note) <= avail {
			row += "  " + note
			note = ""
		}
		b.WriteString(strings.TrimRight(row, " ") + "\n")
		for _, part := range wrap(note, conformWidth-6) {
			b.WriteString("      " + part + "\n")
		}
		if r.Verdict == walk.Fail || r.Verdict == walk.Inconclusive {
			for _, l := range [][2]string{{"check", c.Name}, {"probe", c.Probe}, {"expected", c.Expected}, {"received", c.Received}} {
				indent := fmt.Sprintf("    %-9s ", l[0])
				for _, part := range wrap(l[1], conformWidth-len(indent)) {
					b.WriteString(indent + part + "\n")
					indent = strings.Repeat(" ", len(indent))
				}
				if l[1] == "" {
					b.WriteString(strings.TrimRight(indent, " ") + "\n")
				}
			}
		}
	}
	if len(rep.Measurements) > 0 {
		b.WriteString("\nMeasured (not judged):\n")
		mW := 0
		for _, m := range rep.Measurements {
			mW = max(mW, runeLen(m.ID))
		}
		for _, m := range rep.Measurements {
			b.WriteString(strings.TrimRight(fmt.Sprintf("  %s  %s", padRight(m.ID, mW), m.Value), " ") + "\n")
		}
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\nNoticed:\n")
		for _, n := range rep.Notes {
			for i, part := range wrap(n, conformWidth-4) {
				if i == 0 {
					b.WriteString("  - " + part + "\n")
				} else {
					b.WriteString("    " + part + "\n")
				}
			}
		}
	}
	if len(rep.Profile.Items) > 0 {
		b.WriteString("\nStack profile (described, not judged):\n")
		pW := 0
		for _, it := range rep.Profile.Items {
			pW = max(pW, runeLen(it.Key))
		}
		for _, it := range rep.Profile.Items {
			first := true
			for _, part := range wrap(it.Value, conformWidth-pW-4) {
				if first {
					b.WriteString(strings.TrimRight(fmt.Sprintf("  %s  %s", padRight(it.Key, pW), part), " ") + "\n")
					first = false
					continue
				}
				b.WriteString(strings.Repeat(" ", pW+4) + part + "\n")
			}
		}
	}
	n := rep.Counts()
	fmt.Fprintf(&b, "\n%d checks: %d pass, %d deviation, %d fail, %d inconclusive, %d skipped",
		len(rep.Results), n.Pass, n.Deviation, n.Fail, n.Inconclusive, n.Skipped)
	if n.Interrupted > 0 {
		fmt.Fprintf(&b, ", %d interrupted", n.Interrupted)
	}
	b.WriteString("\n")
	if rep.Interrupted {
		b.WriteString("interrupted: the run was stopped before every check ended; the results are partial\n")
	}
	id, longest := rep.Longest()
	fmt.Fprintf(&b, "%s in all; the longest check, %s, took %s\n", seconds(rep.Duration), orNothing(id), seconds(longest))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: write the conformance table: %w", err)
	}
	return nil
}

// jsonConform is a conformance run as one JSON object.
type jsonConform struct {
	Event        string                `json:"event"` // "conform"
	Target       string                `json:"target"`
	Trigger      string                `json:"trigger"`
	Oracle       bool                  `json:"oracle"`
	Start        time.Time             `json:"start"`
	DurationNS   int64                 `json:"duration_ns"`
	Longest      string                `json:"longest"`
	LongestNS    int64                 `json:"longest_ns"`
	Verdict      walk.Verdict          `json:"verdict"`
	Counts       jsonCounts            `json:"counts"`
	Interrupted  bool                  `json:"interrupted"`
	Checks       []jsonCheck           `json:"checks"`
	Measurements []jsonMeasurement     `json:"measurements"`
	Profile      []conform.ProfileItem `json:"profile"`
	Notes        []string              `json:"notes"`
}

type jsonCounts struct {
	Pass         int `json:"pass"`
	Deviation    int `json:"deviation"`
	Fail         int `json:"fail"`
	Inconclusive int `json:"inconclusive"`
	Skipped      int `json:"skipped"`
	Interrupted  int `json:"interrupted"`
}

type jsonCheck struct {
	ID         string       `json:"id"`
	State      string       `json:"state"`
	Event      string       `json:"event"`
	Summary    string       `json:"summary"`
	Rule       string       `json:"rule"`
	Verdict    walk.Verdict `json:"verdict"`
	Deviations []string     `json:"deviations"`
	Reason     string       `json:"reason,omitempty"`
	Probe      string       `json:"probe,omitempty"`
	Expected   string       `json:"expected,omitempty"`
	Received   string       `json:"received,omitempty"`
	Wire       string       `json:"wire_state,omitempty"`
	Kernel     string       `json:"kernel_state,omitempty"`
	Local      string       `json:"local"`
	DurationNS int64        `json:"duration_ns"`
	Steps      []walk.Check `json:"steps"`
}

type jsonMeasurement struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Rule        string  `json:"rule"`
	OK          bool    `json:"ok"`
	Value       string  `json:"value"`
	IntervalsNS []int64 `json:"intervals_ns"`
	DurationNS  int64   `json:"duration_ns"`
	Interrupted bool    `json:"interrupted,omitempty"`
}

// WriteConformJSON writes a conformance run as one JSON object on one line
// (UTF-8, < and > unescaped). The field names are part of tcpwalk's
// interface: the README documents them from this comment, and they never
// change meaning.
//
//	event          "conform"
//	target         the remote "addr:port"; trigger: how the remote app was made to act
//	oracle         true when the remote kernel's states were read (sock_diag)
//	start          RFC 3339 time the run began; duration_ns: its length
//	longest        the ID of the longest check or measurement; longest_ns: its length
//	verdict        the worst verdict of all checks: "pass", "deviation", "skipped",
//	               "inconclusive", "interrupted" or "fail", in that order from best to worst
//	               ("interrupted": the user stopped the run before the check was decided)
//	counts         {"pass","deviation","fail","inconclusive","skipped","interrupted"}: checks
//	               per verdict, adding up to the number of checks
//	interrupted    true when the run was stopped (SIGINT, SIGTERM) before it ended
//	checks         array, in the matrix's order, of:
//	  id                  "STATE/event", e.g. "ESTABLISHED/rst-in-window"
//	  state, event        the two halves of id
//	  summary             what the RFC expects, in words
//	  rule                the RFC section it comes from, with a short explanation
//	  verdict             as above, for this check
//	  deviations          names of the documented deviations seen (always an array)
//	  reason              why it did not pass, or where a deviation comes from (omitted otherwise)
//	  probe, expected, received  the event sent, the RFC's answer and the remote's,
//	                      in <SEQ=..><ACK=..><CTL=..> notation (absolute numbers)
//	  wire_state          the remote's state after the event, from the wire (omitted if unknown)
//	  kernel_state        the state the remote kernel reported (omitted without oracle)
//	  local               our "addr:port" for the check's connection
//	  duration_ns         the check's length
//	  steps               every judged step of the check, as in `tcpwalk walk --json`'s "checks"
//	measurements   array of:
//	  id, name, rule      e.g. "SYN_RCVD/synack-schedule", what is measured, where it is specified
//	  ok                  false when nothing could be measured (value says why)
//	  value               the result in words
//	  intervals_ns        gaps between successive transmissions (always an array, empty if none)
//	  duration_ns         how long the measurement took
//	  interrupted         true when the run was stopped before it was measured (omitted otherwise)
//	profile        array (the stack profile: described, not judged) of:
//	  key                 a stable name, e.g. "rfc5961.rst", "rto.initial", "family"
//	  name                what it is, in words
//	  value               what was seen, e.g. "implemented", "not implemented (optional)"
//	  evidence            the check and measurement IDs it comes from (always an array)
//	notes          what the run noticed about the listener (SYNs unanswered, SYN
//	               cookies in use), in words (always an array)
//
// Each step in "steps" may carry, besides walk's fields: "level" (MUST or
// SHOULD, the keyword a named deviation departs from), "seen_on" (stacks the
// deviation was seen on), "optional" (an optional mechanism the step saw)
// and "implemented" (true when it was in use).
func WriteConformJSON(w io.Writer, rep conform.Report) error {
	n := rep.Counts()
	id, longest := rep.Longest()
	out := jsonConform{Event: "conform", Target: rep.Target.String(), Trigger: rep.Trigger, Oracle: rep.Oracle,
		Start: rep.Start, DurationNS: int64(rep.Duration), Longest: id, LongestNS: int64(longest), Verdict: walk.Pass,
		Counts: jsonCounts{Pass: n.Pass, Deviation: n.Deviation, Fail: n.Fail, Inconclusive: n.Inconclusive, Skipped: n.Skipped,
			Interrupted: n.Interrupted},
		Interrupted:  rep.Interrupted,
		Checks:       make([]jsonCheck, 0, len(rep.Results)),
		Measurements: make([]jsonMeasurement, 0, len(rep.Measurements)),
		Profile:      append(make([]conform.ProfileItem, 0, len(rep.Profile.Items)), rep.Profile.Items...),
		Notes:        append(make([]string, 0, len(rep.Notes)), rep.Notes...)}
	for _, r := range rep.Results {
		out.Verdict = walk.Worse(out.Verdict, r.Verdict)
		state, event, _ := strings.Cut(r.Scenario, "/")
		c, _ := decisive(r)
		jc := jsonCheck{ID: r.Scenario, State: state, Event: event, Summary: r.Summary, Rule: ruleOf(r), Verdict: r.Verdict,
			Deviations: conform.Deviations(r), Reason: r.Reason, Probe: c.Probe, Expected: c.Expected, Received: c.Received,
			Wire: c.Wire.String(), Kernel: kernelText(c), DurationNS: int64(r.Duration), Steps: r.Checks}
		if r.Local.IsValid() {
			jc.Local = r.Local.String()
		}
		if jc.Deviations == nil {
			jc.Deviations = []string{}
		}
		if jc.Reason == "" && r.Verdict != walk.Pass {
			jc.Reason = c.Reason
		}
		if jc.Steps == nil {
			jc.Steps = []walk.Check{}
		}
		out.Checks = append(out.Checks, jc)
	}
	for _, m := range rep.Measurements {
		jm := jsonMeasurement{ID: m.ID, Name: m.Name, Rule: m.Rule, OK: m.OK, Value: m.Value,
			IntervalsNS: make([]int64, 0, len(m.Intervals)), DurationNS: int64(m.Duration), Interrupted: m.Interrupted}
		for _, d := range m.Intervals {
			jm.IntervalsNS = append(jm.IntervalsNS, int64(d))
		}
		out.Measurements = append(out.Measurements, jm)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("report: write the conformance run as JSON: %w", err)
	}
	return nil
}

// ProfileProperties is the stack profile as JUnit properties, named
// "profile.KEY".
func ProfileProperties(p conform.Profile) []Property {
	out := make([]Property, 0, len(p.Items))
	for _, it := range p.Items {
		out = append(out, Property{Name: "profile." + it.Key, Value: it.Value})
	}
	return out
}
