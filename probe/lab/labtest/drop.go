package labtest

import (
	"encoding/binary"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/lab"
)

// DropFirst makes the lab lose segments on purpose: the first n TCP
// segments the target sends to port dport whose flags byte is exactly flags
// (0x12 for SYN,ACK), dropped at the target's egress (at the prober's ingress, the
// prober's packet socket would still see it). A netdev table in the target
// namespace does it: `meta l4proto tcp tcp dport
// DPORT @th,104,8 == FLAGS numgen inc mod 2^31 < N drop`; the numgen
// counter only counts the segments that match before it, so the first n
// are the ones it drops. The
// table goes with the lab's namespaces.
func DropFirst(t testing.TB, l *lab.Lab, dport uint16, flags byte, n int) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(l.Target.Fd()))
	if err != nil {
		t.Fatalf("labtest: drop first: open netlink: %v", err)
	}
	defer c.CloseLasting()
	tb := c.AddTable(&nftables.Table{Name: "tcpwalk-test-drop", Family: nftables.TableFamilyNetdev})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "out", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookEgress, Priority: nftables.ChainPriorityFilter, Device: l.TargetIf, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(dport >> 8), byte(dport)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{flags}},
		&expr.Numgen{Register: 1, Modulus: 1 << 31, Type: unix.NFT_NG_INCREMENTAL},
		// numgen leaves a host-order number; cmp compares bytes.
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(n))},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("labtest: drop first: add table in %s: %v", l.Target.Name, err)
	}
}
