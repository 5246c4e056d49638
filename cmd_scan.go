//go:build linux

package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// nmapTypeFlags are nmap's scan-type options, accepted as aliases of --type.
var nmapTypeFlags = []struct {
	flag string
	typ  scan.Type
}{{"sS", scan.TypeSYN}, {"sA", scan.TypeACK}, {"sF", scan.TypeFIN}, {"sN", scan.TypeNULL}, {"sX", scan.TypeXmas},
	{"sW", scan.TypeWindow}, {"sM", scan.TypeMaimon}}

func scanCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "type", Value: "syn", Usage: "scan type: " + strings.Join(scan.TypeNames(), ", ")},
		&cli.StringFlag{Name: "ports", Aliases: []string{"p"}, Value: "1-1024", Usage: "ports: 22,80,443 or 1-1024,8080, service names (ssh,http, http*); - or -p- for all (as nmap's -p)"},
		&cli.IntFlag{Name: "top-ports", Usage: "scan the `N` most commonly open ports (nmap-services' frequencies, else tcpwalk's small table)"},
		&cli.StringFlag{Name: "iL", Usage: "read targets from `FILE` (- for stdin): addresses, prefixes and ranges, separated by blanks or lines, # comments"},
		&cli.StringFlag{Name: "exclude", Usage: "leave out these targets: a comma-separated `LIST` (198.18.0.1,7,198.18.0.64/26)"},
		&cli.StringFlag{Name: "excludefile", Usage: "leave out the targets listed in `FILE`, as -iL reads it"},
		&cli.BoolFlag{Name: "p-", Hidden: true, Usage: "all ports, 1-65535 (nmap's -p-)"},
		&cli.IntFlag{Name: "rate", Value: scan.DefaultRate, Usage: fmt.Sprintf("probes per second (1 to %d)", scan.MaxRate)},
		&cli.IntFlag{Name: "retries", Value: scan.DefaultRetries, Usage: fmt.Sprintf("passes again over the targets still silent (0 to %d)", scan.MaxRetries)},
		&cli.DurationFlag{Name: "wait", Value: scan.DefaultWait, Usage: "time to wait for replies after each pass"},
		&cli.StringFlag{Name: "shard", Usage: "run part I of N of the scan (e.g. 2/4); needs --seed, the same on every shard"},
		&cli.Uint64Flag{Name: "seed", DefaultText: "random, printed with the results", Usage: "seed of the probing order"},
		&cli.UintFlag{Name: "sport", DefaultText: fmt.Sprintf("random, %d-%d", scan.SourcePortLo, scan.SourcePortHi), Usage: "source port of every probe"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress line, even on a terminal"},
		&cli.StringFlag{Name: "send-path", Value: "auto", Usage: "how probes leave: packet (AF_PACKET frames to the next hop, about twice as fast), raw (IP raw socket, any destination) or auto"},
		&cli.BoolFlag{Name: "no-rst-guard", Usage: "do not install the nftables RST guard (the local kernel will reset every SYN-ACK)"},
		&cli.BoolFlag{Name: "leave-open", Usage: "do not reset the half-open connections our SYNs leave on the targets"},
	}
	flags = append(flags, scanOutputFlags()...)
	for _, f := range nmapTypeFlags {
		flags = append(flags, &cli.BoolFlag{Name: f.flag, Hidden: true, Usage: "--type " + f.typ.String()})
	}
	return &cli.Command{
		Name:      "scan",
		Usage:     "scan ports and firewall rules of many hosts, statelessly (like nmap -sS/-sA/-sF, at masscan's speed)",
		ArgsUsage: "TARGET...",
		Description: `Sends one probe per host and port, in a pseudo-random order over all of them,
at --rate probes per second, and reads the replies as nmap does:

   type     probe    open            closed        no reply        ICMP 3/x, 11
   syn      S        SYN-ACK         RST           filtered        filtered
   ack      .        (RST: unfiltered)             filtered        filtered
   window   .        RST win > 0     RST win 0     filtered        filtered
   fin      F        -               RST           open|filtered   filtered
   null     none     -               RST           open|filtered   filtered
   xmas     FPU      -               RST           open|filtered   filtered
   maimon   F.       -               RST           open|filtered   filtered

No state is kept per probe: the sequence number is a keyed hash (SipHash) of
the 4-tuple with a fresh key per run, so replies are matched without a table
and forged or stale ones are ignored. After the first pass, --retries passes
probe again only the targets that have not answered; --wait is the time given
to late replies after each pass. While the scan runs, an nftables table keeps
the local kernel from resetting the SYN-ACKs; tcpwalk resets the targets'
half-open connections itself.

--send-path auto sends the probes as Ethernet frames on an AF_PACKET socket,
straight to the next hop's MAC address (no routing, netfilter or qdisc per
probe), when every host is one address or behind one gateway on an Ethernet
interface; else, on loopback, or when input rules could drop replies that
conntrack never saw a probe for, it sends on an IP raw socket.

Broadcast addresses are never probed (TCP is unicast, RFC 9293 §3.9.1): the
directed broadcast of every subnet on the scanning namespace's interfaces and
every broadcast route are skipped and reported as skipped, with the reason.
The network address of a subnet is probed, as nmap does: Linux routes it as
unicast.

Targets are as nmap takes them: addresses, prefixes (198.18.0.0/28), ranges
and lists in any octet (198.18.0.2-20, 198.18.0-1.1-254, 198.18.0.2,5,7),
names, a file of them (-iL FILE, - for stdin), less --exclude and
--excludefile. IPv6 targets are addresses, prefixes, ranges
(2001:2::1-2001:2::1:0) and ranges or lists in the last group, in hex
(2001:2::1-ff, 2001:2::2,5,a); one scan is of one family. An IPv6 sweep is
bounded to 2^24 addresses (a /104): a /64 is refused, as zmap refuses it;
list IPv6 hosts instead (-iL; e.g. from ip -6 neigh). ICMPv6 errors (1/x,
3/x) read as filtered, as ICMP 3/x and 11 do. A host that answers nothing at all, no probe and no ARP on
its link, is down, as nmap says; down hosts of a scan of several are not
listed (--all lists them).

-oX, -oN and -oG write nmap's XML, normal and grepable formats to a file as
well (- for stdout, instead of the usual output); -oA BASE writes all three.
The XML is valid against nmap's DTD: ndiff compares two scans.

--shard I/N --seed S runs part I of N of the same scan: run shards 1..N with the
same seed and arguments (e.g. on N machines) and together they probe every
target exactly once; tcpwalk merge joins their JSON or XML outputs.

Examples:
   tcpwalk scan -p 1-65535 198.18.0.2
   tcpwalk scan --type ack -p 22,80,443 198.18.0.0/28
   tcpwalk scan --type fin --reason -p 1-1024 198.18.0.2
   tcpwalk scan -p ssh,http,8000-8100 198.18.0.2
   tcpwalk scan -p 1-1024 2001:2::2
   tcpwalk scan --type ack --reason -p 22,80,443 2001:2::1-2
   tcpwalk scan --top-ports 100 --exclude 198.18.0.3 198.18.0.2-5
   tcpwalk scan -p 1-1024 -oA lab-scan 198.18.0.2
   tcpwalk scan -p 1-1024 -oX - 198.18.0.2
   tcpwalk scan --rate 200000 --retries 1 --shard 2/4 --seed 7 -p- 198.18.0.0/24 --json

Exit status: 0 done, 2 bad usage, 3 environment error, 130/143 interrupted
(partial results are printed).`,
		Flags:  flags,
		Action: runScan,
	}
}

