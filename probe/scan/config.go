package scan

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Defaults and limits of Config.
const (
	// DefaultRate is a rate no network notices: 1000 probes per second.
	DefaultRate = 1000
	// MaxRate bounds Config.Rate: above it the pacing is off and the send path sets the speed.
	MaxRate = 100_000_000
	// DefaultRetries is the CLI's --retries: one more pass over the targets still silent after the first. nmap
	// retries up to 10 times, adaptively; masscan not at all. One pass catches a probe or reply lost to a
	// momentary overflow, which is what a lab or LAN loses; raise it on lossy paths.
	DefaultRetries = 1
	// MaxRetries bounds Config.Retries.
	MaxRetries = 20
	// DefaultWait is how long replies are awaited after each pass, as nmap's timeout on a LAN.
	DefaultWait = time.Second
	// MaxShardTargets bounds the targets (hosts × ports) one process scans: its table takes a byte each.
	MaxShardTargets = 1 << 28
	// DefaultProgressEvery is how often Config.Progress is called.
	DefaultProgressEvery = 250 * time.Millisecond
	// SourcePortLo and SourcePortHi bound the random source port of a scan: above Linux's ephemeral range
	// (32768-60999), like every tcpwalk flow.
	SourcePortLo = probe.DefaultLocalLo
	SourcePortHi = probe.DefaultLocalHi
)

// Config describes a scan. Type, Hosts and Ports are required; zero values of the others mean their defaults.
type Config struct {
	Type  Type
	Hosts []netip.Prefix // addresses (/32, /128) and prefixes, all IPv4 or all IPv6; see ParseHost
	Ports []PortRange    // see ParsePorts

	// Rate is the sending rate in probes per second (0: DefaultRate).
	Rate int
	// Retries is how many more passes probe the targets still unanswered after a pass (0: none).
	Retries int
	// Wait is how long to wait for replies after each pass (0: DefaultWait).
	Wait time.Duration

	// Shard is the part of the scan to run (zero: all of it). Every shard of a scan must use the same Seed.
	Shard Shard
	// Seed picks the probing order (the permutation of hosts × ports).
	Seed uint64

	// SourcePort is the TCP source port of every probe (0: a random one from SourcePortLo to SourcePortHi).
	// The cookie, not the port, tells probes apart.
	SourcePort uint16
	// Mark is the SO_MARK of our packets, which the RST guard lets through (0: probe.DefaultMark).
	Mark uint32
	// NoGuard skips the RST guard: the local kernel then answers every SYN-ACK with a RST of its own.
	NoGuard bool
	// LeaveOpen keeps the remote's half-open connections: no RST is sent after a SYN-ACK.
	LeaveOpen bool
	// SendPath is how probes leave the host (0: SendAuto).
	SendPath SendPath
	// NetNS, when set, is the network namespace the scan runs in.
	NetNS *netns.NS

	// Progress, when set, is called every ProgressEvery (0: DefaultProgressEvery) from another goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Warn receives warnings; nil discards them.
	Warn func(msg string)

	key *sipKey // tests: a fixed cookie key instead of a random one
}

// Progress is a snapshot of a running scan.
type Progress struct {
	Pass    int    // 0 for the first pass, then 1..Retries
	Targets uint64 // targets of this shard to probe: skipped ones (Result.Skipped) are not counted
	Probed  uint64 // targets probed at least once
	Sent    uint64 // probes sent, retries included
	Replies uint64 // replies matched to a probe
	Found   uint64 // open ports so far
	Elapsed time.Duration
	Rate    float64       // probes per second over the last interval
	ETA     time.Duration // estimate of the time left, waits included
	// PassTargets and PassSent count a retry pass (Pass > 0) on its own: the targets still silent when it
	// began, and how many of them it has probed again.
	PassTargets, PassSent uint64
}

func (c *Config) normalize() (Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	bad := func(format string, args ...any) (Config, error) {
		return n, &probe.UsageError{Err: fmt.Errorf("scan: "+format, args...)}
	}
	if !n.Type.valid() {
		return bad("no scan type: want one of syn, ack, fin, null, xmas, window, maimon")
	}
	if len(n.Hosts) == 0 {
		return bad("no hosts: give an address, a name or a prefix such as 198.18.0.0/28 or 2001:2::/120")
	}
	if len(n.Ports) == 0 {
		return bad("no ports: give a list such as 22,80,443 or 1-1024")
	}
	switch {
	case n.Rate == 0:
		n.Rate = DefaultRate
	case n.Rate < 0 || n.Rate > MaxRate:
		return bad("rate %d: want 1 to %d probes per second", n.Rate, MaxRate)
	}
	if n.Retries < 0 || n.Retries > MaxRetries {
		return bad("retries %d: want 0 to %d", n.Retries, MaxRetries)
	}
	switch {
	case n.Wait == 0:
		n.Wait = DefaultWait
	case n.Wait < 0 || n.Wait > time.Hour:
		return bad("wait %v: want a positive duration up to an hour, e.g. 1s", n.Wait)
	}
	if err := n.Shard.validate(); err != nil {
		return bad("%v", err)
	}
	n.Shard = n.Shard.norm()
	switch {
	case n.SendPath == 0:
		n.SendPath = SendAuto
	case !n.SendPath.valid():
		return bad("send path %v: want one of %s", n.SendPath, strings.Join(SendPathNames(), ", "))
	}
	if n.Mark == 0 {
		n.Mark = probe.DefaultMark
	}
	if n.ProgressEvery <= 0 {
		n.ProgressEvery = DefaultProgressEvery
	}
	return n, nil
}

var errNoTargets = errors.New("scan: this shard has no targets: there are fewer targets than shards")
