package walk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// DialTrigger makes the remote host connect to us, so that a walk can see
// it in SYN_SENT (RFC 9293 §3.3.2: an active OPEN). tcpwalk cannot call
// connect() on an unmodified host; a dial trigger either asks something on
// it that connects (the lab's client, a server that connects back) or waits
// for the user to make it connect (--dial-trigger).
type DialTrigger interface {
	Name() string
	// Port is the local port the remote will connect to; 0 means any
	// port of ours (the trigger tells the remote which one).
	Port() uint16
	// Dial makes the remote connect to our port. It returns once the
	// request is made: the remote's SYN may come before it returns.
	Dial(ctx context.Context, port uint16) error
	// Wait bounds how long the remote's SYN may take after Dial.
	Wait() time.Duration
}

// DefaultDialWait is how long wait:PORT waits for the remote's SYN unless
// told otherwise: long enough to start a client by hand.
const DefaultDialWait = 60 * time.Second

// maxDialWait bounds a wait the user sets.
const maxDialWait = 10 * time.Minute

// ParseDialTrigger reads --dial-trigger:
//
//	lab                  the lab's client connects (its dialer port, 7010)
//	wait:PORT[:WAIT]     wait up to WAIT (default 60s) for the remote to connect
//	                     to our PORT: you make it connect (curl, nc, a device's
//	                     own client)
//	connect-back:PORT:TEXT
//	                     send TEXT to the remote's PORT on a connection of our
//	                     kernel's, then wait for the remote to connect back to
//	                     us: a server in FTP active mode after PORT and LIST.
//	                     In TEXT, {addr} is our address (the one that
//	                     connection comes from), {port} our listening port,
//	                     {ftp} the FTP PORT argument h1,h2,h3,h4,p1,p2 (RFC 959
//	                     §4.1.2); \r, \n, \t, \\ are escapes.
//
// remote is the target host, ns the namespace our kernel's sockets are made
// in (nil: this one).
func ParseDialTrigger(s string, lab *LabTarget, remote netip.Addr, ns *netns.NS) (DialTrigger, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch kind {
	case "lab":
		if rest != "" {
			return nil, fmt.Errorf("--dial-trigger %q: lab takes nothing after it", s)
		}
		if lab == nil {
			return nil, errors.New("--dial-trigger lab needs the lab's target (run `tcpwalk lab up`, or use --netns tcpwalk-prober)")
		}
		return lab, nil
	case "wait":
		ps, ws, hasWait := strings.Cut(rest, ":")
		port, err := dialPort(s, ps)
		if err != nil {
			return nil, err
		}
		wait := DefaultDialWait
		if hasWait {
			if wait, err = time.ParseDuration(ws); err != nil || wait <= 0 || wait > maxDialWait {
				return nil, fmt.Errorf("--dial-trigger %q: want a wait from 1s to %v after the port, with a unit (wait:%d:90s)", s, maxDialWait, port)
			}
		}
		return waitDialer{port: port, wait: wait}, nil
	case "connect-back":
		ps, text, ok := strings.Cut(rest, ":")
		if !ok || text == "" {
			return nil, fmt.Errorf("--dial-trigger %q: want connect-back:PORT:TEXT, e.g. 'connect-back:21:USER anonymous\\r\\nPASS x\\r\\nPORT {ftp}\\r\\nLIST\\r\\n'", s)
		}
		port, err := dialPort(s, ps)
		if err != nil {
			return nil, err
		}
		return &connectBack{server: netip.AddrPortFrom(remote, port), text: unescape(text), ns: ns}, nil
	}
	return nil, fmt.Errorf("unknown --dial-trigger %q: want lab, wait:PORT[:WAIT] or connect-back:PORT:TEXT", s)
}

func dialPort(flag, s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("--dial-trigger %q: want a port from 1 to 65535, got %q", flag, s)
	}
	return uint16(n), nil
}

// waitDialer waits for a connection the user makes.
type waitDialer struct {
	port uint16
	wait time.Duration
}

func (d waitDialer) Name() string                       { return fmt.Sprintf("wait:%d", d.port) }
func (d waitDialer) Port() uint16                       { return d.port }
func (d waitDialer) Wait() time.Duration                { return d.wait }
func (d waitDialer) Dial(context.Context, uint16) error { return nil }

// connectBack sends a request on a kernel TCP connection (outside tcpwalk's
// port range, so the guard and our filter leave it alone) that makes the
// server connect back to us.
type connectBack struct {
	server netip.AddrPort
	text   string
	ns     *netns.NS
}

func (d *connectBack) Name() string        { return "connect-back:" + strconv.Itoa(int(d.server.Port())) }
func (d *connectBack) Port() uint16        { return 0 }
func (d *connectBack) Wait() time.Duration { return 10 * time.Second }

// Dial sends the text and keeps the connection open for Wait (a server may
// abort what it started when its control connection goes), then closes it.
func (d *connectBack) Dial(ctx context.Context, port uint16) error {
	var conn net.Conn
	dial := func() error {
		nd := net.Dialer{Timeout: 3 * time.Second}
		c, err := nd.DialContext(ctx, "tcp", d.server.String())
		conn = c
		return err
	}
	var err error
	if d.ns != nil {
		err = d.ns.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("connect-back: connect to %s: %w", d.server, err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
	var local netip.Addr
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		local = a.AddrPort().Addr().Unmap()
	}
	if _, err := io.WriteString(conn, expandDialText(d.text, local, port)); err != nil {
		conn.Close()
		return fmt.Errorf("connect-back: send to %s: %w", d.server, err)
	}
	go func() {
		t := time.NewTimer(d.Wait())
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		conn.Close()
	}()
	// Read and drop what the server says meanwhile, so that its replies
	// never fill a window and stall it; the close above ends the read.
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	return nil
}

// expandDialText fills {addr}, {port} and {ftp} in a connect-back text.
func expandDialText(text string, local netip.Addr, port uint16) string {
	var a [4]byte
	if local.Is4() {
		a = local.As4()
	}
	ftp := fmt.Sprintf("%d,%d,%d,%d,%d,%d", a[0], a[1], a[2], a[3], port>>8, port&0xff)
	return strings.NewReplacer("{addr}", local.String(), "{port}", strconv.Itoa(int(port)), "{ftp}", ftp).Replace(text)
}

// LabTarget is also a DialTrigger: its dialer connects to the port it is told.

// Port implements DialTrigger: any port of ours.
func (l *LabTarget) Port() uint16 { return 0 }

// Wait implements DialTrigger.
func (l *LabTarget) Wait() time.Duration { return 5 * time.Second }
