package walk

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// labAsk sends one line to the lab's dialer port (package lab's PortDialer)
// from a kernel socket and returns its one-line answer.
func (l *LabTarget) labAsk(ctx context.Context, line string) (string, error) {
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
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\n", line); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return "", fmt.Errorf("no answer: %w", err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// DialHold asks the lab's client to connect to our port and to keep its
// socket open after our FIN (CLOSE_WAIT) until an App action closes it: a
// packetdrill script's connect() whose close() comes later, as its own line.
func (l *LabTarget) DialHold(ctx context.Context, port uint16) error {
	got, err := l.labAsk(ctx, fmt.Sprintf("dial %d hold", port))
	if err != nil {
		return fmt.Errorf("ask the lab client to connect: %w", err)
	}
	if got == "?" {
		return fmt.Errorf("ask the lab client to connect and hold: it does not know \"dial PORT hold\" (a lab started by an older tcpwalk: run lab down and lab up again)")
	}
	if !strings.HasPrefix(got, "dialing") {
		return fmt.Errorf("ask the lab client to connect: it said %q", got)
	}
	return nil
}

// App makes the lab's application end of our connection from local port
// peerPort act, out of band (the connection itself carries no command):
// action is "close", "shutdown", "rst" or "write N".
// appTries and appRetry bound App's asking again while the lab has not
// tracked the connection yet: 10 tries, 50 ms apart.
const (
	appTries = 10
	appRetry = 50 * time.Millisecond
)

func (l *LabTarget) App(ctx context.Context, peerPort uint16, action string) error {
	var got string
	// "none" may be the lab not having tracked the connection yet: its
	// accept (or its dial's return) runs beside the handshake that our
	// script has already seen complete. Ask again for a short while.
	for try := 0; ; try++ {
		var err error
		if got, err = l.labAsk(ctx, fmt.Sprintf("app %d %s", peerPort, action)); err != nil {
			return fmt.Errorf("ask the lab app to %s: %w", action, err)
		}
		if got != "none" || try == appTries-1 {
			break
		}
		t := time.NewTimer(appRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ask the lab app to %s: %w", action, ctx.Err())
		case <-t.C:
		}
	}
	switch got {
	case "ok":
		return nil
	case "none":
		return fmt.Errorf("ask the lab app to %s: it has no connection from our port %d (none accepted yet, or closed)", action, peerPort)
	}
	return fmt.Errorf("ask the lab app to %s: it said %q (a lab without app control: update it)", action, got)
}
