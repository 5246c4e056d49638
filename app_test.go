package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the app's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is one in-process run of the app.
type result struct {
	code           int
	stdout, stderr string
}

// appMu serializes in-process runs. urfave/cli v2 keeps package-level
// state that every app writes while it sets up: the help flag (made safe in
// app.go) and the help command (cli's helpCommand, whose HelpName and
// separator Command.setup rewrites for each command that lists it). The
// tcpwalk binary runs one app, so only tests that run several are affected.
var appMu sync.Mutex

// runApp runs `tcpwalk args...` in-process, bounded to 30 s.
func runApp(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	appMu.Lock()
	code := run(ctx, append([]string{"tcpwalk"}, args...), &stdout, &stderr)
	appMu.Unlock()
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("tcpwalk %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// lines splits s into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestBadUsage: every mistake in the command line exits with 2 and exactly
// one line on stderr that names the problem: no stack trace, no help dump,
// nothing sent. None of these needs privileges or a lab; none may reach the
// network (the address checks and the .invalid name are answered locally).
func TestBadUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // in the stderr line
	}{
		{"unknown flag", []string{"send", "--bogus", "198.18.0.2:80"}, "-bogus"},
		{"unknown global flag", []string{"--bogus", "send", "198.18.0.2:80"}, "-bogus"},
		{"bad flags string", []string{"send", "--flags", "SX", "198.18.0.2:80"}, "--flags"},
		{"bad address", []string{"send", "999.1.1.1:80"}, "999.1.1.1"},
		{"missing port", []string{"send", "198.18.0.2"}, "no port"},
		{"port 0", []string{"send", "198.18.0.2:0"}, `port "0"`},
		{"port 70000", []string{"send", "198.18.0.2:70000"}, `port "70000"`},
		{"count 0", []string{"send", "--count", "0", "198.18.0.2:80"}, "--count 0"},
		{"ttl 300", []string{"send", "--ttl", "300", "198.18.0.2:80"}, "--ttl 300"},
		{"bad hex", []string{"send", "--data-hex", "zz", "198.18.0.2:80"}, "--data-hex"},
		{"multicast", []string{"send", "224.0.0.1:80"}, "multicast"},
		{"broadcast", []string{"send", "255.255.255.255:80"}, "broadcast"},
		{"unspecified", []string{"send", "0.0.0.0:80"}, "unspecified"},
		{"unresolvable host", []string{"send", "nonexistent.invalid:80"}, "nonexistent.invalid"},
		{"no target", []string{"send"}, "missing target"},
		{"two targets", []string{"send", "198.18.0.2:80", "198.18.0.3:80"}, "one target"},
		{"unknown command", []string{"bogus", "198.18.0.2:80"}, "bogus"},
		{"--help=x", []string{"send", "--help=x", "198.18.0.2:80"}, "-help"},
		{"h is not a help command", []string{"send", "h", "198.18.0.2:80"}, "one target"},
		{"newline in an argument", []string{"send", "\n0", "198.18.0.2:80"}, `\n0`},
		{"unknown lab command", []string{"lab", "help"}, `"help"`},
		{"walk help word", []string{"walk", "help", "198.18.0.2:80"}, "help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runApp(t, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d", r.code, exitUsage)
			}
			errLines := lines(r.stderr)
			if len(errLines) != 1 {
				t.Fatalf("stderr has %d lines, want exactly one:\n%s", len(errLines), r.stderr)
			}
			line := errLines[0]
			if !strings.HasPrefix(line, "tcpwalk: ") || !strings.Contains(line, tt.want) {
				t.Errorf("stderr %q, want \"tcpwalk: ...\" naming %q", line, tt.want)
			}
			for _, bad := range []string{"goroutine", "panic", "USAGE", "OPTIONS"} {
				if strings.Contains(r.stderr+r.stdout, bad) {
					t.Errorf("output contains %q (stack trace or help dump)", bad)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestHelp: bare tcpwalk and --help print the help and succeed.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"--help"}, {"send", "--help"}} {
		r := runApp(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "USAGE") || r.stderr != "" {
			t.Errorf("tcpwalk %v: exit %d, stdout has USAGE %v, stderr %q; want 0, help on stdout, no stderr",
				args, r.code, strings.Contains(r.stdout, "USAGE"), r.stderr)
		}
	}
}

// TestMessagesSayWhatToDo: messages found wanting (issue 15 item 9). Each is
// one line on stderr, names the problem without leaking Go (": <nil>", a Go
// API), and a usage mistake exits 2. None needs a lab or root.
func TestMessagesSayWhatToDo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		want    string // in the stderr line
		notWant string
	}{
		{"IPv6 target without brackets", []string{"send", "2001:db8::1:80"}, exitUsage, "an IPv6 address goes in brackets", "<nil>"},
		{"missing netns", []string{"--netns", "tcpwalk-test-nosuch", "send", "198.18.0.2:80"}, exitEnv, "ip netns add", "netns.Create"},
		{"sport 0", []string{"send", "--sport", "0", "198.18.0.2:80"}, exitUsage, "--sport 0: want 1 to 65535", ""},
		{"sport 70000", []string{"send", "--sport", "70000", "198.18.0.2:80"}, exitUsage, "--sport 70000: want 1 to 65535", ""},
		{"wscale 256", []string{"send", "--wscale", "256", "198.18.0.2:80"}, exitUsage, "want 0 to 255", "want 0 to 14"},
		{"duration without unit", []string{"send", "-i", "1", "198.18.0.2:80"}, exitUsage, "needs a unit, e.g. 1s", "parse error"},
		{"empty scan target", []string{"scan", ""}, exitUsage, "empty target", "HOST:PORT"},
		{"bad lab prefix", []string{"lab", "up", "--prefix", "nc x"}, exitUsage, `prefix "nc x"`, "root"},
		{"empty string trigger", []string{"walk", "--close-trigger", "string:", "handshake", "127.0.0.1:9"}, exitUsage, "string:", ""},
		{"lab status argument", []string{"lab", "status", "extra"}, exitUsage, `"extra"`, ""},
		{"lab down argument", []string{"lab", "down", "extra"}, exitUsage, `"extra"`, ""},
		{"demo argument", []string{"demo", "extra"}, exitUsage, `"extra"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runApp(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d", r.code, tt.code)
			}
			errLines := lines(r.stderr)
			if len(errLines) != 1 {
				t.Fatalf("stderr has %d lines, want exactly one:\n%s", len(errLines), r.stderr)
			}
			if !strings.Contains(errLines[0], tt.want) {
				t.Errorf("stderr %q, want it to say %q", errLines[0], tt.want)
			}
			if tt.notWant != "" && strings.Contains(errLines[0], tt.notWant) {
				t.Errorf("stderr %q says %q", errLines[0], tt.notWant)
			}
		})
	}
}
