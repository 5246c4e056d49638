package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted, as iproute2 does.
const RunDir = "/run/netns"

// NS is an open handle (a file descriptor) to a network namespace.
type NS struct {
	// Name is the name under RunDir, or "" for a namespace known only by
	// its handle (see Current).
	Name string

	mu sync.Mutex
	fd int // -1 once closed
}

// validName rejects names that would escape RunDir or that iproute2 rejects.
func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("netns: invalid namespace name %q", name)
	case strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0):
		return fmt.Errorf("netns: invalid namespace name %q: must not contain '/' or NUL", name)
	case len(name) > 255:
		return fmt.Errorf("netns: invalid namespace name %q: longer than 255 bytes", name)
	}
	return nil
}

// Path returns RunDir/NAME, or "" for an unnamed handle.
func (n *NS) Path() string {
	if n.Name == "" {
		return ""
	}
	return filepath.Join(RunDir, n.Name)
}

// Fd returns the namespace's file descriptor (for setns(2),
// nftables.WithNetNSFd, netlink.NewHandleAt and the like), or -1 after Close.
// It stays valid until Close.
func (n *NS) Fd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fd
}

// Close closes the handle. The namespace itself is not removed (see Delete).
// Closing twice is not an error.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	if err != nil {
		return fmt.Errorf("netns: close handle of %q: %w", n.Name, err)
	}
	return nil
}

// ID returns the namespace's inode number, which identifies it in this
// system (what `ls -l /proc/self/ns/net` prints). Two handles refer to the
// same namespace exactly when their IDs are equal.
func (n *NS) ID() (uint64, error) {
	fd := n.Fd()
	if fd < 0 {
		return 0, fmt.Errorf("netns: ID of %q: handle is closed", n.Name)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("netns: stat handle of %q: %w", n.Name, err)
	}
	return st.Ino, nil
}

// openNS opens path and checks that it is a network namespace (an nsfs file
// of type CLONE_NEWNET), not, say, the empty file left by an unmounted name.
func openNS(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if sfs.Type != unix.NSFS_MAGIC {
		unix.Close(fd)
		return -1, errors.New("not a namespace file (no nsfs mount on it)")
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("NS_GET_NSTYPE: %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		unix.Close(fd)
		return -1, fmt.Errorf("namespace type %#x is not a network namespace", typ)
	}
	return fd, nil
}

// Open opens the existing named namespace RunDir/NAME. A missing name gives
// an error that matches fs.ErrNotExist.
func Open(name string) (*NS, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(RunDir, name)
	fd, err := openNS(p)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("netns: open %s: %w (make it with `ip netns add %s`)", p, fs.ErrNotExist, name)
		}
		return nil, fmt.Errorf("netns: open %s: %w", p, err)
	}
	return &NS{Name: name, fd: fd}, nil
}

// Current returns a handle to the network namespace of the calling OS thread.
// Unless the caller has locked its thread, that is the namespace the Go
// runtime runs ordinary goroutines in (the process's namespace).
func Current() (*NS, error) {
	fd, err := openNS("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("netns: open the current thread's namespace: %w", err)
	}
	return &NS{fd: fd}, nil
}

// Create makes a new named network namespace, like `ip netns add NAME`, and
// brings its loopback interface up. It fails if NAME exists. Creating
// namespaces needs CAP_SYS_ADMIN; without it the error matches
// unix.EPERM.
func Create(name string) (*NS, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: create %s: %w", RunDir, err)
	}
	p := filepath.Join(RunDir, name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("netns: create %q: %w (remove it with netns.Delete or `ip netns del %s`)", name, err, name)
		}
		return nil, fmt.Errorf("netns: create %q: %w", name, err)
	}
	f.Close()

	// unshare(2) moves the calling thread into the new namespace. Do it on a
	// throwaway goroutine that never unlocks its thread: when the goroutine
	// ends, the runtime kills the thread, so no other goroutine ever runs in
	// the new namespace by accident.
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unshareAndMount(p)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		// Best effort: a failed mount leaves only the empty file.
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
		return nil, fmt.Errorf("netns: create %q: %w", name, r.err)
	}
	return &NS{Name: name, fd: r.fd}, nil
}

// unshareAndMount runs on a locked thread that is discarded afterwards.
func unshareAndMount(p string) (int, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", p, "none", unix.MS_BIND, ""); err != nil {
		return -1, fmt.Errorf("bind mount the namespace on %s: %w", p, err)
	}
	fd, err := openNS(p)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", p, err)
	}
	if err := loUp(); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// loUp brings up "lo" in the calling thread's namespace. A new namespace's
// loopback is down, so even 127.0.0.1 would be unreachable.
func loUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open rtnetlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// Do runs fn on a new goroutine whose OS thread is locked and switched into n,
// and returns fn's error. Sockets created by fn belong to n for their whole
// life and may be used from any goroutine afterwards.
//
// Because fn runs on another goroutine, it must not call testing.T.FailNow
// (t.Fatal); return an error instead. A panic in fn is re-raised in the
// caller after the thread has been dealt with.
//
// After fn, Do switches the thread back to the namespace it started in and
// unlocks it. If switching back fails, the thread stays locked, so the runtime
// terminates it when the goroutine ends, and Do reports the failure.
func (n *NS) Do(fn func() error) error {
	fd := n.Fd()
	if fd < 0 {
		return fmt.Errorf("netns: Do in %q: handle is closed", n.Name)
	}
	type result struct {
		err      error
		panicked bool
		pval     any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("netns: Do in %q: open the current namespace: %w", n.Name, err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			// Setns failed, so the thread is still where it was.
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("netns: Do in %q: setns: %w", n.Name, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.pval = true, p
				}
			}()
			r.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("netns: Do in %q: switch back: %w (thread discarded)", n.Name, err))
		} else {
			runtime.UnlockOSThread()
		}
		ch <- r
	}()
	r := <-ch
	if r.panicked {
		panic(r.pval)
	}
	return r.err
}

// Delete removes the named namespace NAME: it detaches the bind mount and
// removes RunDir/NAME, like `ip netns del`. The namespace itself disappears
// once no process, socket or other handle keeps it. A missing name gives an
// error matching fs.ErrNotExist.
func Delete(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	p := filepath.Join(RunDir, name)
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("netns: delete %q: %w", name, fs.ErrNotExist)
		}
		return fmt.Errorf("netns: delete %q: %w", name, err)
	}
	// EINVAL: not a mount point (a half-made namespace); remove the file anyway.
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("netns: delete %q: unmount %s: %w", name, p, err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("netns: delete %q: %w", name, err)
	}
	return nil
}

// List returns the names of the named namespaces that start with prefix,
// sorted. A missing RunDir means none.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns: list %s: %w", RunDir, err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
