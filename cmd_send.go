package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/report"
)

func sendCommand() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "send crafted TCP segments and print the replies (like hping3 / nping --tcp)",
		ArgsUsage: "HOST:PORT",
		Description: `Sends COUNT segments with the given flags, sequence numbers and options, and
prints each reply in tcpdump's words with its round-trip time from kernel
receive timestamps, then a summary. A SYN carries a Linux-like option set
(mss 1460, sackOK, TS, nop, wscale 7) unless --no-options or option flags say
otherwise. ICMP errors about our segments are reported too.

Examples:
   tcpwalk send --flags S 198.18.0.2:8080
   tcpwalk send --flags FA --seq 1000 --ack 2000 --win 512 --ttl 7 --df 198.18.0.2:8080
   tcpwalk send --flags syn --no-options --sport 40000 -c 3 --interval 200ms 198.18.0.2:80
   tcpwalk send --flags S --mss 536 --wscale 2 --sack-perm --ts 100:0 --json 198.18.0.2:80

Exit status: 0 a reply came, 1 no reply, 2 bad usage, 3 environment error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "flags", Value: "S", Usage: "TCP flags: letters (S, SA, FA, R, PA), names (syn,ack) or hex (0x12)"},
			&cli.StringFlag{Name: "seq", Usage: "sequence number (default: random ISN per probe)"},
			&cli.StringFlag{Name: "ack", Usage: "acknowledgment number (the ACK flag is set only by --flags)"},
			&cli.UintFlag{Name: "win", Usage: fmt.Sprintf("window (default %d)", tcpconn.DefaultWindow)},
			&cli.UintFlag{Name: "urg", Usage: "urgent pointer"},
			&cli.UintFlag{Name: "ttl", Value: 64, Usage: "IP time to live"},
			&cli.UintFlag{Name: "id", Usage: "IP identification (default random)"},
			&cli.BoolFlag{Name: "df", Usage: "set IP don't-fragment"},
			&cli.UintFlag{Name: "tos", Usage: "IP type of service / DSCP+ECN byte"},
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
	ns, err := openNetNS(c, spec.Target.Addr())
	if err != nil {
		return err
	}
	if ns != nil {
		defer ns.Close()
	}
	out := &report.SendPrinter{W: c.App.Writer, JSON: c.Bool("json"), Quiet: c.Bool("quiet")}
	warn := func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }
	// A fixed source port narrows the guard and the filter to that port.
	p, err := probe.Open(probe.Config{Remote: spec.Target.Addr(), NoGuard: c.Bool("no-rst-guard"), NetNS: ns, Warn: warn,
		LocalLo: spec.SrcPort, LocalHi: spec.SrcPort})
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := send.Run(c.Context, p, spec, send.Observer{Sent: out.Sent, Reply: out.Reply})
	out.Summary(res)
	if err != nil {
		return err
	}
	if res.Replies == 0 && !res.Interrupted {
		return &exitError{code: exitNoReply}
	}
	return nil
}

func sendSpecFromFlags(c *cli.Context) (send.Spec, error) {
	var s send.Spec
	if c.NArg() != 1 {
		if c.NArg() == 0 {
			return s, usageErr("send: missing target: write HOST:PORT, e.g. tcpwalk send --flags S 198.18.0.2:80")
		}
		return s, usageErr("send: want one target HOST:PORT, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	target, err := probe.ParseTarget(c.Args().First())
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
	if s.SrcPort, err = u16("sport"); err != nil {
		return s, err
	}
	if c.IsSet("sport") && s.SrcPort == 0 {
		return s, usageErr("--sport 0: want 1 to 65535")
	}
	if v := c.Uint("ttl"); v == 0 || v > 255 {
		return s, usageErr("--ttl %d: want 1 to 255", v)
	}
	s.TTL = uint8(c.Uint("ttl"))
	if s.TOS, err = u8("tos"); err != nil {
		return s, err
	}
	s.DF = c.Bool("df")
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
	return s, s.Validate()
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
			return nil, usageErr("--wscale %d: want 0 to 14 (RFC 7323 §2.3; larger values are sent as given up to 255)", v)
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
