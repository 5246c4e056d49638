package report

import (
	"os"

	"golang.org/x/sys/unix"
)

// ColorEnabled reports whether output to f should be coloured: only when f
// is a terminal, NO_COLOR is unset or empty (https://no-color.org) and TERM
// is not "dumb". A pipe or a file never gets ANSI codes.
//
// Whether f is a terminal is asked the way isatty(3) does on Linux: the
// TCGETS ioctl succeeds only on a tty.
func ColorEnabled(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	// SyscallConn, unlike Fd, leaves a non-blocking file non-blocking.
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if err := rc.Control(func(fd uintptr) {
		_, terr := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		tty = terr == nil
	}); err != nil {
		return false
	}
	return tty
}
