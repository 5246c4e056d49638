package guard

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TablePrefix starts the name of every table Install makes.
const TablePrefix = "tcpwalk_"

// Config says which flows the guard covers.
type Config struct {
	Mark             uint32         // packets carrying this mark are ours: accepted before the drop rule; must be nonzero
	Remotes          []netip.Prefix // destinations covered (our targets), IPv4 or IPv6 or both
	LocalLo, LocalHi uint16         // our local source ports, inclusive
	NetNSFd          int            // 0 = current namespace; else a network namespace fd to install in
	// PerFlow makes the guard cover only the flows added with Add, not every
	// port of LocalLo-LocalHi towards Remotes: a local client that happens to
	// use a port of that range keeps its RSTs. Remotes and the port range
	// then only say what a Watch made from the same Config looks at.
	PerFlow bool
}

func (c *Config) validate() error {
	if c.Mark == 0 {
		return errors.New("guard: mark 0 cannot tell our packets from the kernel's; use a nonzero mark")
	}
	if len(c.Remotes) == 0 {
		return errors.New("guard: no remotes to cover")
	}
	if err := checkRemotes("guard", c.Remotes); err != nil {
		return err
	}
	if c.LocalLo > c.LocalHi {
		return fmt.Errorf("guard: local port range %d-%d is empty", c.LocalLo, c.LocalHi)
	}
	return nil
}

// checkRemotes accepts IPv4 and IPv6 prefixes, not IPv4-mapped IPv6 ones
// (::ffff:198.18.0.2 is on the wire an IPv4 address, which the ip6 rule
// would never see).
func checkRemotes(who string, pfxs []netip.Prefix) error {
	for _, p := range pfxs {
		switch {
		case !p.IsValid():
			return fmt.Errorf("%s: remote %v is not an IP prefix", who, p)
		case p.Addr().Is4In6():
			return fmt.Errorf("%s: remote %v is an IPv4-mapped IPv6 prefix; give the IPv4 prefix %v/%d instead", who, p, p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
	}
	return nil
}

// byFamily splits prefixes into the IPv4 and the IPv6 ones.
func byFamily(pfxs []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range pfxs {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// Guard is an installed RST guard. Its methods are safe for concurrent use.
type Guard struct {
	mu     sync.Mutex
	conn   *nftables.Conn // lasting: its netlink socket owns the table
	table  *nftables.Table
	chain  *nftables.Chain
	closed bool
	// The per-flow sets (Config.PerFlow): 4-tuples, and listening flows
	// (remote address and local port, any remote port), for each family.
	flows4, flows6, listen4, listen6 *nftables.Set
}

// installHint is appended to every Install failure: what is needed, and the way out.
const installHint = "needs CAP_NET_ADMIN and nf_tables; run as root, or pass --no-rst-guard and expect the local kernel to reset remote replies"

// Install adds, in one transaction, the table "tcpwalk_<pid>_<random>" (family inet, owner flag) with
//
//	chain output { type filter hook output priority 0; policy accept;
//		meta mark MARK accept
//		meta nfproto ipv4 ip daddr {IPv4 Remotes} tcp sport LocalLo-LocalHi tcp flags & rst == rst counter drop
//		meta nfproto ipv6 ip6 daddr {IPv6 Remotes} tcp sport LocalLo-LocalHi tcp flags & rst == rst counter drop
//	}
//
// (a rule only for a family Remotes has; meta l4proto and nftables' transport
// header offset skip IPv6 extension headers, so the ip6 rule sees a RST
// behind them too),
//
// or, with PerFlow, four drop rules in place of the last, one per set that Add and Remove fill:
//
//	tcp flags & rst == rst ip daddr . tcp dport . tcp sport @flows4 counter drop
//	tcp flags & rst == rst ip daddr . tcp sport @listen4 counter drop
//	(and the same for ip6 with @flows6 and @listen6)
//
// Several tcpwalk processes each get their own table. The netlink connection stays open until Close; if the
// process dies first, the kernel removes the table.
func Install(cfg Config) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	name, err := tableName()
	if err != nil {
		return nil, fmt.Errorf("guard: install nftables RST guard: %w", err)
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if cfg.NetNSFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(cfg.NetNSFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("guard: install nftables RST guard: open netlink: %w (%s)", err, installHint)
	}
	g := &Guard{conn: c}
	if err := g.add(name, &cfg); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("guard: install nftables RST guard: %w (%s)", err, installHint)
	}
	return g, nil
}

func tableName() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random table name: %w", err)
	}
	return fmt.Sprintf("%s%d_%s", TablePrefix, os.Getpid(), hex.EncodeToString(b[:])), nil
}

func (g *Guard) add(name string, cfg *Config) error {
	c := g.conn
	g.table = c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet, Flags: nftables.TableFlagOwner})
	accept := nftables.ChainPolicyAccept
	g.chain = c.AddChain(&nftables.Chain{
		Name:     "output",
		Table:    g.table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &accept,
	})
	c.AddRule(&nftables.Rule{Table: g.table, Chain: g.chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(cfg.Mark)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})

	if cfg.PerFlow {
		if err := g.addFlowRules(); err != nil {
			return err
		}
		return c.Flush()
	}
	v4, v6 := byFamily(cfg.Remotes)
	for _, f := range []struct {
		pfxs  []netip.Prefix
		proto byte
		key   nftables.SetDatatype
		daddr uint32 // offset of the destination address in the network header
	}{
		{v4, unix.NFPROTO_IPV4, nftables.TypeIPAddr, 16},
		{v6, unix.NFPROTO_IPV6, nftables.TypeIP6Addr, 24},
	} {
		if len(f.pfxs) == 0 {
			continue
		}
		if err := g.addRangeRule(cfg, f.pfxs, f.proto, f.key, f.daddr); err != nil {
			return err
		}
	}
	return c.Flush()
}

