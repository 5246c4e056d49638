//go:build linux

package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/guard"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// nobody is the unprivileged user the privilege tests run tcpwalk as.
const nobody = "65534"

// needTools skips t (fails it under CI=true) when a command the test needs
// is missing.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (.ci/run installs it)", n)
			}
			t.Skipf("%s is not installed: %v", n, err)
		}
	}
}

// nobodyBinaries builds tcpwalk into a directory only root and nobody can
// enter, as three copies: plain, with CAP_NET_RAW only, and with
// CAP_NET_RAW and CAP_NET_ADMIN (setcap). A binary with file capabilities
// must not lie where any user can run it. The directory goes at cleanup.
func nobodyBinaries(t *testing.T) (plain, rawOnly, both string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the privilege tests need root (to setcap and to drop to nobody)")
		}
		t.Skip("the privilege tests need root (to setcap and to drop to nobody)")
	}
	needTools(t, "setcap", "setpriv", "ip")
	dir, err := os.MkdirTemp("", "tcpwalk-privs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	plain = filepath.Join(dir, "tcpwalk")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rawOnly, both = filepath.Join(dir, "tcpwalk-raw"), filepath.Join(dir, "tcpwalk-caps")
	for _, c := range [][]string{{"cp", plain, rawOnly}, {"cp", plain, both}, {"chown", "-R", nobody + ":" + nobody, dir},
		// chown drops file capabilities: setcap comes after it.
		{"setcap", "cap_net_raw+ep", rawOnly}, {"setcap", "cap_net_raw,cap_net_admin+ep", both}, {"chmod", "0500", dir}} {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return plain, rawOnly, both
}

// asNobody runs bin with args as user nobody inside the lab's prober
// namespace: root enters it with `ip netns exec`, then setpriv drops to
// nobody (and with it every capability but the file's own).
func asNobody(t *testing.T, l *lab.Lab, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"netns", "exec", l.Prober.Name, "setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", bin}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "TCPWALK_NETNS=") // the process already sits in the namespace
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run %v: %v", argv, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// privsLab is a lab on addresses of its own (198.18.14.0/24): tcpwalk
// treats a target at the default lab's address as that lab's when a default
// lab is up (`tcpwalk lab up` by someone on this machine), and these tests
// must not meet it.
func privsLab(t *testing.T) *lab.Lab {
	t.Helper()
	l, err := lab.Create(&lab.Config{Prefix: labtest.Prefix(t),
		ProberAddr: netip.MustParsePrefix("198.18.14.1/24"), TargetAddr: netip.MustParsePrefix("198.18.14.2/24")})
	labtest.SkipUnlessPermitted(t, err)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab %s: %v", l.Prefix, err)
		}
	})
	if _, err := l.StartServers(); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPrivilegesMissing: without CAP_NET_RAW/CAP_NET_ADMIN, send and walk
// stop before touching the network with exit status 3 and one line per
// missing capability, each naming it, what it is for, and the fix.
func TestPrivilegesMissing(t *testing.T) {
	plain, rawOnly, _ := nobodyBinaries(t)
	l := privsLab(t)
	target := l.TargetAddr.String() + ":7001"
	fix := "setcap cap_net_raw,cap_net_admin+ep"
	cases := []struct {
		name    string
		bin     string
		args    []string
		missing []string
	}{
		{"send, no capabilities", plain, []string{"send", "--flags", "S", target}, []string{"CAP_NET_RAW", "CAP_NET_ADMIN"}},
		{"walk, no capabilities", plain, []string{"walk", "handshake", target}, []string{"CAP_NET_RAW", "CAP_NET_ADMIN"}},
		{"send --no-rst-guard, no capabilities", plain, []string{"send", "--no-rst-guard", target}, []string{"CAP_NET_RAW", "CAP_NET_ADMIN"}},
		{"send, CAP_NET_RAW only", rawOnly, []string{"send", "--flags", "S", target}, []string{"CAP_NET_ADMIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := asNobody(t, l, tc.bin, tc.args...)
			if code != exitEnv {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitEnv, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q: nothing may be printed (or sent) before the check", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != len(tc.missing) {
				t.Fatalf("stderr has %d lines, want one per missing capability (%v):\n%s", len(lines), tc.missing, stderr)
			}
			for i, c := range tc.missing {
				if !strings.Contains(lines[i], "missing "+c+" (") || !strings.Contains(lines[i], fix) {
					t.Errorf("line %d %q: want it to name %s and the fix %q", i+1, lines[i], c, fix)
				}
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("a stack trace:\n%s", stderr)
			}
		})
	}
}

// TestPrivilegesSetcap: with CAP_NET_RAW and CAP_NET_ADMIN granted by
// setcap, user nobody can send and walk against the lab; only making a lab
// (namespaces: CAP_SYS_ADMIN) still needs root, and says so.
func TestPrivilegesSetcap(t *testing.T) {
	_, _, both := nobodyBinaries(t)
	l := privsLab(t)
	target := l.TargetAddr.String() + ":7001"

	code, stdout, stderr := asNobody(t, l, both, "send", "--flags", "S", "-c", "2", "--interval", "100ms", target)
	if code != exitOK || !strings.Contains(stdout, "2 probes sent, 2 answered") || !strings.Contains(stdout, "RST guard stopped") {
		t.Errorf("send as nobody with capabilities: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = asNobody(t, l, both, "walk", "handshake", "--json", target)
	if code != exitOK || !strings.Contains(stdout, `"verdict":"pass"`) {
		t.Errorf("walk handshake as nobody with capabilities: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// The guard table went with the process.
	if names, err := guard.Tables(l.Prober.Fd()); err != nil || len(names) != 0 {
		t.Errorf("guard tables left by nobody's runs: %v, %v", names, err)
	}

	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Destroy(prefix) })
	code, stdout, stderr = asNobody(t, l, both, "lab", "up", "--prefix", prefix)
	msg := strings.TrimSpace(stderr)
	if code != exitEnv || !strings.Contains(msg, "needs root") || strings.Count(msg, "\n") != 0 {
		t.Errorf("lab up as nobody: exit %d, stderr %q; want %d and one line saying it needs root", code, msg, exitEnv)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", prefix+"-prober")); err == nil {
		t.Errorf("lab up as nobody left namespace %s-prober", prefix)
	}
	if stdout != "" {
		t.Errorf("lab up as nobody printed %q", stdout)
	}
}
