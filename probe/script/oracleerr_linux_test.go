package script_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/script"
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

// TestExpectStateOracleError: when the kernel cannot be read, %expect-state
// is inconclusive (our oracle failed, not the target) and keeps the error as
// an error, not as a state named "error: ...".
func TestExpectStateOracleError(t *testing.T) {
	cfg := labConfig(t)
	cfg.Oracle = brokenOracle{}
	src, err := os.ReadFile("../../scripts/conformance/active_open.pkt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := script.Parse("active_open.pkt", src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := script.Run(ctx, cfg, s)
	var found *walk.Check
	for i, c := range r.Checks {
		if c.KernelErr != nil {
			found = &r.Checks[i]
			break
		}
	}
	if found == nil {
		logResult(t, r)
		t.Fatalf("no check kept the oracle's error (verdict %s, %s)", r.Verdict, r.Reason)
	}
	if !errors.Is(found.KernelErr, errBroken) || found.Kernel != result.NoState || found.Verdict != walk.Inconclusive ||
		!strings.Contains(found.Reason, errBroken.Error()) {
		t.Errorf("check %+v: want the error kept, no kernel state, inconclusive with the error in the reason", *found)
	}
	if r.Verdict == walk.Pass {
		t.Errorf("verdict pass with an unread kernel")
	}
}