// addRangeRule adds the drop rule of a guard without PerFlow for the
// prefixes of one family.
func (g *Guard) addRangeRule(cfg *Config, pfxs []netip.Prefix, proto byte, key nftables.SetDatatype, daddr uint32) error {
	c := g.conn
	drop := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	if elems := intervals(pfxs); elems != nil {
		set := &nftables.Set{
			Table:     g.table,
			Anonymous: true,
			Constant:  true,
			Interval:  true,
			KeyType:   key,
		}
		if err := c.AddSet(set, elems); err != nil {
			return fmt.Errorf("add remote address set: %w", err)
		}
		drop = append(drop,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: key.Bytes}, // ip/ip6 daddr
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		)
	}
	drop = append(drop,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}, // tcp sport
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(cfg.LocalLo)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(cfg.LocalHi)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // tcp flags
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{rstFlag}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{rstFlag}},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
	c.AddRule(&nftables.Rule{Table: g.table, Chain: g.chain, Exprs: drop})
	return nil
}

const rstFlag = 0x04 // RFC 9293 §3.1

// Registers of a concatenated lookup key, as nft lays it out: 32-bit
// registers from NFT_REG32_00 (8, which the 128-bit register 1 spans), each
// field padded to 4 bytes. An IPv4 address fills one, an IPv6 address four.
const (
	reg32First = 8
	regKey     = 1 // the lookup's source: the 128-bit register that starts at NFT_REG32_00
)

