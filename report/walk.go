package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// verdictCounts tallies walks by verdict. A verdict outside walk's six
// (package walk never makes one) counts as inconclusive, so the six
// numbers always add up to the number of walks.
type verdictCounts struct {
	pass, deviation, fail, inconclusive, skipped, interrupted int
}

func countVerdicts(results []walk.Result) verdictCounts {
	var n verdictCounts
	for _, r := range results {
		switch r.Verdict {
		case walk.Pass:
			n.pass++
		case walk.Deviation:
			n.deviation++
		case walk.Fail:
			n.fail++
		case walk.Skipped:
			n.skipped++
		case walk.Interrupted:
			n.interrupted++
		default:
			n.inconclusive++
		}
	}
	return n
}

// summaryWidth is the widest line of the walk summary table.
const summaryWidth = DefaultWidth

// WalkSummary writes a table of several walks, one row each: scenario,
// verdict, checks passed/total, duration, wire/kernel disagreements ("-"
// when no oracle was used) and the reason of a walk that did not pass, then
// a total line "N walks: X pass, Y fail, Z inconclusive, W skipped", with
// ", V interrupted" and a line saying the results are partial when the user
// stopped the run.
// With color the verdicts are coloured as in WriteLadder.
func WalkSummary(w io.Writer, results []walk.Result, color bool) error {
	p := painter(color)
	nameW := len("scenario")
	for _, r := range results {
		nameW = max(nameW, runeLen(r.Scenario))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %-12s  %-7s  %9s  %-8s  %s\n", nameW, "scenario", "verdict", "checks", "duration", "disagree", "note")
	for _, r := range results {
		passed := 0
		for _, c := range r.Checks {
			if c.Verdict == walk.Pass {
				passed++
			}
		}
		_, code := verdictMark(r.Verdict)
		dis := "-"
		if r.Oracle {
			dis = fmt.Sprint(r.Disagreements)
		}
		row := fmt.Sprintf("%s  %s  %-7s  %9s  %-8s", padRight(r.Scenario, nameW),
			p.paint(code, padRight(r.Verdict.String(), 12)), fmt.Sprintf("%d/%d", passed, len(r.Checks)), seconds(r.Duration), dis)
		if r.Reason != "" {
			used := nameW + 2 + 12 + 2 + 7 + 2 + 9 + 2 + 8 + 2
			row += "  " + truncate(r.Reason, summaryWidth-used)
		}
		b.WriteString(strings.TrimRight(row, " ") + "\n")
	}
	n := countVerdicts(results)
	fmt.Fprintf(&b, "%d walks: %d pass, ", len(results), n.pass)
	if n.deviation > 0 {
		fmt.Fprintf(&b, "%d deviation, ", n.deviation)
	}
	fmt.Fprintf(&b, "%d fail, %d inconclusive, %d skipped", n.fail, n.inconclusive, n.skipped)
	if n.interrupted > 0 {
		fmt.Fprintf(&b, ", %d interrupted\ninterrupted: the run was stopped before every walk ended; the results are partial", n.interrupted)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: write the summary of %d walks: %w", len(results), err)
	}
	return nil
}

// padRight left-aligns s in n runes.
func padRight(s string, n int) string {
	if k := n - runeLen(s); k > 0 {
		return s + strings.Repeat(" ", k)
	}
	return s
}

// jsonWalk is one walk as a JSON line: the envelope first, then every
// field of walk.Result under its own JSON tag.
type jsonWalk struct {
	Event string `json:"event"` // "walk"
	walk.Result
}

// jsonWalkSummary closes a run of walks.
type jsonWalkSummary struct {
	Event        string `json:"event"` // "summary"
	Walks        int    `json:"walks"`
	Pass         int    `json:"pass"`
	Deviation    int    `json:"deviation"`
	Fail         int    `json:"fail"`
	Inconclusive int    `json:"inconclusive"`
	Skipped      int    `json:"skipped"`
	Interrupted  int    `json:"interrupted"`
}

// WriteWalkJSON writes walks as JSON lines (one object per line, UTF-8,
// HTML characters such as < and > left unescaped), then one summary line.
// The field names are part of tcpwalk's interface: the README documents
// them from this comment, and they never change meaning.
//
// A walk line:
//
//	event          "walk"
//	scenario       scenario name, e.g. "passive-close"
//	summary        one sentence on what the walk checks
//	target         the remote "addr:port"; local: ours ("" when never opened)
//	start          RFC 3339 time the walk began
//	duration_ns    the walk's length, an integer in nanoseconds
//	verdict        "pass", "deviation", "fail", "inconclusive" or "skipped": the worst of its checks
//	reason         why a walk did not pass, when known (omitted otherwise)
//	oracle         true when the remote kernel's states were read (sock_diag)
//	disagreements  checks where the wire and the kernel disagreed
//	checks         array, in order, of:
//	  name, rule          the transition checked and the RFC section it comes from
//	  probe               what we sent for it (omitted when we only waited)
//	  expected, received  segments in <SEQ=..><ACK=..><CTL=..> notation, absolute numbers
//	  verdict, reason     as above, per check
//	  deviation           the documented non-RFC behaviour seen (verdict "deviation")
//	  wire_state          the remote's state implied by the wire (omitted if none)
//	  kernel_state        the state the remote kernel reported (omitted without oracle)
//	  disagree            true when they differ (omitted when false)
//	  time                RFC 3339 time of the judgment
//	segments       array, in order, of every segment both ways:
//	  time, dir           when it was sent or received, "out" (ours) or "in" (theirs)
//	  flags               tcpdump's form: "S", "S.", "F.", "R", "P."
//	  seq, ack            absolute numbers
//	  rel_seq, rel_ack    relative to the sender's and the receiver's ISN
//	  win, len            window and payload length
//	  options             array of options in tcpdump's words (omitted when none)
//	  note                what it was for: "KA1", "retransmission", "trigger (http)" ...
//	  retransmission      true for a remote segment seen before (omitted when false)
//	  icmp                the ICMP error text, for an ICMP entry (then flags are empty)
//	  local_state, remote_state  both ends' states after this segment
//
// checks and segments are always arrays, never null. The last line is
//
//	{"event":"summary","walks":N,"pass":X,"deviation":D,"fail":Y,"inconclusive":Z,"skipped":W}
//
// where the five counts add up to walks.
func WriteWalkJSON(w io.Writer, results []walk.Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep <SEQ=..> readable for jq and grep
	for _, r := range results {
		if r.Checks == nil {
			r.Checks = []walk.Check{}
		}
		if r.Segments == nil {
			r.Segments = []walk.Segment{}
		}
		if err := enc.Encode(jsonWalk{Event: "walk", Result: r}); err != nil {
			return fmt.Errorf("report: write walk %q as JSON: %w", r.Scenario, err)
		}
	}
	n := countVerdicts(results)
	s := jsonWalkSummary{Event: "summary", Walks: len(results), Pass: n.pass, Deviation: n.deviation, Fail: n.fail,
		Inconclusive: n.inconclusive, Skipped: n.skipped, Interrupted: n.interrupted}
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("report: write the JSON summary of %d walks: %w", len(results), err)
	}
	return nil
}
