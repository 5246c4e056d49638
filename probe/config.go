package probe

import (
	"net/netip"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Defaults of Config.
const (
	// DefaultMark is the SO_MARK on our crafted packets ("tw"), so the RST
	// guard lets our own RSTs through while it drops the kernel's.
	DefaultMark uint32 = 0x7477
	// DefaultLocalLo and DefaultLocalHi bound our source ports: above Linux's
	// ephemeral range (32768–60999), so they do not collide with ports the
	// local kernel hands to its own connections.
	DefaultLocalLo uint16 = 61000
	DefaultLocalHi uint16 = 65535
)

// Config says what a Prober talks to and how. A nil *Config is not valid:
// Remote is required.
type Config struct {
	// Remote is the host probed; only its replies reach us. IPv4 or IPv6
	// (the raw sockets, filters and port reservations follow its family).
	Remote netip.Addr
	// LocalLo and LocalHi bound our source ports (zero: the defaults).
	LocalLo, LocalHi uint16
	// Mark is the SO_MARK of our packets (zero: DefaultMark).
	Mark uint32
	// NoGuard skips the RST guard; the local kernel will then reset replies
	// to our flows (a Watch still warns when it does).
	NoGuard bool
	// NetNS, when set, is where the sockets and the guard are made.
	NetNS *netns.NS
	// Warn receives warnings (a local RST that escaped, a malformed reply);
	// nil discards them.
	Warn func(msg string)
	// Source, when valid, is the source address written into our packets
	// instead of the one the route to Remote picks (hping3 -a, nping -S).
	// Replies reach us only if it is an address of this host.
	Source netip.Addr
	// Interface, when set, is the only device our packets leave by
	// (SO_BINDTODEVICE), and its first address of the remote's family (a global one for IPv6) is the source unless
	// Source says otherwise (nping -e).
	Interface string
}

// Stats counts what the receive path saw.
type Stats struct {
	Received  uint64 // segments delivered to a flow
	Unmatched uint64 // segments that passed the filter but belong to no open flow
	Malformed uint64 // packets dropped as malformed: unparsable, truncated, or a bad TCP checksum
	// BadChecksum counts the Malformed segments whose TCP checksum did not
	// verify (see checksumOK).
	BadChecksum uint64
	Overflow    uint64 // events dropped because a flow did not read them in time
	ICMP        uint64 // ICMP errors delivered to a flow
}