// addFlowRules adds the per-flow sets and their drop rules (Config.PerFlow).
func (g *Guard) addFlowRules() error {
	c := g.conn
	mk := func(name string, types ...nftables.SetDatatype) (*nftables.Set, error) {
		s := &nftables.Set{Table: g.table, Name: name, KeyType: nftables.MustConcatSetType(types...), Concatenation: true}
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("add set %s: %w", name, err)
		}
		return s, nil
	}
	var err error
	port := nftables.TypeInetService
	if g.flows4, err = mk("flows4", nftables.TypeIPAddr, port, port); err != nil {
		return err
	}
	if g.listen4, err = mk("listen4", nftables.TypeIPAddr, port); err != nil {
		return err
	}
	if g.flows6, err = mk("flows6", nftables.TypeIP6Addr, port, port); err != nil {
		return err
	}
	if g.listen6, err = mk("listen6", nftables.TypeIP6Addr, port); err != nil {
		return err
	}
	for _, r := range []struct {
		set    *nftables.Set
		proto  byte
		daddr  uint32 // offset of the destination address in the network header
		alen   uint32
		dports bool
	}{
		{g.flows4, unix.NFPROTO_IPV4, 16, 4, true},
		{g.listen4, unix.NFPROTO_IPV4, 16, 4, false},
		{g.flows6, unix.NFPROTO_IPV6, 24, 16, true},
		{g.listen6, unix.NFPROTO_IPV6, 24, 16, false},
	} {
		next := uint32(reg32First) + r.alen/4 // the register after the address
		e := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.proto}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1}, // tcp flags
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{rstFlag}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{rstFlag}},
			&expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: r.daddr, Len: r.alen},
		}
		if r.dports {
			e = append(e, &expr.Payload{DestRegister: next, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}) // tcp dport
			next++
		}
		e = append(e,
			&expr.Payload{DestRegister: next, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}, // tcp sport
			&expr.Lookup{SourceRegister: regKey, SetName: r.set.Name, SetID: r.set.ID},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)
		c.AddRule(&nftables.Rule{Table: g.table, Chain: g.chain, Exprs: e})
	}
	return nil
}

// flowKey is the set and the element of one flow: remote address, remote
// port (unless the flow listens: rport 0) and local port, each field padded
// to 4 bytes as a concatenated key is.
func (g *Guard) flowKey(remote netip.AddrPort, localPort uint16) (*nftables.Set, []byte, error) {
	a := remote.Addr().Unmap()
	var set *nftables.Set
	switch {
	case g.flows4 == nil:
		return nil, nil, fmt.Errorf("guard: %s is not a per-flow guard (Config.PerFlow)", g.table.Name)
	case a.Is4() && remote.Port() != 0:
		set = g.flows4
	case a.Is4():
		set = g.listen4
	case a.Is6() && remote.Port() != 0:
		set = g.flows6
	case a.Is6():
		set = g.listen6
	default:
		return nil, nil, fmt.Errorf("guard: flow to %v: not an IP address", remote)
	}
	k := a.AsSlice()
	if remote.Port() != 0 {
		k = binary.BigEndian.AppendUint16(k, remote.Port())
		k = append(k, 0, 0)
	}
	k = binary.BigEndian.AppendUint16(k, localPort)
	return set, append(k, 0, 0), nil
}

// Add covers one flow: the local kernel's RSTs from localPort to remote are
// dropped until Remove. A remote port 0 covers every port of the remote
// address (a flow that waits for the remote to connect). It needs a guard
// installed with PerFlow; it costs one netlink round trip.
func (g *Guard) Add(remote netip.AddrPort, localPort uint16) error {
	return g.change(remote, localPort, true)
}

// Remove stops covering a flow that Add covered.
func (g *Guard) Remove(remote netip.AddrPort, localPort uint16) error {
	return g.change(remote, localPort, false)
}

func (g *Guard) change(remote netip.AddrPort, localPort uint16, add bool) error {
	set, key, err := g.flowKey(remote, localPort)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	what := "cover"
	if !add {
		what = "uncover"
	}
	if g.closed {
		return fmt.Errorf("guard: %s flow %d -> %v: guard %s is closed", what, localPort, remote, g.table.Name)
	}
	elems := []nftables.SetElement{{Key: key}}
	if add {
		err = g.conn.SetAddElements(set, elems)
	} else {
		err = g.conn.SetDeleteElements(set, elems)
	}
	if err == nil {
		err = g.conn.Flush()
	}
	if err != nil {
		return fmt.Errorf("guard: %s flow %d -> %v in %s: %w", what, localPort, remote, g.table.Name, err)
	}
	return nil
}

