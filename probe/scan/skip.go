package scan

import (
	"net/netip"
	"slices"

	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
)

// broadcastAddr is an address the scanning namespace treats as a broadcast address, and why.
type broadcastAddr struct {
	addr uint32
	why  string
}

// SkippedHost is an address of the scan that got no probe: TCP is unicast, and a segment to a broadcast address
// is to be dropped by its receivers (RFC 9293 §3.9.1, RFC 1122 §4.2.3.10); the kernel refuses to send one without
// SO_BROADCAST anyway.
type SkippedHost struct {
	Addr netip.Addr
	// Reason says why, e.g. "the broadcast address of 198.18.0.0/24 on veth0".
	Reason string
	// Targets is how many of this shard's targets (ports) at Addr were skipped.
	Targets uint64
	// Port, when nonzero, is the one port skipped at Addr (see skipOwnPort);
	// else every port of the scan was.
	Port uint16
}

// skip marks every target of the shard at one of the broadcast addresses b as skipped (ansSkipped), before the
// first probe: the send loop passes over them, no retry probes them, and no reply can replace the mark. The
// target space, and so the order and the shards, stay as the arguments made them: a shard on another machine
// with other subnets still covers the same targets.
func (s *scanner) skip(b []broadcastAddr) {
	pl := s.plan
	if pl.v6 {
		return // IPv6 has no broadcast addresses (RFC 4291 §2)
	}
	for _, ba := range b {
		h, ok := pl.lookup(addrspan.U128{Lo: uint64(ba.addr)}, pl.ports[0]) // port index 0: the target number is the host index
		if !ok {
			continue
		}
		var n uint64
		for pi := range pl.ports {
			slot, ok := s.shard.slot(s.perm.index(h + uint64(pi)*pl.nHosts))
			if !ok {
				continue
			}
			if _, stored := s.table.offer(slot, ansSkipped); stored {
				n++
			}
		}
		if n > 0 {
			s.skipped = append(s.skipped, SkippedHost{Addr: addrOf(ba.addr), Reason: ba.why, Targets: n})
			s.nSkipped += n
		}
	}
	slices.SortFunc(s.skipped, func(a, b SkippedHost) int { return a.Addr.Compare(b.Addr) })
}

// skipOwnPort marks the target (our own address, our source port) as skipped. A probe from a port to itself
// comes back to our receiver as itself: a bare SYN from that very port, which would read as a split handshake
// (open). The port is ours for the scan (Run holds it with a bound socket), so there is nothing to learn there.
func (s *scanner) skipOwnPort() {
	t, ok := s.plan.lookup(s.localN, s.sport)
	if !ok {
		return
	}
	slot, ok := s.shard.slot(s.perm.index(t))
	if !ok {
		return
	}
	if _, stored := s.table.offer(slot, ansSkipped); stored {
		s.skipped = append(s.skipped, SkippedHost{Addr: s.local, Port: s.sport, Targets: 1,
			Reason: "the scan's own source port on this host (a probe to it comes back as itself)"})
		s.nSkipped++
		slices.SortFunc(s.skipped, func(a, b SkippedHost) int { return a.Addr.Compare(b.Addr) })
	}
}

// settled reports whether every target of the shard has answered or was skipped: no wait can add anything.
func (s *scanner) settled() bool { return s.answered.Load()+s.nSkipped >= s.size }
