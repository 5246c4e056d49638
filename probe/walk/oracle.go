package walk

import (
	"fmt"
	"net/netip"

	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
	"github.com/tcpwalk/tcpwalk/result"
)

// Oracle reads the remote kernel's own view of a connection: the ground truth
// a lab has (the remote is a namespace on the same kernel).
type Oracle interface {
	// State is the state of the remote's socket whose local end is remote
	// and whose peer is local (our end); result.Closed when there is none.
	State(remote, local netip.AddrPort) (result.State, error)
	// Listening reports whether a socket listens on the remote's port.
	Listening(remote netip.AddrPort) (bool, error)
}

// SockDiag is an Oracle that asks sock_diag (NETLINK_SOCK_DIAG) inside the
// remote's network namespace.
type SockDiag struct{ NS *netns.NS }

// State implements Oracle.
// The kernel's request socket is SYN_RCVD (see sockdiag.State.TCP); a
// state number the kernel has that is none of RFC 9293's is an error that
// names it, so it is reported (as a disagreement), never dropped.
func (o SockDiag) State(remote, local netip.AddrPort) (result.State, error) {
	s, ok, err := sockdiag.Lookup(o.NS, remote, local)
	if err != nil {
		return result.NoState, err
	}
	if !ok {
		return result.Closed, nil
	}
	st := s.State.TCP()
	if st == result.NoState {
		return result.NoState, fmt.Errorf("sockdiag: the kernel reports TCP state %d (%s), which is none of RFC 9293's 11 states", uint8(s.State), s.State)
	}
	return st, nil
}

// Listening implements Oracle.
func (o SockDiag) Listening(remote netip.AddrPort) (bool, error) {
	socks, err := sockdiag.Dump(o.NS)
	if err != nil {
		return false, err
	}
	for _, s := range socks {
		// A listener on [::] takes IPv4 too unless it is IPV6_V6ONLY; one
		// on 0.0.0.0 takes IPv4 only.
		a := s.Local.Addr()
		wildcard := a.IsUnspecified() && (a.Is4() == remote.Addr().Is4() || a.Is6() && !s.V6Only)
		if s.State == sockdiag.Listen && s.Local.Port() == remote.Port() && (a == remote.Addr() || wildcard) {
			return true, nil
		}
	}
	return false, nil
}