// intervals turns prefixes of one family into the elements of an nftables interval set, as nft does: each range
// [a, b] is a start element a and an end element b+1, with an end element at the family's first address (0.0.0.0
// or ::) first unless a range starts there, and none after a range that ends at the family's last address.
// Overlapping and adjacent prefixes are merged. It returns nil when a prefix covers every address, which needs no
// set at all.
func intervals(pfxs []netip.Prefix) []nftables.SetElement {
	type span struct{ lo, hi netip.Addr } // hi inclusive
	spans := make([]span, 0, len(pfxs))
	for _, p := range pfxs {
		if p.Bits() == 0 {
			return nil
		}
		p = p.Masked()
		spans = append(spans, span{p.Addr(), lastAddr(p)})
	}
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span) int { return a.lo.Compare(b.lo) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if n := last.hi.Next(); !n.IsValid() || s.lo.Compare(n) <= 0 {
			if s.hi.Compare(last.hi) > 0 {
				last.hi = s.hi
			}
			continue
		}
		merged = append(merged, s)
	}
	zero := netip.IPv4Unspecified()
	if merged[0].lo.Is6() {
		zero = netip.IPv6Unspecified()
	}
	var elems []nftables.SetElement
	if merged[0].lo != zero {
		elems = append(elems, nftables.SetElement{Key: zero.AsSlice(), IntervalEnd: true})
	}
	for _, s := range merged {
		elems = append(elems, nftables.SetElement{Key: s.lo.AsSlice()})
		if n := s.hi.Next(); n.IsValid() {
			elems = append(elems, nftables.SetElement{Key: n.AsSlice(), IntervalEnd: true})
		}
	}
	return elems
}

// lastAddr is the last address of the (masked) prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Table returns the name of the guard's nftables table.
func (g *Guard) Table() string { return g.table.Name }

// Dropped reads the drop rules' counters: how many local RSTs the guard has stopped.
func (g *Guard) Dropped() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, fmt.Errorf("guard: read counter of %s: guard is closed", g.table.Name)
	}
	rules, err := g.conn.GetRules(g.table, g.chain)
	if err != nil {
		return 0, fmt.Errorf("guard: read counter of %s: %w", g.table.Name, err)
	}
	var n uint64
	found := false
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				n += c.Packets
				found = true
			}
		}
	}
	if found {
		return n, nil
	}
	return 0, fmt.Errorf("guard: read counter of %s: no counter in chain output (was the table changed?)", g.table.Name)
}

// Close deletes the table and closes the netlink connection. It is idempotent. Even if the delete fails, closing
// the owning connection makes the kernel remove the table.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	g.conn.DelTable(g.table)
	err := g.conn.Flush()
	if cerr := g.conn.CloseLasting(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("guard: remove table %s: %w", g.table.Name, err)
	}
	return nil
}

// Tables lists the tcpwalk tables (family inet, or ip as older versions made them; names starting with TablePrefix) in the namespace netnsFd (0 = the
// current one). Tests and `lab down` use it to find leftovers.
func Tables(netnsFd int) ([]string, error) {
	var opts []nftables.ConnOption
	if netnsFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("guard: list tables: %w", err)
	}
	var ts []*nftables.Table
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyIPv4} {
		t, err := c.ListTablesOfFamily(fam)
		if err != nil {
			return nil, fmt.Errorf("guard: list tables: %w (needs CAP_NET_ADMIN)", err)
		}
		ts = append(ts, t...)
	}
	var names []string
	for _, t := range ts {
		if strings.HasPrefix(t.Name, TablePrefix) {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}
