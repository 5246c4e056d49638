package walk

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Action is something the remote application must do for a walk: TCP states
// after ESTABLISHED depend on who calls close() first (RFC 9293 §3.6).
type Action int

// Actions. The zero value is invalid on purpose.
const (
	_ Action = iota
	// CloseFirst: the remote app closes first (we see its FIN first).
	CloseFirst
	// CloseAfterFIN: the remote app closes after reading our FIN, but not at
	// once, so that its CLOSE_WAIT can be seen.
	CloseAfterFIN
	// RespondAfterFIN: the remote app still sends data after our FIN.
	RespondAfterFIN
	// Connect: the remote app connects to us (it becomes SYN_SENT).
	Connect
)

func (a Action) String() string {
	switch a {
	case CloseFirst:
		return "close first"
	case CloseAfterFIN:
		return "close after our FIN"
	case RespondAfterFIN:
		return "send data after our FIN"
	case Connect:
		return "connect to us"
	}
	return "none"
}

// Plan is how a trigger makes the remote app act on one connection.
type Plan struct {
	// Port is the remote port to use (the trigger may pick its own).
	Port uint16
	// Payload is sent once the connection is ESTABLISHED.
	Payload []byte
	// Wait bounds how long the app may take to act.
	Wait time.Duration
}

// Trigger names how tcpwalk makes an unmodified remote app act
// (--close-trigger).
type Trigger interface {
	Name() string
	// Plan returns how to cause a on a connection to port, or an error
	// that says plainly why this trigger cannot. Connect is a
	// DialTrigger's, never a Trigger's.
	Plan(a Action, port uint16) (Plan, error)
}

// ParseTrigger reads --close-trigger: http, lab, wait, hex:..., string:...
// or none.
func ParseTrigger(s string, lab *LabTarget) (Trigger, error) {
	switch {
	case s == "" || s == "none":
		return payloadTrigger{name: "none"}, nil
	case s == "http":
		return payloadTrigger{name: "http", payload: []byte("GET / HTTP/1.0\r\nUser-Agent: tcpwalk\r\n\r\n")}, nil
	case s == "wait":
		return payloadTrigger{name: "wait", wait: 30 * time.Second}, nil
	case strings.HasPrefix(s, "string:"):
		if s == "string:" {
			return nil, errors.New(`--close-trigger "string:": want the text after string:, e.g. string:close\n`)
		}
		return payloadTrigger{name: s, payload: []byte(unescape(strings.TrimPrefix(s, "string:")))}, nil
	case strings.HasPrefix(s, "hex:"):
		h := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimPrefix(s, "hex:"))
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("--close-trigger %q: want hex bytes after hex:, e.g. hex:474554200a", s)
		}
		return payloadTrigger{name: "hex", payload: b}, nil
	case s == "lab":
		if lab == nil {
			return nil, errors.New("--close-trigger lab needs the lab's target (run `tcpwalk lab up`, or use --netns tcpwalk-prober)")
		}
		return lab, nil
	}
	return nil, fmt.Errorf("unknown --close-trigger %q: want http, lab, wait, none, string:TEXT or hex:BYTES", s)
}

// unescape turns \r, \n, \t and \\ in a string: trigger into bytes.
func unescape(s string) string {
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\t`, "\t", `\\`, `\`).Replace(s)
}

// payloadTrigger sends bytes on the walked port: a server that answers a
// request and closes (HTTP/1.0) closes first; given our FIN after the
// request, it answers after our FIN and then closes.
type payloadTrigger struct {
	name    string
	payload []byte
	wait    time.Duration
}

func (t payloadTrigger) Name() string { return t.name }

func (t payloadTrigger) Plan(a Action, port uint16) (Plan, error) {
	wait := t.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	switch a {
	case CloseFirst:
		if t.name == "none" {
			return Plan{}, errors.New("needs the remote app to close first: pass --close-trigger (http, string:..., hex:..., wait)")
		}
		return Plan{Port: port, Payload: t.payload, Wait: wait}, nil
	case CloseAfterFIN:
		// Most servers close when they read EOF; with a payload, a
		// request/response server answers and closes.
		return Plan{Port: port, Payload: t.payload, Wait: wait}, nil
	case RespondAfterFIN:
		if len(t.payload) == 0 {
			return Plan{}, errors.New("needs the remote app to send data after our FIN: pass a request with --close-trigger http, string:... or hex:...")
		}
		return Plan{Port: port, Payload: t.payload, Wait: wait}, nil
	}
	return Plan{}, fmt.Errorf("unknown action %d", a)
}

// Lab ports, as served by package lab (kept here as numbers so that walk does
// not depend on the lab).
const (
	labPortHold    = 7001
	labPortClose   = 7002
	labPortControl = 7003
	labPortClosed  = 7009
	labPortDialer  = 7010
)

// LabTarget is the lab's target host: its servers have fixed behaviours on
// fixed ports, and its client connects to us when asked (package lab).
type LabTarget struct {
	// Addr is the target's address.
	Addr netip.Addr
	// NS is the namespace our own kernel sockets are made in (the prober's),
	// for the control connection that asks the client to dial us; nil is
	// the current namespace.
	NS *netns.NS
}

// Name implements Trigger.
func (l *LabTarget) Name() string { return "lab" }

// Plan implements Trigger.
func (l *LabTarget) Plan(a Action, port uint16) (Plan, error) {
	switch a {
	case CloseFirst:
		return Plan{Port: labPortClose, Payload: []byte("GET / HTTP/1.0\r\n\r\n"), Wait: 5 * time.Second}, nil
	case CloseAfterFIN:
		// The control server closes 1 s after reading our FIN: long
		// enough to see its CLOSE_WAIT.
		return Plan{Port: labPortControl, Payload: []byte("close-after-fin 1000\n"), Wait: 5 * time.Second}, nil
	case RespondAfterFIN:
		return Plan{Port: labPortClose, Payload: []byte("GET / HTTP/1.0\r\n\r\n"), Wait: 5 * time.Second}, nil
	}
	return Plan{}, fmt.Errorf("unknown action %d", a)
}

// Dial asks the lab's client to connect to our port: a control connection
// from a kernel socket (outside tcpwalk's port range, so the guard and our
// filter leave it alone) carries "dial PORT".
func (l *LabTarget) Dial(ctx context.Context, port uint16) error {
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(l.Addr, labPortDialer).String())
		conn = c
		return err
	}
	var err error
	if l.NS != nil {
		err = l.NS.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("ask the lab client to connect: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(conn, "dial %d\n", port); err != nil {
		return fmt.Errorf("ask the lab client to connect: %w", err)
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return fmt.Errorf("ask the lab client to connect: no answer: %w", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "dialing") {
		return fmt.Errorf("ask the lab client to connect: it said %q", strings.TrimSpace(string(buf[:n])))
	}
	return nil
}
