package walk_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// brokenOracle fails every read, as sock_diag does without CAP_NET_ADMIN
// in the target's namespace.
type brokenOracle struct{}

var errBroken = errors.New("sockdiag: dump TCP sockets: operation not permitted")

func (brokenOracle) State(remote, local netip.AddrPort) (result.State, error) {
	return result.NoState, errBroken
}
func (brokenOracle) Listening(remote netip.AddrPort) (bool, error) { return false, errBroken }

// TestOracleErrorKeptAsError: a kernel read that fails is kept as the error
// itself (Kernel stays NoState, no state is made of it), counts as a
// disagreement, and is written in JSON as kernel_state "error: ...".
func TestOracleErrorKeptAsError(t *testing.T) {
	cfg, _ := labWalk(t)
	cfg.Oracle = brokenOracle{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := walk.Run(ctx, cfg, walk.Scenarios()[:1])
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	r := res[0]
	n := 0
	for _, c := range r.Checks {
		if c.Wire == result.NoState {
			continue
		}
		n++
		if !errors.Is(c.KernelErr, errBroken) || c.Kernel != result.NoState || !c.Disagree {
			t.Errorf("%s: KernelErr=%v Kernel=%q Disagree=%v, want the oracle's error, no state, a disagreement", c.Name, c.KernelErr, c.Kernel, c.Disagree)
		}
	}
	if n == 0 {
		t.Fatalf("%s: no check with a wire state: %+v", r.Scenario, r.Checks)
	}
	if r.Disagreements != n {
		t.Errorf("%d disagreements, want %d", r.Disagreements, n)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"kernel_state":"error: ` + errBroken.Error() + `"`; strings.Count(string(b), want) != n {
		t.Errorf("JSON has %d of %s, want %d:\n%s", strings.Count(string(b), want), want, n, b)
	}
}
