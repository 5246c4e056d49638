package sockdiag

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/result"
)

// Every kernel state is the RFC 9293 state of the same name in the result
// model; a number that is no kernel state is no state there either.
func TestStateTCP(t *testing.T) {
	for s := Established; s <= NewSynRecv; s++ {
		got := s.TCP()
		if !got.Valid() || got.String() != s.String() {
			t.Errorf("%d (%s).TCP() = %q, want the state of the same name", s, s, got)
		}
	}
	for _, s := range []State{0, 13, 255} {
		if got := s.TCP(); got != result.NoState {
			t.Errorf("State(%d).TCP() = %q, want NoState", s, got)
		}
	}
}
