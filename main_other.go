//go:build !linux

package main

import (
	"context"
	"io"
	"runtime"
)

// run, off Linux, says in one line why tcpwalk cannot work here and exits
// non-zero: tcpwalk needs raw IP sockets, nftables, network namespaces and
// sock_diag, all Linux interfaces. (Packages craft, result and report build
// everywhere, for programs that make segments or read tcpwalk's JSON.)
func run(_ context.Context, _ []string, _, stderr io.Writer) int {
	return needsLinux(stderr, runtime.GOOS, runtime.GOARCH)
}
