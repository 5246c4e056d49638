package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// WriteScriptResult writes one line per script and, for a script that did
// not pass, the check that stopped it: its line, what was expected there
// and what came.
func WriteScriptResult(w io.Writer, r walk.Result) {
	checks := "checks"
	if len(r.Checks) == 1 {
		checks = "check"
	}
	fmt.Fprintf(w, "%-12s %s  (%d %s, %.3f s)\n", strings.ToUpper(r.Verdict.String()), r.Scenario, len(r.Checks), checks, r.Duration.Seconds())
	for _, ch := range r.Checks {
		if ch.Verdict == walk.Skipped {
			fmt.Fprintf(w, "    %s: %s\n", strings.TrimPrefix(ch.Rule, "script "), ch.Reason)
		}
	}
	if r.Verdict == walk.Pass {
		return
	}
	for _, ch := range r.Checks {
		if ch.Verdict == walk.Pass || ch.Verdict == walk.Skipped {
			continue
		}
		fmt.Fprintf(w, "    %s: %s\n", strings.TrimPrefix(ch.Rule, "script "), ch.Verdict)
		fmt.Fprintf(w, "      expected: %s\n", ch.Expected)
		fmt.Fprintf(w, "      received: %s\n", ch.Received)
		if ch.Reason != "" {
			fmt.Fprintf(w, "      why:      %s\n", ch.Reason)
		}
	}
	if len(r.Checks) == 0 || r.Verdict == walk.Skipped {
		fmt.Fprintf(w, "    %s\n", r.Reason)
	}
	if len(r.Assumptions) > 0 {
		fmt.Fprintf(w, "    assumes (not checked):\n")
		for _, a := range r.Assumptions {
			fmt.Fprintf(w, "      - %s\n", a)
		}
	}
}

// WriteSkipReasons counts a suite's skipped scripts by reason (the line
// number and text left out, so that one reason counts once).
func WriteSkipReasons(w io.Writer, results []walk.Result) {
	n := map[string]int{}
	for _, r := range results {
		if r.Verdict == walk.Skipped {
			n[script.SkipReason(r.Reason)]++
		}
	}
	if len(n) == 0 {
		return
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return n[keys[i]] > n[keys[j]] || n[keys[i]] == n[keys[j]] && keys[i] < keys[j] })
	fmt.Fprintf(w, "skipped, by reason:\n")
	for _, k := range keys {
		fmt.Fprintf(w, "  %4d  %s\n", n[k], k)
	}
}
