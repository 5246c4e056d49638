package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// Parity is the matrix run on both families against one dual-stack target
// (`tcpwalk firewall HOST4:PORT HOST6:PORT`), and what differs between
// them. A firewall meant for both families must treat a probe alike on
// each (RFC 7123 §3: native IPv6 that the IPv4 controls do not cover
// evades them), and the classic hole is a dual-stack host whose IPv4 rules are
// strict while its IPv6 side is open (an `ip` table where an `inet` one
// was meant, iptables rules without ip6tables twins).
type Parity struct {
	// V4 and V6 are the two matrices, each judged on its own when a
	// policy is given (--expect works per family).
	V4 *Matrix `json:"-"`
	V6 *Matrix `json:"-"`
	// Differences are the rows whose outcome differs between the
	// families: the finding, in the matrix's row order.
	Differences []Difference `json:"differences"`
	// Uncompared are the rows that could not be compared, with why (a row
	// not run or undecided on either family).
	Uncompared []Uncompared `json:"uncompared"`
	// Policy is the --expect policy both matrices were judged against.
	Policy Policy `json:"policy,omitempty"`
	// Verdict is fail when a row differs, else the worse of the two
	// matrices' verdicts (pass without a policy).
	Verdict walk.Verdict `json:"verdict"`
}

// ParityRule is the rule a difference breaks.
const ParityRule = "RFC 7123 §3: IPv6 gets the security controls IPv4 has (else native IPv6 evades them)"

// Difference is one row whose outcome differs between IPv4 and IPv6.
type Difference struct {
	State State  `json:"state"`
	Probe string `json:"probe"`
	// V4 and V6 are the row's outcomes on each family, with what each
	// rests on.
	V4       Outcome `json:"ipv4"`
	V6       Outcome `json:"ipv6"`
	V4Detail string  `json:"ipv4_detail"`
	V6Detail string  `json:"ipv6_detail"`
}

// String writes "none / SYN to a blocked port: IPv4 dropped, IPv6 delivered".
func (d Difference) String() string {
	return fmt.Sprintf("%s / %s: IPv4 %s, IPv6 %s", d.State, d.Probe, d.V4, d.V6)
}

// Uncompared is a row left out of the comparison.
type Uncompared struct {
	State  State  `json:"state"`
	Probe  string `json:"probe"`
	Reason string `json:"reason"`
}

// CompareFamilies compares the IPv4 matrix v4 with the IPv6 matrix v6 of
// one target, row by row. Two outcomes differ when they are not the same
// outcome, or both are rewritten but with other fields changed. Rejected
// is rejected whoever sent it (an ICMP error on IPv4, ICMPv6 on IPv6; the
// router's address is its own on each family). A row not run (its state
// not reached, or its port not given), undecided or interrupted on either
// family is not compared: its silence proves nothing. If both matrices were
// judged against one policy, the Parity keeps it.
func CompareFamilies(v4, v6 *Matrix) *Parity {
	p := &Parity{V4: v4, V6: v6, Differences: []Difference{}, Uncompared: []Uncompared{}, Verdict: walk.Pass}
	if v4.Policy == v6.Policy {
		p.Policy = v4.Policy
	}
	for i := range v4.Cells {
		a := &v4.Cells[i]
		b := v6.Cell(a.State, a.Probe)
		if b == nil {
			p.Uncompared = append(p.Uncompared, Uncompared{a.State, a.Probe, "not in the IPv6 matrix"})
			continue
		}
		if why := uncomparable(a, b); why != "" {
			p.Uncompared = append(p.Uncompared, Uncompared{a.State, a.Probe, why})
			continue
		}
		if sameOutcome(a, b) {
			continue
		}
		p.Differences = append(p.Differences, Difference{State: a.State, Probe: a.Probe,
			V4: a.Outcome, V6: b.Outcome, V4Detail: cellDetail(a), V6Detail: cellDetail(b)})
	}
	for _, m := range []*Matrix{v4, v6} {
		if m.Policy != "" {
			p.Verdict = walk.Worse(p.Verdict, m.Verdict)
		}
		if m.Interrupted {
			p.Verdict = walk.Worse(p.Verdict, walk.Interrupted)
		}
	}
	if len(p.Differences) > 0 {
		p.Verdict = walk.Worse(p.Verdict, walk.Fail)
	}
	return p
}

