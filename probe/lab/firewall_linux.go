package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Firewall names the ruleset a routed lab's router applies to what it
// forwards (nftables, hook forward). Every profile but FirewallV6Open is
// written once for both families, in a table of family inet, so IPv6 gets the
// same policy as IPv4 (RFC 7123 §3: native IPv6 on a network whose controls
// cover only IPv4 evades them); FirewallV6Open is the classic hole of a
// dual-stack router, an ip table that IPv6 never meets. The rules are documented by
// [Firewall.Rules], stored as rule comments in the kernel, and read back by
// [ReadFirewall].
type Firewall string

// Firewall profiles.
const (
	// FirewallNone forwards everything (an empty chain, policy accept).
	FirewallNone Firewall = "none"
	// FirewallStateless is a port filter without connection tracking:
	// TCP to or from the allowed ports passes whatever its flags.
	FirewallStateless Firewall = "stateless"
	// FirewallStateful follows connections (conntrack): established and
	// related pass, invalid is dropped, new connections only as a bare SYN
	// to an allowed port; everything else is dropped.
	FirewallStateful Firewall = "stateful"
	// FirewallReject is FirewallStateful that answers instead of dropping:
	// invalid segments get ICMP administratively prohibited, other
	// refused TCP a RST the router sends in the target's name.
	FirewallReject Firewall = "reject"
	// FirewallClamp forwards everything and lowers the MSS option of every
	// SYN to ClampMSS (MSS clamping, as routers do for PPPoE or tunnels).
	FirewallClamp Firewall = "clamp"
	// FirewallSynproxy is FirewallStateful with a SYN proxy in front of the
	// allowed ports (nftables synproxy, as used against SYN floods): the
	// router answers a SYN itself with a SYN cookie, and only when the
	// client's ACK proves the cookie does it open a connection to the
	// target in the client's name, translating the target's sequence
	// numbers from then on. SYNs to the allowed ports skip conntrack (notrack
	// in a prerouting chain of priority raw), conntrack's loose pickup is
	// off (nf_conntrack_tcp_loose=0) so that the client's ACK is invalid
	// and reaches synproxy, and the router has tcp_syncookies and
	// tcp_timestamps on. Over IPv6 the kernel's synproxy checks the TCP
	// checksum with IPv4's pseudo-header (nft_synproxy_do_eval calls
	// nf_ip_checksum for both families), so it drops a SYN whose checksum
	// is complete (tcpwalk's raw SYNs) and proxies only those whose
	// checksum is left to offload (a kernel socket's, over veth).
	FirewallSynproxy Firewall = "synproxy"
	// FirewallLoose is a stateful ruleset with a common mistake: `ct state
	// new accept` on the allowed ports without a SYN match. Conntrack's
	// loose pickup (nf_conntrack_tcp_loose=1, the default) makes a new entry
	// from a mid-stream ACK, so an ACK without a connection passes.
	FirewallLoose Firewall = "loose"
	// FirewallV6Open is FirewallStateful written in a table of family ip
	// (IPv4 only), where an inet one was meant: IPv4 is filtered strictly,
	// IPv6 is forwarded unfiltered (the classic dual-stack mistake:
	// iptables rules without ip6tables twins, or an ip6tables policy
	// ACCEPT). `tcpwalk firewall HOST4:PORT HOST6:PORT` reports it as a
	// v4/v6 difference.
	FirewallV6Open Firewall = "v6-open"
)

// Numbers the firewall profiles use.
const (
	// FirewallPortLo and FirewallPortHi bound the TCP ports the filtering
	// profiles allow: all the lab servers' ports.
	FirewallPortLo = 7000
	FirewallPortHi = 7010
	// PortBlocked is a port outside the allowed range: a filtering
	// firewall refuses connections to it. Nothing listens there.
	PortBlocked = 7099
	// ClampMSS is the MSS FirewallClamp writes into SYNs that offer more.
	ClampMSS = 1000
	// SynproxyMSS and SynproxyWscale are what FirewallSynproxy's SYN-ACK
	// offers (it also offers SACK and timestamps).
	SynproxyMSS    = 1460
	SynproxyWscale = 7
	// FirewallTable is the nftables table (family inet, or ip for
	// FirewallV6Open) of a router's rules; its one forward chain is named
	// after the profile.
	FirewallTable = "tcpwalk_lab"
)

