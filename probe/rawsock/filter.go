package rawsock

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"

	"github.com/tcpwalk/tcpwalk/probe/rawsock/bpfasm"
)

// Filter selects what reaches user space. It is compiled to classic BPF and runs in the kernel, so segments of
// other flows are never copied to us.
type Filter struct {
	Remote           netip.Prefix // source address of replies (a /32 or /128 for one host; a wider prefix for scans); IPv6 for Receiver6 and ICMPv6Receiver
	RemotePort       uint16       // source port of replies; 0 = any
	LocalLo, LocalHi uint16       // our local port range (destination port of replies), inclusive
}

func (f Filter) validate() error {
	if !f.Remote.IsValid() || !f.Remote.Addr().Is4() {
		return fmt.Errorf("rawsock: filter remote %v is not an IPv4 prefix", f.Remote)
	}
	if f.LocalLo > f.LocalHi {
		return fmt.Errorf("rawsock: filter local port range %d-%d is empty", f.LocalLo, f.LocalHi)
	}
	return nil
}

// Offsets into an IPv4 header (RFC 791 §3.1) and TCP header (RFC 9293 §3.1) used by the filters.
const (
	ipFlagsFrag = 6  // flags and fragment offset
	ipProto     = 9  // protocol
	ipSrc       = 12 // source address
	ipDst       = 16 // destination address
	fragOffMask = 0x1fff

	protoICMP = 1
	protoTCP  = 6

	// snapLen is what an accepting filter keeps: any IPv4 packet whole.
	snapLen = 1 << 16
)

// ICMP error types that quote the offending datagram (RFC 792).
const (
	icmpDestUnreachable = 3
	icmpTimeExceeded    = 11
	icmpParamProblem    = 12
)

const (
	accept = "accept"
	drop   = "drop"
)

// matchPrefix loads the 4-byte address at the absolute (indirect with X) offset off and drops the packet unless
// it lies in pfx. A /0 prefix emits nothing.
func matchPrefix(p *bpfasm.Program, indirect bool, off uint32, pfx netip.Prefix) {
	bits := pfx.Bits()
	if bits == 0 {
		return
	}
	if indirect {
		p.Add(bpf.LoadIndirect{Off: off, Size: 4})
	} else {
		p.Add(bpf.LoadAbsolute{Off: off, Size: 4})
	}
	mask := ^uint32(0) << (32 - bits)
	if bits < 32 {
		p.Add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
	}
	a := pfx.Masked().Addr().As4()
	net := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	p.JumpIf(bpf.JumpEqual, net, bpfasm.Next, drop)
}

// portRange drops the packet unless the 2-byte port at X+off lies in [lo, hi].
func portRange(p *bpfasm.Program, off uint32, lo, hi uint16) {
	p.Add(bpf.LoadIndirect{Off: off, Size: 2})
	if lo > 0 {
		p.JumpIf(bpf.JumpGreaterOrEqual, uint32(lo), bpfasm.Next, drop)
	}
	if hi < 0xffff {
		p.JumpIf(bpf.JumpGreaterThan, uint32(hi), drop, bpfasm.Next)
	}
}

// finish adds the accept and drop returns.
func finish(p *bpfasm.Program) ([]bpf.Instruction, error) {
	p.Label(accept)
	p.Add(bpf.RetConstant{Val: snapLen})
	p.Label(drop)
	p.Add(bpf.RetConstant{Val: 0})
	return p.Instructions()
}

// tcpProgram is the Receiver's filter. The packet starts at the IPv4 header.
func (f Filter) tcpProgram() ([]bpf.Instruction, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	var p bpfasm.Program
	p.Add(bpf.LoadAbsolute{Off: ipProto, Size: 1})
	p.JumpIf(bpf.JumpEqual, protoTCP, bpfasm.Next, drop)
	// Only a first fragment (offset 0) carries the TCP header.
	p.Add(bpf.LoadAbsolute{Off: ipFlagsFrag, Size: 2})
	p.JumpIf(bpf.JumpBitsSet, fragOffMask, drop, bpfasm.Next)
	matchPrefix(&p, false, ipSrc, f.Remote)
	p.Add(bpf.LoadMemShift{Off: 0}) // X = IPv4 header length
	if f.RemotePort != 0 {
		p.Add(bpf.LoadIndirect{Off: 0, Size: 2}) // TCP source port
		p.JumpIf(bpf.JumpEqual, uint32(f.RemotePort), bpfasm.Next, drop)
	}
	portRange(&p, 2, f.LocalLo, f.LocalHi) // TCP destination port
	p.Goto(accept)
	return finish(&p)
}

// icmpProgram is the ICMPReceiver's filter: ICMP errors whose quoted IPv4 header (RFC 792: the header plus at
// least 8 bytes of the datagram) is a TCP segment to f.Remote from a port in [LocalLo, LocalHi].
func (f Filter) icmpProgram() ([]bpf.Instruction, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	var p bpfasm.Program
	p.Add(bpf.LoadAbsolute{Off: ipProto, Size: 1})
	p.JumpIf(bpf.JumpEqual, protoICMP, bpfasm.Next, drop)
	p.Add(bpf.LoadAbsolute{Off: ipFlagsFrag, Size: 2})
	p.JumpIf(bpf.JumpBitsSet, fragOffMask, drop, bpfasm.Next)
	p.Add(bpf.LoadMemShift{Off: 0}) // X = outer IPv4 header length
	p.Add(bpf.LoadIndirect{Off: 0, Size: 1})
	p.JumpIf(bpf.JumpEqual, icmpDestUnreachable, "quoted", bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, icmpTimeExceeded, "quoted", bpfasm.Next)
	p.JumpIf(bpf.JumpEqual, icmpParamProblem, "quoted", drop)
	p.Label("quoted")
	const q = 8 // the quoted IPv4 header follows the 8-byte ICMP header
	p.Add(bpf.LoadIndirect{Off: q + ipProto, Size: 1})
	p.JumpIf(bpf.JumpEqual, protoTCP, bpfasm.Next, drop)
	matchPrefix(&p, true, q+ipDst, f.Remote)
	// X += quoted header length: X now points 8 bytes before the quoted TCP header.
	p.Add(
		bpf.LoadIndirect{Off: q, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.TAX{},
	)
	portRange(&p, q+0, f.LocalLo, f.LocalHi) // quoted TCP source port: ours
	if f.RemotePort != 0 {
		p.Add(bpf.LoadIndirect{Off: q + 2, Size: 2}) // quoted TCP destination port
		p.JumpIf(bpf.JumpEqual, uint32(f.RemotePort), bpfasm.Next, drop)
	}
	p.Goto(accept)
	return finish(&p)
}
