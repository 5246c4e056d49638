// Package hostilepeer is a test-only TCP peer that answers with broken or
// hostile segments, so tests can check that tcpwalk reports each oddity,
// never panics, never hangs and keeps its memory bounded. It is internal to
// package probe and used only by tests. Linux-only, like the rest of tcpwalk.
//
// The peer sits in a lab's target namespace on an AF_PACKET socket bound to
// the target's veth. That socket sees frames before netfilter, and sends
// frames the kernel does not check or rewrite (no IP_HDRINCL fix-ups), so a
// truncated IP header goes out as built. An nftables table in the target
// (hook input, `tcp dport PORT drop`) keeps the target's kernel from
// answering the peer's port with its own RSTs; the table is owned by the
// peer's netlink socket and goes with it.
package hostilepeer

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Behaviour is how the peer answers a SYN. The zero value is invalid.
type Behaviour int

// Behaviours. Unless said otherwise the peer answers each SYN (up to
// MaxSYNs) with one segment.
const (
	_ Behaviour = iota
	// DataOffsetPastEnd: a SYN-ACK whose data offset (60 bytes) runs past
	// the end of its 20-byte segment.
	DataOffsetPastEnd
	// OptionLength0 and OptionLength1: a SYN-ACK whose MSS option has
	// length 0 or 1 (a length counts its own two bytes).
	OptionLength0
	OptionLength1
	// OptionsPastHeader: a SYN-ACK whose last option (timestamps, length
	// 10) runs past the 4 option bytes of the header.
	OptionsPastHeader
	// BadChecksum: a correct SYN-ACK with a wrong TCP checksum.
	BadChecksum
	// IHLPastEnd: IPv4 IHL 15 (60 bytes) on a 40-byte packet. The
	// receiving kernel drops it before any socket sees it.
	IHLPastEnd
	// TruncatedTCP: IHL 15 with 40 bytes of NOP IP options and then only 8
	// bytes of TCP: ports and sequence number, no full header.
	TruncatedTCP
	// WrongAck: a well-formed SYN-ACK that acknowledges the SYN's
	// sequence number + 1001 instead of + 1.
	WrongAck
	// RSTStorm: Count RST,ACKs acceptable to a SYN-SENT connection
	// (<SEQ=0><ACK=x+1>), as fast as the socket takes them.
	RSTStorm
	// Retransmit: the correct SYN-ACK Count times, Interval apart, and
	// nothing else: the peer never completes the handshake.
	Retransmit
	// Flood: Count packets of unrelated traffic to the prober, sent at
	// Start whatever comes in (see flood).
	Flood
	// RFCStack: a small TCP that follows RFC 9293 where Linux makes other
	// choices (see rfcstack_linux.go): no RFC 5961, MSS as its only SYN,ACK
	// option, a SYN,ACK and FIN retransmission timeout of Interval (zero:
	// 3 s, RFC 1122's initial RTO), an app that closes on EOF with the ACK
	// of our FIN on its own FIN.
	RFCStack
)

var names = map[Behaviour]string{
	DataOffsetPastEnd: "data-offset-past-end", OptionLength0: "option-length-0", OptionLength1: "option-length-1",
	OptionsPastHeader: "options-past-header", BadChecksum: "bad-checksum", IHLPastEnd: "ihl-past-end",
	TruncatedTCP: "truncated-tcp", WrongAck: "wrong-ack", RSTStorm: "rst-storm", Retransmit: "retransmit", Flood: "flood",
	RFCStack: "rfc-stack",
}

