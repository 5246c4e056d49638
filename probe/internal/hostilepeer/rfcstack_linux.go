package hostilepeer

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/craft"
)

// The RFCStack behaviour: a TCP that follows RFC 9293 and makes, wherever
// the RFC leaves a choice, one Linux does not make, so that a test can show
// an expectation written from Linux's habits failing a correct stack:
//
//   - no RFC 5961 (optional, RFC 9293 §3.10.7.4): an in-window RST resets
//     the connection, an in-window SYN is answered with a RST and closes it
//     (RFC 793's rule), an old ACK is ignored;
//   - MSS is its only SYN,ACK option whatever the SYN offered (RFC 9293
//     §3.7.1: MSS SHOULD be sent; SACK, timestamps and window scale are
//     optional);
//   - its retransmission timeout is Config.Interval (zero: 3 s, RFC 1122's
//     initial RTO, which RFC 6298 §2.1 still allows), for the SYN,ACK and
//     for its FIN;
//   - its app closes when it reads our FIN: the ACK of our FIN rides on its
//     own FIN (RFC 9293 §3.10.7.4 asks for an acknowledgment, not for a
//     segment of its own);
//   - a retransmitted SYN in SYN-RECEIVED is answered with an ACK (first:
//     an unacceptable segment);
//   - its RSTs carry a window of 1024 (§3.10.7.1 says nothing of a RST's
//     window).
//
// It holds at most maxStackConns connections and, like every behaviour,
// runs for maxRun at most.

const (
	maxStackConns = 64
	stackWindow   = 8192
	stackTries    = 3 // retransmissions of a SYN,ACK or FIN before giving up
)

type stackState int

const (
	stSynRcvd stackState = iota + 1
	stEstablished
	stLastAck
)

// stackConn is one connection's TCB (RFC 9293 §3.3.1).
type stackConn struct {
	port                   uint16 // the prober's port
	mac                    [6]byte
	state                  stackState
	iss, sndUna, sndNxt    uint32
	irs, rcvNxt            uint32
	rto                    time.Duration
	retransmitAt           time.Time
	retransmits            int
	src                    [4]byte
	finSeq                 uint32      // our FIN, once sent (LAST_ACK)
	lastFlags              craft.Flags // of the segment retransmitted
	lastSeq, lastAck, tick uint32
}

// serveStack runs the RFCStack behaviour until Close or maxRun.
func (p *Peer) serveStack() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	end := time.Now().Add(maxRun)
	conns := map[uint16]*stackConn{}
	rto := p.cfg.Interval
	if rto <= 0 {
		rto = 3 * time.Second
	}
	for !p.stopped() && time.Now().Before(end) {
		p.stackTimers(conns)
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			continue // the receive timeout: timers and stop again
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Halen != 6 {
			continue
		}
		pkt, err := craft.ParsePacket(buf[:n])
		if err != nil {
			continue
		}
		p.stackInput(conns, pkt, [6]byte(ll.Addr[:6]), rto)
	}
}

// stackTimers retransmits what is due, and forgets a connection after
// stackTries retransmissions.
func (p *Peer) stackTimers(conns map[uint16]*stackConn) {
	now := time.Now()
	for port, c := range conns {
		if c.retransmitAt.IsZero() || now.Before(c.retransmitAt) {
			continue
		}
		if c.retransmits >= stackTries {
			delete(conns, port)
			continue
		}
		c.retransmits++
		p.stackSend(c, c.lastFlags, c.lastSeq, c.lastAck, c.state == stSynRcvd)
		c.retransmitAt = now.Add(c.rto << c.retransmits)
	}
}

