package scan

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/internal/addrspan"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// scanner is the state of one run: the target space, the order, the cookie key and the answers. Its build and
// handle methods are the per-packet paths; they allocate nothing.
type scanner struct {
	cfg    Config
	plan   *plan
	perm   perm
	shard  Shard
	size   uint64 // targets of this shard
	key    sipKey
	local  netip.Addr    // our address, of the plan's family
	local4 [4]byte       // an IPv4 local address's bytes, for the IPv4 cookie
	localN addrspan.U128 // local's number (see num), for the IPv6 cookie and the plan
	sport  uint16
	tmpl   *craft.Template // the probe
	rst    *craft.Template // the RST that closes a half-open connection after a SYN-ACK
	hasACK bool            // the probes carry ACK: a RST answers with SEQ = our ACK
	seqLen uint32
	table  *table

	path      SendPath // the send path chosen by chooseSendPath
	pathNote  string   // and why
	firstSent bool     // the probe of slot firstSlot went out while resolving the next hop
	firstSlot uint64   // the first slot not skipped

	skipped  []SkippedHost // broadcast addresses among the hosts (skip), in address order
	nSkipped uint64        // this shard's targets at them, marked ansSkipped in the table
	reached  atomic.Uint64 // slots the first pass has gone through, probed or skipped: slots go in order

	probed, sent, retried             atomic.Uint64
	replies, ignored, answered, found atomic.Uint64
	icmpOther                         atomic.Uint64
	pass                              atomic.Int64 // the pass being sent
	icmpFrom                          []icmpFrom   // written by the ICMP loop only, read after it ends

	notSent []NotSent // why probes could not be sent (markNotSent), written by the sending goroutine only

	// The retry pass being sent, for its own progress: how many targets it probes, and Retried when it began.
	passTargets, passBase atomic.Uint64
}

// icmpFrom remembers who sent the ICMP error that decided a slot.
type icmpFrom struct {
	slot uint64
	from netip.Addr
}

// maxICMPFrom bounds the icmpFrom records (preallocated; beyond it the sender is not reported).
const maxICMPFrom = 1 << 16

// newScanner checks cfg and prepares everything but the sockets.
// localFor finds our address towards the plan's hosts.
func newScanner(c *Config, localFor func(*plan) (netip.Addr, error)) (*scanner, error) {
	cfg, err := c.normalize()
	if err != nil {
		return nil, err
	}
	pl, err := newPlan(cfg.Hosts, cfg.Ports)
	if err != nil {
		return nil, &probe.UsageError{Err: fmt.Errorf("scan: %w", err)}
	}
	n := pl.targets()
	s := &scanner{cfg: cfg, plan: pl, perm: newPerm(n, cfg.Seed), shard: cfg.Shard}
	s.size = s.shard.size(n)
	if s.size == 0 {
		return nil, &probe.UsageError{Err: errNoTargets}
	}
	if s.size > MaxShardTargets {
		return nil, &probe.UsageError{Err: fmt.Errorf("scan: %d targets (hosts × ports) in one process is more than %d: narrow the hosts or ports, or split the scan with --shard", s.size, MaxShardTargets)}
	}
	local, err := localFor(pl)
	if err != nil {
		return nil, err
	}
	if local = local.Unmap(); !local.IsValid() || local.Is6() != pl.v6 {
		return nil, fmt.Errorf("scan: local address %v is not of the hosts' family", local)
	}
	s.local, s.localN = local, num(local)
	if !pl.v6 {
		s.local4 = local.As4()
	}
	if cfg.key != nil {
		s.key = *cfg.key
	} else {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("scan: make a cookie key: %w", err)
		}
		s.key = sipKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
	}
	s.sport = cfg.SourcePort
	if s.sport == 0 {
		s.sport = SourcePortLo + uint16(probe.RandomUint32()%uint32(SourcePortHi-SourcePortLo+1))
	}
	flags := cfg.Type.Flags()
	s.hasACK = flags.Has(craft.FlagACK)
	s.seqLen = cfg.Type.seqLen()
	// DF, as Linux's own segments: an atomic datagram, whose zero IP ID is fine (RFC 6864 §4.1), since the
	// packet path sends the header as built (the raw path would have the kernel pick an ID).
	seg := craft.Segment{Src: local, Dst: local, Flags: flags, Window: 1024, DF: !pl.v6}
	if cfg.Type == TypeSYN {
		// A SYN like Linux's: option-less SYNs are dropped by some firewalls (nmap #1753).
		seg.Window = tcpconn.DefaultWindow
		seg.Options = craft.DefaultSYNOptions(probe.RandomUint32())
		if pl.v6 {
			// MSS is the MTU less the fixed IP and TCP headers (RFC 9293 §3.7.1): 1500 - 40 - 20 over IPv6.
			binary.BigEndian.PutUint16(seg.Options[0].Data, 1440)
		}
	}
	if s.tmpl, err = craft.NewTemplate(&seg); err != nil {
		return nil, fmt.Errorf("scan: build the probe template: %w", err)
	}
	if s.rst, err = craft.NewTemplate(&craft.Segment{Src: local, Dst: local, Flags: craft.FlagRST}); err != nil {
		return nil, fmt.Errorf("scan: build the RST template: %w", err)
	}
	s.table = newTable(s.size)
	s.icmpFrom = make([]icmpFrom, 0, min(s.size, maxICMPFrom))
	return s, nil
}

