package firewall_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// runLab builds a routed lab with profile fw on its router and runs the
// matrix against the hold server, with a capture in the target.
func runLab(t *testing.T, fw lab.Firewall, capture bool) (*firewall.Matrix, *lab.Routed) {
	t.Helper()
	r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: fw})
	return runMatrix(t, r, r.TargetAddr, capture), r
}

// runMatrix runs the matrix against remote (the lab's target, IPv4 or IPv6)
// of the routed lab r and checks that it leaves no connection behind.
func runMatrix(t *testing.T, r *lab.Routed, remote netip.Addr, capture bool) *firewall.Matrix {
	t.Helper()
	fw := r.Routers[0].Firewall
	prober := r.ProberAddr
	if remote.Is6() {
		prober = r.ProberAddr6
	}
	p, err := probe.Open(probe.Config{Remote: remote, NetNS: r.Prober})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { p.Close() })
	cfg := firewall.Config{Prober: p, Port: lab.PortHold, BlockedPort: lab.PortBlocked,
		ClosePort: lab.PortClose, CloseRequest: []byte("GET / HTTP/1.0\r\n\r\n")}
	if capture {
		cfg.Capture = r.Target
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := firewall.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run through %s: %v", fw, err)
	}
	// The run leaves no connection of ours on the target (its tidy RSTs
	// are exact); TIME_WAITs and half-open requests may take a moment.
	deadline := time.Now().Add(2 * time.Second)
	for {
		var left []string
		socks, err := sockdiag.Dump(r.Target)
		if err != nil {
			t.Fatalf("sock_diag in the target: %v", err)
		}
		for _, s := range socks {
			if s.Remote.Addr() == prober && s.State != sockdiag.TimeWait {
				left = append(left, s.State.String()+" "+s.Remote.String())
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("through %s: the run left connections on the target: %v", fw, left)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

// key names a cell.
type key struct {
	state firewall.State
	probe string
}

// want is the outcome a cell must have; by, when valid, who must have
// rejected it.
type want struct {
	outcome firewall.Outcome
	by      netip.Addr
}

var (
	fwAddr     = lab.RouterProberSide.Addr()
	targetAddr = lab.RoutedTargetAddr.Addr()
	// refusedByStateful are the cells a stateful firewall refuses: every
	// segment that opens no connection with a SYN or falls outside the
	// window conntrack tracks.
	refusedByStateful = []key{
		{firewall.StateNone, "SYN to a blocked port"},
		{firewall.StateNone, "unsolicited SYN-ACK"},
		{firewall.StateNone, "ACK without a connection"},
		{firewall.StateNone, "FIN scan"},
		{firewall.StateNone, "NULL scan"},
		{firewall.StateNone, "Xmas scan"},
		{firewall.StateHandshaking, "ACK of an unsent number"},
		{firewall.StateEstablished, "data out of window"},
		{firewall.StateEstablished, "ACK out of window"},
		{firewall.StateClosing, "ACK out of window"},
	}
)

// implied returns the matrix each profile's ruleset implies: delivered
// unless listed.
func implied(fw lab.Firewall) map[key]want {
	m := map[key]want{}
	switch fw {
	case lab.FirewallStateless:
		m[key{firewall.StateNone, "SYN to a blocked port"}] = want{outcome: firewall.Dropped}
	case lab.FirewallStateful, lab.FirewallV6Open:
		// v6-open is stateful for IPv4 (this matrix's family).
		for _, k := range refusedByStateful {
			m[k] = want{outcome: firewall.Dropped}
		}
	case lab.FirewallReject:
		// Invalid for conntrack: ICMP from the firewall; new but not a
		// SYN to an allowed port: a RST in the target's name.
		for _, k := range refusedByStateful {
			m[k] = want{firewall.Rejected, fwAddr}
		}
		m[key{firewall.StateNone, "SYN to a blocked port"}] = want{firewall.Rejected, targetAddr}
		m[key{firewall.StateNone, "ACK without a connection"}] = want{firewall.Rejected, targetAddr}
	case lab.FirewallClamp:
		m[key{firewall.StateNone, "SYN with options"}] = want{outcome: firewall.Rewritten}
		m[key{firewall.StateHandshaking, "SYN retransmitted"}] = want{outcome: firewall.Rewritten}
	case lab.FirewallLoose:
		// Stateful, but conntrack picks the bare ACK up as new.
		for _, k := range refusedByStateful {
			m[k] = want{outcome: firewall.Dropped}
		}
		delete(m, key{firewall.StateNone, "ACK without a connection"})
	case lab.FirewallSynproxy:
		// Stateful behind a SYN proxy: the router answers every SYN to
		// an allowed port itself (also our unsolicited SYN-ACK, which
		// it takes for one) and translates the ACK numbers of the
		// connections it opens to the target.
		for _, k := range refusedByStateful {
			m[k] = want{outcome: firewall.Dropped}
		}
		m[key{firewall.StateNone, "unsolicited SYN-ACK"}] = want{firewall.AnsweredByMiddlebox, targetAddr}
		for _, k := range []key{{firewall.StateNone, "SYN with options"}, {firewall.StateHandshaking, "SYN retransmitted"},
			{firewall.StateTimeWait, "SYN to the TIME_WAIT 4-tuple"}} {
			m[k] = want{firewall.Proxied, targetAddr}
		}
		for _, k := range []key{{firewall.StateEstablished, "data in window"}, {firewall.StateEstablished, "data after RST"},
			{firewall.StateClosing, "keep-alive"}} {
			m[k] = want{outcome: firewall.Rewritten}
		}
	}
	return m
}

// checkNoRetransmissionReject fails t for any cell that a segment with the
// target's own TTL decided as rejected or answered by a middlebox: the
// target's retransmission of an earlier segment is never a reply.
func checkNoRetransmissionReject(t *testing.T, fw lab.Firewall, m *firewall.Matrix) {
	t.Helper()
	for _, c := range m.Cells {
		if c.Outcome != firewall.Rejected && c.Outcome != firewall.AnsweredByMiddlebox {
			continue
		}
		for _, r := range c.Replies {
			if r.ICMP == "" && !r.Retransmission && r.TTL == m.TargetTTL {
				t.Errorf("%s: %s / %s: %s on a segment with the target's own TTL (%s): %s", fw, c.State, c.Probe, c.Outcome, r, c.Detail)
			}
		}
	}
}

// TestProfileMatrix: each firewall profile of the lab yields the matrix its
// ruleset implies, seen by a capture at the target.
func TestProfileMatrix(t *testing.T) {
	for _, fw := range lab.Firewalls() {
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			m, _ := runLab(t, fw, true)
			if m.TargetTTL != 63 {
				t.Errorf("target TTL %d, want 63 (64 less one router)", m.TargetTTL)
			}
			exp := implied(fw)
			for _, c := range m.Cells {
				w, ok := exp[key{c.State, c.Probe}]
				if !ok {
					w = want{outcome: firewall.Delivered}
				}
				if c.Outcome != w.outcome {
					t.Errorf("%s / %s: %s (%s), want %s", c.State, c.Probe, c.Outcome, c.Detail, w.outcome)
					continue
				}
				if w.by.IsValid() && c.RejectedBy != w.by {
					t.Errorf("%s / %s: rejected by %s, want %s (%s)", c.State, c.Probe, c.RejectedBy, w.by, c.Detail)
				}
				if w.outcome == firewall.Rejected && w.by == targetAddr && c.HopsShort != 1 {
					t.Errorf("%s / %s: RST came %d hops short of the target, want 1 (the firewall's)", c.State, c.Probe, c.HopsShort)
				}
				if w.outcome == firewall.Proxied || w.outcome == firewall.AnsweredByMiddlebox {
					if c.HopsShort != 1 || !strings.Contains(c.Detail, "hop 1 (198.18.0.254)") {
						t.Errorf("%s / %s: %d hops short, detail %q; want the router at hop 1 (198.18.0.254)", c.State, c.Probe, c.HopsShort, c.Detail)
					}
				}
				if w.outcome == firewall.Rewritten && fw == lab.FirewallSynproxy {
					if len(c.Changes) != 1 || c.Changes[0].Field != "ack" {
						t.Errorf("%s / %s: changes %v, want the ack translated only", c.State, c.Probe, c.Changes)
					}
					continue
				}
				if w.outcome == firewall.Rewritten {
					mss := firewall.Change{Field: "mss", Sent: "1460", Got: strconv.Itoa(lab.ClampMSS)}
					if diff := cmp.Diff([]firewall.Change{mss}, c.Changes); diff != "" {
						t.Errorf("%s / %s: changes (-want +got):\n%s", c.State, c.Probe, diff)
					}
				}
			}
			checkNoRetransmissionReject(t, fw, m)
			checkMiddlebox(t, fw, m)
			// The cells a target answers show its answer at the target.
			if c := m.Cell(firewall.StateNone, "SYN with options"); c.TargetAnswer != "S." && fw != lab.FirewallSynproxy {
				t.Errorf("SYN: target answered %q, want S.", c.TargetAnswer)
			}
			if fw == lab.FirewallLoose {
				checkLooseExplained(t, m)
			}
			// --expect stateful: the stateful, reject and synproxy
			// profiles meet it, the others do not.
			m.Judge(firewall.PolicyStateful)
			wantV := walk.Fail
			if fw == lab.FirewallStateful || fw == lab.FirewallReject || fw == lab.FirewallSynproxy || fw == lab.FirewallV6Open {
				wantV = walk.Pass
			}
			if m.Verdict != wantV {
				t.Errorf("--expect stateful: verdict %s, want %s", m.Verdict, wantV)
			}
			m.Judge(firewall.PolicyOpen)
			if wantOpen := map[bool]walk.Verdict{true: walk.Pass, false: walk.Fail}[fw == lab.FirewallNone || fw == lab.FirewallClamp]; m.Verdict != wantOpen {
				t.Errorf("--expect open: verdict %s, want %s", m.Verdict, wantOpen)
			}
		})
	}
}

// checkMiddlebox: the synproxy profile's router is found as a proxying
// middlebox at hop 1, with its address and the TTL evidence; no other
// profile has a middlebox. The header's target TTL is the target's own.
func checkMiddlebox(t *testing.T, fw lab.Firewall, m *firewall.Matrix) {
	t.Helper()
	if m.TargetTTL != 63 {
		t.Errorf("%s: target TTL %d, want 63 (64 less one router), whoever answers the handshake", fw, m.TargetTTL)
	}
	mb := m.Middlebox
	if fw != lab.FirewallSynproxy {
		if mb != nil {
			t.Errorf("%s: middlebox %+v, want none", fw, mb)
		}
		return
	}
	if mb == nil {
		t.Fatalf("synproxy: no middlebox found")
	}
	if !mb.Proxied || mb.Hop != 1 || mb.TTL != 64 || mb.Addr != fwAddr {
		t.Errorf("synproxy: middlebox %+v, want proxied at hop 1 (%s), ttl 64", mb, fwAddr)
	}
	if len(mb.Evidence) == 0 || !strings.HasPrefix(mb.Evidence[0], "TTL:") {
		t.Errorf("synproxy: evidence %q, want the TTL first", mb.Evidence)
	}
	if m.Capture && !slices.ContainsFunc(mb.Evidence, func(e string) bool { return strings.HasPrefix(e, "sequence translation:") }) {
		t.Errorf("synproxy with a capture: evidence %q lacks the sequence translation", mb.Evidence)
	}
}

// checkLooseExplained: the loose profile's delivered ACK names loose
// pickup and the fix in both syntaxes.
func checkLooseExplained(t *testing.T, m *firewall.Matrix) {
	t.Helper()
	c := m.Cell(firewall.StateNone, "ACK without a connection")
	if c == nil || c.Explanation == nil {
		t.Fatalf("loose: ACK without a connection has no explanation: %+v", c)
	}
	e := c.Explanation
	if !strings.Contains(e.Pattern, "loose conntrack pickup") || !strings.Contains(e.Nftables, "ct state new drop") ||
		!strings.Contains(e.Iptables, "! --syn -m conntrack --ctstate NEW -j DROP") {
		t.Errorf("loose: explanation %+v, want loose pickup and the fix", e)
	}
}

// TestMatrixWithoutCapture: without a capture the answers decide: a
// firewall's RST is told from the target's by its TTL, silence after a
// segment every TCP answers counts as dropped, and silence after a scan is
// inconclusive under a policy.
func TestMatrixWithoutCapture(t *testing.T) {
	for _, fw := range []lab.Firewall{lab.FirewallReject, lab.FirewallStateful, lab.FirewallSynproxy, lab.FirewallLoose} {
		t.Run(string(fw), func(t *testing.T) {
			t.Parallel()
			m, _ := runLab(t, fw, false)
			checkNoRetransmissionReject(t, fw, m)
			get := func(s firewall.State, p string) *firewall.Cell {
				c := m.Cell(s, p)
				if c == nil {
					t.Fatalf("no cell %s / %s", s, p)
				}
				if c.Delivered != nil {
					t.Errorf("%s / %s: Delivered set without a capture", s, p)
				}
				return c
			}
			ack := get(firewall.StateNone, "ACK without a connection")
			fin := get(firewall.StateNone, "FIN scan")
			data := get(firewall.StateEstablished, "data in window")
			if data.Outcome != firewall.Delivered {
				t.Errorf("data in window: %s (%s), want delivered (answered)", data.Outcome, data.Detail)
			}
			switch fw {
			case lab.FirewallReject:
				if ack.Outcome != firewall.Rejected || ack.HopsShort != 1 {
					t.Errorf("ACK: %s, %d hops short (%s); want rejected 1 hop short", ack.Outcome, ack.HopsShort, ack.Detail)
				}
				if fin.Outcome != firewall.Rejected || fin.RejectedBy != fwAddr {
					t.Errorf("FIN scan: %s by %s (%s); want rejected by %s", fin.Outcome, fin.RejectedBy, fin.Detail, fwAddr)
				}
			case lab.FirewallSynproxy:
				checkMiddlebox(t, fw, m)
				syn := get(firewall.StateNone, "SYN with options")
				if syn.Outcome != firewall.Proxied || !strings.Contains(syn.Detail, "hop 1 (198.18.0.254)") {
					t.Errorf("SYN: %s (%s), want proxied at hop 1 (198.18.0.254)", syn.Outcome, syn.Detail)
				}
				m.Judge(firewall.PolicyStateful)
				if syn.Verdict != walk.Pass {
					t.Errorf("SYN verdict %s (%s), want pass", syn.Verdict, syn.Reason)
				}
			case lab.FirewallLoose:
				if ack.Outcome != firewall.Delivered {
					t.Errorf("ACK: %s (%s), want delivered (the target's RST)", ack.Outcome, ack.Detail)
				}
				checkLooseExplained(t, m)
			case lab.FirewallStateful:
				if ack.Outcome != firewall.Dropped {
					t.Errorf("ACK: %s (%s), want dropped (inferred)", ack.Outcome, ack.Detail)
				}
				if fin.Outcome != firewall.NoAnswer {
					t.Errorf("FIN scan: %s (%s), want no-answer", fin.Outcome, fin.Detail)
				}
				m.Judge(firewall.PolicyStateful)
				if fin.Verdict != walk.Inconclusive || m.Verdict != walk.Inconclusive {
					t.Errorf("FIN scan verdict %s, matrix %s; want inconclusive", fin.Verdict, m.Verdict)
				}
			}
		})
	}
}

// TestTraceFindsClampingHop: with two routers, the first clamping the MSS,
// the ICMP-quote method names hop 1 (198.18.0.254) and the MSS change, and
// reaches the target at TTL 3.
func TestTraceFindsClampingHop(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{Routers: 2, Firewall: lab.FirewallClamp})
	p, err := probe.Open(probe.Config{Remote: r.TargetAddr, NetNS: r.Prober})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := firewall.RunTrace(ctx, p, lab.PortHold, 8, firewall.Timing{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Hops) != 3 || !tr.Hops[2].Reached {
		t.Fatalf("hops %+v: want 2 routers and the target at TTL 3", tr.Hops)
	}
	if tr.Hops[0].From != lab.RouterProberSide.Addr() || tr.Hops[1].From != lab.Router2Transit.Addr() {
		t.Errorf("routers %s, %s; want %s, %s", tr.Hops[0].From, tr.Hops[1].From, lab.RouterProberSide.Addr(), lab.Router2Transit.Addr())
	}
	if len(tr.Hops[0].Changes) != 0 || !tr.Hops[0].Quoted {
		t.Errorf("hop 1 quote: changes %v (whole header %v), want none", tr.Hops[0].Changes, tr.Hops[0].Quoted)
	}
	want := []firewall.Rewrite{{Hop: 1, By: lab.RouterProberSide.Addr(),
		Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: strconv.Itoa(lab.ClampMSS)}}}}
	if diff := cmp.Diff(want, tr.Rewrites, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("rewrites (-want +got):\n%s", diff)
	}
}

