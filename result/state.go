package result

import (
	"fmt"
	"strconv"
)

// State is a TCP connection state of RFC 9293 §3.3.2. The zero State,
// NoState, is "not known" (no oracle, not judged): it is no state, and it is
// written as "" (omitted where a field says omitempty).
//
// The kernel oracle (package sockdiag) converts the kernel's own numbering
// to this one, so wire and kernel states compare as values.
type State uint8

// The 11 states of RFC 9293 §3.3.2, in the RFC's order.
const (
	NoState State = iota
	Closed
	Listen
	SynSent
	SynRcvd
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
	numStates
)

// stateNames spell RFC 9293's names with underscores, as tcpwalk has always
// written them.
var stateNames = [numStates]string{
	NoState:     "",
	Closed:      "CLOSED",
	Listen:      "LISTEN",
	SynSent:     "SYN_SENT",
	SynRcvd:     "SYN_RCVD",
	Established: "ESTABLISHED",
	FinWait1:    "FIN_WAIT_1",
	FinWait2:    "FIN_WAIT_2",
	CloseWait:   "CLOSE_WAIT",
	Closing:     "CLOSING",
	LastAck:     "LAST_ACK",
	TimeWait:    "TIME_WAIT",
}

// States are the 11 states of RFC 9293 §3.3.2, in the RFC's order.
var States = []State{Closed, Listen, SynSent, SynRcvd, Established, FinWait1, FinWait2,
	CloseWait, Closing, LastAck, TimeWait}

// String returns the RFC 9293 name, spelled with underscores: "SYN_RCVD",
// "FIN_WAIT_1"; "" for NoState, "State(N)" for a value that is no state.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the 11 states.
func (s State) Valid() bool { return s > NoState && s < numStates }

// MarshalText writes [State.String]; a value that is no state is written
// as "State(N)", which [ParseState] rejects.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name that [State.MarshalText] writes.
func (s *State) UnmarshalText(b []byte) error {
	x, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = x
	return nil
}

// ParseState returns the state named s as [State.String] spells it
// ("SYN_RCVD", "FIN_WAIT_1"); "" is NoState.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return NoState, fmt.Errorf("result: unknown TCP state %q (want one of RFC 9293's: CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)", s)
}
