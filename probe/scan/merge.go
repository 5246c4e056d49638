package scan

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// MaxMergedTargets bounds the targets (hosts × ports) of a merged scan: the merge keeps a byte per target, as a
// scan does.
const MaxMergedTargets = 1 << 32

// Part is one shard's output read back (tcpwalk merge): its summary, and the verdicts it gave.
type Part struct {
	Name string // where it was read from, for errors

	// The summary: the scan (Type, Hosts, Ports, Seed, Retries, Shard) and this shard's counters.
	Type                                     Type
	Hosts                                    []netip.Prefix
	Ports                                    []PortRange
	Seed                                     uint64
	Retries                                  int
	Shard                                    Shard
	Local                                    netip.AddrPort
	Rate                                     int
	Targets, Probed, SkippedTargets          uint64
	Sent, Retried, Replies, Ignored, Dropped uint64
	Start, End                               time.Time
	SendTime                                 time.Duration
	Interrupted                              bool

	// Verdicts are the ports the output listed or summed up with their port lists. Targets of the shard it
	// does not mention were silent: an output leaves out only hosts that answered nothing at all.
	Verdicts []Verdicts
	// Skipped are the hosts the shard did not probe (broadcast addresses where it ran), with the reason.
	Skipped []SkippedHost
	// ARPUp are hosts that answered no probe but ARP on the link: up.
	ARPUp []netip.Addr
}

// Verdicts are ports of one host with one state and reason.
type Verdicts struct {
	Addr   netip.Addr
	Ports  []PortRange
	State  State
	Reason Reason
}

// Merge joins the outputs of every shard of one scan into the result a single run would have given: the same
// verdict for every target, the counters summed. It refuses parts of different scans (type, hosts, ports,
// seed, retries or shard count differ), a shard given twice, interrupted shards, and verdicts for targets that
// are not the shard's; it names the shards missing.
func Merge(parts []Part) (*Result, error) {
	if len(parts) == 0 {
		return nil, errors.New("merge: no shard outputs given")
	}
	first := &parts[0]
	count := first.Shard.norm().Count
	byIndex := map[uint64]string{}
	for i := range parts {
		p := &parts[i]
		if err := sameScan(first, p); err != nil {
			return nil, err
		}
		sh := p.Shard.norm()
		if prev, ok := byIndex[sh.Index]; ok {
			return nil, fmt.Errorf("merge: shard %s is given twice (%s and %s)", sh, prev, p.Name)
		}
		byIndex[sh.Index] = p.Name
		if p.Interrupted {
			return nil, fmt.Errorf("merge: %s: shard %s was interrupted after %d of %d targets: run it again (same seed and arguments) and merge the new output", p.Name, sh, p.Probed, p.Targets)
		}
	}
	var missing []string
	for i := uint64(1); i <= count; i++ {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		what := "shard " + missing[0] + " of " + fmt.Sprint(count) + " is"
		if len(missing) > 1 {
			what = "shards " + strings.Join(missing, ", ") + " of " + fmt.Sprint(count) + " are"
		}
		return nil, fmt.Errorf("merge: %s missing: give the output of every shard of the scan", what)
	}

	pl, err := newPlan(first.Hosts, first.Ports)
	if err != nil {
		return nil, fmt.Errorf("merge: %s: %w", first.Name, err)
	}
	n := pl.targets()
	if n > MaxMergedTargets {
		return nil, fmt.Errorf("merge: %d targets is more than %d: merge fewer hosts or ports at a time", n, uint64(MaxMergedTargets))
	}
	whole := Shard{Index: 1, Count: 1}
	s := &scanner{cfg: Config{Type: first.Type, Seed: first.Seed}, plan: pl, perm: newPerm(n, first.Seed), shard: whole,
		size: n, table: newTable(n)}
	res := &Result{Type: first.Type, Shard: whole, Seed: first.Seed, Hosts: first.Hosts, Ports: mergePorts(first.Ports),
		Local: first.Local, Rate: first.Rate, Retries: first.Retries, Targets: n, s: s, reached: n,
		froms: map[uint64]netip.Addr{}, arpUp: map[netip.Addr]bool{}}
	seen := make([]uint64, (n+63)/64)
	var skipped []SkippedHost
	for i := range parts {
		p := &parts[i]
		sh := p.Shard.norm()
		if want := sh.size(n); p.Targets != want {
			return nil, fmt.Errorf("merge: %s: shard %s has %d targets, but shard %s of this scan has %d: not an output of this scan", p.Name, sh, p.Targets, sh, want)
		}
		if p.Probed+p.SkippedTargets != p.Targets {
			return nil, fmt.Errorf("merge: %s: shard %s probed %d and skipped %d of its %d targets: incomplete", p.Name, sh, p.Probed, p.SkippedTargets, p.Targets)
		}
		// slotOf is the target's position in the whole scan, checked to be the shard's.
		slotOf := func(addr netip.Addr, port uint16) (uint64, error) {
			if addr.Is6() != pl.v6 {
				return 0, fmt.Errorf("merge: %s: %s port %d is not a target of the scan", p.Name, addr, port)
			}
			t, ok := pl.lookup(num(addr), port)
			if !ok {
				return 0, fmt.Errorf("merge: %s: %s port %d is not a target of the scan", p.Name, addr, port)
			}
			pos := s.perm.index(t)
			if _, ok := sh.slot(pos); !ok {
				return 0, fmt.Errorf("merge: %s: %s port %d is not a target of shard %s with seed %d: the output is not of this scan", p.Name, addr, port, sh, p.Seed)
			}
			return pos, nil
		}
		for _, v := range p.Verdicts {
			if v.Addr.Is6() != pl.v6 {
				return nil, fmt.Errorf("merge: %s: host %v is not of the scan's family", p.Name, v.Addr)
			}
			a, err := answerOf(first.Type, v.State, v.Reason, pl.v6)
			if err != nil {
				return nil, fmt.Errorf("merge: %s: %s: %w", p.Name, v.Addr, err)
			}
			for _, r := range v.Ports {
				for port := uint32(r.Lo); port <= uint32(r.Hi); port++ {
					slot, err := slotOf(v.Addr, uint16(port))
					if err != nil {
						return nil, err
					}
					if seen[slot/64]&(1<<(slot%64)) != 0 {
						return nil, fmt.Errorf("merge: %s: %s port %d is reported twice", p.Name, v.Addr, port)
					}
					seen[slot/64] |= 1 << (slot % 64)
					s.table.offer(slot, a)
					if v.Reason.Kind == ReasonICMP && v.Reason.From.IsValid() {
						res.froms[slot] = v.Reason.From
					}
				}
			}
		}
		for _, sk := range p.Skipped {
			host := SkippedHost{Addr: sk.Addr, Reason: sk.Reason}
			for _, port := range pl.ports {
				slot, err := slotOf(sk.Addr, port)
				if err != nil {
					continue // the host's other ports are other shards'
				}
				if s.table.get(slot) != ansNone || seen[slot/64]&(1<<(slot%64)) != 0 {
					return nil, fmt.Errorf("merge: %s: %s is reported skipped and probed", p.Name, sk.Addr)
				}
				s.table.offer(slot, ansSkipped)
				host.Targets++
			}
			res.SkippedTargets += host.Targets
			if j := slices.IndexFunc(skipped, func(h SkippedHost) bool { return h.Addr == sk.Addr }); j >= 0 {
				skipped[j].Targets += host.Targets
			} else {
				skipped = append(skipped, host)
			}
		}
		for _, a := range p.ARPUp {
			if a.IsValid() {
				res.arpUp[a] = true
			}
		}
		res.Probed += p.Probed
		res.Sent += p.Sent
		res.Retried += p.Retried
		res.Replies += p.Replies
		res.Ignored += p.Ignored
		res.GuardDropped += p.Dropped
		res.SendTime += p.SendTime
		if res.Start.IsZero() || p.Start.Before(res.Start) {
			res.Start = p.Start
		}
		if p.End.After(res.End) {
			res.End = p.End
		}
	}
	slices.SortFunc(skipped, func(a, b SkippedHost) int { return a.Addr.Compare(b.Addr) })
	res.Skipped = skipped
	return res, nil
}

