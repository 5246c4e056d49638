package result

import (
	"net/netip"
	"time"
)

// Walk is the result of one walk, or of one conformance check or
// script, which are walks too.
type Walk struct {
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

// Finish computes the overall verdict from the checks (the worst of them,
// inconclusive when none ran), marks the kernel reads that were only
// ahead of the wire (see Check.KernelAhead) and counts the disagreements.
func (r *Walk) Finish() {
	if r.Verdict == Undecided {
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
		if !c.Disagree || c.Kernel == NoState {
			continue
		}
		for _, later := range cs[i+1:] {
			if later.Verdict != Pass || later.Wire == NoState || later.Wire == c.Wire {
				continue
			}
			if later.Wire == c.Kernel {
				c.Disagree, c.KernelAhead = false, true
			}
			break
		}
	}
}

// StateNames returns the names of the 11 states of RFC 9293 §3.3.2, in
// the RFC's order: "CLOSED", "LISTEN", ...
func StateNames() []string {
	out := make([]string, len(States))
	for i, s := range States {
		out[i] = s.String()
	}
	return out
}

// Coverage says, for one state, which walks confirmed it from the wire and
// whether the kernel agreed each time.
type Coverage struct {
	State State `json:"state"`
	// By lists the walks with a passing check that put the remote in State.
	By []string `json:"by"`
	// Kernel is true when an oracle saw the same state at every such check.
	Kernel bool `json:"kernel_agrees"`
}

// StateCoverage lists the 11 states and the walks that confirmed each.
func StateCoverage(results []Walk) []Coverage {
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
