package walk

import (
	"net"
	"net/netip"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/labnet"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/privs"
)

// Lab auto-detection: which lab, if any, a command's target belongs to, so
// that `tcpwalk lab up` followed by `tcpwalk walk all 198.18.0.2:7001`
// works as written (probed from the lab's prober namespace, with the lab's
// trigger and oracle).

// LabProberNS is the namespace a target given without --netns is probed
// from: the default lab's prober namespace when target is in the lab's
// range (labnet), the lab is up, we are not
// already in it and may enter it, and the target is the lab's to probe
// (LabShouldProbe). Nil means the current namespace. Close the namespace
// when done.
func LabProberNS(target netip.Addr) *netns.NS {
	if !labnet.Contains(target) {
		return nil
	}
	pns, _, _, _ := lab.Names(lab.DefaultPrefix)
	ns, err := netns.Open(pns)
	if err != nil {
		return nil // no lab: probe from here
	}
	if sameNS(ns) || !privs.CanEnterNS() || !LabShouldProbe(lab.DefaultPrefix, target) {
		ns.Close()
		return nil
	}
	return ns
}

// LabShouldProbe reports whether a target in the lab range, given without
// --netns while the default lab exists, is the lab's to probe: one of the
// lab's own addresses, or an address this namespace has no route to (other
// than a default route, which CheckLabRoute refuses anyway). A namespace of
// the user's own on 198.19.x.x, routed from here, is probed from here.
func LabShouldProbe(prefix string, target netip.Addr) bool {
	if l, err := lab.Open(prefix); err == nil {
		own := l.Owns(target)
		l.Release()
		if own {
			return true
		}
	}
	if probe.CheckLabRoute(target) != nil {
		return true // only the default route leads there from here
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, 9)))
	if err != nil {
		return true // no route here
	}
	conn.Close()
	return false
}

// sameNS reports whether ns is the namespace we run in.
func sameNS(ns *netns.NS) bool {
	cur, err := netns.Current()
	if err != nil {
		return false
	}
	defer cur.Close()
	a, err1 := cur.ID()
	b, err2 := ns.ID()
	return err1 == nil && err2 == nil && a == b
}

// FindLab finds the lab whose target is addr, for the lab's trigger,
// oracle and capture: with nsName (--netns) PREFIX-prober the lab of that
// prefix (a lab made with another prefix, as tests make them, is found,
// and a default lab that happens to use the same addresses is not taken
// for it), else the default lab. Release the lab when done.
func FindLab(nsName string, addr netip.Addr) (*lab.Lab, bool) {
	prefix := lab.DefaultPrefix
	if name := nsName; name != "" {
		p, ok := strings.CutSuffix(name, "-prober")
		if !ok || p == "" {
			return nil, false
		}
		prefix = p
	}
	l, err := lab.Open(prefix)
	if err != nil {
		return nil, false
	}
	if !l.IsTarget(addr) {
		l.Release()
		return nil, false
	}
	return l, true
}
