// Package sockdiag reads the kernel's own TCP socket states over
// NETLINK_SOCK_DIAG (INET_DIAG, what `ss -t` uses), per network namespace.
// tcpwalk uses it as ground truth: after a probe, the state the kernel holds
// for a connection is compared with the state the probe inferred from the
// wire.
//
// Both families are covered: AF_INET sockets, and AF_INET6 sockets with
// their IPv6 addresses, except that IPv4-mapped addresses (::ffff:a.b.c.d,
// a dual-stack socket talking IPv4) are reported unmapped, so an IPv4
// connection has IPv4 addresses whichever socket carries it. A listener
// bound to [::] is reported as [::]:port with the remote [::]:0, and
// Socket.V6Only says whether it also takes IPv4 (IPV6_V6ONLY off, Go's
// default) or not.
//
// Reading sockets is Linux-only (Dump and Lookup fail elsewhere); the
// types build on every OS.
package sockdiag

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/tcpwalk/tcpwalk/result"
)

// State is a TCP socket state, numbered as the Linux kernel numbers them
// (include/net/tcp_states.h). The zero value is not a state.
type State uint8

// Kernel TCP states.
const (
	Established State = 1
	SynSent     State = 2
	SynRecv     State = 3
	FinWait1    State = 4
	FinWait2    State = 5
	TimeWait    State = 6
	Close       State = 7
	CloseWait   State = 8
	LastAck     State = 9
	Listen      State = 10
	Closing     State = 11
	// NewSynRecv is a request socket: a SYN answered with SYN-ACK whose
	// handshake has not completed. RFC 9293 calls it SYN-RECEIVED, as it
	// does SynRecv (which Linux uses only for Fast Open).
	NewSynRecv State = 12
)

var stateNames = [...]string{
	Established: "ESTABLISHED",
	SynSent:     "SYN_SENT",
	SynRecv:     "SYN_RCVD",
	FinWait1:    "FIN_WAIT_1",
	FinWait2:    "FIN_WAIT_2",
	TimeWait:    "TIME_WAIT",
	Close:       "CLOSED",
	CloseWait:   "CLOSE_WAIT",
	LastAck:     "LAST_ACK",
	Listen:      "LISTEN",
	Closing:     "CLOSING",
	NewSynRecv:  "SYN_RCVD",
}

// String returns the RFC 9293 (section 3.3.2) name of s, spelled with
// underscores: "SYN_RCVD", "FIN_WAIT_1", "CLOSED"...
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Timer values of Socket.Timer (the timer the kernel has armed).
const (
	TimerNone       = 0
	TimerRetransmit = 1 // also the SYN-ACK timer of a request socket
	TimerKeepalive  = 2
	TimerTimeWait   = 3
	TimerProbe      = 4 // zero-window probe
)

// Socket is one TCP socket as the kernel reports it.
type Socket struct {
	State State
	// Local is the socket's own address; Remote is the peer's (0.0.0.0:0
	// for a listener).
	Local, Remote netip.AddrPort
	// Timer is the armed timer (TimerRetransmit...), Retransmits how often
	// it has fired unanswered, and Expires when it fires next.
	Timer       uint8
	Retransmits uint8
	Expires     time.Duration
	// RecvQueue and SendQueue are the bytes not yet read by the
	// application and not yet acknowledged by the peer; for a listener,
	// the accept queue's length and its limit.
	RecvQueue, SendQueue uint32
	// Inode is the socket's inode (0 for TIME_WAIT and request sockets).
	Inode uint32
	// V6Only is IPV6_V6ONLY of an AF_INET6 socket (INET_DIAG_SKV6ONLY,
	// reported for full sockets only): a listener on [::] with V6Only
	// false takes IPv4 connections too.
	V6Only bool
}

// TCP returns s as an RFC 9293 state of the result model: the kernel's
// request socket (NewSynRecv) and its Fast Open SynRecv are both
// SYN_RCVD; a number that is no kernel state is result.NoState.
func (s State) TCP() result.State {
	if int(s) < len(tcpStates) {
		return tcpStates[s]
	}
	return result.NoState
}

var tcpStates = [...]result.State{
	Established: result.Established,
	SynSent:     result.SynSent,
	SynRecv:     result.SynRcvd,
	FinWait1:    result.FinWait1,
	FinWait2:    result.FinWait2,
	TimeWait:    result.TimeWait,
	Close:       result.Closed,
	CloseWait:   result.CloseWait,
	LastAck:     result.LastAck,
	Listen:      result.Listen,
	Closing:     result.Closing,
	NewSynRecv:  result.SynRcvd,
}