// Firewalls lists the profiles, for help and errors.
func Firewalls() []Firewall {
	return []Firewall{FirewallNone, FirewallStateless, FirewallStateful, FirewallReject, FirewallClamp, FirewallSynproxy, FirewallLoose, FirewallV6Open}
}

// Family is the nftables family of f's table: "inet" (both IPv4 and IPv6)
// for every profile but FirewallV6Open's "ip".
func (f Firewall) Family() string {
	if f == FirewallV6Open {
		return "ip"
	}
	return "inet"
}

// tableFamily is Family for the nftables library.
func (f Firewall) tableFamily() nftables.TableFamily {
	if f == FirewallV6Open {
		return nftables.TableFamilyIPv4
	}
	return nftables.TableFamilyINet
}

// tableFamilies are the families a router's table may have: where
// ReadFirewall looks and RemoveFirewall removes (ip also for a lab made by
// a tcpwalk whose tables were all ip).
var tableFamilies = []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyIPv4}

// ParseFirewall reads a profile name.
func ParseFirewall(s string) (Firewall, error) {
	for _, f := range Firewalls() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Firewalls()))
	for _, f := range Firewalls() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown firewall %q: want one of %s", s, strings.Join(names, ", "))
}

// rule is one nftables rule with its text in nft syntax.
type rule struct {
	text  string
	exprs []expr.Any
}

// rawChain is the name of the prerouting chain (priority raw) of the
// profiles that need one (FirewallSynproxy); its rules' texts start with
// rawMark so that a listing tells them from the forward chain's.
const (
	rawChain = "raw"
	rawMark  = "prerouting raw: "
)

// policy returns the chain policy of f.
func (f Firewall) policy() nftables.ChainPolicy {
	switch f {
	case FirewallStateless, FirewallStateful, FirewallSynproxy, FirewallLoose, FirewallV6Open:
		return nftables.ChainPolicyDrop
	}
	return nftables.ChainPolicyAccept
}

// Rules returns f's ruleset in nft syntax, as `nft list table inet
// tcpwalk_lab` (`ip` for FirewallV6Open) would print it (without the
// comments): the forward chain's
// line, then the rules, those of a prerouting raw chain first (their text
// starts with "prerouting raw: ").
func (f Firewall) Rules() []string {
	pol := "accept"
	if f.policy() == nftables.ChainPolicyDrop {
		pol = "drop"
	}
	out := []string{fmt.Sprintf("chain %s { type filter hook forward priority filter; policy %s; }", f, pol)}
	for _, r := range f.rawRules() {
		out = append(out, r.text)
	}
	for _, r := range f.rules() {
		out = append(out, r.text)
	}
	return out
}

// rawRules are f's rules in the prerouting chain of priority raw, which
// runs before conntrack.
func (f Firewall) rawRules() []rule {
	if f != FirewallSynproxy {
		return nil
	}
	ports := fmt.Sprintf("%d-%d", FirewallPortLo, FirewallPortHi)
	return []rule{{rawMark + "tcp flags & (fin|syn|rst|ack) == syn tcp dport " + ports + " notrack",
		cat(tcpFlags(0x17, 0x02), tcpPort(2), []expr.Any{&expr.Notrack{}})}}
}

// sysctls are the settings f needs in the router's namespace, applied
// after its rules (conntrack's sysctls exist once the rules use it).
// Every profile sets them, so that switching profiles leaves no trace of
// the one before.
func (f Firewall) sysctls() []sysctl {
	loose := "1\n"
	if f == FirewallSynproxy {
		loose = "0\n"
	}
	return []sysctl{
		{"/proc/sys/net/netfilter/nf_conntrack_tcp_loose", loose},
		{"/proc/sys/net/ipv4/tcp_syncookies", "1\n"},
		{"/proc/sys/net/ipv4/tcp_timestamps", "1\n"},
	}
}

// sysctl is one /proc/sys setting.
type sysctl struct{ path, val string }

