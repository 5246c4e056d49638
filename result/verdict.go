package result

import (
	"fmt"
	"strconv"
)

// Verdict is the outcome of one expected transition, one check or one walk.
//
// Inconclusive means no answer came after our retries: a reason is given,
// never a guess. Skipped means the walk needs a remote application action
// tcpwalk cannot cause on this target. Interrupted means the user stopped
// tcpwalk (SIGINT, SIGTERM) before the check or walk was decided: unfinished
// work is never a pass, whatever passed before the signal. Deviation is a
// documented behaviour that differs from the RFC (the check names it, e.g.
// Linux answering a retransmitted SYN in SYN_RCVD with a SYN-ACK): not a
// failure unless the user asks for strictness.
//
// The zero Verdict, Undecided, is "not decided yet": it is no outcome, and
// it is written as "" (and omitted where a field says omitempty).
type Verdict uint8

// Verdicts.
const (
	Undecided Verdict = iota
	Pass
	Deviation
	Fail
	Inconclusive
	Skipped
	Interrupted
	numVerdicts
)

var verdictNames = [numVerdicts]string{
	Undecided:    "",
	Pass:         "pass",
	Deviation:    "deviation",
	Fail:         "fail",
	Inconclusive: "inconclusive",
	Skipped:      "skipped",
	Interrupted:  "interrupted",
}

// Verdicts lists the verdicts from best to worst, for counts and reports.
var Verdicts = []Verdict{Pass, Deviation, Skipped, Inconclusive, Interrupted, Fail}

// String returns the verdict's name as tcpwalk's JSON and text write it:
// "pass", "fail", ...; "" for Undecided, "Verdict(N)" for a value that is
// no verdict.
func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Valid reports whether v is one of the decided verdicts.
func (v Verdict) Valid() bool { return v > Undecided && v < numVerdicts }

// MarshalText writes the verdict's name (see [Verdict.String]). A value
// that is no verdict is written as "Verdict(N)", which no reader takes for
// a verdict: a report with a broken verdict is still written, never hidden.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a name that [Verdict.MarshalText] writes.
func (v *Verdict) UnmarshalText(b []byte) error {
	x, err := ParseVerdict(string(b))
	if err != nil {
		return err
	}
	*v = x
	return nil
}

// ParseVerdict returns the verdict named s ("" is Undecided).
func ParseVerdict(s string) (Verdict, error) {
	for i, n := range verdictNames {
		if n == s {
			return Verdict(i), nil
		}
	}
	return Undecided, fmt.Errorf("result: unknown verdict %q (want pass, deviation, fail, inconclusive, skipped or interrupted)", s)
}

// rank orders verdicts from best to worst for an overall verdict. Undecided
// ranks below all: Worse(Undecided, v) is v. A value that is no verdict
// ranks worst, so that it is never hidden. A fail found before an
// interruption is still a fail: it was decided.
func (v Verdict) rank() int {
	if v == Undecided {
		return -1
	}
	for i, k := range Verdicts {
		if v == k {
			return i
		}
	}
	return len(Verdicts)
}

// Worse returns the worse of two verdicts.
func Worse(a, b Verdict) Verdict {
	if b.rank() > a.rank() {
		return b
	}
	return a
}
