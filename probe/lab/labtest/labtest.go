// Package labtest gives tests a ready lab (see package lab): two fresh
// namespaces with a unique name, the lab servers running, and everything
// removed in t.Cleanup, also when the test fails.
//
// The package is Linux-only, like the rest of tcpwalk.
package labtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/lab"
)

// Prefix returns a lab prefix unique across concurrent test runs on the
// machine: "twt-" and 8 random hex digits.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("labtest: random prefix: %v", err)
	}
	return "twt-" + hex.EncodeToString(b[:])
}

// SkipUnlessPermitted skips t when err is a permission error (not root,
// no CAP_SYS_ADMIN/CAP_NET_ADMIN), unless CI=true, where privileged tests
// must run and t fails instead. Other errors fail t.
func SkipUnlessPermitted(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, fs.ErrPermission) && os.Getenv("CI") != "true" {
		t.Skipf("labtest: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for network namespaces: %v", err)
	}
	t.Fatalf("labtest: %v", err)
}

// NewBare creates a lab with a unique prefix and no servers, removed at
// cleanup.
func NewBare(t testing.TB) *lab.Lab {
	t.Helper()
	return NewBareStack(t, lab.StackLinux)
}

// NewBareStack is NewBare with the given stack behind the target address.
func NewBareStack(t testing.TB, stack lab.Stack) *lab.Lab {
	t.Helper()
	l, err := lab.Create(&lab.Config{Prefix: Prefix(t), Stack: stack})
	SkipUnlessPermitted(t, err)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("labtest: close lab %s: %v", l.Prefix, err)
		}
	})
	return l
}

// New creates a lab with a unique prefix and starts its servers (see
// Servers); t.Cleanup stops the servers and removes the lab.
func New(t testing.TB) *lab.Lab {
	t.Helper()
	return NewStack(t, lab.StackLinux)
}

// NewStack is New with the given stack serving the target address:
// lab.StackGVisor runs the servers on gVisor's netstack in this process.
func NewStack(t testing.TB, stack lab.Stack) *lab.Lab {
	t.Helper()
	l := NewBareStack(t, stack)
	if _, err := l.StartServers(); err != nil {
		t.Fatalf("labtest: %v", err)
	}
	return l
}

// Servers returns the servers that New started for l, or nil.
func Servers(l *lab.Lab) *lab.Servers {
	return l.Servers()
}
