package main

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of cols columns and returns its terminal
// side (what a command's stdout would be).
func openPTY(t *testing.T, cols uint16) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's terminal side: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		t.Fatalf("set the pty's size: %v", err)
	}
	return s
}

// TestLadderWidthFollowsTerminal: on an 80-column terminal ladders are drawn
// 80 wide (the terminal would wrap a 100-column line into two); elsewhere,
// 100.
func TestLadderWidthFollowsTerminal(t *testing.T) {
	if got := ladderWidth(openPTY(t, 80)); got != 80 {
		t.Errorf("ladder width on an 80-column terminal: %d, want 80", got)
	}
	if got := ladderWidth(openPTY(t, 132)); got != 132 {
		t.Errorf("ladder width on a 132-column terminal: %d, want 132", got)
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := ladderWidth(f); got != 100 {
		t.Errorf("ladder width into a file: %d, want 100", got)
	}
}
