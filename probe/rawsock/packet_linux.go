package rawsock

import (
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// PacketReceiver reads IPv4 packets from an AF_PACKET SOCK_DGRAM socket on every interface of its namespace, in
// both directions. Unlike a raw IP socket it taps at the device, after netfilter OUTPUT for outgoing packets and
// before netfilter INPUT for incoming ones. Each packet starts at the IPv4 header.
type PacketReceiver struct {
	c *conn
}

// NewPacketReceiver opens the socket with prog as its kernel filter. prog sees the packet from the IPv4 header
// on and may use the ancillary loads (bpf.LoadExtension) ExtType for the packet type (4 = PACKET_OUTGOING) and
// ExtMark for the skb mark.
func NewPacketReceiver(prog []bpf.Instruction) (*PacketReceiver, error) {
	return newPacketReceiver(unix.ETH_P_IP, prog)
}

// NewPacketReceiver6 is NewPacketReceiver for IPv6 packets: each starts at the IPv6 header, as on the wire
// (extension headers included; nothing is rebuilt, unlike a Receiver6's).
func NewPacketReceiver6(prog []bpf.Instruction) (*PacketReceiver, error) {
	return newPacketReceiver(unix.ETH_P_IPV6, prog)
}

func newPacketReceiver(ethProto uint32, prog []bpf.Instruction) (*PacketReceiver, error) {
	// Outgoing packets are only handed to ETH_P_ALL taps (dev_queue_xmit_nit walks ptype_all), so the socket takes
	// every protocol and the filter first keeps one (SKF_AD_PROTOCOL is skb->protocol in host order).
	all := make([]bpf.Instruction, 0, len(prog)+3)
	all = append(all,
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ethProto, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	)
	all = append(all, prog...)
	c, err := newConn("packet", unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)), all)
	if err != nil {
		return nil, err
	}
	return &PacketReceiver{c: c}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Read reads one packet into buf; see Receiver.Read.
func (r *PacketReceiver) Read(buf []byte) (n int, ts time.Time, err error) { return r.c.read(buf) }

// SetReadDeadline sets when a blocked or future Read gives up; the zero time means never.
func (r *PacketReceiver) SetReadDeadline(t time.Time) error { return r.c.setReadDeadline(t) }

// Close closes the socket and unblocks a pending Read. It is idempotent.
func (r *PacketReceiver) Close() error { return r.c.close() }