func (b Behaviour) String() string {
	if n, ok := names[b]; ok {
		return n
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Bounds: every loop that sends is bounded in count and time.
const (
	// MaxCount bounds Config.Count.
	MaxCount = 100000
	// MaxSYNs is how many SYNs the peer answers; later ones are ignored.
	MaxSYNs = 16
	// maxRun bounds how long the peer sends for, whatever Count and
	// Interval say.
	maxRun = 30 * time.Second
)

// Config describes a peer.
type Config struct {
	// NS is the namespace the peer runs in (a lab's target); Ifname its
	// interface there (lab.Lab.TargetIf).
	NS     *netns.NS
	Ifname string
	// Addr is the address the peer answers for (lab.Lab.TargetAddr), and
	// Port the TCP port (nothing may listen there).
	Addr netip.Addr
	Port uint16
	// Peer and PeerMAC are the prober's address and MAC, for Flood.
	Peer    netip.Addr
	PeerMAC net.HardwareAddr
	// Behaviour says how to answer.
	Behaviour Behaviour
	// Count is how many segments RSTStorm and Retransmit send for each SYN
	// (so at most MaxSYNs × Count in all), and how many packets Flood sends
	// (1 to MaxCount; zero: 1).
	Count int
	// Interval spaces Retransmit's copies and Flood's packets (zero: none).
	Interval time.Duration
}

// Peer is a running hostile peer. Close stops it and removes its table.
type Peer struct {
	cfg     Config
	fd      int
	ifindex int
	nft     *nftables.Conn
	table   *nftables.Table

	syns, sent atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Start opens the peer's socket and table in cfg.NS and starts answering.
func Start(cfg Config) (*Peer, error) {
	if cfg.Behaviour == 0 || names[cfg.Behaviour] == "" {
		return nil, fmt.Errorf("hostilepeer: bad behaviour %d", int(cfg.Behaviour))
	}
	if cfg.Count == 0 {
		cfg.Count = 1
	}
	if cfg.Count < 0 || cfg.Count > MaxCount {
		return nil, fmt.Errorf("hostilepeer: count %d: want 1 to %d", cfg.Count, MaxCount)
	}
	if !cfg.Addr.Is4() || cfg.Port == 0 {
		return nil, fmt.Errorf("hostilepeer: address %v port %d: want an IPv4 address and a port", cfg.Addr, cfg.Port)
	}
	if cfg.Behaviour == Flood && (!cfg.Peer.Is4() || len(cfg.PeerMAC) != 6) {
		return nil, errors.New("hostilepeer: a flood needs the prober's IPv4 address and MAC")
	}
	p := &Peer{cfg: cfg, fd: -1, stop: make(chan struct{})}
	if err := cfg.NS.Do(p.open); err != nil {
		p.closeAll()
		return nil, err
	}
	switch cfg.Behaviour {
	case Flood:
		p.wg.Add(1)
		go p.flood()
	case RFCStack:
		p.wg.Add(1)
		go p.serveStack()
	default:
		p.wg.Add(1)
		go p.serve()
	}
	return p, nil
}

// open runs in the target namespace.
func (p *Peer) open() error {
	ifi, err := net.InterfaceByName(p.cfg.Ifname)
	if err != nil {
		return fmt.Errorf("hostilepeer: interface %s: %w", p.cfg.Ifname, err)
	}
	p.ifindex = ifi.Index
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return fmt.Errorf("hostilepeer: open packet socket: %w", err)
	}
	p.fd = fd
	if err := p.attachFilter(); err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: p.ifindex}); err != nil {
		return fmt.Errorf("hostilepeer: bind to %s: %w", p.cfg.Ifname, err)
	}
	// A short receive timeout lets the read loop see Close.
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("hostilepeer: SO_RCVTIMEO: %w", err)
	}
	return p.addTable()
}

// attachFilter keeps only SYNs (without ACK) to Addr:Port arriving on the
// interface; for RFCStack, every segment to Addr:Port.
func (p *Peer) attachFilter() error {
	addr := p.cfg.Addr.As4()
	synOnly := []bpf.Instruction{
		bpf.LoadIndirect{Off: 13, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(craft.FlagSYN | craft.FlagACK)},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(craft.FlagSYN), SkipTrue: 1},
	}
	if p.cfg.Behaviour == RFCStack {
		// Jumps of the same length that keep everything.
		synOnly = []bpf.Instruction{
			bpf.LoadIndirect{Off: 13, Size: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 1},
		}
	}
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_HOST, SkipFalse: 10},
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 8},
		bpf.LoadAbsolute{Off: 16, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(addr[:]), SkipFalse: 6},
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 2, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p.cfg.Port), SkipFalse: 3},
		synOnly[0], synOnly[1], synOnly[2],
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 256},
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("hostilepeer: assemble filter: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(p.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("hostilepeer: attach filter: %w", err)
	}
	// Drain what queued before the filter was on.
	var b [1]byte
	for range 1 << 16 {
		if _, _, err := unix.Recvfrom(p.fd, b[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
			break
		}
	}
	return nil
}

