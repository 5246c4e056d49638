package walk

import "github.com/tcpwalk/tcpwalk/result"

// Verdict is the outcome of one expected transition (see result.Verdict).
type Verdict = result.Verdict

// Verdicts (see result.Verdict for what each means).
const (
	Pass         = result.Pass
	Deviation    = result.Deviation
	Fail         = result.Fail
	Inconclusive = result.Inconclusive
	Skipped      = result.Skipped
	Interrupted  = result.Interrupted
)

// Verdicts lists the verdicts from best to worst, for counts and reports.
var Verdicts = result.Verdicts

// Worse returns the worse of two verdicts.
func Worse(a, b Verdict) Verdict { return result.Worse(a, b) }

// Check is one expected transition or state and what came of it (see
// result.Check).
type Check = result.Check

// Result is one walk (see result.Walk).
type Result = result.Walk

// States are the 11 states of RFC 9293 §3.3.2, in the RFC's order, by name.
var States = result.StateNames()

// Coverage says, for one state, which walks confirmed it (see
// result.Coverage).
type Coverage = result.Coverage

// StateCoverage lists the 11 states and the walks that confirmed each.
func StateCoverage(results []Result) []Coverage { return result.StateCoverage(results) }
