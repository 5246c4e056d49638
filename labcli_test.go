package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// tcpwalkRun runs the tcpwalk binary to its end (30 s at most).
func tcpwalkRun(t *testing.T, prefix []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prefix[0], append(prefix[1:], args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	t.Logf("tcpwalk %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// labUp runs `tcpwalk lab up --prefix P` and removes the lab at cleanup.
func labUpCLI(t *testing.T, bin, prefix string) string {
	t.Helper()
	t.Cleanup(func() { tcpwalkRun(t, []string{bin}, "lab", "down", "--prefix", prefix) })
	code, out, _ := tcpwalkRun(t, []string{bin}, "lab", "up", "--prefix", prefix)
	if code != 0 {
		t.Fatalf("lab up --prefix %s: exit %d", prefix, code)
	}
	return out
}

// TestLabUpWhenUp (issue 15 item 7): `lab up` on a lab that is up checks
// its options (--loss 101% is exit 2), applies --loss and --dup in place,
// and refuses --firewall (exit 2) rather than saying "already up" and
// applying nothing. The hints of a lab with its own prefix name it.
func TestLabUpWhenUp(t *testing.T) {
	bin := tcpwalkBinary(t)
	prefix := labtest.Prefix(t)
	out := labUpCLI(t, bin, prefix)
	for _, want := range []string{"--netns " + prefix + "-prober walk all", "tcpwalk lab down --prefix " + prefix} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up --prefix %s hints do not say %q:\n%s", prefix, want, out)
		}
	}
	if code, _, errs := tcpwalkRun(t, []string{bin}, "lab", "up", "--prefix", prefix, "--loss", "101%"); code != exitUsage || !strings.Contains(errs, "101%") {
		t.Errorf("--loss 101%% on an up lab: exit %d, stderr %q; want 2 naming it", code, errs)
	}
	if code, out, _ := tcpwalkRun(t, []string{bin}, "lab", "up", "--prefix", prefix, "--loss", "20%"); code != 0 || !strings.Contains(out, "20% loss") {
		t.Errorf("--loss 20%% on an up lab: exit %d, stdout %q; want 0 and the new path", code, out)
	}
	if _, out, _ := tcpwalkRun(t, []string{bin}, "lab", "status", "--prefix", prefix); !strings.Contains(out, "20% loss") {
		t.Errorf("lab status after --loss 20%%: %q, want the path with 20%% loss", out)
	}
	if code, _, errs := tcpwalkRun(t, []string{bin}, "lab", "up", "--prefix", prefix, "--firewall", "stateful"); code != exitUsage || !strings.Contains(errs, "lab down --prefix "+prefix) {
		t.Errorf("--firewall on an up lab: exit %d, stderr %q; want 2 and how to remake it", code, errs)
	}
	// As a user without privileges, status says so rather than "down".
	if _, err := exec.LookPath("setpriv"); err == nil {
		code, out, errs := tcpwalkRun(t, []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin}, "lab", "status", "--prefix", prefix)
		if code != exitEnv || strings.Contains(out, "down") || !strings.Contains(errs, "needs root") {
			t.Errorf("lab status as nobody: exit %d, stdout %q, stderr %q; want 3 and that it needs root", code, out, errs)
		}
	}
}

// TestLabUpInterruptedRollsBack: SIGINT while `lab up` is making the lab
// removes what it made and exits 130, wherever it comes.
func TestLabUpInterruptedRollsBack(t *testing.T) {
	bin := tcpwalkBinary(t)
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { tcpwalkRun(t, []string{bin}, "lab", "down", "--prefix", prefix) })
	p := startTcpwalk(t, "lab", "up", "--prefix", prefix)
	nsFile := filepath.Join(netns.RunDir, prefix+"-prober")
	if !poll(10*time.Second, func() bool { _, err := os.Stat(nsFile); return err == nil }) {
		t.Fatalf("lab up made no %s within 10 s", nsFile)
	}
	p.stop(t, syscall.SIGINT, 10*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != exitInterrupt {
		t.Errorf("lab up after SIGINT: exit %d, want %d", code, exitInterrupt)
	}
	if _, err := os.Stat(nsFile); err == nil {
		t.Errorf("%s still there after an interrupted lab up", nsFile)
	}
	if !strings.Contains(p.stderr.String(), "interrupted") {
		t.Errorf("stderr %q does not say the lab up was interrupted", p.stderr.String())
	}
}