// addTable adds `table ip twhostile_RANDOM { chain input { type filter hook
// input priority 0; tcp dport PORT drop } }`, owned by the peer's netlink
// socket.
func (p *Peer) addTable() error {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(p.cfg.NS.Fd()))
	if err != nil {
		return fmt.Errorf("hostilepeer: open netlink: %w", err)
	}
	p.nft = c
	p.table = c.AddTable(&nftables.Table{Name: "twhostile_" + hex.EncodeToString(rnd[:]), Family: nftables.TableFamilyIPv4,
		Flags: nftables.TableFlagOwner})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: p.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: p.table, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.cfg.Port)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("hostilepeer: add table: %w", err)
	}
	return nil
}

// SYNs is how many SYNs the peer answered.
func (p *Peer) SYNs() int { return int(p.syns.Load()) }

// Sent is how many packets the peer sent.
func (p *Peer) Sent() int { return int(p.sent.Load()) }

// Wait waits until the peer has nothing more to send (a flood is over) or d
// passes, and reports whether it is done.
func (p *Peer) Wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Close stops the peer and removes its table. It is idempotent.
func (p *Peer) Close() error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		err = p.closeAll()
	})
	return err
}

func (p *Peer) closeAll() error {
	var errs []error
	if p.nft != nil && p.table != nil {
		p.nft.DelTable(p.table)
		if err := p.nft.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("hostilepeer: delete table %s: %w", p.table.Name, err))
		}
	}
	if p.nft != nil {
		errs = append(errs, p.nft.CloseLasting())
	}
	if p.fd >= 0 {
		errs = append(errs, unix.Close(p.fd))
		p.fd = -1
	}
	return errors.Join(errs...)
}

func (p *Peer) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// serve answers SYNs until Close, or until the run bound passes.
func (p *Peer) serve() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	end := time.Now().Add(maxRun)
	for !p.stopped() && time.Now().Before(end) {
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			continue // EAGAIN: the receive timeout, look at stop again
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Halen != 6 {
			continue
		}
		syn, err := craft.ParsePacket(buf[:n])
		if err != nil || p.syns.Load() >= MaxSYNs {
			continue
		}
		p.syns.Add(1)
		var mac [6]byte
		copy(mac[:], ll.Addr[:6])
		p.answer(syn, mac, end)
	}
}

// answer sends the behaviour's reply to syn.
func (p *Peer) answer(syn craft.Packet, mac [6]byte, end time.Time) {
	x := syn.TCP.SequenceNumber()
	base := craft.Segment{
		Src: p.cfg.Addr, Dst: syn.IP.Source(), SrcPort: p.cfg.Port, DstPort: syn.TCP.SourcePort(),
		Seq: 0x10000000, Ack: x + 1, Flags: craft.FlagSYN | craft.FlagACK, Window: 65535, ID: 1, DF: true,
	}
	var b [128]byte
	switch p.cfg.Behaviour {
	case DataOffsetPastEnd:
		n := encode(&base, b[:])
		tcp := craft.TCP(b[20:n])
		tcp.SetDataOffset(60)
		tcp.UpdateChecksum(base.Src, base.Dst)
		p.send(b[:n], mac)
	case OptionLength0, OptionLength1, OptionsPastHeader:
		base.Options = []craft.Option{craft.MSS(1460)}
		n := encode(&base, b[:])
		tcp := craft.TCP(b[20:n])
		switch p.cfg.Behaviour {
		case OptionLength0:
			tcp[21] = 0
		case OptionLength1:
			tcp[21] = 1
		default: // NOP, NOP, then timestamps of length 10 in 2 bytes
			copy(tcp[20:24], []byte{1, 1, 8, 10})
		}
		tcp.UpdateChecksum(base.Src, base.Dst)
		p.send(b[:n], mac)
	case BadChecksum:
		n := encode(&base, b[:])
		tcp := craft.TCP(b[20:n])
		bad := tcp.Checksum() ^ 0x0f0f
		if partial := craft.Checksum(nil, craft.PseudoHeaderSum(base.Src, base.Dst, craft.ProtocolTCP, uint16(len(tcp)))); bad == partial {
			bad ^= 0x1 // never the offload value a receiver must accept
		}
		tcp.SetChecksum(bad)
		p.send(b[:n], mac)
	case IHLPastEnd:
		n := encode(&base, b[:])
		b[0] = 0x4f // IHL 15: 60 bytes of header in a 40-byte packet
		ip := craft.IPv4(b[:20])
		ip.SetChecksum(0)
		ip.SetChecksum(^craft.Checksum(b[:20], 0)) // over what there is
		p.send(b[:n], mac)
	case TruncatedTCP:
		encode(&base, b[:])
		var pkt [68]byte
		copy(pkt[:20], b[:20])
		for i := 20; i < 60; i++ {
			pkt[i] = 1 // IP option NOP (RFC 791)
		}
		copy(pkt[60:], b[20:28]) // ports and sequence number only
		ip := craft.IPv4(pkt[:])
		ip.SetVersionIHL(60)
		ip.SetTotalLength(uint16(len(pkt)))
		ip.UpdateChecksum()
		p.send(pkt[:], mac)
	case WrongAck:
		base.Ack = x + 1001
		n := encode(&base, b[:])
		p.send(b[:n], mac)
	case RSTStorm:
		rst := base
		rst.Seq, rst.Flags, rst.Window = 0, craft.FlagRST|craft.FlagACK, 0
		n := encode(&rst, b[:])
		for i := 0; i < p.cfg.Count && !p.stopped() && time.Now().Before(end); i++ {
			p.send(b[:n], mac)
		}
	case Retransmit:
		n := encode(&base, b[:])
		for i := 0; i < p.cfg.Count && !p.stopped() && time.Now().Before(end); i++ {
			p.send(b[:n], mac)
			if p.cfg.Interval > 0 {
				select {
				case <-p.stop:
					return
				case <-time.After(p.cfg.Interval):
				}
			}
		}
	}
}