// cookie returns the sequence and acknowledgment numbers of the probe to dst:dport, dst as its number (see num):
// the keyed hash of the IPv4 4-tuple, or of the IPv6 one with both 128-bit addresses.
func (s *scanner) cookie(dst addrspan.U128, dport uint16) (seq, ack uint32) {
	var c uint64
	if s.plan.v6 {
		c = s.key.tuple6(s.localN, dst, s.sport, dport)
	} else {
		var d [4]byte
		binary.BigEndian.PutUint32(d[:], uint32(dst.Lo))
		c = s.key.tuple(s.local4, d, s.sport, dport)
	}
	return uint32(c), uint32(c >> 32)
}

// build writes the probe of the shard's k-th target into b and returns its destination and length; it fails
// when b is shorter than the template.
func (s *scanner) build(b []byte, k uint64) (netip.Addr, int, error) {
	t := s.perm.at(s.shard.position(k))
	a, port := s.plan.target(t)
	seq, ack := s.cookie(a, port)
	if !s.hasACK {
		ack = 0
	}
	dst := s.plan.addr(a)
	n, err := s.tmpl.Build(b, dst, port, s.sport, seq, ack)
	return dst, n, err
}

// slotOf returns the shard slot of the target (remote, rport), and whether it is one of ours.
func (s *scanner) slotOf(remote addrspan.U128, rport uint16) (uint64, bool) {
	t, ok := s.plan.lookup(remote, rport)
	if !ok {
		return 0, false
	}
	return s.shard.slot(s.perm.index(t))
}

// record stores answer a for slot and keeps the counters.
func (s *scanner) record(slot uint64, a answer) {
	old, stored := s.table.offer(slot, a)
	if !stored {
		return
	}
	if old == ansNone {
		s.answered.Add(1)
	}
	if st, _ := classify(s.cfg.Type, a); st == Open {
		if ost, _ := classify(s.cfg.Type, old); old == ansNone || ost != Open {
			s.found.Add(1)
		}
	}
}

