package labtest

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab"
)

// NewRouted creates a routed lab (lab.CreateRouted) with a unique prefix
// (cfg.Prefix is ignored) and starts the servers in its target; t.Cleanup
// stops them and removes every namespace and rule of the lab.
func NewRouted(t testing.TB, cfg lab.RoutedConfig) *lab.Routed {
	t.Helper()
	cfg.Prefix = Prefix(t)
	r, err := lab.CreateRouted(&cfg)
	SkipUnlessPermitted(t, err)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("labtest: close routed lab %s: %v", r.Prefix, err)
		}
	})
	if _, err := r.StartServers(); err != nil {
		t.Fatalf("labtest: %v", err)
	}
	return r
}
