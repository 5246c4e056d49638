//go:build linux

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/report"
)

func sendCommand() *cli.Command {
	_, _, labIf, _ := lab.Names(lab.DefaultPrefix)
	return &cli.Command{
		Name:      "send",
		Usage:     "send crafted TCP segments and print the replies (like hping3 / nping --tcp)",
		ArgsUsage: "HOST:PORT | [IPV6]:PORT",
		Description: `Sends COUNT segments with the given flags, sequence numbers and options, and
prints each reply in tcpdump's words with its round-trip time from kernel
receive timestamps, then a summary. A SYN carries a Linux-like option set
(mss 1460, sackOK, TS, nop, wscale 7) unless --no-options or option flags say
otherwise. ICMP and ICMPv6 errors about our segments are reported too. An
IPv6 target is written in brackets; --ttl is then its hop limit and --tos its
traffic class, --flow-label sets the flow label, and --id and --df do not
apply. -p PORT gives the port of a target written without one
(2001:2::2 -p 80); -4 or -6 picks the family of a name that resolves to
both (default: the first address the system's resolver returns).

Examples:
   tcpwalk send --flags S 198.18.0.2:8080
   tcpwalk send --flags FA --seq 1000 --ack 2000 --win 512 --ttl 7 --df 198.18.0.2:8080
   tcpwalk send --flags syn --no-options --sport 40000 -c 3 --interval 200ms 198.18.0.2:80
   tcpwalk send --flags S --mss 536 --wscale 2 --sack-perm --ts 100:0 --json 198.18.0.2:80
   tcpwalk send --flags S --frag 8 --ip-option rr 198.18.0.2:80
   tcpwalk send --flags S --flood -c 1000 --rate 500 198.18.0.2:80
   tcpwalk send --flags S -e ` + labIf + ` -S 198.18.0.1 198.18.0.2:80
   tcpwalk send --flags S --flow-label 0x12345 [2001:2::2]:80
   tcpwalk send --flags S -p 7001 2001:2::2

--frag cuts each probe's IP datagram into fragments (RFC 791 §3.2) that the
remote's kernel must reassemble before TCP sees the segment: what a firewall
makes of them is the test. With -S an address not of this host, replies go
there, not to tcpwalk. --flood shows only the summary, with the rate reached.
` + labIf + ` is the lab's end of its veth (tcpwalk lab up; ip -n tcpwalk-prober link).

Exit status: 0 a reply came, 1 no reply, 2 bad usage, 3 environment error.`,
		Flags: []cli.Flag{portFlag(),
			&cli.StringFlag{Name: "flags", Value: "S", Usage: "TCP flags: letters (S, SA, FA, R, PA), names (syn,ack) or hex (0x12)"},
			&cli.StringFlag{Name: "seq", Usage: "sequence number (default: random ISN per probe)"},
			&cli.StringFlag{Name: "ack", Usage: "acknowledgment number (the ACK flag is set only by --flags)"},
			&cli.UintFlag{Name: "win", Usage: fmt.Sprintf("window (default %d)", tcpconn.DefaultWindow)},
			&cli.UintFlag{Name: "urg", Usage: "urgent pointer"},
			&cli.UintFlag{Name: "ttl", Value: 64, Usage: "IP time to live (IPv6: hop limit)"},
			&cli.UintFlag{Name: "id", Usage: "IP identification (default random)"},
			&cli.BoolFlag{Name: "df", Usage: "set IP don't-fragment"},
			&cli.UintFlag{Name: "tos", Usage: "IP type of service / DSCP+ECN byte (IPv6: traffic class)"},
			&cli.StringFlag{Name: "flow-label", Usage: "IPv6 flow label, 0 to 0xfffff (decimal or 0x hex)"},
			&cli.UintFlag{Name: "sport", Usage: "source port, kept for every probe (default: a fresh random port per probe from 61000-65535)"},
			&cli.StringFlag{Name: "data-string", Usage: "payload as text"},
			&cli.StringFlag{Name: "data-hex", Usage: "payload as hex bytes (e.g. 0a0b0c or 0a:0b:0c)"},
			&cli.BoolFlag{Name: "no-options", Usage: "send no TCP options, even on a SYN"},
			&cli.UintFlag{Name: "mss", Usage: "MSS option"},
			&cli.IntFlag{Name: "wscale", Value: -1, Usage: "window scale option (shift count 0-14)", DefaultText: "none"},
			&cli.BoolFlag{Name: "sack-perm", Usage: "SACK-permitted option"},
			&cli.StringFlag{Name: "ts", Usage: "timestamps option VAL:ECR"},
			&cli.StringFlag{Name: "sack", Usage: "SACK blocks LEFT-RIGHT[,LEFT-RIGHT...]"},
			&cli.StringSliceFlag{Name: "option", Usage: "raw option KIND[:HEXDATA], repeatable, sent after the others"},
			&cli.StringFlag{Name: "source", Aliases: []string{"S"}, Usage: "source address `ADDR` of our packets (nping -S, hping3 -a); replies reach tcpwalk only if it is an address of this host (default: the route's)"},
			&cli.StringFlag{Name: "interface", Aliases: []string{"e"}, Usage: "send by interface `IF` only (SO_BINDTODEVICE); its first address of the target's family (global, for IPv6) is the source unless -S says otherwise"},
			&cli.StringSliceFlag{Name: "ip-option", Usage: "IPv4 option as `HEX` bytes, or named: nop, eol, rr (record route), ts (timestamps), ra (router alert); repeatable, in order, padded to 4 bytes"},
			&cli.UintFlag{Name: "frag", Usage: "cut each probe's IP datagram into fragments of `SIZE` payload bytes (a multiple of 8, e.g. 8)"},
			&cli.BoolFlag{Name: "flood", Usage: "send the --count probes back to back at --rate per second and print only the summary (needs --count)"},
			&cli.IntFlag{Name: "rate", Usage: fmt.Sprintf("probes per second of a --flood (1-%d)", send.MaxRate), DefaultText: fmt.Sprint(send.DefaultRate)},
			&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Value: 1, Usage: "number of probes (1-100000)"},
			&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: 1e9, Usage: "time between probes"},
			&cli.DurationFlag{Name: "wait", Value: 1e9, Usage: "time to wait for replies after the last probe"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print replies and the summary only"},
			&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard (the local kernel will reset replies)"},
			&cli.BoolFlag{Name: "leave-open", Usage: "do not reset the half-open connections our SYNs leave on the remote"},
		},
		Action: runSend,
	}
}