// handleTCP classifies one received packet, IPv4 or, in an IPv6 scan, IPv6 with the header Receiver6 rebuilds (the
// kernel filter passed only TCP to our source port from the hosts' cover prefix). If the reply is a SYN-ACK to
// reset, it writes our RST into rst and returns its destination and length; else length 0.
func (s *scanner) handleTCP(pkt []byte, rst []byte) (netip.Addr, int) {
	var src addrspan.U128
	var t craft.TCP
	if s.plan.v6 {
		if len(pkt) < craft.IPv6HeaderSize+craft.TCPMinimumSize || pkt[0]>>4 != 6 || pkt[6] != craft.ProtocolTCP ||
			[16]byte(pkt[24:40]) != s.local.As16() {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		src = addrspan.U128{Hi: binary.BigEndian.Uint64(pkt[8:]), Lo: binary.BigEndian.Uint64(pkt[16:])}
		t = craft.TCP(pkt[craft.IPv6HeaderSize:])
	} else {
		if len(pkt) < craft.IPv4MinimumSize || pkt[0]>>4 != 4 {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		ihl := int(pkt[0]&0xf) * 4
		if ihl < craft.IPv4MinimumSize || len(pkt) < ihl+craft.TCPMinimumSize || pkt[9] != craft.ProtocolTCP ||
			[4]byte(pkt[16:20]) != s.local4 {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		src = addrspan.U128{Lo: uint64(binary.BigEndian.Uint32(pkt[12:16]))}
		t = craft.TCP(pkt[ihl:])
	}
	rport := t.SourcePort()
	if t.DestinationPort() != s.sport {
		s.ignored.Add(1)
		return netip.Addr{}, 0
	}
	flags := t.Flags()
	seq, ack := s.cookie(src, rport)
	var a answer
	switch {
	case flags.Has(craft.FlagRST):
		// RFC 9293 §3.10.7.1: the reset of a segment with ACK has SEQ = SEG.ACK; of one without,
		// SEQ 0 and ACK = SEG.SEQ + SEG.LEN.
		if s.hasACK && t.SequenceNumber() != ack || !s.hasACK && (!flags.Has(craft.FlagACK) || t.AckNumber() != seq+s.seqLen) {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		a = ansRST
		if t.WindowSize() != 0 {
			a = ansRSTWin
		}
	case flags.Has(craft.FlagSYN | craft.FlagACK):
		if s.cfg.Type != TypeSYN || t.AckNumber() != seq+1 {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		a = ansSynAck
	case flags.Has(craft.FlagSYN):
		// A split handshake: the remote answers our SYN with its own. It cannot carry our cookie. Our own
		// probe, come back to us from our own address, can, and is not an answer (see skipOwnPort).
		if s.cfg.Type != TypeSYN || src == s.localN && t.SequenceNumber() == seq {
			s.ignored.Add(1)
			return netip.Addr{}, 0
		}
		a = ansSyn
	default:
		s.ignored.Add(1)
		return netip.Addr{}, 0
	}
	slot, ok := s.slotOf(src, rport)
	if !ok {
		s.ignored.Add(1)
		return netip.Addr{}, 0
	}
	s.replies.Add(1)
	s.record(slot, a)
	if a != ansSynAck || s.cfg.LeaveOpen {
		return netip.Addr{}, 0
	}
	// Close the remote's half-open connection: RST with SEQ = its RCV.NXT, our ISN + 1 (RFC 9293 §3.10.7.3).
	dst := s.plan.addr(src)
	n, err := s.rst.Build(rst, dst, rport, s.sport, seq+1, 0)
	if err != nil {
		// rst is shorter than the reset template: no reset, as for a reply that needs none.
		return netip.Addr{}, 0
	}
	return dst, n
}

// icmpQuote is what an ICMP or ICMPv6 error says of the probe it quotes.
type icmpQuote struct {
	from             netip.Addr // who sent the error
	typ, code        uint8
	src, dst         netip.Addr // the quoted addresses
	srcPort, dstPort uint16
	seq              uint32
	hasSeq           bool
}

// handleICMP classifies one ICMP error quoting a TCP segment (parsed by craft.ParseICMPError).
func (s *scanner) handleICMP(e *craft.ICMPError) {
	if len(e.Quoted) < craft.IPv4MinimumSize {
		s.ignored.Add(1)
		return
	}
	s.handleQuote(icmpAnswer(e.Type, e.Code), &icmpQuote{from: e.From, typ: e.Type, code: e.Code,
		src: e.Quoted.Source(), dst: e.Quoted.Destination(), srcPort: e.SrcPort, dstPort: e.DstPort, seq: e.Seq, hasSeq: e.HasSeq})
}

// handleICMPv6 classifies one ICMPv6 error quoting a TCP segment (parsed by craft.ParseICMPv6Error).
func (s *scanner) handleICMPv6(e *craft.ICMPv6Error) {
	if len(e.Quoted) < craft.IPv6HeaderSize {
		s.ignored.Add(1)
		return
	}
	s.handleQuote(icmp6Answer(e.Type, e.Code), &icmpQuote{from: e.From, typ: e.Type, code: e.Code,
		src: e.Quoted.Source(), dst: e.Quoted.Destination(), srcPort: e.SrcPort, dstPort: e.DstPort, seq: e.Seq, hasSeq: e.HasSeq})
}

// handleQuote records answer a (ansNone: an error no scan reads) for the probe q quotes, if q carries our cookie.
func (s *scanner) handleQuote(a answer, q *icmpQuote) {
	if a == ansNone {
		s.icmpOther.Add(1)
		return
	}
	if !q.hasSeq || q.srcPort != s.sport || q.src.Unmap() != s.local || q.dst.Is6() != s.plan.v6 {
		s.ignored.Add(1)
		return
	}
	dst := num(q.dst)
	seq, _ := s.cookie(dst, q.dstPort)
	if q.seq != seq {
		s.ignored.Add(1)
		return
	}
	slot, ok := s.slotOf(dst, q.dstPort)
	if !ok {
		s.ignored.Add(1)
		return
	}
	s.replies.Add(1)
	if _, stored := s.table.offer(slot, a); stored {
		// offer went first: record's counters, without a second offer.
		s.answered.Add(1)
		if len(s.icmpFrom) < cap(s.icmpFrom) && q.from.IsValid() {
			s.icmpFrom = append(s.icmpFrom, icmpFrom{slot: slot, from: q.from})
		}
	}
}