// uncomparable says why a row cannot be compared, or "".
func uncomparable(a, b *Cell) string {
	for _, side := range []struct {
		fam string
		c   *Cell
	}{{"IPv4", a}, {"IPv6", b}} {
		switch side.c.Outcome {
		case NotRun, Undecided, Interrupted:
			return fmt.Sprintf("%s: %s (%s)", side.fam, side.c.Outcome, side.c.Detail)
		}
	}
	return ""
}

// sameOutcome: the same outcome, and for rewritten rows the same fields
// changed to the same values (what was sent may differ by family: an MSS
// follows the family's header size, RFC 9293 §3.7.1).
func sameOutcome(a, b *Cell) bool {
	if a.Outcome != b.Outcome {
		return false
	}
	if a.Outcome == Rewritten {
		got := func(cs []Change) []string {
			out := make([]string, len(cs))
			for i, c := range cs {
				out[i] = c.Field + "=" + c.Got
			}
			return out
		}
		return slices.Equal(got(a.Changes), got(b.Changes))
	}
	return true
}

// cellDetail is the row's outcome with who refused it and on what it
// rests, as the text report shows it.
func cellDetail(c *Cell) string {
	s := c.Detail
	if c.Outcome == Rejected && c.RejectedBy.IsValid() {
		s = "by " + c.RejectedBy.String() + ": " + s
	}
	return s
}

// Results is both matrices' results (scenarios named "IPv4 firewall
// STATE" and "IPv6 firewall STATE") and one more, "firewall parity",
// with a check per compared row: a row whose outcome differs between the
// families fails. For report.WriteJUnit and the like.
func (p *Parity) Results() []walk.Result {
	var out []walk.Result
	for _, fam := range []struct {
		name string
		m    *Matrix
	}{{"IPv4", p.V4}, {"IPv6", p.V6}} {
		for _, r := range fam.m.Results() {
			r.Scenario = fam.name + " " + r.Scenario
			out = append(out, r)
		}
	}
	res := walk.Result{Scenario: "firewall parity", Summary: "each probe's outcome on IPv4 and on IPv6",
		Target: p.V6.Target, Local: netip.AddrPortFrom(p.V6.Local, 0), Start: p.V4.Start, Verdict: walk.Pass}
	differs := map[string]Difference{}
	for _, d := range p.Differences {
		differs[string(d.State)+"/"+d.Probe] = d
	}
	skipped := map[string]string{}
	for _, u := range p.Uncompared {
		skipped[string(u.State)+"/"+u.Probe] = u.Reason
	}
	for _, c := range p.V4.Cells {
		k := string(c.State) + "/" + c.Probe
		ch := walk.Check{Name: string(c.State) + " / " + c.Probe, Rule: ParityRule,
			Probe: c.Sent, Expected: "the same outcome on both families", Verdict: walk.Pass, At: p.V4.Start}
		switch {
		case skipped[k] != "":
			ch.Verdict, ch.Reason, ch.Received = walk.Skipped, skipped[k], "not compared"
		case differs[k].Probe != "":
			d := differs[k]
			ch.Verdict = walk.Fail
			ch.Received = fmt.Sprintf("IPv4 %s (%s); IPv6 %s (%s)", d.V4, d.V4Detail, d.V6, d.V6Detail)
			ch.Reason = fmt.Sprintf("the families differ: IPv4 %s, IPv6 %s", d.V4, d.V6)
		default:
			ch.Received = "both " + string(c.Outcome)
		}
		res.Checks = append(res.Checks, ch)
		if ch.Verdict != walk.Skipped {
			res.Verdict = walk.Worse(res.Verdict, ch.Verdict)
		}
	}
	return append(out, res)
}

// Judge judges both matrices against policy (each on its own family, as
// --expect does for one) and compares them again: the Parity's verdict is
// then fail for a difference or for a row either family breaks the policy
// with.
func (p *Parity) Judge(policy Policy) {
	p.V4.Judge(policy)
	p.V6.Judge(policy)
	*p = *CompareFamilies(p.V4, p.V6)
}