func runScan(c *cli.Context) error {
	cfg, err := scanConfigFromFlags(c)
	if err != nil {
		return err
	}
	ns, err := openNetNS(c, cfg.Hosts[0].Addr())
	if err != nil {
		return err
	}
	if ns != nil {
		defer ns.Close()
		cfg.NetNS = ns
	}
	cfg.Warn = func(msg string) { fmt.Fprintf(c.App.ErrWriter, "tcpwalk: warning: %s\n", msg) }
	var prog *progressLine
	if !c.Bool("no-progress") && isScanTerminal(c.App.ErrWriter) {
		prog = &progressLine{w: c.App.ErrWriter}
		cfg.Progress = prog.show
	}
	outs, err := openScanOutputs(c)
	if err != nil {
		return err
	}
	defer outs.close()
	res, err := scan.Run(c.Context, cfg)
	if prog != nil {
		prog.clear()
	}
	if res == nil {
		outs.discard() // no result: leave no empty files behind
		return err
	}
	if perr := outs.print(c, res); perr != nil && err == nil {
		err = &exitError{code: exitEnv, err: fmt.Errorf("scan: write results: %w", perr)}
	}
	return err
}

func scanConfigFromFlags(c *cli.Context) (*scan.Config, error) {
	cfg := &scan.Config{}
	if c.NArg() == 0 && c.String("iL") == "" {
		return nil, usageErr("scan: missing target: give hosts, prefixes or ranges, e.g. tcpwalk scan -p 1-1024 198.18.0.2, or a file with -iL")
	}
	hosts, err := scanTargetsFromFlags(c)
	if err != nil {
		return nil, err
	}
	cfg.Hosts = hosts
	typ, err := scan.ParseType(c.String("type"))
	if err != nil {
		return nil, usageErr("--type: %v", err)
	}
	var aliases []string
	for _, f := range nmapTypeFlags {
		if c.Bool(f.flag) {
			typ = f.typ
			aliases = append(aliases, "-"+f.flag)
		}
	}
	if len(aliases) > 1 || len(aliases) == 1 && c.IsSet("type") {
		return nil, usageErr("scan: give one scan type (got %s)", strings.Join(append(aliases, "--type"), ", "))
	}
	cfg.Type = typ
	ports := c.String("ports")
	if c.Bool("p-") {
		if c.IsSet("ports") {
			return nil, usageErr("scan: -p- and --ports both give the ports: keep one")
		}
		ports = "-"
	}
	if cfg.Ports, err = scanPortsFromFlags(c, ports); err != nil {
		return nil, err
	}
	cfg.Rate, cfg.Retries, cfg.Wait = c.Int("rate"), c.Int("retries"), c.Duration("wait")
	if cfg.Rate < 1 || cfg.Rate > scan.MaxRate {
		return nil, usageErr("--rate %d: want 1 to %d probes per second", cfg.Rate, scan.MaxRate)
	}
	if cfg.Retries < 0 || cfg.Retries > scan.MaxRetries {
		return nil, usageErr("--retries %d: want 0 to %d", cfg.Retries, scan.MaxRetries)
	}
	if cfg.Wait <= 0 || cfg.Wait > time.Hour {
		return nil, usageErr("--wait %v: want a positive duration up to 1h, e.g. 1s", cfg.Wait)
	}
	if s := c.String("shard"); s != "" {
		if cfg.Shard, err = scan.ParseShard(s); err != nil {
			return nil, usageErr("--shard: %v", err)
		}
		if !c.IsSet("seed") && cfg.Shard.Count > 1 {
			return nil, usageErr("--shard %s needs --seed: every shard must use the same seed, or they overlap and leave gaps", s)
		}
	}
	cfg.Seed = c.Uint64("seed")
	if !c.IsSet("seed") {
		cfg.Seed = uint64(probe.RandomUint32())<<32 | uint64(probe.RandomUint32())
	}
	if c.IsSet("sport") {
		v := c.Uint("sport")
		if v == 0 || v > 65535 {
			return nil, usageErr("--sport %d: want 1 to 65535", v)
		}
		cfg.SourcePort = uint16(v)
	}
	if c.Bool("json") && c.Bool("grepable") {
		return nil, usageErr("--json and --grepable: pick one output format")
	}
	if cfg.SendPath, err = scan.ParseSendPath(c.String("send-path")); err != nil {
		return nil, usageErr("--send-path: %v", err)
	}
	cfg.NoGuard, cfg.LeaveOpen = c.Bool("no-rst-guard"), c.Bool("leave-open")
	return cfg, nil
}