// TestTraceNoRewrite: without a clamp nothing is reported.
func TestTraceNoRewrite(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{Routers: 2})
	p, err := probe.Open(probe.Config{Remote: r.TargetAddr, NetNS: r.Prober})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { p.Close() })
	tr, err := firewall.RunTrace(context.Background(), p, lab.PortHold, 8, firewall.Timing{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Hops) != 3 || len(tr.Rewrites) != 0 || tr.Hops[2].AnsweredFrom != 0 {
		t.Errorf("hops %+v rewrites %+v: want 3 hops, no rewrite, the target answering itself", tr.Hops, tr.Rewrites)
	}
}

// TestTraceNamesLastRouterClamp: with one router clamping the MSS (the
// `lab up --firewall clamp` lab), no router quotes the change, and the
// capture at the target names the router: hop 1 (198.18.0.254).
func TestTraceNamesLastRouterClamp(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: lab.FirewallClamp})
	p, err := probe.Open(probe.Config{Remote: r.TargetAddr, NetNS: r.Prober})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := firewall.RunTraceCapture(ctx, p, lab.PortHold, 8, firewall.Timing{}, r.Target)
	if err != nil {
		t.Fatal(err)
	}
	want := []firewall.Rewrite{{Hop: 1, By: lab.RouterProberSide.Addr(),
		Changes: []firewall.Change{{Field: "mss", Sent: "1460", Got: strconv.Itoa(lab.ClampMSS)}}}}
	if diff := cmp.Diff(want, tr.Rewrites, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("rewrites (-want +got):\n%s", diff)
	}
	if n := len(tr.Hops); n != 2 || tr.Hops[1].AtTarget != "arrived" {
		t.Errorf("hops %+v: want the router and the target, the copy seen arriving", tr.Hops)
	}
}

