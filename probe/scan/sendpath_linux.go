package scan

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
)

// resolveWait bounds the wait for the next hop's MAC address.
const resolveWait = time.Second

// rawPathWarnRate is the --rate from which falling back to the raw path is worth a warning: it sends about
// 0.5 Mpps per core, and needs headroom.
const rawPathWarnRate = 200_000

// batchSender is what sendPass sends on: a rawsock.Sender or a rawsock.PacketSender.
type batchSender interface {
	SendBatch(pkts [][]byte, dsts []netip.Addr) (int, error)
	Close() error
}

// chooseSendPath opens the packet sender if cfg.SendPath asks for it or allows it, and records the path and why
// in s.path and s.pathNote. It runs in the scan's namespace after the receivers and the guard are up, because
// resolving the next hop may send the first probe (of the shard's first target not skipped) on the raw path: its reply is then
// read and its SYN-ACK not answered by the local kernel, and sendPass does not send it again. It runs after skip:
// that probe is never one to a broadcast address.
func (s *scanner) chooseSendPath(o *runIO) error {
	s.path = SendRaw
	if s.cfg.SendPath == SendRaw {
		return nil
	}
	if s.nSkipped == s.size {
		s.pathNote = "every target is a broadcast address, skipped: nothing to send"
		return nil
	}
	if s.plan.v6 {
		const why = "the packet path is IPv4 only (it finds the next hop's MAC address with ARP): IPv6 probes go on the raw IPv6 socket"
		if s.cfg.SendPath == SendPacket {
			return &probe.EnvError{Err: fmt.Errorf("scan: --send-path packet: %s (use --send-path raw or auto)", why)}
		}
		s.pathNote = why
		return nil
	}
	ps, why, err := s.openPacketSender(o)
	if err != nil {
		return &probe.EnvError{Err: err}
	}
	if ps == nil {
		if s.cfg.SendPath == SendPacket {
			return &probe.EnvError{Err: fmt.Errorf("scan: --send-path packet: %s (use --send-path raw or auto)", why)}
		}
		s.pathNote = why
		if s.cfg.Rate >= rawPathWarnRate {
			s.warn(fmt.Sprintf("sending on the raw IP path, about 0.5 Mpps per core at most: %s", why))
		}
		return nil
	}
	if s.cfg.SendPath == SendAuto {
		if f := statefulInput(); f != "" {
			ps.Close()
			s.pathNote = f + ": with AF_PACKET sends conntrack never sees our probes and would call every reply invalid; sending on the raw IP path (--send-path packet to override)"
			if s.cfg.Rate >= rawPathWarnRate {
				s.warn(s.pathNote)
			}
			return nil
		}
	}
	o.packet = ps
	s.path = SendPacket
	s.pathNote = "AF_PACKET on " + ps.Link().String()
	return nil
}

// openPacketSender finds the one next hop of every host and opens a PacketSender to it. A nil sender with a
// reason means the packet path cannot be used here; an error, that something broke on the way.
func (s *scanner) openPacketSender(o *runIO) (*rawsock.PacketSender, string, error) {
	var link rawsock.Link
	for i, r := range s.plan.hosts {
		first, last := s.plan.addr(r.lo), s.plan.addr(r.lo.Add(r.count-1))
		l, err := rawsock.FindLink(first, last, s.cfg.Mark)
		if err != nil {
			// No link (or no route) for some hosts: the raw path still sends to the others, and marks the
			// ones the kernel refuses (markNotSent) instead of ending the scan.
			return nil, fmt.Sprintf("find the link to %v-%v: %v", first, last, err), nil
		}
		if i > 0 && (l.Index != link.Index || l.NextHop != link.NextHop) {
			return nil, fmt.Sprintf("the hosts leave by two next hops (%v on %s and %v on %s)", link.NextHop, link.Name, l.NextHop, l.Name), nil
		}
		link = l
	}
	link, err := rawsock.ResolveNextHop(link, s.sendFirst(o.send), resolveWait)
	if err != nil {
		return nil, err.Error(), nil
	}
	ps, err := rawsock.NewPacketSender(link, s.cfg.Mark)
	if err != nil {
		return nil, "", fmt.Errorf("scan: open the AF_PACKET send socket: %w", err)
	}
	return ps, "", nil
}

// sendFirst returns a trigger for ResolveNextHop: it sends the probe of the shard's first target not skipped on
// the raw path, which makes the kernel resolve the next hop, and marks it sent.
func (s *scanner) sendFirst(snd rawSender) func() error {
	return func() error {
		buf := make([]byte, s.tmpl.Len())
		// A target the kernel refuses (a local rule, no route) is marked and the next one tried, a few times.
		for k, tries := uint64(0), 0; k < s.size && tries < 64; k++ {
			if s.table.get(k) == ansSkipped {
				continue
			}
			dst, n, err := s.build(buf, k)
			if err != nil {
				return fmt.Errorf("build the probe to %v: %w", dst, err)
			}
			err = snd.Send(buf[:n], dst)
			if err == nil {
				s.firstSent, s.firstSlot = true, k
				return nil
			}
			if !s.markNotSent(k, dst, buf[:n], err) {
				return err
			}
			tries++
		}
		return errors.New("no probe could be sent to resolve the next hop (every target is skipped or refused)")
	}
}

// statefulInput describes the netfilter hooks on the receive path of this namespace that may drop replies that
// conntrack thinks invalid, or "" if there are none: probe.InputRules, the one check of them that send, walk and
// run make too.
func statefulInput() string { return probe.InputRules() }
