package firewall

import (
	"context"
	"fmt"
	"net/netip"
)

// RunParity runs the matrix on v4 (a Config whose Prober probes the
// target's IPv4 address) and then on v6 (its IPv6 address; the same ports),
// one after the other so that neither run's load changes the other's
// answers, and compares them (CompareFamilies). It fails as Run fails, for
// either family; a run the user interrupted ends both.
func RunParity(ctx context.Context, v4, v6 Config) (*Parity, error) {
	if !v4.Prober.Remote().Is4() || !v6.Prober.Remote().Is6() {
		return nil, fmt.Errorf("firewall: parity of %s and %s: want an IPv4 and an IPv6 address of one target", v4.Prober.Remote(), v6.Prober.Remote())
	}
	m4, err := Run(ctx, v4)
	if err != nil {
		return nil, fmt.Errorf("IPv4: %w", err)
	}
	if ctx.Err() != nil {
		// Interrupted: the IPv6 matrix is not run; every row of it
		// counts as interrupted.
		return CompareFamilies(m4, interruptedLike(m4, v6)), nil
	}
	m6, err := Run(ctx, v6)
	if err != nil {
		return nil, fmt.Errorf("IPv6: %w", err)
	}
	return CompareFamilies(m4, m6), nil
}

// interruptedLike is a matrix for cfg's target with m's rows, all
// interrupted (the run that would have filled it was not started).
func interruptedLike(m *Matrix, cfg Config) *Matrix {
	out := &Matrix{Target: netip.AddrPortFrom(cfg.Prober.Remote(), cfg.Port), Local: cfg.Prober.Local(),
		Capture: cfg.Capture != nil, Start: m.Start, Interrupted: true}
	for _, c := range m.Cells {
		out.Cells = append(out.Cells, Cell{State: c.State, Probe: c.Probe, Sent: c.Sent, Outcome: Interrupted, Detail: "interrupted before the IPv6 matrix started"})
	}
	return out
}
