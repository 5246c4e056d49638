package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.pkt")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return path
}

// TestReadScriptFIFO: a script on a FIFO is read when a writer comes, and
// never blocks beyond SIGINT (ctx) or the wait when none does.
func TestReadScriptFIFO(t *testing.T) {
	t.Parallel()
	path := mkfifo(t)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("%port 7001\n")
			f.Close()
		}
	}()
	b, err := readScript(context.Background(), path, 5*time.Second)
	if err != nil || string(b) != "%port 7001\n" {
		t.Errorf("with a writer: %q, %v", b, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := readScript(ctx, mkfifo(t), time.Minute); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("no writer, interrupted: err %v after %v; want an error at once", err, time.Since(start))
	}
	if _, err := readScript(context.Background(), mkfifo(t), 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "nothing came") {
		t.Errorf("no writer, waited: %v; want that nothing came", err)
	}
}

// TestRunOnFIFOHonoursSIGINT: `tcpwalk run HOST FIFO` with no writer stops
// on SIGINT with 130 (it used to block in open(2) for ever).
func TestRunOnFIFOHonoursSIGINT(t *testing.T) {
	t.Parallel()
	p := startTcpwalk(t, "run", "127.0.0.1:9", mkfifo(t))
	time.Sleep(300 * time.Millisecond)
	p.stop(t, syscall.SIGINT, 2*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != exitInterrupt {
		t.Errorf("exit %d after SIGINT, want %d", code, exitInterrupt)
	}
}