func runSend(c *cli.Context) error {
	spec, err := sendSpecFromFlags(c)
	if err != nil {
		return err
	}
	src, err := sourceFromFlags(c)
	if err != nil {
		return err
	}
	ns, err := openNetNS(c, spec.Target.Addr())
	if err != nil {
		return err
	}
	if ns != nil {
		defer ns.Close()
	}
	out := &report.SendPrinter{W: c.App.Writer, JSON: c.Bool("json"), Quiet: c.Bool("quiet")}
	if isTerminal(c.App.Writer) {
		out.Width = ladderWidth(c.App.Writer)
	}
	warn := func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }
	// A fixed source port narrows the guard and the filter to that port.
	p, err := probe.Open(probe.Config{Remote: spec.Target.Addr(), NoGuard: c.Bool("no-rst-guard"), NetNS: ns, Warn: warn,
		LocalLo: spec.SrcPort, LocalHi: spec.SrcPort, Source: src, Interface: c.String("interface")})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := checkPacketSize(&spec, p.PathMTU()); err != nil {
		return err
	}
	obs := send.Observer{Sent: out.Sent, Reply: out.Reply}
	if spec.Flood {
		// Like hping3 --flood: a line per probe would be the bottleneck
		// and unreadable; the summary counts everything.
		obs = send.Observer{}
		if !out.JSON {
			fmt.Fprintf(c.App.Writer, "flooding %s with %d probes at %d per second; replies are counted, not shown\n", spec.Target, spec.Count, spec.Rate)
		}
	}
	res, err := send.Run(c.Context, p, spec, obs)
	out.Summary(res)
	if err != nil {
		return err
	}
	if n := p.InputRules(); n != "" && res.Answered < res.Sent {
		warn(fmt.Sprintf("%d of %d probes got no reply: %s", res.Sent-res.Answered, res.Sent, n))
	}
	if res.Replies == 0 && !res.Interrupted {
		return &exitError{code: exitNoReply}
	}
	return nil
}

