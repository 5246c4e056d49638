package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// ScanFormat selects how a scan is printed.
type ScanFormat uint8

const (
	ScanText     ScanFormat = iota + 1 // nmap's normal output
	ScanJSON                           // one JSON object per line
	ScanGrepable                       // nmap's -oG: one line per host
	ScanXML                            // nmap's -oX: valid against nmap.dtd, read by ndiff and nmap's importers
)

// collapseOver is nmap's rule: more ports than this in one state are summed up in a "Not shown" line.
const collapseOver = 25

// ScanPrinter prints a scan result. Per host, ports in a state held by more than 25 ports are summed up ("Not
// shown: 65485 closed tcp ports (reset)") unless All; open ports are always listed. With several hosts, hosts
// that answered nothing at all are left out (as nmap leaves out hosts that are down) unless All.
type ScanPrinter struct {
	W      io.Writer
	Format ScanFormat
	Reason bool // text: add the REASON column (JSON and grepable always carry what they carry)
	Open   bool // list only ports that may be open: open, open|filtered, unfiltered (nmap --open)
	All    bool // list every port and every host
	// Args is the command line, for XML's nmaprun args (nil: none).
	Args []string
	// Services names the ports in XML's service elements (nil: no names).
	Services *scan.Services
}

// JSON field names are part of tcpwalk's interface (see README): do not rename them.
type jsonScanPort struct {
	Event    string `json:"event"` // "port"
	Host     string `json:"host"`
	Port     uint16 `json:"port"`
	Proto    string `json:"proto"` // "tcp"
	State    string `json:"state"`
	Reason   string `json:"reason"`
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	ICMPCode *uint8 `json:"icmp_code,omitempty"`
	ICMPFrom string `json:"icmp_from,omitempty"`
}

type jsonScanNotShown struct {
	Event   string            `json:"event"` // "not_shown"
	Host    string            `json:"host"`
	State   string            `json:"state"`
	Count   uint64            `json:"count"`
	Reason  string            `json:"reason"`  // the most common reason
	Reasons []jsonReasonGroup `json:"reasons"` // every reason, with its ports: tcpwalk merge reads them
}

// jsonReasonGroup is the ports of a not-shown state that got one reason.
type jsonReasonGroup struct {
	Reason   string `json:"reason"`
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	ICMPCode *uint8 `json:"icmp_code,omitempty"`
	Count    uint64 `json:"count"`
	Ports    string `json:"ports"` // as -p takes them: 1-21,23-79
}

// jsonScanHost is a host's status, as nmap's host discovery says: down hosts of a scan of several are not
// listed (unless --all).
type jsonScanHost struct {
	Event  string `json:"event"` // "host"
	Host   string `json:"host"`
	Status string `json:"status"` // "up" or "down"
	Reason string `json:"reason"` // syn-ack, reset, split-handshake-syn, icmp, arp-response or no-response
}

// jsonScanSkipped is a host that got no probe: a broadcast address where the scan ran.
type jsonScanSkipped struct {
	Event   string `json:"event"` // "skipped"
	Host    string `json:"host"`
	Reason  string `json:"reason"`
	Targets uint64 `json:"targets"` // this shard's targets (ports) at the host
}

type jsonScanSummary struct {
	Event        string            `json:"event"` // "summary"
	Type         string            `json:"type"`
	Hosts        []string          `json:"hosts"`
	Ports        string            `json:"ports"`
	Shard        string            `json:"shard"`
	Seed         uint64            `json:"seed"`
	Retries      int               `json:"retries"`
	Start        time.Time         `json:"start"`
	Source       string            `json:"source"`
	Targets      uint64            `json:"targets"`
	Probed       uint64            `json:"probed"`
	Skipped      uint64            `json:"skipped"` // targets at broadcast addresses, not probed
	Sent         uint64            `json:"sent"`
	Retried      uint64            `json:"retried"`
	Replies      uint64            `json:"replies"`
	Ignored      uint64            `json:"ignored"`
	States       map[string]uint64 `json:"states"`
	ElapsedMs    float64           `json:"elapsed_ms"`
	SendRatePPS  float64           `json:"send_rate_pps"`
	Rate         int               `json:"rate"`
	GuardDropped uint64            `json:"guard_dropped"`
	Interrupted  bool              `json:"interrupted"`
}

