package conform

import (
	"context"
	"strings"
	"time"
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

// acceptGrace is how long after our final ACK a check keeps its place: the
// connection then waits in the listener's accept queue until the app
// accepts it (a backlog of 5 holds 6; Linux drops SYNs while it is full,
// TcpExtListenOverflows), and a small server (Python's http.server, socat
// forking) takes milliseconds per accept.
const acceptGrace = 20 * time.Millisecond

// open does the handshake of a check and gives its place in the gate back
// acceptGrace after the final ACK is sent: the remote's listener holds the
// connection half-open no more, and its app has had time to accept it.
func (e *env) open(ctx context.Context) error {
	e.s.AfterFinalACK(func() { time.AfterFunc(acceptGrace, e.leaveGate) })
	return e.s.Open(ctx)
}

// leaveGate gives the check's place in the gate back, once (it may be
// called from a timer and from the check's end at once).
func (e *env) leaveGate() {
	e.leave.Do(func() {
		if e.gated {
			e.sh.gate.release(e.long)
		}
	})
}
