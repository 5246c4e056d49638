package lab_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// ask sends one line to the dialer port and returns its answer.
func ask(t *testing.T, l *lab.Lab, line string) string {
	t.Helper()
	c := dial(t, l, lab.PortDialer)
	write(t, c, line+"\n")
	return readLine(t, c)
}

// localPort is our end's port of c.
func localPort(c net.Conn) string { return strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port) }

// TestAppControl: "app PORT ACTION" on the dialer port makes the server
// end of the connection from our PORT act, out of band, on both stacks:
// write N bytes, shutdown (FIN, the connection still reads), close, rst;
// an unknown port answers "none", a bad command "?". "dial PORT hold"
// keeps the dialed socket open after our FIN until an app action.
func TestAppControl(t *testing.T) {
	t.Parallel()
	for _, stack := range []lab.Stack{lab.StackLinux, lab.StackGVisor} {
		t.Run(string(stack), func(t *testing.T) {
			t.Parallel()
			l := labtest.NewStack(t, stack)
			held := dial(t, l, lab.PortHold)
			time.Sleep(50 * time.Millisecond) // the server accepts
			if got := ask(t, l, "app "+localPort(held)+" write 5"); got != "ok\n" {
				t.Fatalf("app write answered %q", got)
			}
			var b [5]byte
			if _, err := held.Read(b[:]); err != nil || string(b[:]) != "xxxxx" {
				t.Errorf("after app write 5: read %q, %v; want xxxxx", b, err)
			}
			if got := ask(t, l, "app "+localPort(held)+" shutdown"); got != "ok\n" {
				t.Fatalf("app shutdown answered %q", got)
			}
			if got := readAll(t, held); got != "" {
				t.Errorf("after app shutdown: %q before EOF, want nothing", got)
			}
			write(t, held, "still read\n") // a half-close: the server still reads
			if got := ask(t, l, "app "+localPort(held)+" close"); got != "ok\n" {
				t.Errorf("app close answered %q", got)
			}
			reset := dial(t, l, lab.PortHold)
			time.Sleep(50 * time.Millisecond)
			if got := ask(t, l, "app "+localPort(reset)+" rst"); got != "ok\n" {
				t.Fatalf("app rst answered %q", got)
			}
			var one [1]byte
			if _, err := reset.Read(one[:]); err == nil || !strings.Contains(err.Error(), "reset") {
				t.Errorf("after app rst: read error %v, want connection reset", err)
			}
			for line, want := range map[string]string{"app 1 close": "none\n", "app x close": "?\n", "app 1 write 0": "?\n", "app 1 dance": "?\n"} {
				if got := ask(t, l, line); got != want {
					t.Errorf("%q answered %q, want %q", line, got, want)
				}
			}

			// dial PORT hold: the dialed socket outlives our FIN.
			var ln net.Listener
			if err := l.Prober.Do(func() (err error) {
				ln, err = net.Listen("tcp4", net.JoinHostPort(l.ProberAddr.String(), "0"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			if got := ask(t, l, "dial "+port+" hold"); got != "dialing\n" {
				t.Fatalf("dial hold answered %q", got)
			}
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
			in, err := ln.Accept()
			if err != nil {
				t.Fatalf("no connection from dial hold: %v", err)
			}
			defer in.Close()
			in.(*net.TCPConn).CloseWrite()
			expectOpen(t, in, 300*time.Millisecond)
			if got := ask(t, l, "app "+port+" close"); got != "ok\n" {
				t.Fatalf("app close of the dialed socket answered %q", got)
			}
			in.SetDeadline(time.Now().Add(5 * time.Second))
			if got := readAll(t, in); got != "" {
				t.Errorf("dialed socket sent %q before its FIN", got)
			}
		})
	}
}