// hostView is what is printed for one host.
type hostView struct {
	addr     netip.Addr
	status   scan.HostStatus
	why      scan.ReasonKind // of the status
	ports    []scan.PortResult
	notShown []notShown
}

type notShown struct {
	state  scan.State
	count  uint64
	reason scan.ReasonKind // the most common
	groups []reasonGroup   // every reason, in port order of first use
}

// reasonGroup is the ports of a not-shown state with one reason (its From left out: a summary names no router).
type reasonGroup struct {
	reason scan.Reason
	ports  []scan.PortRange
	count  uint64
}

// add appends port to the group's ranges; ports come in order.
func (g *reasonGroup) add(port uint16) {
	g.count++
	if n := len(g.ports); n > 0 && uint32(g.ports[n-1].Hi)+1 == uint32(port) {
		g.ports[n-1].Hi = port
		return
	}
	g.ports = append(g.ports, scan.PortRange{Lo: port, Hi: port})
}

func (p *ScanPrinter) listed(st scan.State) bool {
	return !p.Open || st == scan.Open || st == scan.OpenFiltered || st == scan.Unfiltered
}

// views decides, per host, which ports are listed and which summed up.
func (p *ScanPrinter) views(r *scan.Result) (views []hostView, silent int) {
	hosts := r.HostResults()
	for _, h := range hosts {
		if h.Status == scan.HostDown && len(hosts) > 1 && !p.All {
			silent++
			continue
		}
		v := hostView{addr: h.Addr, status: h.Status, why: h.StatusReason}
		collapse := map[scan.State]int{} // state -> index in v.notShown + 1
		for _, st := range scan.States {
			n := h.Counts[st]
			if n == 0 {
				continue
			}
			if st != scan.Open && n > collapseOver && !p.All || !p.listed(st) {
				collapse[st] = len(v.notShown) + 1
				var best scan.ReasonKind
				for k, c := range h.Reasons[st] {
					if best == 0 || c > h.Reasons[st][best] || c == h.Reasons[st][best] && k < best {
						best = k
					}
				}
				v.notShown = append(v.notShown, notShown{state: st, count: n, reason: best})
			}
		}
		for pr := range r.PortResults(h.Addr) {
			i := collapse[pr.State]
			if i == 0 {
				v.ports = append(v.ports, pr)
				continue
			}
			ns := &v.notShown[i-1]
			why := pr.Reason
			why.From = netip.Addr{}
			j := slices.IndexFunc(ns.groups, func(g reasonGroup) bool { return g.reason == why })
			if j < 0 {
				ns.groups = append(ns.groups, reasonGroup{reason: why})
				j = len(ns.groups) - 1
			}
			ns.groups[j].add(pr.Port)
		}
		views = append(views, v)
	}
	return views, silent
}

// Print writes the whole result.
func (p *ScanPrinter) Print(r *scan.Result) error {
	views, silent := p.views(r)
	switch p.Format {
	case ScanJSON:
		return p.printJSON(r, views)
	case ScanGrepable:
		return p.printGrepable(r, views, silent)
	case ScanXML:
		return p.printXML(r, views, silent)
	}
	return p.printText(r, views, silent)
}

func hostsString(r *scan.Result) string { return scan.FormatHosts(r.Hosts) }