// sameScan checks that two parts are shards of one scan: the same type, hosts, ports, seed, retries and count.
func sameScan(a, b *Part) error {
	diff := func(what string, x, y any) error {
		return fmt.Errorf("merge: %s and %s are not shards of one scan: %s %v and %v differ (every shard must run with the same seed and arguments)", a.Name, b.Name, what, x, y)
	}
	switch {
	case a.Type != b.Type:
		return diff("type", a.Type, b.Type)
	case FormatHosts(a.Hosts) != FormatHosts(b.Hosts):
		return diff("hosts", FormatHosts(a.Hosts), FormatHosts(b.Hosts))
	case FormatPorts(mergePorts(a.Ports)) != FormatPorts(mergePorts(b.Ports)):
		return diff("ports", FormatPorts(a.Ports), FormatPorts(b.Ports))
	case a.Seed != b.Seed:
		return diff("seed", a.Seed, b.Seed)
	case a.Retries != b.Retries:
		return diff("retries", a.Retries, b.Retries)
	case a.Shard.norm().Count != b.Shard.norm().Count:
		return diff("shard count", a.Shard.norm().Count, b.Shard.norm().Count)
	}
	return nil
}

// answerOf is the table's answer that gives state and reason for a scan of type t (classify's inverse), or an
// error when no reply gives them. v6 says the ICMP types are ICMPv6's.
func answerOf(t Type, st State, why Reason, v6 bool) (answer, error) {
	var a answer
	switch why.Kind {
	case ReasonSynAck:
		a = ansSynAck
	case ReasonSyn:
		a = ansSyn
	case ReasonReset:
		a = ansRST
		if t == TypeWindow && st == Open {
			a = ansRSTWin
		}
	case ReasonNoResponse:
		a = ansNone
	case ReasonICMP:
		if why.ICMPCode >= 16 {
			return 0, fmt.Errorf("ICMP code %d: no scan reads it", why.ICMPCode)
		}
		unreach, timeEx := uint8(craft.ICMPDestinationUnreachable), uint8(craft.ICMPTimeExceeded)
		if v6 {
			unreach, timeEx = craft.ICMPv6DestinationUnreachable, craft.ICMPv6TimeExceeded
		}
		switch why.ICMPType {
		case unreach:
			a = ansUnreach + answer(why.ICMPCode)
		case timeEx:
			a = ansTimeEx + answer(why.ICMPCode)
		default:
			return 0, fmt.Errorf("ICMP type %d: no scan reads it", why.ICMPType)
		}
	default:
		return 0, fmt.Errorf("reason %v is no port's", why.Kind)
	}
	if got, _ := classify(t, a); got != st {
		return 0, fmt.Errorf("state %s with reason %s: a %s scan gives %s for it", st, why.Kind, t, got)
	}
	return a, nil
}
