package walk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Dialer makes the remote host connect to a port of ours, so that its TCP
// is in SYN_SENT (--dial-trigger): the lab's client, the user's own action
// (curl, nc, a device's client: wait), or a request on another connection
// that makes a server connect back (an FTP server in active mode after a
// PORT command).
type Dialer interface {
	Name() string
	// LocalPort is the port of ours the remote must connect to; 0: any
	// (the dialer tells the remote which).
	LocalPort() uint16
	// Connect makes the remote connect to local; it returns once the
	// remote was asked (its SYN may come before or after).
	Connect(ctx context.Context, local netip.AddrPort) error
	// Wait bounds how long the remote's SYN may take after Connect.
	Wait() time.Duration
}

// LocalPort implements Dialer: the lab's client is told any port.
func (l *LabTarget) LocalPort() uint16 { return 0 }

// Connect implements Dialer.
func (l *LabTarget) Connect(ctx context.Context, local netip.AddrPort) error {
	return l.Dial(ctx, local.Port())
}

// Wait implements Dialer.
func (l *LabTarget) Wait() time.Duration { return 5 * time.Second }

// DefaultDialWait bounds wait: and send: dial triggers.
const DefaultDialWait = 60 * time.Second

// WaitDialer waits for the remote to connect to Port by the user's doing.
type WaitDialer struct {
	Port    uint16
	Timeout time.Duration
	// Notify, when set, is told where the remote must connect, when the
	// wait begins (the command prints it).
	Notify func(local netip.AddrPort, wait time.Duration)
}

// Name implements Dialer.
func (d *WaitDialer) Name() string { return fmt.Sprintf("wait:%d", d.Port) }

// LocalPort implements Dialer.
func (d *WaitDialer) LocalPort() uint16 { return d.Port }

// Wait implements Dialer.
func (d *WaitDialer) Wait() time.Duration { return d.Timeout }

// Connect implements Dialer: nothing to send, the user acts.
func (d *WaitDialer) Connect(ctx context.Context, local netip.AddrPort) error {
	if d.Notify != nil {
		d.Notify(local, d.Timeout)
	}
	return nil
}

// SendDialer sends Payload to the remote's RemotePort on a connection of
// our kernel (outside tcpwalk's port range, so the guard leaves it alone)
// and keeps it open while the remote connects back to Port.
type SendDialer struct {
	Addr       netip.Addr
	RemotePort uint16
	Port       uint16
	Payload    []byte
	Timeout    time.Duration
	// NS is where our kernel socket is made (the prober's namespace); nil:
	// the current one.
	NS *netns.NS
}

// Name implements Dialer.
func (d *SendDialer) Name() string { return fmt.Sprintf("send:%d:%d", d.RemotePort, d.Port) }

// LocalPort implements Dialer.
func (d *SendDialer) LocalPort() uint16 { return d.Port }

// Wait implements Dialer.
func (d *SendDialer) Wait() time.Duration { return d.Timeout }

// Connect implements Dialer. The request's connection stays open until the
// wait ends or ctx does (a server may drop the data connection when the
// control connection closes).
func (d *SendDialer) Connect(ctx context.Context, local netip.AddrPort) error {
	var conn net.Conn
	dial := func() error {
		nd := net.Dialer{Timeout: 3 * time.Second}
		c, err := nd.DialContext(ctx, "tcp4", netip.AddrPortFrom(d.Addr, d.RemotePort).String())
		conn = c
		return err
	}
	var err error
	if d.NS != nil {
		err = d.NS.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("send the connect-back request to port %d: %w", d.RemotePort, err)
	}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(d.Payload); err != nil {
		conn.Close()
		return fmt.Errorf("send the connect-back request to port %d: %w", d.RemotePort, err)
	}
	go func() {
		// Read and drop the server's answers (an FTP server's replies),
		// bounded by the wait.
		_ = conn.SetDeadline(time.Now().Add(d.Timeout))
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()
	}()
	go func() { <-ctx.Done(); conn.Close() }()
	return nil
}

// ParseDialTrigger reads --dial-trigger: "lab", "wait:PORT[:SECONDS]" or
// "send:RPORT:PORT:TEXT" (TEXT with \r, \n, \t escapes). PORT is the port
// of ours the remote must connect to, in tcpwalk's source range
// (61000-65535 by default).
func ParseDialTrigger(s string, lab *LabTarget, addr netip.Addr, ns *netns.NS) (Dialer, error) {
	port := func(v, what string) (uint16, error) {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("--dial-trigger %q: %s %q is not a port (1-65535)", s, what, v)
		}
		return uint16(n), nil
	}
	switch {
	case s == "lab":
		if lab == nil {
			return nil, errors.New("--dial-trigger lab needs the lab's target (run `tcpwalk lab up`)")
		}
		return lab, nil
	case strings.HasPrefix(s, "wait:"):
		parts := strings.Split(strings.TrimPrefix(s, "wait:"), ":")
		if len(parts) > 2 {
			return nil, fmt.Errorf("--dial-trigger %q: want wait:PORT or wait:PORT:SECONDS", s)
		}
		p, err := port(parts[0], "PORT")
		if err != nil {
			return nil, err
		}
		d := &WaitDialer{Port: p, Timeout: DefaultDialWait}
		if len(parts) == 2 {
			sec, err := strconv.ParseFloat(parts[1], 64)
			if err != nil || sec <= 0 || sec > 3600 {
				return nil, fmt.Errorf("--dial-trigger %q: SECONDS %q: want 0 to 3600", s, parts[1])
			}
			d.Timeout = time.Duration(sec * float64(time.Second))
		}
		return d, nil
	case strings.HasPrefix(s, "send:"):
		parts := strings.SplitN(strings.TrimPrefix(s, "send:"), ":", 3)
		if len(parts) != 3 || parts[2] == "" {
			return nil, fmt.Errorf("--dial-trigger %q: want send:RPORT:PORT:TEXT, e.g. 'send:21:61021:USER anonymous\\r\\nPASS x\\r\\nPORT 198,18,0,1,237,221\\r\\nLIST\\r\\n'", s)
		}
		rp, err := port(parts[0], "RPORT")
		if err != nil {
			return nil, err
		}
		p, err := port(parts[1], "PORT")
		if err != nil {
			return nil, err
		}
		return &SendDialer{Addr: addr, RemotePort: rp, Port: p, Payload: []byte(unescape(parts[2])), Timeout: DefaultDialWait, NS: ns}, nil
	}
	return nil, fmt.Errorf("unknown --dial-trigger %q: want lab, wait:PORT[:SECONDS] or send:RPORT:PORT:TEXT", s)
}
