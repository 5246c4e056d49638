package lab

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// ImpairTablePrefix starts the name of the nftables tables Impair makes; the
// lab's prefix follows, so two labs never share a table.
const ImpairTablePrefix = "tcpwalk_impair_"

// dupMark marks the copy of a duplicated segment, so that the copy, which
// passes the same egress hook again, is not duplicated in turn. The original
// gets its own mark back (tcpwalk's RST guard and leak watch tell its
// crafted segments by their mark), and the leak watch, which taps after
// this hook, knows copies by this mark (guard.CopyMark). The veth clears
// the mark when the segment crosses into the other namespace
// (skb_scrub_packet), so it reaches neither end's sockets.
const dupMark = 0x7477_6475 // "twdu", = guard.CopyMark (a test checks; guard's tests import lab)

// ImpairTable returns the name of the impairment table of the lab with prefix
// (the same name in both namespaces).
func ImpairTable(prefix string) string { return ImpairTablePrefix + prefix }

// Impair makes the path between prober and target lossy and noisy for TCP,
// with nftables in the kernel (there is no netem here): each TCP segment is
// dropped with probability loss percent in each direction, and duplicated
// with probability dup percent in each direction. Other traffic (ARP) is left
// alone, so the link itself stays up. Impair replaces any impairment set
// before; Impair(0, 0) is ClearImpairment.
//
// The rules live in netdev tables named ImpairTable(l.Prefix), one in each
// namespace, on that namespace's veth end:
//
//	chain in  { type filter hook ingress device IF priority 0;
//	  meta l4proto tcp numgen random mod 100 < LOSS drop }
//	chain out { type filter hook egress device IF priority 0;
//	  meta l4proto tcp meta mark != MARK numgen random mod 100 < DUP
//	    meta mark set MARK dup to IF meta mark set OLD }
//
// A segment is duplicated as it leaves its sender and each copy may then be
// lost as it arrives, as on a wire; the copy carries MARK, the original its
// own mark again (OLD, kept in a register). Loss sits on the receiving end's ingress
// on purpose: a drop in the sender's own egress hook is reported to the
// sending socket as a local transmit error (NET_XMIT_DROP), and Linux treats
// that unlike a loss on the path; it drops a half-open connection whose
// SYN-ACK retransmission fails to go out (reqsk_timer_handler), so the
// target would stop retransmitting after one "lost" SYN-ACK.
//
// The tables are ordinary (not owner) tables, so an impairment set by
// `tcpwalk lab up --loss` outlives that process; they go with the lab's
// namespaces (Close, Destroy) or with ClearImpairment.
func (l *Lab) Impair(loss, dup int) error {
	if loss < 0 || loss > 100 || dup < 0 || dup > 100 {
		return fmt.Errorf("lab: impair %q: loss %d%% and dup %d%% must each be 0 to 100", l.Prefix, loss, dup)
	}
	if err := l.ClearImpairment(); err != nil {
		return err
	}
	if loss == 0 && dup == 0 {
		return nil
	}
	for _, end := range []struct {
		ns     *netns.NS
		ifname string
	}{{l.Target, l.TargetIf}, {l.Prober, l.ProberIf}} {
		if err := addImpairTable(end.ns, end.ifname, ImpairTable(l.Prefix), loss, dup); err != nil {
			err = fmt.Errorf("lab: impair %q: %w (needs CAP_NET_ADMIN and nf_tables with netdev egress hooks, Linux 5.16 or later)", l.Prefix, err)
			return errors.Join(err, l.ClearImpairment())
		}
	}
	return nil
}