// isScanTerminal reports whether w is a terminal: the progress line is for people, not for pipes and files.
func isScanTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressLine rewrites one line on a terminal: rate, done, found, ETA.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	shown bool
}

func (p *progressLine) show(pr scan.Progress) {
	pct := 100.0
	if pr.Targets > 0 {
		pct = 100 * float64(pr.Probed) / float64(pr.Targets)
	}
	done, of, pass := pr.Probed, pr.Targets, ""
	if pr.Pass > 0 {
		// A retry pass counts the silent targets it probes again, not the first pass's 100%.
		done, of, pass = pr.PassSent, pr.PassTargets, fmt.Sprintf(" retry %d:", pr.Pass)
		pct = 100
		if of > 0 {
			pct = 100 * float64(done) / float64(of)
		}
	}
	line := fmt.Sprintf("\r\x1b[Kscan:%s %5.1f%% %d/%d, %s probes/s, %d replies, %d open, ETA %s",
		pass, pct, done, of, siCount(pr.Rate), pr.Replies, pr.Found, pr.ETA.Round(time.Second))
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, line)
	p.shown = true
}

func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
	}
}

// siCount prints 123456 as "123k".
func siCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// scanTargetsFromFlags reads the targets: the arguments and -iL's file, less --exclude and --excludefile.
func scanTargetsFromFlags(c *cli.Context) ([]netip.Prefix, error) {
	targets := c.Args().Slice()
	for _, a := range targets {
		if strings.TrimSpace(a) == "" {
			return nil, usageErr("scan: empty target %q: give a host, a prefix or a range, e.g. tcpwalk scan -p 1-1024 198.18.0.2", a)
		}
	}
	readList := func(flag, name string) ([]string, error) {
		var r io.Reader
		if name == "-" {
			r = c.App.Reader
			if r == nil {
				r = os.Stdin
			}
			name = "stdin"
		} else {
			f, err := os.Open(name)
			if err != nil {
				return nil, usageErr("%s: %v", flag, err)
			}
			defer f.Close()
			r = f
		}
		list, err := scan.ReadTargetList(r, name)
		if err != nil {
			return nil, usageErr("%s: %v", flag, err)
		}
		return list, nil
	}
	if f := c.String("iL"); f != "" {
		list, err := readList("-iL", f)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, usageErr("-iL %s: no targets in the file", f)
		}
		targets = append(targets, list...)
	}
	exclude := scan.SplitTargetList(c.String("exclude"))
	if f := c.String("excludefile"); f != "" {
		list, err := readList("--excludefile", f)
		if err != nil {
			return nil, err
		}
		exclude = append(exclude, list...)
	}
	return scan.ResolveTargets(targets, exclude)
}

