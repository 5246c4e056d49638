//go:build !linux

package sockdiag

import (
	"errors"
	"net/netip"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

var errNeedsLinux = errors.New("sockdiag: reading the kernel's TCP sockets (NETLINK_SOCK_DIAG) needs Linux")

// Dump fails: sock_diag is a Linux interface.
func Dump(ns *netns.NS) ([]Socket, error) { return nil, errNeedsLinux }

// Lookup fails: sock_diag is a Linux interface.
func Lookup(ns *netns.NS, local, remote netip.AddrPort) (Socket, bool, error) {
	return Socket{}, false, errNeedsLinux
}
