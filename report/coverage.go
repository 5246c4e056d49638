package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// WriteCoverage prints the table of the 11 states of RFC 9293 and the walks
// that showed each (walk.StateCoverage); without an oracle (a gvisor lab's
// netstack) states can only be seen on the wire, and the header says so.
func WriteCoverage(w io.Writer, cov []walk.Coverage, oracle bool) {
	if oracle {
		fmt.Fprintln(w, "\nThe 11 states of RFC 9293, each seen on the wire and in the target kernel (sock_diag):")
	} else {
		fmt.Fprintln(w, "\nThe 11 states of RFC 9293, each seen on the wire (no kernel-state oracle for this target):")
	}
	for _, cv := range cov {
		mark := "confirmed"
		switch {
		case len(cv.By) == 0:
			mark = "NOT SEEN"
		case !cv.Kernel:
			mark = "wire only"
		}
		fmt.Fprintf(w, "  %-12s %-10s by %s\n", cv.State, mark, strings.Join(cv.By, ", "))
	}
}
