package lab

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/sockdiag"
)

// The supervisor of a lab's server process: `tcpwalk lab up` starts a
// daemon (`tcpwalk lab serve`) that runs the lab's servers after lab up
// returns, keeps its pid and log in RunDir, and `lab down` stops it. A
// demo's lab is named after the demo's process (DemoPrefix), so that
// `lab down` can remove the labs of demos that were killed.

// RunDir holds the pid file and log of a lab's server process.
const RunDir = "/run/tcpwalk"

// PIDFile is the pid file of the server process of the lab prefix.
func PIDFile(prefix string) string { return filepath.Join(RunDir, prefix+".pid") }

// LogFile is the log of the server process of the lab prefix.
func LogFile(prefix string) string { return filepath.Join(RunDir, prefix+".log") }

// readyEnv names the environment variable that tells `lab serve` which
// file descriptor to write readyLine to once its servers listen.
const readyEnv = "TCPWALK_LAB_READY_FD"

const readyLine = "ready\n"

// StartServerProcess runs this executable with args (`lab serve --prefix
// PREFIX`) as a daemon: its own session, output to LogFile(prefix), pid in
// PIDFile(prefix). It returns the read end of a pipe on which the server
// says that it serves (SignalReady; see WaitReady).
func StartServerProcess(prefix string, args ...string) (*os.File, error) {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(LogFile(prefix), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer wr.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr} // fd 3
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, err
	}
	if err := os.WriteFile(PIDFile(prefix), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		r.Close()
		return nil, err
	}
	return r, cmd.Process.Release()
}

// WaitReady reads the server's ready line from r (and closes r): a
// netstack's sockets are invisible to sock_diag, so only the server can
// tell that it listens. EOF means the server exited first.
func WaitReady(r *os.File, within time.Duration) error {
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(within))
	b := make([]byte, len(readyLine))
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("the server process exited before it served")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("the server process did not say it serves within %v", within)
		}
		return err
	}
	if string(b) != readyLine {
		return fmt.Errorf("the server process said %q, want %q", b, readyLine)
	}
	return nil
}

// SignalReady tells `lab up` (through the pipe StartServerProcess passed)
// that the servers serve; in a process not started so it does nothing.
func SignalReady() {
	fd, err := strconv.Atoi(os.Getenv(readyEnv))
	if err != nil || fd < 3 {
		return
	}
	os.Unsetenv(readyEnv)
	f := os.NewFile(uintptr(fd), "ready")
	f.WriteString(readyLine)
	f.Close()
}

// ServerPID reads the pid file and tells whether that process still runs
// `tcpwalk lab serve`.
func ServerPID(prefix string) (int, bool) {
	b, err := os.ReadFile(PIDFile(prefix))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "serve") {
		return pid, false
	}
	return pid, true
}

// StopServerProcess ends the server process (SIGTERM, then SIGKILL after
// 3 s) and removes its pid file.
func StopServerProcess(prefix string) {
	defer os.Remove(PIDFile(prefix))
	pid, alive := ServerPID(prefix)
	if !alive {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// WaitListening waits up to within until a socket listens on port in ns
// (read with sock_diag: for the kernel's stack only).
func WaitListening(ns *netns.NS, port uint16, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		socks, err := sockdiag.Dump(ns)
		if err == nil {
			for _, s := range socks {
				if s.State == sockdiag.Listen && s.Local.Port() == port {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("nothing listens on port %d", port)
			}
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leftovers lists parts of a lab that exist (namespaces, pid file).
func Leftovers(prefix string) []string {
	pns, tns, _, _ := Names(prefix)
	var out []string
	for _, n := range append([]string{pns, tns}, RouterNames(prefix)...) {
		if _, err := os.Stat(filepath.Join(netns.RunDir, n)); err == nil {
			out = append(out, "netns "+n)
		}
	}
	if _, err := os.Stat(PIDFile(prefix)); err == nil {
		out = append(out, PIDFile(prefix))
	}
	return out
}

// DemoPrefix names a demo's lab after its process (DemoPrefix + pid), so
// that `lab down` can tell a killed demo's lab from a running one.
const DemoPrefix = "tcpwalk-demo-"

// DestroyOrphanDemos removes the labs of demos that were killed before
// they could clean up, and returns how many it removed. The lab of a demo
// still running stays.
func DestroyOrphanDemos() (int, error) {
	names, err := netns.List(DemoPrefix)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	seen := map[string]bool{}
	removed := 0
	var errs []error
	for _, n := range names {
		p := strings.TrimSuffix(strings.TrimSuffix(n, "-prober"), "-target")
		if seen[p] {
			continue
		}
		seen[p] = true
		pid, err := strconv.Atoi(strings.TrimPrefix(p, DemoPrefix))
		if err == nil && demoRunning(pid, filepath.Join(netns.RunDir, n)) {
			continue // a demo still running owns it
		}
		if err := Destroy(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// demoRunning reports whether process pid, after which the demo lab with
// the namespace file nsPath is named, is that demo, still running. A live
// pid alone does not say so: a killed demo's pid may be reused by any
// program. Its command line does not either: a demo run in-process by go
// test has no "demo" on it, and `lab down` must not pull a running demo's
// lab from under it. A process that started before the lab was made is the
// demo: a reused pid starts after the demo died, so after its lab was made.
// When unsure, the lab stays.
func demoRunning(pid int, nsPath string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	fi, err := os.Stat(nsPath) // the namespace's nsfs inode: made with the namespace
	if err != nil {
		return true
	}
	start, err := procStartBoottime(pid)
	if err != nil {
		return true
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &now); err != nil {
		return true
	}
	made := time.Duration(now.Nano()) - time.Since(fi.ModTime())
	// starttime counts clock ticks (USER_HZ, 100 a second): one tick of slack.
	return start <= made+10*time.Millisecond
}

// procStartBoottime reads when process pid started, as time since boot
// (field 22 of /proc/PID/stat, in USER_HZ ticks: 100 a second on Linux).
func procStartBoottime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // fields after the name start at field 3
	if len(f) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields, want %d", pid, len(f)+2, startField+3)
	}
	ticks, err := strconv.ParseUint(f[startField], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: starttime %q: %w", pid, f[startField], err)
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}
