package walk

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tcpwalk/tcpwalk/result"
)

// TestMarkKernelAhead: a kernel read that is already in the state the wire
// shows next is not a disagreement; any other difference stays one.
func TestMarkKernelAhead(t *testing.T) {
	pass := func(wire, kernel string) Check {
		return Check{Verdict: Pass, Wire: wire, Kernel: kernel, Disagree: kernel != "" && kernel != wire}
	}
	tests := []struct {
		name      string
		checks    []Check
		disagree  []bool
		ahead     []bool
		coverage  map[string]bool // state → kernel agrees
		disagrees int
	}{
		{"app closed at once: CLOSE_WAIT read as LAST_ACK",
			[]Check{pass("ESTABLISHED", "ESTABLISHED"), pass("CLOSE_WAIT", "LAST_ACK"), pass("LAST_ACK", "LAST_ACK")},
			[]bool{false, false, false}, []bool{false, true, false},
			map[string]bool{"CLOSE_WAIT": false, "LAST_ACK": true}, 0},
		{"kernel in a state the wire never shows next",
			[]Check{pass("CLOSE_WAIT", "CLOSING"), pass("LAST_ACK", "CLOSING")},
			[]bool{true, true}, []bool{false, false},
			map[string]bool{"CLOSE_WAIT": false, "LAST_ACK": false}, 2},
		{"a state further on than the next does not count",
			[]Check{pass("ESTABLISHED", "CLOSED"), pass("CLOSE_WAIT", "CLOSE_WAIT"), pass("CLOSED", "CLOSED")},
			[]bool{true, false, false}, []bool{false, false, false},
			map[string]bool{"ESTABLISHED": false, "CLOSED": true}, 1},
		{"a failed later check shows no state",
			[]Check{pass("CLOSE_WAIT", "LAST_ACK"), {Verdict: Fail, Wire: "LAST_ACK"}},
			[]bool{true, false}, []bool{false, false},
			map[string]bool{"CLOSE_WAIT": false}, 1},
		{"the last check has nothing after it",
			[]Check{pass("ESTABLISHED", "ESTABLISHED"), pass("LAST_ACK", "CLOSED")},
			[]bool{false, true}, []bool{false, false},
			map[string]bool{"LAST_ACK": false}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{Scenario: "x", Checks: tt.checks}
			r.Finish()
			for i, c := range r.Checks {
				if c.Disagree != tt.disagree[i] || c.KernelAhead != tt.ahead[i] {
					t.Errorf("check %d (wire %s, kernel %s): disagree %v ahead %v, want %v %v",
						i, c.Wire, c.Kernel, c.Disagree, c.KernelAhead, tt.disagree[i], tt.ahead[i])
				}
			}
			if r.Disagreements != tt.disagrees {
				t.Errorf("Disagreements = %d, want %d", r.Disagreements, tt.disagrees)
			}
			for _, cv := range StateCoverage([]Result{r}) {
				if want, ok := tt.coverage[cv.State]; ok && cv.Kernel != want {
					t.Errorf("coverage %s: kernel agrees %v, want %v", cv.State, cv.Kernel, want)
				}
			}
		})
	}
}

// TestWorseAndUnfinished: the zero verdict is "not decided yet", so a walk cut before its result had a
// verdict takes the cut's verdict (it used to stay "" and then read as pass); an interruption is worse than
// any verdict but a fail, which was decided before the signal.
func TestWorseAndUnfinished(t *testing.T) {
	for _, tc := range []struct{ a, b, want Verdict }{
		{result.Undecided, Interrupted, Interrupted},
		{result.Undecided, Inconclusive, Inconclusive},
		{Pass, Interrupted, Interrupted},
		{Interrupted, Pass, Interrupted},
		{Inconclusive, Interrupted, Interrupted},
		{Fail, Interrupted, Fail},
		{Interrupted, Fail, Fail},
		{Skipped, Interrupted, Interrupted},
		{Pass, Verdict(200), Verdict(200)},
	} {
		if got := Worse(tc.a, tc.b); got != tc.want {
			t.Errorf("Worse(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		want Verdict
		why  string
	}{
		{context.Canceled, Interrupted, ReasonInterrupted},
		{fmt.Errorf("probe: read: %w", context.Canceled), Interrupted, ReasonInterrupted},
		{context.DeadlineExceeded, Inconclusive, ReasonTimeLimit},
		{errors.New("no route"), Inconclusive, "no route"},
	} {
		if v, why := Unfinished(tc.err); v != tc.want || why != tc.why {
			t.Errorf("Unfinished(%v) = %s, %q; want %s, %q", tc.err, v, why, tc.want, tc.why)
		}
	}
	r := Result{Checks: []Check{{Verdict: Pass}, {Verdict: Interrupted}}}
	r.Finish()
	if r.Verdict != Interrupted {
		t.Errorf("a walk with a passed and an interrupted check: %s, want interrupted", r.Verdict)
	}
}
