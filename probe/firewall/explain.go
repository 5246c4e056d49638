package firewall

import (
	"fmt"
	"math"
)

// Explanation names the ruleset pattern a cell's outcome follows from and
// the rule that would change it.
type Explanation struct {
	// Pattern is the pattern's name, e.g. "loose conntrack pickup".
	Pattern string `json:"pattern"`
	// Why says how the pattern gives the outcome.
	Why string `json:"why"`
	// Nftables and Iptables are the fix in each syntax.
	Nftables string `json:"nftables"`
	Iptables string `json:"iptables"`
}

// String writes the explanation on one line.
func (e *Explanation) String() string {
	return fmt.Sprintf("%s: %s; fix (nftables): %s; (iptables): %s", e.Pattern, e.Why, e.Nftables, e.Iptables)
}

// Ruleset patterns whose outcomes the matrix recognises. Each is told
// from the others by what else the matrix shows: a path that tracks
// connections refuses the bare FIN, NULL and Xmas scans (conntrack marks
// them invalid) and the unsolicited SYN-ACK.
var (
	loosePickup = Explanation{
		Pattern: "loose conntrack pickup, `ct state new` accepted without a SYN match",
		Why: "the path tracks connections (it refuses scans), yet conntrack made a new entry from this mid-stream ACK " +
			"(nf_conntrack_tcp_loose=1, the Linux default) and a rule accepting ct state new on the port let it through",
		Nftables: "tcp flags & (fin|syn|rst|ack) != syn ct state new drop (before the accept), or accept only " +
			"tcp flags & (fin|syn|rst|ack) == syn ct state new; or sysctl net.netfilter.nf_conntrack_tcp_loose=0",
		Iptables: "iptables -I FORWARD -p tcp ! --syn -m conntrack --ctstate NEW -j DROP",
	}
	missingInvalidDrop = Explanation{
		Pattern: "no `ct state invalid drop`",
		Why: "the path tracks connections (it refuses scans), yet let through a segment outside the tracked window, " +
			"which conntrack marks invalid: no rule drops invalid before an accept matches it",
		Nftables: "ct state invalid drop (before any accept rule)",
		Iptables: "iptables -I FORWARD -m conntrack --ctstate INVALID -j DROP",
	}
	statelessAccept = Explanation{
		Pattern: "stateless accept by port (`tcp dport`/`tcp sport ... accept`, no conntrack)",
		Why: "the path refuses a SYN to the blocked port but passes this segment, which opens no connection: it " +
			"filters on ports alone, and its accept of `tcp sport` (meant for the replies of its servers) or " +
			"`tcp dport` passes any flags",
		Nftables: "ct state established,related accept; ct state invalid drop; " +
			"tcp flags & (fin|syn|rst|ack) == syn tcp dport PORTS ct state new accept (in place of tcp dport/sport ... accept)",
		Iptables: "iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT; " +
			"iptables -A FORWARD -p tcp --syn --dport PORTS -m conntrack --ctstate NEW -j ACCEPT (in place of -p tcp --sport/--dport ... -j ACCEPT)",
	}
)

// explain attaches the explanation of every cell whose outcome follows from
// a known ruleset pattern.
func explain(m *Matrix) {
	refused := func(s State, p string) bool {
		c := m.Cell(s, p)
		return c != nil && c.Outcome.Refused()
	}
	reached := func(s State, p string) *Cell {
		if c := m.Cell(s, p); c != nil && c.Outcome.Reached() {
			return c
		}
		return nil
	}
	tracks := refused(StateNone, "FIN scan") || refused(StateNone, "NULL scan") || refused(StateNone, "Xmas scan") ||
		refused(StateNone, "unsolicited SYN-ACK")
	if !tracks {
		// Without a capture the scans' silence decides nothing; the
		// refused SYN-ACK and out-of-window data, which a TCP answers,
		// still do.
		tracks = refused(StateEstablished, "data out of window") || refused(StateHandshaking, "ACK of an unsent number")
	}
	if tracks {
		if c := reached(StateNone, "ACK without a connection"); c != nil {
			c.Explanation = &loosePickup
		}
		for _, k := range []struct {
			s State
			p string
		}{{StateEstablished, "data out of window"}, {StateEstablished, "ACK out of window"}, {StateClosing, "ACK out of window"}} {
			if c := reached(k.s, k.p); c != nil {
				c.Explanation = &missingInvalidDrop
			}
		}
	}
	if !tracks && refused(StateNone, "SYN to a blocked port") {
		for _, p := range []string{"ACK without a connection", "unsolicited SYN-ACK", "FIN scan", "NULL scan", "Xmas scan"} {
			// Once, on the first such row: the others follow from it.
			if c := reached(StateNone, p); c != nil {
				c.Explanation = &statelessAccept
				break
			}
		}
	}
}

// falseDropBound is how likely loss alone may be to have silenced every
// copy of a probe before silence counts as a drop without a capture.
const falseDropBound = 1e-6

// undecideOnLoss turns into Undecided a drop inferred from silence without
// a capture where the run's own setup showed the path losing segments so
// often that loss could explain the silence: with a share p of setup
// segments unanswered, n unanswered copies are all lost with chance about
// p^n.
func undecideOnLoss(m *Matrix) {
	if m.Lossy == 0 || m.Capture {
		return
	}
	p := float64(m.Lossy) / float64(max(m.exchanges, m.Lossy, 1))
	// Few sends make a poor estimate: never believe less than 5 %.
	p = max(p, 0.05)
	for i := range m.Cells {
		c := &m.Cells[i]
		if c.Outcome != Dropped {
			continue
		}
		if math.Pow(p, float64(c.copies)) < falseDropBound {
			c.Detail += fmt.Sprintf(" (on a path that left about %.0f%% of setup segments unanswered, loss would silence all %d with a chance below 1e-6)", 100*p, c.copies)
			continue
		}
		c.Outcome = Undecided
		c.Detail = fmt.Sprintf("%s, but this run's path lost segments (%d of %d setup segments went unanswered): loss may explain the silence (a capture at the target decides: --oracle-netns)", c.Detail, m.Lossy, m.exchanges)
	}
}