// scanPortsFromFlags reads -p (with service names) or --top-ports.
func scanPortsFromFlags(c *cli.Context, ports string) ([]scan.PortRange, error) {
	byNumber := strings.Trim(ports, "0123456789-, ") == ""
	if byNumber && !c.IsSet("top-ports") {
		rs, err := scan.ParsePorts(ports)
		if err != nil {
			return nil, usageErr("--ports: %v", err)
		}
		return rs, nil
	}
	svc, err := scan.DefaultServices() // only names and --top-ports need the table
	if err != nil {
		return nil, &exitError{code: exitEnv, err: fmt.Errorf("scan: %w (numeric ports work without it)", err)}
	}
	if c.IsSet("top-ports") {
		n := c.Int("top-ports")
		if c.IsSet("ports") || c.Bool("p-") {
			return nil, usageErr("scan: --top-ports and -p both give the ports: keep one")
		}
		if n < 1 || n > 65535 {
			return nil, usageErr("--top-ports %d: want 1 to 65535", n)
		}
		if n > svc.Len() {
			return nil, usageErr("--top-ports %d: %s ranks only %d tcp ports", n, svc.Source, svc.Len())
		}
		return svc.Top(n), nil
	}
	rs, err := scan.ParsePortsNamed(ports, svc)
	if err != nil {
		return nil, usageErr("--ports: %v", err)
	}
	return rs, nil
}
