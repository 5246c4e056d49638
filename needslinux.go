package main

import (
	"fmt"
	"io"
)

// needsLinux writes the one line tcpwalk prints on an OS other than Linux
// (see main_other.go) and returns its exit code. It builds on every OS so
// that a test on Linux can read the line.
func needsLinux(w io.Writer, goos, goarch string) int {
	fmt.Fprintf(w, "tcpwalk needs Linux (raw sockets, nftables, network namespaces and sock_diag are Linux interfaces); this is %s/%s: run it on a Linux host or VM\n",
		goos, goarch)
	return 2
}
