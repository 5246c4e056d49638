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
	pass := func(wire, kernel result.State) Check {
		return Check{Verdict: Pass, Wire: wire, Kernel: kernel, Disagree: kernel != result.NoState && kernel != wire}
	}
	tests := []struct {
		name      string
		checks    []Check
		disagree  []bool
		ahead     []bool
		coverage  map[result.State]bool // state → kernel agrees
		disagrees int
	}{
		{"app closed at once: CLOSE_WAIT read as LAST_ACK",
			[]Check{pass(result.Established, result.Established), pass(result.CloseWait, result.LastAck), pass(result.LastAck, result.LastAck)},
			[]bool{false, false, false}, []bool{false, true, false},
			map[result.State]bool{result.CloseWait: false, result.LastAck: true}, 0},
		{"kernel in a state the wire never shows next",
			[]Check{pass(result.CloseWait, result.Closing), pass(result.LastAck, result.Closing)},
			[]bool{true, true}, []bool{false, false},
			map[result.State]bool{result.CloseWait: false, result.LastAck: false}, 2},
		{"a state further on than the next does not count",
			[]Check{pass(result.Established, result.Closed), pass(result.CloseWait, result.CloseWait), pass(result.Closed, result.Closed)},
			[]bool{true, false, false}, []bool{false, false, false},
			map[result.State]bool{result.Established: false, result.Closed: true}, 1},
		{"a failed later check shows no state",
			[]Check{pass(result.CloseWait, result.LastAck), {Verdict: Fail, Wire: result.LastAck}},
			[]bool{true, false}, []bool{false, false},
			map[result.State]bool{result.CloseWait: false}, 1},
		{"the last check has nothing after it",
			[]Check{pass(result.Established, result.Established), pass(result.LastAck, result.Closed)},
			[]bool{false, true}, []bool{false, false},
			map[result.State]bool{result.LastAck: false}, 1},
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