func (p *ScanPrinter) printText(r *scan.Result, views []hostView, silent int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpwalk %s scan of %s, ports %s, from %s (shard %s, seed %d)\n", r.Type, hostsString(r),
		scan.FormatPorts(r.Ports), r.Local, r.Shard, r.Seed)
	for _, v := range views {
		fmt.Fprintf(&b, "\nScan report for %s\n", v.addr)
		if v.status == scan.HostDown {
			b.WriteString("Host seems down: no reply to any probe, nor to ARP if it is on the link\n")
		} else {
			fmt.Fprintf(&b, "Host is up (%s).\n", v.why)
		}
		if len(v.notShown) > 0 {
			parts := make([]string, len(v.notShown))
			for i, n := range v.notShown {
				parts[i] = fmt.Sprintf("%d %s tcp ports (%s)", n.count, n.state, n.reason)
			}
			fmt.Fprintf(&b, "Not shown: %s\n", strings.Join(parts, ", "))
		}
		if len(v.ports) == 0 {
			continue
		}
		// nmap's columns: PORT STATE SERVICE REASON, the service named from the table (nmap-services).
		cols := []string{"PORT", "STATE"}
		if p.Services != nil {
			cols = append(cols, "SERVICE")
		}
		if p.Reason {
			cols = append(cols, "REASON")
		}
		widths := []int{9, 14, 15}
		row := func(vals []string) {
			for i, v := range vals {
				if i == len(vals)-1 {
					b.WriteString(v)
				} else {
					fmt.Fprintf(&b, "%-*s ", widths[i], v)
				}
			}
			b.WriteByte('\n')
		}
		row(cols)
		for _, pr := range v.ports {
			vals := []string{strconv.Itoa(int(pr.Port)) + "/tcp", pr.State.String()}
			if p.Services != nil {
				name := p.Services.Name(pr.Port)
				if name == "" {
					name = "unknown"
				}
				vals = append(vals, name)
			}
			if p.Reason {
				vals = append(vals, pr.Reason.String())
			}
			row(vals)
		}
	}
	if len(r.Skipped) > 0 {
		b.WriteByte('\n')
		for _, sk := range r.Skipped {
			if sk.Port != 0 {
				fmt.Fprintf(&b, "Skipped %s port %d: %s\n", sk.Addr, sk.Port, sk.Reason)
				continue
			}
			fmt.Fprintf(&b, "Skipped %s (%d tcp ports): %s; TCP is unicast, a broadcast address gets no probe\n",
				sk.Addr, sk.Targets, sk.Reason)
		}
	}
	for _, ns := range r.NotSent {
		fmt.Fprintf(&b, "Not sent: %d targets (the first %s): %s; reported filtered (not-sent)\n", ns.Targets, ns.First, ns.Reason)
	}
	b.WriteByte('\n')
	if silent > 0 {
		fmt.Fprintf(&b, "%d hosts answered no probe at all (not shown; --all lists them)\n", silent)
	}
	if r.Interrupted {
		fmt.Fprintf(&b, "Interrupted: %d of %d targets probed; the results are partial\n", r.Probed, r.Targets)
	}
	skipped := ""
	if r.SkippedTargets > 0 {
		skipped = fmt.Sprintf(" (%d skipped)", r.SkippedTargets)
	}
	fmt.Fprintf(&b, "Done: %d targets%s, %d probes (%d retried) in %s, %.0f probes/s while sending; %d replies, %d ignored; %d open\n",
		r.Targets, skipped, r.Sent, r.Retried, r.End.Sub(r.Start).Round(time.Millisecond), r.SendRate(), r.Replies, r.Ignored, r.Count(scan.Open))
	_, err := io.WriteString(p.W, b.String())
	return err
}

