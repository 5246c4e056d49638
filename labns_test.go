package main

import (
	"net/netip"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// TestLabNamespaceOnlyForItsTargets: without --netns, a lab-range target is
// probed from the default lab's namespace only when it is one of the lab's
// own addresses or has no route from here; a target routed from here (a
// namespace of the user's own) is probed from here. "Here" is the prober
// namespace of a second lab, which routes 198.18.0.0/24.
func TestLabNamespaceOnlyForItsTargets(t *testing.T) {
	other := labtest.NewBare(t) // stands for the default lab
	here := labtest.NewBare(t)
	tests := []struct {
		target string
		want   bool
	}{
		{other.TargetAddr.String(), true}, // the lab's own target
		{"198.18.0.77", false},            // routed here, not the lab's
		{"198.19.5.5", true},              // no route here
	}
	for _, tt := range tests {
		var got bool
		if err := here.Prober.Do(func() error { got = walk.LabShouldProbe(other.Prefix, netip.MustParseAddr(tt.target)); return nil }); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("target %s: probe from the lab's namespace %v, want %v", tt.target, got, tt.want)
		}
	}
}
