package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tcpwalk/tcpwalk/probe/firewall"
)

// WriteFirewall prints the firewall matrix as a table, one probe per line
// grouped by connection state: the outcome (delivered, rewritten, dropped,
// rejected by whom), what it rests on, and, when a policy was judged, the
// expectation and verdict. A summary line ends it.
func WriteFirewall(w io.Writer, m *firewall.Matrix) error {
	how := "answers only (no capture: --oracle-netns decides delivery)"
	if m.Capture {
		how = "capture at the target"
	}
	ttl := fmt.Sprintf("the target's own segments arrive with TTL %d", m.TargetTTL)
	if m.TTLFromSYNACK {
		ttl = fmt.Sprintf("the SYN-ACK in the target's name arrives with TTL %d (no data was acknowledged: who sent it is not known)", m.TargetTTL)
	}
	if _, err := fmt.Fprintf(w, "firewall matrix %s from %s, decided by %s; %s\n", m.Target, m.Local, how, ttl); err != nil {
		return err
	}
	if mb := m.Middlebox; mb != nil {
		what := "answers the handshake in the target's name"
		if mb.Proxied {
			what = "completes the handshake in the target's name and reaches the target afterwards: the connection is proxied"
		}
		fmt.Fprintf(w, "a middlebox at %s, whose segments arrive with TTL %d, %s; evidence:\n", mb.Where(), mb.TTL, what)
		for _, e := range mb.Evidence {
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
	if m.Lossy > 0 {
		fmt.Fprintf(w, "the path lost segments: %d setup exchange(s) had to be sent again\n", m.Lossy)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	judged := m.Policy != ""
	if judged {
		fmt.Fprintf(tw, "STATE\tPROBE\tOUTCOME\tEXPECT\tVERDICT\tDETAIL\n")
	} else {
		fmt.Fprintf(tw, "STATE\tPROBE\tOUTCOME\tDETAIL\n")
	}
	prev := firewall.State("")
	for _, c := range m.Cells {
		state := string(c.State)
		if c.State == prev {
			state = ""
		}
		prev = c.State
		outcome := string(c.Outcome)
		if c.Outcome == firewall.Rejected && c.RejectedBy.IsValid() {
			outcome += " by " + c.RejectedBy.String()
		}
		detail := c.Detail
		if c.Explanation != nil {
			detail += " — " + c.Explanation.String()
		}
		if c.Reason != "" {
			detail += " — " + c.Reason
		}
		if c.Note != "" {
			detail += " (" + c.Note + ")"
		}
		if judged {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", state, c.Probe, outcome, c.Expected, c.Verdict, detail)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", state, c.Probe, outcome, detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := map[firewall.Outcome]int{}
	for _, c := range m.Cells {
		n[c.Outcome]++
	}
	var parts []string
	for _, o := range firewall.Outcomes() {
		if n[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[o], o))
		}
	}
	_, err := fmt.Fprintf(w, "\n%d probes: %s", len(m.Cells), strings.Join(parts, ", "))
	if err == nil && judged {
		_, err = fmt.Fprintf(w, "; --expect %s: %s", m.Policy, m.Verdict)
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	if err == nil && m.Interrupted {
		_, err = fmt.Fprintln(w, "interrupted: the matrix is partial; the probes cut short are marked interrupted")
	}
	return err
}

// WriteTrace prints the ICMP-quote trace: each hop, what its quote shows
// changed, and which router made each change.
func WriteTrace(w io.Writer, tr *firewall.Trace) error {
	fmt.Fprintf(w, "path changes to %s (TTL-limited copies of %s, quoted back in ICMP time exceeded):\n", tr.Target, tr.Sent)
	for _, h := range tr.Hops {
		switch {
		case h.Reached && h.AtTarget == "never arrived":
			fmt.Fprintf(w, "  ttl %2d  %-15s  answered in the target's name, but the copy never reached the target (capture)\n", h.TTL, h.From)
		case h.Reached && h.AnsweredFrom > 0 && h.AtTarget == "":
			fmt.Fprintf(w, "  ttl %2d  %-15s  answered in the target's name with TTL %d, from hop %d: before the target\n", h.TTL, h.From, h.ReplyTTL, h.AnsweredFrom)
		case h.Reached && h.AtTarget == "arrived" && len(h.Changes) > 0:
			fmt.Fprintf(w, "  ttl %2d  %-15s  the target answered; the copy arrived changed (capture): %s\n", h.TTL, h.From, changeList(h.Changes))
		case h.Reached:
			fmt.Fprintf(w, "  ttl %2d  %-15s  the target answered\n", h.TTL, h.From)
		case !h.From.IsValid():
			fmt.Fprintf(w, "  ttl %2d  *                no ICMP came back\n", h.TTL)
		case !h.Quoted:
			fmt.Fprintf(w, "  ttl %2d  %-15s  quote too short to compare the options\n", h.TTL, h.From)
		case len(h.Changes) == 0:
			fmt.Fprintf(w, "  ttl %2d  %-15s  arrived unchanged\n", h.TTL, h.From)
		default:
			fmt.Fprintf(w, "  ttl %2d  %-15s  arrived changed: %s\n", h.TTL, h.From, changeList(h.Changes))
		}
	}
	if len(tr.Rewrites) == 0 {
		if len(tr.Hops) > 0 && tr.Hops[len(tr.Hops)-1].AtTarget != "" {
			fmt.Fprintf(w, "no router changed the SYN\n")
		} else {
			fmt.Fprintf(w, "no router changed the SYN before the last hop\n")
		}
	}
	for _, r := range tr.Rewrites {
		by := "our own host"
		if r.Hop > 0 {
			by = fmt.Sprintf("hop %d (%s)", r.Hop, r.By)
		}
		fmt.Fprintf(w, "rewritten by %s: %s\n", by, changeList(r.Changes))
	}
	if tr.Note != "" {
		_, err := fmt.Fprintf(w, "note: %s\n", tr.Note)
		return err
	}
	return nil
}

func changeList(cs []firewall.Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// FirewallJSON is the machine-readable firewall report.
type FirewallJSON struct {
	Event  string           `json:"event"` // "firewall"
	Matrix *firewall.Matrix `json:"matrix"`
	Trace  *firewall.Trace  `json:"trace,omitempty"`
	// Matrix6 and Parity are set by a two-family run (WriteParityJSON):
	// Matrix is then the IPv4 matrix, Matrix6 the IPv6 one.
	Matrix6 *firewall.Matrix `json:"matrix6,omitempty"`
	Parity  *firewall.Parity `json:"parity,omitempty"`
}

// WriteFirewallJSON writes the matrix (and the trace, if any) as one JSON
// object on one line with "event":"firewall", as every other command's
// --json writes its lines: <SEQ=..> unescaped, lists empty rather than null.
func WriteFirewallJSON(w io.Writer, m *firewall.Matrix, tr *firewall.Trace) error {
	if tr != nil && tr.Rewrites == nil {
		t := *tr
		t.Rewrites = []firewall.Rewrite{}
		tr = &t
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep <SEQ=..> readable for jq and grep
	return enc.Encode(FirewallJSON{Event: "firewall", Matrix: m, Trace: tr})
}

// WriteParity prints a two-family firewall run: first the finding, every
// row whose outcome differs between IPv4 and IPv6 (or that none does),
// with what each family's outcome rests on; then the rows that could not be
// compared; then both matrices as WriteFirewall prints them, IPv4 first.
func WriteParity(w io.Writer, p *firewall.Parity) error {
	compared := len(p.V4.Cells) - len(p.Uncompared)
	fmt.Fprintf(w, "firewall parity of %s (IPv4) and %s (IPv6)\n", p.V4.Target, p.V6.Target)
	interrupted := p.V4.Interrupted || p.V6.Interrupted
	switch {
	case len(p.Differences) == 0 && interrupted:
		fmt.Fprintf(w, "interrupted: no difference among the %d rows compared before the run was stopped; the comparison is partial\n", compared)
	case len(p.Differences) == 0 && compared == 0:
		fmt.Fprintf(w, "no row could be compared (see below): no difference found, none ruled out\n")
	case len(p.Differences) == 0:
		fmt.Fprintf(w, "no difference: each of the %d compared rows has the same outcome on IPv4 and IPv6\n", compared)
	default:
		if interrupted {
			fmt.Fprintf(w, "interrupted: the comparison is partial\n")
		}
		fmt.Fprintf(w, "FINDING: %d of %d compared rows differ between IPv4 and IPv6 (%s):\n\n", len(p.Differences), compared, firewall.ParityRule)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "STATE\tPROBE\tIPv4\tIPv6\n")
		for _, d := range p.Differences {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.State, d.Probe, d.V4, d.V6)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		for _, d := range p.Differences {
			fmt.Fprintf(w, "%s / %s:\n  IPv4 %s: %s\n  IPv6 %s: %s\n", d.State, d.Probe, d.V4, d.V4Detail, d.V6, d.V6Detail)
		}
	}
	if len(p.Uncompared) > 0 {
		fmt.Fprintf(w, "\nnot compared (%d):\n", len(p.Uncompared))
		for _, u := range p.Uncompared {
			fmt.Fprintf(w, "  %s / %s: %s\n", u.State, u.Probe, u.Reason)
		}
	}
	for _, m := range []*firewall.Matrix{p.V4, p.V6} {
		fmt.Fprintln(w)
		if err := WriteFirewall(w, m); err != nil {
			return err
		}
	}
	summary := fmt.Sprintf("\nparity: %d of %d compared rows differ", len(p.Differences), compared)
	if p.Policy != "" {
		summary += fmt.Sprintf("; --expect %s: IPv4 %s, IPv6 %s", p.Policy, p.V4.Verdict, p.V6.Verdict)
	}
	_, err := fmt.Fprintf(w, "%s; verdict %s\n", summary, p.Verdict)
	return err
}

// WriteParityJSON writes a two-family run as one FirewallJSON object: the
// IPv4 matrix under "matrix" as for one family, the IPv6 one under
// "matrix6", and the comparison under "parity".
func WriteParityJSON(w io.Writer, p *firewall.Parity) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(FirewallJSON{Event: "firewall", Matrix: p.V4, Matrix6: p.V6, Parity: p})
}