// checkPacketSize refuses, before anything is sent, a probe longer than the
// route's MTU or than tcpwalk's packet buffer: both are what the user asked
// for (usage), not a failure of the machine. The kernel does not fragment raw
// IP_HDRINCL packets, it refuses them with EMSGSIZE.
func checkPacketSize(spec *send.Spec, mtu int) error {
	seg := craft.Segment{Options: spec.Options, Payload: spec.Payload}
	if spec.Options == nil && !spec.NoOptions {
		seg.Options = craft.DefaultSYNOptions(0)
	}
	n := seg.Len()
	limit, what := probe.MaxPacket, fmt.Sprintf("tcpwalk's %d-byte packet buffer", probe.MaxPacket)
	if mtu > 0 && mtu < limit {
		limit, what = mtu, fmt.Sprintf("the MTU %d of the route to %s (raw packets are not fragmented)", mtu, spec.Target.Addr())
	}
	if n > limit {
		return usageErr("payload of %d bytes: the packet would be %d bytes, more than %s; send at most %d payload bytes",
			len(spec.Payload), n, what, len(spec.Payload)-(n-limit))
	}
	return nil
}

func sendSpecFromFlags(c *cli.Context) (send.Spec, error) {
	var s send.Spec
	if c.NArg() != 1 {
		if c.NArg() == 0 {
			return s, usageErr("send: missing target: write HOST:PORT, e.g. tcpwalk send --flags S 198.18.0.2:80 (IPv6: [2001:2::2]:80)")
		}
		return s, usageErr("send: want one target HOST:PORT, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	target, err := parseTarget(c, c.Args().First())
	if err != nil {
		return s, err
	}
	s.Target = target
	if s.Flags, err = craft.ParseFlags(c.String("flags")); err != nil {
		return s, usageErr("--flags: %v", err)
	}
	if v := c.String("seq"); v != "" {
		if s.Seq, err = parseU32(v); err != nil {
			return s, usageErr("--seq: %v", err)
		}
		s.SeqSet = true
	}
	if v := c.String("ack"); v != "" {
		if s.Ack, err = parseU32(v); err != nil {
			return s, usageErr("--ack: %v", err)
		}
	}
	u16 := func(name string) (uint16, error) {
		v := c.Uint(name)
		if v > 65535 {
			return 0, usageErr("--%s %d: want 0 to 65535", name, v)
		}
		return uint16(v), nil
	}
	u8 := func(name string) (uint8, error) {
		v := c.Uint(name)
		if v > 255 {
			return 0, usageErr("--%s %d: want 0 to 255", name, v)
		}
		return uint8(v), nil
	}
	if s.Window, err = u16("win"); err != nil {
		return s, err
	}
	if s.Urgent, err = u16("urg"); err != nil {
		return s, err
	}
	if s.ID, err = u16("id"); err != nil {
		return s, err
	}
	if v := c.Uint("sport"); c.IsSet("sport") && (v == 0 || v > 65535) {
		return s, usageErr("--sport %d: want 1 to 65535", v)
	}
	s.SrcPort = uint16(c.Uint("sport"))
	if v := c.Uint("ttl"); v == 0 || v > 255 {
		return s, usageErr("--ttl %d: want 1 to 255", v)
	}
	s.TTL = uint8(c.Uint("ttl"))
	if s.TOS, err = u8("tos"); err != nil {
		return s, err
	}
	s.DF = c.Bool("df")
	if v := c.String("flow-label"); v != "" {
		if s.FlowLabel, err = parseU32(v); err != nil {
			return s, usageErr("--flow-label: %v", err)
		}
	}
	if c.IsSet("data-string") && c.IsSet("data-hex") {
		return s, usageErr("--data-string and --data-hex: give one payload")
	}
	if v := c.String("data-string"); v != "" {
		s.Payload = []byte(v)
	}
	if v := c.String("data-hex"); v != "" {
		if s.Payload, err = parseHex(v); err != nil {
			return s, usageErr("--data-hex: %v", err)
		}
	}
	if s.Options, err = optionsFromFlags(c); err != nil {
		return s, err
	}
	s.NoOptions = c.Bool("no-options")
	if s.NoOptions && s.Options != nil {
		return s, usageErr("--no-options contradicts the option flags given")
	}
	s.Count, s.Interval, s.Wait = c.Int("count"), c.Duration("interval"), c.Duration("wait")
	if s.Count < 1 || s.Count > send.MaxCount {
		return s, usageErr("--count %d: want 1 to %d", s.Count, send.MaxCount)
	}
	if s.Interval < send.MinInterval {
		return s, usageErr("--interval %v: want at least %v", s.Interval, send.MinInterval)
	}
	if s.Wait <= 0 {
		return s, usageErr("--wait %v: want a positive duration, e.g. 1s", s.Wait)
	}
	s.LeaveOpen = c.Bool("leave-open")
	for _, o := range c.StringSlice("ip-option") {
		b, err := parseIPOption(o)
		if err != nil {
			return s, usageErr("--ip-option %q: %v", o, err)
		}
		s.IPOptions = append(s.IPOptions, b...)
	}
	if len(s.IPOptions) > craft.IPv4OptionsMaximumSize {
		return s, usageErr("--ip-option: %d bytes of IP options; at most %d fit in the IPv4 header", len(s.IPOptions), craft.IPv4OptionsMaximumSize)
	}
	if c.IsSet("frag") {
		v := c.Uint("frag")
		if v < 8 || v%8 != 0 || v > probe.MaxPacket {
			return s, usageErr("--frag %d: want a multiple of 8 from 8 to %d (fragment offsets count 8-byte units)", v, probe.MaxPacket&^7)
		}
		if s.DF {
			return s, usageErr("--frag with --df: a datagram marked don't-fragment is never fragmented; leave out --df")
		}
		s.FragSize = int(v)
	}
	s.Flood, s.Rate = c.Bool("flood"), c.Int("rate")
	switch {
	case s.Flood && !c.IsSet("count"):
		return s, usageErr("--flood needs --count N (1 to %d): every flood is bounded", send.MaxCount)
	case s.Flood && c.IsSet("interval"):
		return s, usageErr("--flood and --interval: a flood paces itself with --rate")
	case !s.Flood && c.IsSet("rate"):
		return s, usageErr("--rate is the pace of a --flood; without one, probes go --interval apart")
	case s.Flood && c.IsSet("rate") && (s.Rate < 1 || s.Rate > send.MaxRate):
		return s, usageErr("--rate %d: want 1 to %d probes per second", s.Rate, send.MaxRate)
	}
	return s, s.Validate()
}

// sourceFromFlags reads -S.
func sourceFromFlags(c *cli.Context) (netip.Addr, error) {
	v := c.String("source")
	if v == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, usageErr("--source %q: want an IPv4 or IPv6 address, e.g. 198.18.0.1 or 2001:2::1", v)
	}
	if err := probe.CheckSource(a.Unmap()); err != nil {
		return netip.Addr{}, usageErr("--source: %v", err)
	}
	return a.Unmap(), nil
}

// Named IPv4 options (RFC 791 §3.1; router alert RFC 2113), each with
// room for as many entries as the header holds: record route and
// timestamps take 39 and 40 bytes, so either fills the header alone.
var namedIPOptions = map[string][]byte{
	"eol": {0},
	"nop": {1},
	"rr":  append([]byte{7, 39, 4}, make([]byte, 36)...),       // 9 address slots, pointer at the first
	"ts":  append([]byte{0x44, 40, 5, 0}, make([]byte, 36)...), // flag 0: 9 timestamps only
	"ra":  {0x94, 4, 0, 0},                                     // router alert: examine the packet
}

// parseIPOption reads one --ip-option: a name or hex bytes.
func parseIPOption(s string) ([]byte, error) {
	if b, ok := namedIPOptions[strings.ToLower(s)]; ok {
		return b, nil
	}
	b, err := parseHex(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("want hex bytes (e.g. 94040000) or one of nop, eol, rr, ts, ra")
	}
	return b, nil
}

// optionsFromFlags builds the option list in Linux's order (mss, sackOK,
// TS, nop+wscale), then SACK blocks and raw options. Nil means none given.
func optionsFromFlags(c *cli.Context) ([]craft.Option, error) {
	var opts []craft.Option
	if c.IsSet("mss") {
		v := c.Uint("mss")
		if v > 65535 {
			return nil, usageErr("--mss %d: want 0 to 65535", v)
		}
		opts = append(opts, craft.MSS(uint16(v)))
	}
	if c.Bool("sack-perm") {
		opts = append(opts, craft.SACKPermitted())
	}
	if v := c.String("ts"); v != "" {
		val, ecr, ok := strings.Cut(v, ":")
		tv, err1 := parseU32(val)
		te, err2 := parseU32(ecr)
		if !ok || err1 != nil || err2 != nil {
			return nil, usageErr("--ts %q: want VAL:ECR, e.g. 100:0", v)
		}
		opts = append(opts, craft.Timestamps(tv, te))
	}
	if c.IsSet("wscale") {
		v := c.Int("wscale")
		if v < 0 || v > 255 {
			return nil, usageErr("--wscale %d: want 0 to 255 (RFC 7323 §2.3 allows up to 14; larger ones are sent as given, to test the remote)", v)
		}
		opts = append(opts, craft.NOP(), craft.WindowScale(uint8(v)))
	}
	if v := c.String("sack"); v != "" {
		var blocks []craft.SACKBlock
		for _, part := range strings.Split(v, ",") {
			l, r, ok := strings.Cut(part, "-")
			lv, err1 := parseU32(l)
			rv, err2 := parseU32(r)
			if !ok || err1 != nil || err2 != nil {
				return nil, usageErr("--sack %q: want LEFT-RIGHT[,LEFT-RIGHT...], e.g. 1000-2000", v)
			}
			blocks = append(blocks, craft.SACKBlock{Left: lv, Right: rv})
		}
		if len(blocks) > 4 {
			return nil, usageErr("--sack: at most 4 blocks fit in the TCP header")
		}
		opts = append(opts, craft.NOP(), craft.NOP(), craft.SACK(blocks...))
	}
	for _, raw := range c.StringSlice("option") {
		kindStr, data, _ := strings.Cut(raw, ":")
		kind, err := strconv.ParseUint(kindStr, 0, 8)
		if err != nil {
			return nil, usageErr("--option %q: want KIND[:HEXDATA] with KIND 0-255", raw)
		}
		b, err := parseHex(data)
		if err != nil {
			return nil, usageErr("--option %q: %v", raw, err)
		}
		opts = append(opts, craft.Option{Kind: craft.OptionKind(kind), Data: b})
	}
	if opts != nil && craft.OptionsLen(opts) > 40 {
		return nil, usageErr("TCP options take %d bytes: at most 40 fit in the header", craft.OptionsLen(opts))
	}
	return opts, nil
}

func parseU32(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number from 0 to 4294967295", s)
	}
	return uint32(v), nil
}

func parseHex(s string) ([]byte, error) {
	s = strings.NewReplacer(":", "", " ", "", "0x", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("bad hex bytes: write pairs of hex digits, e.g. 0a0b0c")
	}
	return b, nil
}
