package lab

import (
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/guard"
)

// The leak watch skips the copies the impaired path makes by their mark.
func TestDupMarkIsGuardCopyMark(t *testing.T) {
	if dupMark != guard.CopyMark {
		t.Fatalf("lab's dupMark %#x, guard.CopyMark %#x: the leak watch would report copies of our RSTs", dupMark, guard.CopyMark)
	}
}