// ClearImpairment removes the impairment tables from both namespaces; a
// missing table is not an error.
func (l *Lab) ClearImpairment() error {
	var errs []error
	for _, ns := range []*netns.NS{l.Target, l.Prober} {
		if err := delImpairTable(ns, ImpairTable(l.Prefix)); err != nil {
			errs = append(errs, fmt.Errorf("lab: clear impairment of %q in %s: %w", l.Prefix, ns.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Impairment reads back the loss and dup percentages in force (0, 0 when the
// path is clean), for `lab status` and tests.
func (l *Lab) Impairment() (loss, dup int, err error) {
	c, err := nftables.New(nftables.WithNetNSFd(l.Target.Fd()))
	if err != nil {
		return 0, 0, fmt.Errorf("lab: read impairment of %q: open netlink: %w", l.Prefix, err)
	}
	defer c.CloseLasting()
	t := &nftables.Table{Name: ImpairTable(l.Prefix), Family: nftables.TableFamilyNetdev}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return 0, 0, fmt.Errorf("lab: read impairment of %q: list chains: %w", l.Prefix, err)
	}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return 0, 0, fmt.Errorf("lab: read impairment of %q: list rules: %w", l.Prefix, err)
		}
		for _, r := range rules {
			pct, isDup := ruleRate(r)
			if isDup {
				dup = pct
			} else {
				loss = pct
			}
		}
	}
	return loss, dup, nil
}

// ruleRate reads the percentage of an impairment rule and whether it
// duplicates (else it drops). The nftables package does not decode every
// expression it can encode (byteorder and dup come back missing), so the
// rate is the first comparison after numgen, and a rule that sets the mark
// is the dup rule.
func ruleRate(r *nftables.Rule) (pct int, isDup bool) {
	afterNumgen := false
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Numgen:
			afterNumgen = true
		case *expr.Cmp:
			if afterNumgen && len(e.Data) == 4 {
				pct, afterNumgen = int(binaryutil.BigEndian.Uint32(e.Data)), false
			}
		case *expr.Meta:
			if e.Key == expr.MetaKeyMARK && e.SourceRegister {
				isDup = true
			}
		}
	}
	return pct, isDup
}

// addImpairTable adds, in one transaction, the table name with an ingress
// chain that drops (when loss > 0) and an egress chain that duplicates (when
// dup > 0) on dev in ns.
func addImpairTable(ns *netns.NS, dev, name string, loss, dup int) error {
	ifindex, err := linkIndex(ns, dev)
	if err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return fmt.Errorf("open netlink in %s: %w", ns.Name, err)
	}
	defer c.CloseLasting()
	t := c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyNetdev})
	accept := nftables.ChainPolicyAccept
	chain := func(cname string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: cname, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Device: dev, Policy: &accept})
	}
	if loss > 0 {
		c.AddRule(&nftables.Rule{Table: t, Chain: chain("in", nftables.ChainHookIngress), Exprs: dropRule(loss)})
	}
	if dup > 0 {
		c.AddRule(&nftables.Rule{Table: t, Chain: chain("out", nftables.ChainHookEgress), Exprs: dupRule(dup, ifindex)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add table netdev %s on %s in %s: %w", name, dev, ns.Name, err)
	}
	return nil
}

// isTCP is `meta l4proto tcp`: it does not match non-IP frames (ARP).
func isTCP() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// chance is `numgen random mod 100 < pct`. numgen leaves a host-order number
// in the register and cmp compares bytes, so, as nft does, the number is
// turned to network order before the comparison.
func chance(pct int) []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(uint32(pct))},
	}
}

func dropRule(pct int) []expr.Any {
	e := append(isTCP(), chance(pct)...)
	return append(e, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
}

// dupRule is `meta l4proto tcp meta mark != MARK numgen random mod 100 <
// PCT meta mark set MARK dup to IF meta mark set OLD`: the original's mark
// is kept in register 2 across the copy (dup transmits the copy at once)
// and put back after it.
func dupRule(pct, ifindex int) []expr.Any {
	e := append(isTCP(),
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 2},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 2, Data: binaryutil.NativeEndian.PutUint32(dupMark)},
	)
	e = append(e, chance(pct)...)
	return append(e,
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(dupMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(ifindex))},
		&expr.Dup{RegDev: 1, IsRegDevSet: true},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 2},
	)
}

// delImpairTable deletes the table name in ns if it exists.
func delImpairTable(ns *netns.NS, name string) error {
	if ns == nil || ns.Fd() < 0 {
		return nil
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return fmt.Errorf("list netdev tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("delete table netdev %s: %w", name, err)
			}
		}
	}
	return nil
}

// linkIndex returns the interface index of name in ns.
func linkIndex(ns *netns.NS, name string) (int, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return 0, fmt.Errorf("open rtnetlink in %s: %w", ns.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("find %s in %s: %w", name, ns.Name, err)
	}
	return link.Attrs().Index, nil
}