func (f Firewall) rules() []rule {
	ports := fmt.Sprintf("%d-%d", FirewallPortLo, FirewallPortHi)
	newSYN := rule{"tcp flags & (fin|syn|rst|ack) == syn tcp dport " + ports + " ct state new accept",
		cat(tcpFlags(0x17, 0x02), tcpPort(2), ctState(expr.CtStateBitNEW), verdict(expr.VerdictAccept))}
	established := rule{"ct state established,related accept",
		cat(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))}
	invalidDrop := rule{"ct state invalid drop", cat(ctState(expr.CtStateBitINVALID), verdict(expr.VerdictDrop))}
	switch f {
	case FirewallStateless:
		return []rule{
			{"meta l4proto icmp accept", cat(l4(unix.IPPROTO_ICMP), verdict(expr.VerdictAccept))},
			{"meta l4proto ipv6-icmp accept", cat(l4(unix.IPPROTO_ICMPV6), verdict(expr.VerdictAccept))},
			{"tcp dport " + ports + " accept", cat(l4(unix.IPPROTO_TCP), tcpPort(2), verdict(expr.VerdictAccept))},
			{"tcp sport " + ports + " accept", cat(l4(unix.IPPROTO_TCP), tcpPort(0), verdict(expr.VerdictAccept))},
		}
	case FirewallStateful, FirewallV6Open:
		return []rule{established, invalidDrop, newSYN}
	case FirewallLoose:
		return []rule{established, invalidDrop,
			{"tcp dport " + ports + " ct state new accept", cat(tcpPort(2), ctState(expr.CtStateBitNEW), verdict(expr.VerdictAccept))}}
	case FirewallSynproxy:
		return []rule{
			{fmt.Sprintf("tcp dport %s ct state invalid,untracked synproxy mss %d wscale %d timestamp sack-perm", ports, SynproxyMSS, SynproxyWscale),
				cat(tcpPort(2), ctState(expr.CtStateBitINVALID|expr.CtStateBitUNTRACKED), []expr.Any{&expr.SynProxy{
					Mss: SynproxyMSS, MssValueSet: true, Wscale: SynproxyWscale, WscaleValueSet: true, Timestamp: true, SackPerm: true}})},
			invalidDrop,
			established,
		}
	case FirewallReject:
		return []rule{
			established,
			{"ct state invalid reject with icmpx type admin-prohibited",
				cat(ctState(expr.CtStateBitINVALID), []expr.Any{adminProhibited()})},
			newSYN,
			{"meta l4proto tcp reject with tcp reset",
				cat(l4(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})},
			{"reject with icmpx type admin-prohibited", []expr.Any{adminProhibited()}},
		}
	case FirewallClamp:
		return []rule{{fmt.Sprintf("tcp flags syn tcp option maxseg size set %d", ClampMSS),
			cat(tcpFlags(0x02, 0x02), []expr.Any{
				&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(ClampMSS)},
				// RFC 9293 §3.2: option kind 2, length 4, the MSS at offset 2.
				&expr.Exthdr{SourceRegister: 1, Type: 2, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
			})}}
	}
	return nil
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func l4(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// tcpPort matches a TCP port (offset 0: source, 2: destination) in the
// allowed range.
func tcpPort(off uint32) []expr.Any {
	return cat(l4(unix.IPPROTO_TCP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(FirewallPortLo)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(FirewallPortHi)},
	})
}

// tcpFlags matches flags & mask == want (the flags byte, RFC 9293 §3.1).
func tcpFlags(mask, want byte) []expr.Any {
	return cat(l4(unix.IPPROTO_TCP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{mask}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{want}},
	})
}

// ctState matches when any of bits is set in the conntrack state (host
// byte order, as the kernel keeps it).
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// adminProhibited is destination unreachable, communication
// administratively prohibited, in the packet's family: ICMP code 13 (RFC
// 1812 §5.2.7.1) or ICMPv6 code 1 (RFC 4443 §3.1); nftables' icmpx picks it.
func adminProhibited() expr.Any {
	return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}
}