// stackInput processes one segment as RFC 9293 §3.10.7 does.
func (p *Peer) stackInput(conns map[uint16]*stackConn, pkt craft.Packet, mac [6]byte, rto time.Duration) {
	tcp := pkt.TCP
	flags := tcp.Flags()
	seq, ack := tcp.SequenceNumber(), tcp.AckNumber()
	segLen := uint32(len(tcp.Payload()))
	if flags.Has(craft.FlagSYN) {
		segLen++
	}
	if flags.Has(craft.FlagFIN) {
		segLen++
	}
	port := tcp.SourcePort()
	c := conns[port]
	if c == nil {
		// CLOSED (no TCB) or LISTEN (§3.10.7.1-2).
		closed := &stackConn{port: port, mac: mac, src: pkt.IP.Source().As4()}
		switch {
		case flags.Has(craft.FlagRST):
		case flags.Has(craft.FlagACK):
			p.stackRST(closed, ack, 0, 0)
		case flags.Has(craft.FlagSYN) && len(conns) < maxStackConns:
			p.syns.Add(1)
			iss := 0x20000000 + uint32(port)<<8
			c = &stackConn{port: port, mac: mac, src: closed.src, state: stSynRcvd, iss: iss, sndUna: iss, sndNxt: iss + 1,
				irs: seq, rcvNxt: seq + 1, rto: rto}
			conns[port] = c
			p.stackSendRetransmitted(c, craft.FlagSYN|craft.FlagACK, iss, c.rcvNxt)
		default:
			p.stackRST(closed, 0, seq+segLen, craft.FlagACK)
		}
		return
	}
	// first: the sequence number (§3.10.7.4).
	if !c.acceptable(seq, segLen) {
		if !flags.Has(craft.FlagRST) {
			p.stackSend(c, craft.FlagACK, c.sndNxt, c.rcvNxt, false)
		}
		return
	}
	// second: RST in the window, exact or not: no RFC 5961.
	if flags.Has(craft.FlagRST) {
		delete(conns, port)
		return
	}
	// fourth: a SYN in the window: RFC 793's reset.
	if flags.Has(craft.FlagSYN) {
		p.stackRST(c, c.sndNxt, c.rcvNxt, craft.FlagACK)
		delete(conns, port)
		return
	}
	// fifth: the ACK field.
	if !flags.Has(craft.FlagACK) {
		return
	}
	switch c.state {
	case stSynRcvd:
		if !seqLT(c.sndUna, ack) || seqLT(c.sndNxt, ack) {
			p.stackRST(c, ack, 0, 0)
			return
		}
		c.state, c.sndUna, c.retransmitAt, c.retransmits = stEstablished, ack, time.Time{}, 0
	default:
		switch {
		case seqLT(c.sndNxt, ack):
			p.stackSend(c, craft.FlagACK, c.sndNxt, c.rcvNxt, false)
			return
		case seqLT(ack, c.sndUna):
			return // a duplicate: "can be ignored"; no challenge
		}
		c.sndUna = ack
		if c.state == stLastAck && ack == c.sndNxt {
			delete(conns, port) // LAST-ACK → CLOSED
			return
		}
	}
	// seventh and eighth: text and FIN, in order only.
	data := uint32(len(tcp.Payload()))
	if seq != c.rcvNxt || c.state == stLastAck {
		if data > 0 || flags.Has(craft.FlagFIN) {
			p.stackSend(c, craft.FlagACK, c.sndNxt, c.rcvNxt, false)
		}
		return
	}
	c.rcvNxt += data
	if flags.Has(craft.FlagFIN) {
		// CLOSE-WAIT, and the app closes on EOF at once: its FIN carries
		// the ACK of ours (LAST-ACK).
		c.rcvNxt++
		c.finSeq, c.state = c.sndNxt, stLastAck
		c.sndNxt++
		p.stackSendRetransmitted(c, craft.FlagFIN|craft.FlagACK, c.finSeq, c.rcvNxt)
		return
	}
	if data > 0 {
		p.stackSend(c, craft.FlagACK, c.sndNxt, c.rcvNxt, false)
	}
}

// acceptable is RFC 9293's acceptance test (§3.10.7.4, first).
func (c *stackConn) acceptable(seq, segLen uint32) bool {
	in := func(s uint32) bool { return !seqLT(s, c.rcvNxt) && seqLT(s, c.rcvNxt+stackWindow) }
	if segLen == 0 {
		return in(seq)
	}
	return in(seq) || in(seq+segLen-1)
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// stackSendRetransmitted sends a segment its timer retransmits.
func (p *Peer) stackSendRetransmitted(c *stackConn, flags craft.Flags, seq, ack uint32) {
	c.lastFlags, c.lastSeq, c.lastAck = flags, seq, ack
	c.retransmits, c.retransmitAt = 0, time.Now().Add(c.rto)
	p.stackSend(c, flags, seq, ack, flags.Has(craft.FlagSYN))
}

// stackSend sends one segment of c; a SYN carries MSS only.
func (p *Peer) stackSend(c *stackConn, flags craft.Flags, seq, ack uint32, mss bool) {
	c.tick++
	seg := craft.Segment{Src: p.cfg.Addr, Dst: netip.AddrFrom4(c.src), SrcPort: p.cfg.Port, DstPort: c.port,
		Seq: seq, Ack: ack, Flags: flags, Window: stackWindow, ID: uint16(c.tick), DF: true}
	if mss {
		seg.Options = []craft.Option{craft.MSS(1460)}
	}
	var b [128]byte
	p.send(b[:encode(&seg, b[:])], c.mac)
}

// stackRST sends <SEQ=seq><ACK=ack><CTL=RST(,ACK)> with a non-zero window.
func (p *Peer) stackRST(c *stackConn, seq, ack uint32, extra craft.Flags) {
	seg := craft.Segment{Src: p.cfg.Addr, Dst: netip.AddrFrom4(c.src), SrcPort: p.cfg.Port, DstPort: c.port,
		Seq: seq, Ack: ack, Flags: craft.FlagRST | extra, Window: 1024, ID: 1, DF: true}
	var b [128]byte
	p.send(b[:encode(&seg, b[:])], c.mac)
}
