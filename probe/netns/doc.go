// Package netns creates, enters and removes named Linux network namespaces.
//
// A named namespace is what `ip netns add NAME` makes: an nsfs bind mount on the
// file /run/netns/NAME, which keeps the namespace alive without any process in
// it. Namespaces made here are visible to `ip netns` and the other way round.
//
// The package is Linux-only, like the rest of tcpwalk.
//
// # Threads
//
// A network namespace belongs to an OS thread, not to a process or a goroutine.
// [NS.Do] therefore runs its function on a fresh goroutine locked to its OS
// thread, switched into the namespace with setns(2), and switches back
// afterwards. A socket keeps the namespace it was created in for its whole life,
// so sockets (and netlink handles) made inside Do can be used from any goroutine
// after Do returns. If switching back fails, the goroutine ends still locked to
// its thread, and the Go runtime then terminates that thread instead of reusing
// it in the wrong namespace.
//
// # Cleanup
//
// Closing an [NS] closes only its file descriptor. The namespace itself lives
// while its bind mount, a process or a socket in it exists; [Delete] removes the
// bind mount and the file.
package netns
