package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTool finds the go command that runs the tests; under CI=true a missing
// one is a failure, never a skip.
func goTool(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command on PATH to cross-build with: %v", err)
		}
		t.Skipf("no go command on PATH: %v", err)
	}
	return g
}

// TestBuildsOffLinux: craft, result and report (and what they import)
// build for macOS, as does the command, whose macOS binary only says that
// tcpwalk needs Linux; go vet is clean there for the portable packages and
// the Linux-only packages' stubs.
func TestBuildsOffLinux(t *testing.T) {
	g := goTool(t)
	for _, goos := range []string{"darwin"} {
		t.Run(goos, func(t *testing.T) {
			for _, args := range [][]string{
				{"build", "./craft/...", "./result/...", "./report/..."},
				{"build", "-o", filepath.Join(t.TempDir(), "tcpwalk"), "."},
				{"vet", "./craft/...", "./result/...", "./probe", "./probe/netns", "./probe/sockdiag"},
			} {
				cmd := exec.Command(g, args...)
				cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=arm64", "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("GOOS=%s go %s: %v\n%s", goos, strings.Join(args, " "), err, out)
				}
			}
		})
	}
}

// TestNeedsLinuxLine: off Linux the command prints one line that says why
// it cannot run, and exits non-zero.
func TestNeedsLinuxLine(t *testing.T) {
	var b bytes.Buffer
	code := needsLinux(&b, "darwin", "arm64")
	if code == 0 {
		t.Error("exit code 0, want non-zero")
	}
	if s := b.String(); !strings.HasPrefix(s, "tcpwalk needs Linux (") || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") ||
		!strings.Contains(s, "darwin/arm64") {
		t.Errorf("message %q, want one line starting \"tcpwalk needs Linux (\" that names darwin/arm64", s)
	}
}
