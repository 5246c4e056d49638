//go:build !linux

package netns

import "errors"

// errNeedsLinux is what every function returns off Linux: network
// namespaces are a Linux kernel feature.
var errNeedsLinux = errors.New("netns: network namespaces need Linux")

// NS is a network namespace; off Linux there is none.
type NS struct {
	// Name is the name under /run/netns on Linux.
	Name string
}

// Path returns "".
func (n *NS) Path() string { return "" }

// Fd returns -1.
func (n *NS) Fd() int { return -1 }

// Close does nothing.
func (n *NS) Close() error { return nil }

// ID fails: there are no namespaces off Linux.
func (n *NS) ID() (uint64, error) { return 0, errNeedsLinux }

// Open fails: there are no namespaces off Linux.
func Open(name string) (*NS, error) { return nil, errNeedsLinux }

// Current fails: there are no namespaces off Linux.
func Current() (*NS, error) { return nil, errNeedsLinux }

// Create fails: there are no namespaces off Linux.
func Create(name string) (*NS, error) { return nil, errNeedsLinux }

// Do fails without calling fn.
func (n *NS) Do(fn func() error) error { return errNeedsLinux }

// Delete fails: there are no namespaces off Linux.
func Delete(name string) error { return errNeedsLinux }

// List fails: there are no namespaces off Linux.
func List(prefix string) ([]string, error) { return nil, errNeedsLinux }
