package scan

import (
	"iter"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Result is what a scan found, for one shard. Its methods read the answers table; they are safe for
// concurrent use once Run has returned.
type Result struct {
	Type    Type
	Shard   Shard
	Seed    uint64
	Hosts   []netip.Prefix // as given
	Ports   []PortRange    // merged and sorted
	Local   netip.AddrPort // our address and the scan's source port
	Rate    int            // the rate asked for, probes per second
	Retries int            // the retries allowed

	// SendPath is the path the probes took (SendRaw or SendPacket); SendPathNote says on which link, or under
	// SendAuto why not the packet path.
	SendPath     SendPath
	SendPathNote string

	Targets uint64 // hosts × ports in this shard, skipped ones included
	Probed  uint64 // targets probed at least once (Targets - SkippedTargets, fewer if interrupted)
	Sent    uint64 // probes sent, retries included
	Retried uint64 // probes sent again to targets still silent
	Passes  int    // passes over the targets that were sent
	Replies uint64 // replies matched to a probe by their cookie
	Ignored uint64 // replies without our cookie (stale, spoofed, another tool's) or for no target of this shard
	// GuardDropped is how many of the local kernel's RSTs the guard stopped.
	GuardDropped uint64
	// Skipped lists the hosts that got no probe because they are broadcast addresses where the scan ran, in
	// address order; SkippedTargets counts their targets. HostResults and PortResults leave them out.
	Skipped        []SkippedHost
	SkippedTargets uint64
	// NotSent lists why the local kernel refused to send some probes (a local firewall rule, no route), one
	// entry per reason, in the order met; their targets read filtered with ReasonNotSent.
	NotSent []NotSent

	Start, End time.Time
	// SendTime is the time spent sending, waits excluded: Sent/SendTime is the achieved probe rate.
	SendTime    time.Duration
	Interrupted bool // the context ended the scan early

	s       *scanner
	arpUp   map[netip.Addr]bool   // hosts that answered ARP (IPv6: neighbour discovery) on the link (see neighboursUp)
	reached uint64                // slots the first pass went through (probed or skipped), in order
	froms   map[uint64]netip.Addr // slot -> sender of the ICMP error that decided it

	hostsOnce sync.Once
	hosts     []HostResult
}

// SendRate is the achieved sending rate in probes per second.
func (r *Result) SendRate() float64 {
	if r.SendTime <= 0 {
		return 0
	}
	return float64(r.Sent) / r.SendTime.Seconds()
}

// NotSent is one reason the local kernel refused probes, and how many targets it stopped.
type NotSent struct {
	Reason  string         // e.g. "operation not permitted: a local OUTPUT firewall rule?"
	Targets uint64         // targets of this shard never probed for it
	First   netip.AddrPort // the first target it stopped
}

// PortResult is one target's verdict.
type PortResult struct {
	Addr   netip.Addr
	Port   uint16
	State  State
	Reason Reason
}

// HostStatus is whether a host is up, as nmap's host discovery says: a host that answered nothing at all, no
// probe and no ARP on the link, is down. The zero value is invalid.
type HostStatus uint8

const (
	HostUp   HostStatus = iota + 1 // it answered a probe (TCP, or an ICMP error of its own), or ARP on the link
	HostDown                       // nothing came back from it
)

// String returns nmap's name, "up" or "down".
func (s HostStatus) String() string {
	switch s {
	case HostUp:
		return "up"
	case HostDown:
		return "down"
	}
	return "HostStatus(" + strconv.Itoa(int(s)) + ")"
}

// HostResult counts one host's states.
type HostResult struct {
	Addr netip.Addr
	// Status and StatusReason say whether the host is up and why: syn-ack, reset, split-handshake-syn, icmp (an
	// error the host sent itself; a router's says nothing of the host), arp-response; or down, no-response.
	Status       HostStatus
	StatusReason ReasonKind
	Counts       map[State]uint64
	// Reasons counts the reason kinds per state (for "Not shown: 65485 closed tcp ports (reset)").
	Reasons map[State]map[ReasonKind]uint64
}

// verdict returns the state and reason of the target t, and whether this shard probed it.
func (r *Result) verdict(t uint64) (State, Reason, bool) {
	s := r.s
	slot, ok := s.shard.slot(s.perm.index(t))
	if !ok || slot >= r.reached {
		return 0, Reason{}, false
	}
	a := s.table.get(slot)
	if a == ansSkipped {
		return 0, Reason{}, false
	}
	st, why := classify(s.cfg.Type, a)
	if s.plan.v6 {
		st, why = classify6(s.cfg.Type, a)
	}
	if why.Kind == ReasonNotSent {
		if i := int(a - ansNotSent); i < len(r.NotSent) {
			why.Detail = r.NotSent[i].Reason
		}
	}
	if why.Kind == ReasonICMP {
		if f, ok := r.froms[slot]; ok {
			why.From = f
		}
	}
	return st, why, true
}

// HostResults returns every host with at least one target probed by this shard, in address order. It is
// computed once; the caller must not modify it.
func (r *Result) HostResults() []HostResult {
	r.hostsOnce.Do(func() { r.hosts = r.hostResults() })
	return r.hosts
}

func (r *Result) hostResults() []HostResult {
	if r.s == nil {
		return nil
	}
	pl := r.s.plan
	var out []HostResult
	pl.eachHost(func(h uint64, a netip.Addr) bool {
		hr := HostResult{Addr: a, Counts: map[State]uint64{}, Reasons: map[State]map[ReasonKind]uint64{},
			Status: HostDown, StatusReason: ReasonNoResponse}
		for pi := range pl.ports {
			st, why, ok := r.verdict(h + uint64(pi)*pl.nHosts)
			if !ok {
				continue
			}
			if up := hostReasonRank(why, hr.Addr); up > hostReasonRank(Reason{Kind: hr.StatusReason}, hr.Addr) {
				hr.Status, hr.StatusReason = HostUp, why.Kind
			}
			hr.Counts[st]++
			if hr.Reasons[st] == nil {
				hr.Reasons[st] = map[ReasonKind]uint64{}
			}
			hr.Reasons[st][why.Kind]++
		}
		if hr.Status == HostDown && r.arpUp[hr.Addr] {
			hr.Status, hr.StatusReason = HostUp, ReasonARP
		}
		if len(hr.Counts) > 0 {
			out = append(out, hr)
		}
		return true
	})
	return out
}

// hostReasonRank orders the evidence that a host is up: its own SYN-ACK over its RST over a bare SYN over an
// ICMP error it sent itself; silence and a router's ICMP error are none (0).
func hostReasonRank(why Reason, host netip.Addr) int {
	switch why.Kind {
	case ReasonSynAck:
		return 4
	case ReasonReset:
		return 3
	case ReasonSyn:
		return 2
	case ReasonICMP:
		if why.From == host {
			return 1
		}
	}
	return 0
}

// PortResults yields the verdicts of host's ports probed by this shard, in port order.
func (r *Result) PortResults(host netip.Addr) iter.Seq[PortResult] {
	return func(yield func(PortResult) bool) {
		if r.s == nil {
			return
		}
		pl := r.s.plan
		if host = host.Unmap(); !host.IsValid() || host.Is6() != pl.v6 {
			return
		}
		a := num(host)
		for _, port := range pl.ports {
			t, ok := pl.lookup(a, port)
			if !ok {
				return
			}
			st, why, ok := r.verdict(t)
			if !ok {
				continue
			}
			if !yield(PortResult{Addr: host, Port: port, State: st, Reason: why}) {
				return
			}
		}
	}
}

// Count returns how many probed targets are in state st.
func (r *Result) Count(st State) uint64 {
	var n uint64
	for _, h := range r.HostResults() {
		n += h.Counts[st]
	}
	return n
}
