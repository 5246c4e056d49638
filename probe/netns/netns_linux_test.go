package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// testName returns a name unique across concurrent test runs on the machine.
func testName(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "twt-ns-" + hex.EncodeToString(b[:])
}

// create makes a namespace removed at cleanup; it skips without privileges
// unless CI=true.
func create(t *testing.T) *NS {
	t.Helper()
	name := testName(t)
	ns, err := Create(name)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) && os.Getenv("CI") != "true" {
			t.Skipf("creating network namespaces needs CAP_SYS_ADMIN (run as root): %v", err)
		}
		t.Fatalf("Create(%q): %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := Delete(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

func TestCreateDoDelete(t *testing.T) {
	ns := create(t)
	if got, want := ns.Path(), RunDir+"/"+ns.Name; got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	if _, err := Create(ns.Name); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing name: err = %v, want fs.ErrExist", err)
	}
	names, err := List("twt-ns-")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, ns.Name) {
		t.Errorf("List does not contain %q: %v", ns.Name, names)
	}

	// The namespace is a different one from ours.
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	curID, err := cur.ID()
	if err != nil {
		t.Fatal(err)
	}
	nsID, err := ns.ID()
	if err != nil {
		t.Fatal(err)
	}
	if curID == nsID {
		t.Fatalf("new namespace has the same ID %d as the current one", nsID)
	}
	var inID uint64
	if err := ns.Do(func() error {
		c, err := Current()
		if err != nil {
			return err
		}
		defer c.Close()
		inID, err = c.ID()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inID != nsID {
		t.Errorf("Current() inside Do has ID %d, want %d", inID, nsID)
	}
	// Do switched back: this goroutine's namespace did not change.
	after, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if id, _ := after.ID(); id != curID {
		t.Errorf("after Do, current namespace ID = %d, want %d", id, curID)
	}

	// Interfaces: only lo, and it is up.
	var links []netlink.Link
	if err := ns.Do(func() error {
		var err error
		links, err = netlink.LinkList()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("links in new namespace = %v, want only lo", links)
	}
	if links[0].Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is down in the new namespace")
	}

	// A listener made in ns lives there: it answers on 127.0.0.1 from inside
	// ns, from any goroutine, and is not reachable from our namespace.
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	if c, err := net.DialTimeout("tcp4", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("listener %s made in the namespace is reachable from the test's namespace", addr)
	}
	var got []byte
	if err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2)
		n, err := c.Read(buf)
		got = buf[:n]
		return err
	}); err != nil {
		t.Fatalf("dial %s inside the namespace: %v", addr, err)
	}
	if string(got) != "hi" {
		t.Errorf("read %q from listener in namespace, want %q", got, "hi")
	}
	ln.Close()
	wg.Wait()

	// Open finds it; Delete removes it.
	o, err := Open(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := o.ID(); id != nsID {
		t.Errorf("Open(%q).ID() = %d, want %d", ns.Name, id, nsID)
	}
	o.Close()
	if err := Delete(ns.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ns.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Delete, stat %s: err = %v, want not exist", ns.Path(), err)
	}
	if err := Delete(ns.Name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := Open(ns.Name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Delete: err = %v, want fs.ErrNotExist", err)
	}
	// The handle still works after Delete: it keeps the namespace alive.
	if err := ns.Do(func() error { return nil }); err != nil {
		t.Errorf("Do on a deleted but open namespace: %v", err)
	}
}

func TestDoError(t *testing.T) {
	ns := create(t)
	want := errors.New("boom")
	if err := ns.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want %v", err, want)
	}
	func() {
		defer func() {
			if p := recover(); p != "panic in fn" {
				t.Errorf("recovered %v, want the panic from fn", p)
			}
		}()
		ns.Do(func() error { panic("panic in fn") })
	}()
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if ns.Fd() != -1 {
		t.Errorf("Fd after Close = %d, want -1", ns.Fd())
	}
	if err := ns.Do(func() error { return nil }); err == nil {
		t.Error("Do on a closed handle succeeded")
	}
}

func TestInvalidNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := Create(name); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
		if _, err := Open(name); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
		if err := Delete(name); err == nil {
			t.Errorf("Delete(%q) succeeded", name)
		}
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open(testName(t)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing name: err = %v, want fs.ErrNotExist", err)
	}
}