func (p *ScanPrinter) printJSON(r *scan.Result, views []hostView) error {
	enc := json.NewEncoder(p.W)
	for _, v := range views {
		if err := enc.Encode(jsonScanHost{Event: "host", Host: v.addr.String(), Status: v.status.String(), Reason: v.why.String()}); err != nil {
			return err
		}
		for _, pr := range v.ports {
			j := jsonScanPort{Event: "port", Host: pr.Addr.String(), Port: pr.Port, Proto: "tcp", State: pr.State.String(),
				Reason: pr.Reason.Kind.String()}
			if pr.Reason.Kind == scan.ReasonICMP {
				t, c := pr.Reason.ICMPType, pr.Reason.ICMPCode
				j.ICMPType, j.ICMPCode = &t, &c
				if pr.Reason.From.IsValid() {
					j.ICMPFrom = pr.Reason.From.String()
				}
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
		}
		for _, n := range v.notShown {
			groups := make([]jsonReasonGroup, len(n.groups))
			for i, g := range n.groups {
				groups[i] = jsonReasonGroup{Reason: g.reason.Kind.String(), Count: g.count, Ports: scan.FormatPorts(g.ports)}
				if g.reason.Kind == scan.ReasonICMP {
					t, c := g.reason.ICMPType, g.reason.ICMPCode
					groups[i].ICMPType, groups[i].ICMPCode = &t, &c
				}
			}
			if err := enc.Encode(jsonScanNotShown{Event: "not_shown", Host: v.addr.String(), State: n.state.String(),
				Count: n.count, Reason: n.reason.String(), Reasons: groups}); err != nil {
				return err
			}
		}
	}
	for _, sk := range r.Skipped {
		if err := enc.Encode(jsonScanSkipped{Event: "skipped", Host: sk.Addr.String(), Reason: sk.Reason, Targets: sk.Targets}); err != nil {
			return err
		}
	}
	return enc.Encode(p.summary(r))
}

// summary is the JSON summary line, also carried in a comment of the XML output for tcpwalk merge.
func (p *ScanPrinter) summary(r *scan.Result) jsonScanSummary {
	states := map[string]uint64{}
	for _, h := range r.HostResults() {
		for st, n := range h.Counts {
			states[st.String()] += n
		}
	}
	hosts := make([]string, len(r.Hosts))
	for i, h := range r.Hosts {
		hosts[i] = h.String()
	}
	return jsonScanSummary{Event: "summary", Type: r.Type.String(), Hosts: hosts, Ports: scan.FormatPorts(r.Ports),
		Shard: r.Shard.String(), Seed: r.Seed, Retries: r.Retries, Start: r.Start.UTC(), Source: r.Local.String(), Targets: r.Targets, Probed: r.Probed, Skipped: r.SkippedTargets, Sent: r.Sent,
		Retried: r.Retried, Replies: r.Replies, Ignored: r.Ignored, States: states,
		ElapsedMs: ms(r.End.Sub(r.Start)), SendRatePPS: float64(int64(r.SendRate())), Rate: r.Rate,
		GuardDropped: r.GuardDropped, Interrupted: r.Interrupted}
}

// printGrepable writes nmap's -oG lines: "Host: ADDR ()<TAB>Ports: 22/open/tcp/////, ...<TAB>Ignored State:
// closed (65485)".
func (p *ScanPrinter) printGrepable(r *scan.Result, views []hostView, silent int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# tcpwalk %s scan of %s, ports %s, shard %s, seed %d, started %s\n", r.Type, hostsString(r),
		scan.FormatPorts(r.Ports), r.Shard, r.Seed, r.Start.UTC().Format(time.RFC3339))
	for _, v := range views {
		fmt.Fprintf(&b, "Host: %s ()\tStatus: %s\n", v.addr, upper1(v.status.String()))
		fmt.Fprintf(&b, "Host: %s ()", v.addr)
		if len(v.ports) > 0 {
			parts := make([]string, len(v.ports))
			for i, pr := range v.ports {
				parts[i] = fmt.Sprintf("%d/%s/tcp/////", pr.Port, pr.State)
			}
			b.WriteString("\tPorts: " + strings.Join(parts, ", "))
		}
		if len(v.notShown) > 0 {
			ns := slices.Clone(v.notShown)
			parts := make([]string, len(ns))
			for i, n := range ns {
				parts[i] = fmt.Sprintf("%s (%d)", n.state, n.count)
			}
			b.WriteString("\tIgnored State: " + strings.Join(parts, ", "))
		}
		b.WriteByte('\n')
	}
	for _, sk := range r.Skipped {
		fmt.Fprintf(&b, "Host: %s ()\tStatus: Skipped\tReason: %s\n", sk.Addr, sk.Reason)
	}
	status := "done"
	if r.Interrupted {
		status = "interrupted"
	}
	skipped := ""
	if r.SkippedTargets > 0 {
		skipped = fmt.Sprintf(", %d skipped", r.SkippedTargets)
	}
	fmt.Fprintf(&b, "# tcpwalk %s: %d targets, %d probed, %d open, %d silent hosts%s, in %.2f s\n", status, r.Targets,
		r.Probed, r.Count(scan.Open), silent, skipped, r.End.Sub(r.Start).Seconds())
	_, err := io.WriteString(p.W, b.String())
	return err
}

// upper1 capitalises the first letter, as nmap's grepable "Status: Up".
func upper1(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