// flood sends Count packets of traffic unrelated to any flow of the prober,
// cycling through:
//   - segments from Addr:Port to random ports in tcpwalk's range 61000-65535
//     with random flags (they pass the prober's filter: Unmatched),
//   - the same to ports below that range (the filter drops them),
//   - every 20th, a segment with a malformed option (Malformed, warned).
func (p *Peer) flood() {
	defer p.wg.Done()
	mac := [6]byte(p.cfg.PeerMAC)
	var b [128]byte
	var rnd [4]byte
	end := time.Now().Add(maxRun)
	for i := 0; i < p.cfg.Count && !p.stopped() && time.Now().Before(end); i++ {
		rand.Read(rnd[:])
		r := binary.BigEndian.Uint32(rnd[:])
		seg := craft.Segment{Src: p.cfg.Addr, Dst: p.cfg.Peer, SrcPort: p.cfg.Port, Seq: r, Ack: r * 7,
			Flags:  craft.Flags(r>>8) & (craft.FlagACK | craft.FlagRST | craft.FlagFIN | craft.FlagPSH | craft.FlagSYN),
			Window: 1024, ID: uint16(i) | 1}
		switch {
		case i%20 == 19:
			seg.DstPort = 61000 + uint16(r%4536)
			seg.Options = []craft.Option{craft.MSS(1460)}
			n := encode(&seg, b[:])
			tcp := craft.TCP(b[20:n])
			tcp[21] = 1
			tcp.UpdateChecksum(seg.Src, seg.Dst)
			p.send(b[:n], mac)
			continue
		case i%2 == 0:
			seg.DstPort = 61000 + uint16(r%4536)
		default:
			seg.DstPort = 1024 + uint16(r%59000)
		}
		n := encode(&seg, b[:])
		p.send(b[:n], mac)
		if p.cfg.Interval > 0 {
			select {
			case <-p.stop:
				return
			case <-time.After(p.cfg.Interval):
			}
		}
	}
}

// encode builds s into b; the segments built here always fit.
func encode(s *craft.Segment, b []byte) int {
	n, err := s.Encode(b)
	if err != nil {
		return 0
	}
	return n
}

// send writes one IPv4 packet in a frame to mac. A full send buffer
// (ENOBUFS) waits a moment and tries once more; other failures are dropped.
func (p *Peer) send(pkt []byte, mac [6]byte) {
	if len(pkt) == 0 {
		return
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: p.ifindex, Halen: 6}
	copy(sa.Addr[:], mac[:])
	for try := 0; try < 2; try++ {
		err := unix.Sendto(p.fd, pkt, 0, sa)
		if err == nil {
			p.sent.Add(1)
			return
		}
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