// TestTraceSynproxy: through a SYN proxy the copy answered at TTL 2 never
// reached the target, and the trace says so.
func TestTraceSynproxy(t *testing.T) {
	r := labtest.NewRouted(t, lab.RoutedConfig{Firewall: lab.FirewallSynproxy})
	p, err := probe.Open(probe.Config{Remote: r.TargetAddr, NetNS: r.Prober})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() { p.Close() })
	tr, err := firewall.RunTraceCapture(context.Background(), p, lab.PortHold, 8, firewall.Timing{}, r.Target)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Hops); n != 2 || !tr.Hops[1].Reached || tr.Hops[1].AtTarget != "never arrived" || tr.Hops[1].AnsweredFrom != 1 {
		t.Errorf("hops %+v: want the answered copy never to arrive, answered from hop 1", tr.Hops)
	}
	// Without the capture, the answer's TTL alone tells it came from hop 1.
	tr, err = firewall.RunTrace(context.Background(), p, lab.PortHold, 8, firewall.Timing{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Hops); n != 2 || tr.Hops[1].AnsweredFrom != 1 || !strings.Contains(tr.Note, "from hop 1") {
		t.Errorf("without a capture: hops %+v, note %q: want the copy with TTL 2 answered from hop 1", tr.Hops, tr.Note)
	}
}
