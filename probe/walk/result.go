package walk

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/result"
)

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

// Check is one expected transition or state and what came of it.
type Check struct {
	// Name is the transition or property, e.g. "LISTEN → SYN_RCVD".
	Name string `json:"name"`
	// Rule is where the expectation comes from, e.g. "RFC 9293 §3.10.7.2".
	Rule     string  `json:"rule"`
	Probe    string  `json:"probe,omitempty"`
	Expected string  `json:"expected"`
	Received string  `json:"received"`
	Verdict  Verdict `json:"verdict"`
	Reason   string  `json:"reason,omitempty"`
	// Deviation names the documented non-RFC behaviour seen, by what it
	// does, e.g. "synack-on-retransmitted-syn": with Level SHOULD its
	// Verdict is Deviation (a failure only with --strict), with MUST Fail.
	Deviation string `json:"deviation,omitempty"`
	// Level is the RFC keyword the deviation departs from: MUST, SHOULD.
	Level string `json:"level,omitempty"`
	// SeenOn lists the stacks the deviation has been seen on.
	SeenOn []string `json:"seen_on,omitempty"`
	// Optional names an optional mechanism (a MAY) the check saw in use or
	// not, e.g. "RFC 5961 §3.2 challenge ACK to an in-window RST"; Has says
	// which. A missing one is "not implemented (optional)", never a fail.
	Optional string `json:"optional,omitempty"`
	Has      bool   `json:"implemented,omitempty"`
	// Wire is the remote's state inferred from the wire after this check;
	// Kernel is what the remote kernel reports (sock_diag), when an oracle
	// is available. A disagreement is reported, never hidden.
	Wire     string `json:"wire_state,omitempty"`
	Kernel   string `json:"kernel_state,omitempty"`
	Disagree bool   `json:"disagree,omitempty"`
	// KernelErr is why the kernel could not be read, when the oracle
	// failed (Kernel is then ""). A failed read is a disagreement: the
	// wire's state is not confirmed. JSON writes it in kernel_state as
	// "error: " and the error, as it always has.
	KernelErr error `json:"-"`
	// KernelAhead says the kernel was already in the state the wire shows
	// next in this walk: the remote moved on (its app closed at once)
	// between its reply and the oracle's read. Not a disagreement: the
	// wire confirms that state itself one step later.
	KernelAhead bool `json:"kernel_ahead,omitempty"`
	// KernelLag is how long after the latest segment from the remote the
	// kernel was read. A remote may leave a state by itself (its app
	// closes, a timer fires); when a loaded machine reads the kernel late,
	// a disagreement may be the remote having moved on, not the wire wrong.
	KernelLag time.Duration `json:"kernel_lag_ns,omitempty"`
	At        time.Time     `json:"time"`
}

// kernelErrPrefix starts kernel_state in JSON when the kernel could not be
// read.
const kernelErrPrefix = "error: "

// MarshalJSON writes the check with KernelErr in kernel_state.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	p := plain(c)
	if c.KernelErr != nil {
		p.Kernel = kernelErrPrefix + c.KernelErr.Error()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the caller's encoder escapes, or not, as it is set
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON writes: a kernel_state that starts
// "error: " is a KernelErr.
func (c *Check) UnmarshalJSON(b []byte) error {
	type plain Check
	c.KernelErr = nil
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	if msg, ok := strings.CutPrefix(c.Kernel, kernelErrPrefix); ok {
		c.Kernel, c.KernelErr = "", errors.New(msg)
	}
	return nil
}

// Result is one walk.
type Result struct {
	Scenario string         `json:"scenario"`
	Summary  string         `json:"summary"`
	Target   netip.AddrPort `json:"target"`
	Local    netip.AddrPort `json:"local"`
	Start    time.Time      `json:"start"`
	Duration time.Duration  `json:"duration_ns"`
	Verdict  Verdict        `json:"verdict"`
	Reason   string         `json:"reason,omitempty"`
	Oracle   bool           `json:"oracle"`
	Checks   []Check        `json:"checks"`
	Segments []Segment      `json:"segments"`
	// Disagreements counts checks where the wire and the kernel differ.
	Disagreements int `json:"disagreements"`
	// Assumptions are what the result rests on and was not checked: the
	// settings and set-up a script (a packetdrill one) takes for granted
	// on the machine under test, and its observations left unchecked.
	Assumptions []string `json:"assumptions,omitempty"`
}

// finish computes the overall verdict.
func (r *Result) finish() {
	if r.Verdict == result.Undecided {
		r.Verdict = Pass
	}
	if len(r.Checks) == 0 && r.Verdict == Pass {
		r.Verdict = Inconclusive
		if r.Reason == "" {
			r.Reason = "no check ran"
		}
	}
	markKernelAhead(r.Checks)
	for _, c := range r.Checks {
		r.Verdict = Worse(r.Verdict, c.Verdict)
		if c.Disagree {
			r.Disagreements++
		}
	}
}

// markKernelAhead clears Disagree where the kernel's state is the very next
// state the wire shows after the check's own (never a state further on:
// that would excuse a kernel that skipped states or lost the socket).
func markKernelAhead(cs []Check) {
	for i := range cs {
		c := &cs[i]
		if !c.Disagree || c.Kernel == "" {
			continue
		}
		for _, later := range cs[i+1:] {
			if later.Verdict != Pass || later.Wire == "" || later.Wire == c.Wire {
				continue
			}
			if later.Wire == c.Kernel {
				c.Disagree, c.KernelAhead = false, true
			}
			break
		}
	}
}

// States are the 11 states of RFC 9293 §3.3.2, in the RFC's order.
var States = []string{"CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
	"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}

// Coverage says, for one state, which walks confirmed it from the wire and
// whether the kernel agreed each time.
type Coverage struct {
	State string `json:"state"`
	// By lists the walks with a passing check that put the remote in State.
	By []string `json:"by"`
	// Kernel is true when an oracle saw the same state at every such check.
	Kernel bool `json:"kernel_agrees"`
}

// StateCoverage lists the 11 states and the walks that confirmed each.
func StateCoverage(results []Result) []Coverage {
	out := make([]Coverage, len(States))
	for i, s := range States {
		out[i] = Coverage{State: s, Kernel: true}
		for _, r := range results {
			hit := false
			for _, c := range r.Checks {
				if c.Verdict != Pass || c.Wire != s {
					continue
				}
				hit = true
				if c.Kernel != s { // also when the kernel was already ahead
					out[i].Kernel = false
				}
			}
			if hit {
				out[i].By = append(out[i].By, r.Scenario)
			}
		}
		if len(out[i].By) == 0 {
			out[i].Kernel = false
		}
	}
	return out
}
