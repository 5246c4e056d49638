package conform

import (
	"context"
	"strings"
)

// DefaultParallel is how many connections a run has in the remote's
// handshake at once by default. A listen backlog bounds the connections a
// listener holds before its app accepts them, half-open ones included
// (Linux: the SYN queue of a listener with backlog 5 holds 5, then SYN
// cookies or drops); 5 is common (Python's socketserver, socat), so a run
// keeps below it.
const DefaultParallel = 4

// gate bounds the connections in the remote's listen queues: a check holds
// a place from its first SYN until the handshake is done (its app can
// accept it then), or for its whole life when it keeps the remote in
// SYN_RCVD on purpose. Connections past the handshake do not count: an app
// that accepts at once holds them outside the backlog.
//
// Connections that hold SYN_RCVD for long (the SYN_RCVD checks, the SYN,ACK
// schedule, the options checks) take at most all places but one, so the
// many quick handshakes always have one and never wait behind them.
type gate struct{ all, long chan struct{} }

func newGate(n int) *gate {
	if n <= 0 {
		n = DefaultParallel
	}
	return &gate{all: make(chan struct{}, n), long: make(chan struct{}, max(n-1, 1))}
}

// acquire waits for a place (for a long holder, a long one first), or for
// ctx to end.
func (g *gate) acquire(ctx context.Context, long bool) error {
	if long {
		select {
		case g.long <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case g.all <- struct{}{}:
		return nil
	case <-ctx.Done():
		if long {
			<-g.long
		}
		return ctx.Err()
	}
}

func (g *gate) release(long bool) {
	<-g.all
	if long {
		<-g.long
	}
}

// holdsHalfOpen reports whether the check or measurement id keeps the
// remote in SYN_RCVD for its whole life.
func holdsHalfOpen(id string) bool {
	return strings.HasPrefix(id, "SYN_RCVD/") || strings.HasPrefix(id, "LISTEN/")
}

// open does the handshake of a check and gives its place in the gate back
// as soon as the final ACK is sent: the remote's listener holds the
// connection no more.
func (e *env) open(ctx context.Context) error {
	e.s.AfterFinalACK(e.leaveGate)
	err := e.s.Open(ctx)
	e.leaveGate()
	return err
}

// leaveGate gives the check's place in the gate back, once.
func (e *env) leaveGate() {
	if e.gated {
		e.gated = false
		e.sh.gate.release(e.long)
	}
}
