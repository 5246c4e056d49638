package rawsock

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"

	"github.com/tcpwalk/tcpwalk/probe/rawsock/bpfasm"
)

// On an AF_INET6 raw socket the filter sees the packet from the upper-layer header on (the kernel has pulled the
// IPv6 header and any extension headers). The IPv6 header is still reachable at the negative offset SKF_NET_OFF
// (linux/filter.h: loads there are relative to the network header), which is how the filters read addresses.
const (
	skfNetOff = 0xfff00000 // SKF_NET_OFF, -0x100000 as a uint32
	ip6Src    = 8          // source address in the IPv6 header (RFC 8200 §3)
	ip6Dst    = 24         // destination address
	ip6Next   = 6          // next header
	ip6Len    = 40         // the fixed header

	protoICMPv6 = 58
)

// ICMPv6 error types that quote the offending packet (RFC 4443 §3).
const (
	icmp6DestUnreachable = 1
	icmp6PacketTooBig    = 2
	icmp6TimeExceeded    = 3
	icmp6ParamProblem    = 4
)

func (f Filter) validate6() error {
	if !f.Remote.IsValid() || !f.Remote.Addr().Is6() || f.Remote.Addr().Is4In6() {
		return fmt.Errorf("rawsock: filter remote %v is not an IPv6 prefix", f.Remote)
	}
	if f.LocalLo > f.LocalHi {
		return fmt.Errorf("rawsock: filter local port range %d-%d is empty", f.LocalLo, f.LocalHi)
	}
	return nil
}

// matchPrefix6 drops the packet unless the 16-byte address at the absolute offset off lies in pfx, comparing
// one 32-bit word at a time for as many words as the prefix covers. A /0 prefix emits nothing.
func matchPrefix6(p *bpfasm.Program, off uint32, pfx netip.Prefix) {
	a := pfx.Masked().Addr().As16()
	for w, left := 0, pfx.Bits(); left > 0; w, left = w+1, left-32 {
		p.Add(bpf.LoadAbsolute{Off: off + uint32(4*w), Size: 4})
		bits := min(left, 32)
		if bits < 32 {
			p.Add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(0) << (32 - bits)})
		}
		v := uint32(a[4*w])<<24 | uint32(a[4*w+1])<<16 | uint32(a[4*w+2])<<8 | uint32(a[4*w+3])
		p.JumpIf(bpf.JumpEqual, v, bpfasm.Next, drop)
	}
}

// tcp6Program is the Receiver6's filter. The packet starts at the TCP header.
func (f Filter) tcp6Program() ([]bpf.Instruction, error) {
	if err := f.validate6(); err != nil {
		return nil, err
	}
	var p bpfasm.Program
	matchPrefix6(&p, skfNetOff+ip6Src, f.Remote)
	p.Add(bpf.LoadConstant{Dst: bpf.RegX, Val: 0}) // portRange loads relative to X
	if f.RemotePort != 0 {
		p.Add(bpf.LoadAbsolute{Off: 0, Size: 2}) // TCP source port
		p.JumpIf(bpf.JumpEqual, uint32(f.RemotePort), bpfasm.Next, drop)
	}
	portRange(&p, 2, f.LocalLo, f.LocalHi) // TCP destination port
	p.Goto(accept)
	return finish(&p)
}

// icmp6Program is the ICMPv6Receiver's filter: ICMPv6 errors whose quoted IPv6 header (RFC 4443: as much of the
// packet as fits 1280 bytes) is directly followed by a TCP segment to f.Remote from a port in [LocalLo,
// LocalHi]. The packet starts at the ICMPv6 header.
func (f Filter) icmp6Program() ([]bpf.Instruction, error) {
	if err := f.validate6(); err != nil {
		return nil, err
	}
	var p bpfasm.Program
	p.Add(bpf.LoadAbsolute{Off: 0, Size: 1})
	p.JumpIf(bpf.JumpEqual, icmp6DestUnreachable, "quoted", bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, icmp6PacketTooBig, "quoted", bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, icmp6TimeExceeded, "quoted", bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, icmp6ParamProblem, "quoted", drop)
	p.Label("quoted")
	const q = 8 // the quoted IPv6 header follows the 8-byte ICMPv6 header
	p.Add(bpf.LoadAbsolute{Off: q + ip6Next, Size: 1})
	p.JumpIf(bpf.JumpEqual, protoTCP, bpfasm.Next, drop)
	matchPrefix6(&p, q+ip6Dst, f.Remote)
	p.Add(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	portRange(&p, q+ip6Len, f.LocalLo, f.LocalHi) // quoted TCP source port: ours
	if f.RemotePort != 0 {
		p.Add(bpf.LoadAbsolute{Off: q + ip6Len + 2, Size: 2}) // quoted TCP destination port
		p.JumpIf(bpf.JumpEqual, uint32(f.RemotePort), bpfasm.Next, drop)
	}
	p.Goto(accept)
	return finish(&p)
}