// InstallFirewall replaces the firewall of the router namespace ns with f
// (in one transaction). The table outlives the call and the process: it goes
// with RemoveFirewall, Destroy or the namespace.
func InstallFirewall(ns *netns.NS, f Firewall) error {
	if _, err := ParseFirewall(string(f)); err != nil {
		return fmt.Errorf("lab: install firewall in %s: %w", ns.Name, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return fmt.Errorf("lab: install firewall in %s: %w", ns.Name, err)
	}
	// Adding then deleting makes the delete succeed whether or not the
	// table existed (in either family: a profile switch may change it);
	// the new one follows in the same batch.
	for _, fam := range tableFamilies {
		old := &nftables.Table{Name: FirewallTable, Family: fam}
		c.AddTable(old)
		c.DelTable(old)
	}
	tab := &nftables.Table{Name: FirewallTable, Family: f.tableFamily()}
	c.AddTable(tab)
	pol := f.policy()
	if raw := f.rawRules(); len(raw) > 0 {
		accept := nftables.ChainPolicyAccept
		rc := c.AddChain(&nftables.Chain{Name: rawChain, Table: tab, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept})
		for _, r := range raw {
			c.AddRule(&nftables.Rule{Table: tab, Chain: rc, Exprs: r.exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.text)})
		}
	}
	ch := c.AddChain(&nftables.Chain{Name: string(f), Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &pol})
	for _, r := range f.rules() {
		c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.text)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("lab: install firewall %s in %s: %w (needs CAP_NET_ADMIN and nf_tables with conntrack, reject, exthdr and synproxy)", f, ns.Name, err)
	}
	err = ns.Do(func() error {
		for _, s := range f.sysctls() {
			err := os.WriteFile(s.path, []byte(s.val), 0)
			if errors.Is(err, fs.ErrNotExist) && f != FirewallSynproxy {
				// No conntrack in this namespace (a profile without
				// ct rules on a kernel that loads it as a module):
				// nothing to reset.
				continue
			}
			if err != nil {
				return fmt.Errorf("set %s: %w", s.path, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lab: install firewall %s in %s: %w", f, ns.Name, err)
	}
	return nil
}

// ReadFirewall reads the firewall back from the kernel: the profile (from the
// chain's name) and each rule's text (from its comment). A namespace without
// the table has FirewallNone and no rules.
func ReadFirewall(ns *netns.NS) (Firewall, []string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return "", nil, fmt.Errorf("lab: read firewall of %s: %w", ns.Name, err)
	}
	var tab *nftables.Table
	for _, fam := range tableFamilies {
		if tab, err = c.ListTableOfFamily(FirewallTable, fam); err == nil {
			break
		}
		if !errors.Is(err, unix.ENOENT) {
			return "", nil, fmt.Errorf("lab: read firewall of %s: %w", ns.Name, err)
		}
	}
	if tab == nil {
		return FirewallNone, nil, nil
	}
	chains, err := c.ListChainsOfTableFamily(tab.Family)
	if err != nil {
		return "", nil, fmt.Errorf("lab: read firewall of %s: %w", ns.Name, err)
	}
	ruleText := func(ch *nftables.Chain) ([]string, error) {
		rules, err := c.GetRules(tab, ch)
		if err != nil {
			return nil, fmt.Errorf("lab: read firewall of %s: %w", ns.Name, err)
		}
		var text []string
		for _, r := range rules {
			s, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if !ok {
				s = fmt.Sprintf("(rule %d without a comment: not made by tcpwalk)", r.Handle)
			}
			text = append(text, s)
		}
		return text, nil
	}
	var raw []string
	for _, ch := range chains {
		if ch.Table.Name == FirewallTable && ch.Name == rawChain {
			if raw, err = ruleText(ch); err != nil {
				return "", nil, err
			}
		}
	}
	for _, ch := range chains {
		if ch.Table.Name != FirewallTable {
			continue
		}
		f, err := ParseFirewall(ch.Name)
		if err != nil {
			continue // not one of ours
		}
		text, err := ruleText(ch)
		if err != nil {
			return "", nil, err
		}
		return f, append(raw, text...), nil
	}
	return FirewallNone, nil, nil
}

// RemoveFirewall deletes the firewall table from ns; a missing table is not
// an error.
func RemoveFirewall(ns *netns.NS) error {
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		return fmt.Errorf("lab: remove firewall of %s: %w", ns.Name, err)
	}
	for _, fam := range tableFamilies {
		tab := &nftables.Table{Name: FirewallTable, Family: fam}
		c.AddTable(tab)
		c.DelTable(tab)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("lab: remove firewall of %s: %w", ns.Name, err)
	}
	return nil
}
