package report

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// maxScanOutput bounds what ReadScan reads: a shard's output with every port of a /16 listed is far smaller.
const maxScanOutput = 1 << 30

// ReadScan reads back a scan output that tcpwalk wrote, JSON lines (--json) or nmap XML (-oX), for tcpwalk merge.
// name is the file's name, for errors. Text and grepable outputs sum ports up without saying which, so they
// cannot be merged.
func ReadScan(r io.Reader, name string) (scan.Part, error) {
	br := bufio.NewReader(io.LimitReader(r, maxScanOutput))
	for {
		b, err := br.Peek(1)
		if err != nil {
			return scan.Part{}, fmt.Errorf("%s: empty: not a tcpwalk scan output", name)
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
			continue
		case '{':
			return readScanJSON(br, name)
		case '<':
			return readScanXML(br, name)
		}
		return scan.Part{}, fmt.Errorf("%s: neither JSON lines (scan --json) nor XML (scan -oX): text and grepable outputs cannot be merged", name)
	}
}

// partFromSummary fills a part from the JSON summary line, in either format.
func partFromSummary(p *scan.Part, s *jsonScanSummary) error {
	var err error
	if p.Type, err = scan.ParseType(s.Type); err != nil {
		return err
	}
	for _, h := range s.Hosts {
		pf, err := netip.ParsePrefix(h)
		if err != nil {
			return fmt.Errorf("summary host %q: %v", h, err)
		}
		p.Hosts = append(p.Hosts, pf)
	}
	if p.Ports, err = scan.ParsePorts(s.Ports); err != nil {
		return fmt.Errorf("summary ports: %v", err)
	}
	if p.Shard, err = scan.ParseShard(s.Shard); err != nil {
		return fmt.Errorf("summary shard: %v", err)
	}
	if s.Source != "" {
		if p.Local, err = netip.ParseAddrPort(s.Source); err != nil {
			return fmt.Errorf("summary source: %v", err)
		}
	}
	p.Seed, p.Retries, p.Rate = s.Seed, s.Retries, s.Rate
	p.Targets, p.Probed, p.SkippedTargets = s.Targets, s.Probed, s.Skipped
	p.Sent, p.Retried, p.Replies, p.Ignored, p.Dropped = s.Sent, s.Retried, s.Replies, s.Ignored, s.GuardDropped
	p.Start = s.Start
	p.End = s.Start.Add(time.Duration(s.ElapsedMs * float64(time.Millisecond)))
	if s.SendRatePPS > 0 {
		p.SendTime = time.Duration(float64(s.Sent) / s.SendRatePPS * float64(time.Second))
	}
	p.Interrupted = s.Interrupted
	return nil
}

func readScanJSON(r io.Reader, name string) (scan.Part, error) {
	p := scan.Part{Name: name}
	dec := json.NewDecoder(r)
	var summary bool
	for line := 1; ; line++ {
		var ev struct {
			jsonScanSummary
			Host     string            `json:"host"`
			Port     uint16            `json:"port"`
			State    string            `json:"state"`
			Status   string            `json:"status"`
			Reason   string            `json:"reason"`
			ICMPType *uint8            `json:"icmp_type"`
			ICMPCode *uint8            `json:"icmp_code"`
			ICMPFrom string            `json:"icmp_from"`
			Reasons  []jsonReasonGroup `json:"reasons"`
		}
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		bad := func(err error) (scan.Part, error) {
			return scan.Part{}, fmt.Errorf("%s: object %d: %v", name, line, err)
		}
		if err != nil {
			return bad(err)
		}
		var host netip.Addr
		if ev.Host != "" {
			if host, err = netip.ParseAddr(ev.Host); err != nil {
				return bad(err)
			}
		}
		switch ev.Event {
		case "summary":
			if err := partFromSummary(&p, &ev.jsonScanSummary); err != nil {
				return bad(err)
			}
			summary = true
		case "host":
			if ev.Status == "up" && ev.Reason == scan.ReasonARP.String() {
				p.ARPUp = append(p.ARPUp, host)
			}
		case "port":
			v := scan.Verdicts{Addr: host, Ports: []scan.PortRange{{Lo: ev.Port, Hi: ev.Port}}}
			if v.State, err = scan.ParseState(ev.State); err != nil {
				return bad(err)
			}
			if v.Reason, err = jsonReason(ev.Reason, ev.ICMPType, ev.ICMPCode, host.Is6()); err != nil {
				return bad(err)
			}
			if ev.ICMPFrom != "" {
				if v.Reason.From, err = netip.ParseAddr(ev.ICMPFrom); err != nil {
					return bad(err)
				}
			}
			p.Verdicts = append(p.Verdicts, v)
		case "not_shown":
			st, err := scan.ParseState(ev.State)
			if err != nil {
				return bad(err)
			}
			if ev.Reasons == nil {
				return bad(errors.New("not_shown without its reasons and ports: written by an older tcpwalk, which cannot be merged"))
			}
			for _, g := range ev.Reasons {
				v := scan.Verdicts{Addr: host, State: st}
				if v.Reason, err = jsonReason(g.Reason, g.ICMPType, g.ICMPCode, host.Is6()); err != nil {
					return bad(err)
				}
				if v.Ports, err = scan.ParsePorts(g.Ports); err != nil {
					return bad(err)
				}
				p.Verdicts = append(p.Verdicts, v)
			}
		case "skipped":
			p.Skipped = append(p.Skipped, scan.SkippedHost{Addr: host, Reason: ev.Reason})
		default:
			return bad(fmt.Errorf("unknown event %q: not a scan --json output", ev.Event))
		}
	}
	if !summary {
		return scan.Part{}, fmt.Errorf("%s: no summary line: not a complete scan --json output", name)
	}
	return p, nil
}

// jsonReason reads a reason back; v6 says the host is IPv6, so its ICMP type and code are ICMPv6's.
func jsonReason(kind string, typ, code *uint8, v6 bool) (scan.Reason, error) {
	k, err := scan.ParseReasonKind(kind)
	if err != nil {
		return scan.Reason{}, err
	}
	r := scan.Reason{Kind: k}
	if k == scan.ReasonICMP {
		if typ == nil || code == nil {
			return r, errors.New("an icmp reason without icmp_type and icmp_code")
		}
		r.ICMPType, r.ICMPCode, r.ICMPv6 = *typ, *code, v6
	}
	return r, nil
}

// parseXMLReason reads nmap's reason names back (see xmlReason); v6 says the host is IPv6.
func parseXMLReason(s string, v6 bool) (scan.Reason, error) {
	names, prefix := icmpReasonNames, "icmp-%d-%d"
	if v6 {
		names, prefix = icmp6ReasonNames, "icmpv6-%d-%d"
	}
	for tc, n := range names {
		if n == s {
			return scan.Reason{Kind: scan.ReasonICMP, ICMPType: tc[0], ICMPCode: tc[1], ICMPv6: v6}, nil
		}
	}
	var t, c uint8
	if _, err := fmt.Sscanf(s, prefix, &t, &c); err == nil {
		return scan.Reason{Kind: scan.ReasonICMP, ICMPType: t, ICMPCode: c, ICMPv6: v6}, nil
	}
	k, err := scan.ParseReasonKind(s)
	return scan.Reason{Kind: k}, err
}

func readScanXML(r io.Reader, name string) (scan.Part, error) {
	p := scan.Part{Name: name}
	var run xmlNmapRun
	if err := xml.NewDecoder(r).Decode(&run); err != nil {
		return p, fmt.Errorf("%s: not nmap XML: %v", name, err)
	}
	bad := func(format string, args ...any) (scan.Part, error) {
		return scan.Part{}, fmt.Errorf("%s: "+format, append([]any{name}, args...)...)
	}
	i := strings.Index(run.Comment, xmlSummaryTag)
	if run.Version != XMLVersion || i < 0 {
		return bad("nmap XML without tcpwalk's summary comment: only tcpwalk's own -oX outputs can be merged")
	}
	var sum jsonScanSummary
	if err := json.Unmarshal([]byte(strings.TrimSpace(run.Comment[i+len(xmlSummaryTag):])), &sum); err != nil {
		return bad("the summary comment: %v", err)
	}
	if err := partFromSummary(&p, &sum); err != nil {
		return bad("%v", err)
	}
	for _, h := range run.Hosts {
		addr, err := netip.ParseAddr(h.Address.Addr)
		if err != nil {
			return bad("host address: %v", err)
		}
		switch h.Status.State {
		case "skipped":
			reason, _, _ := strings.Cut(h.Comment, "; TCP is unicast")
			p.Skipped = append(p.Skipped, scan.SkippedHost{Addr: addr, Reason: reason})
			continue
		case "up":
			if h.Status.Reason == scan.ReasonARP.String() {
				p.ARPUp = append(p.ARPUp, addr)
			}
		}
		if h.Ports == nil {
			continue
		}
		for _, e := range h.Ports.Extra {
			st, err := scan.ParseState(e.State)
			if err != nil {
				return bad("host %s: %v", addr, err)
			}
			for _, g := range e.Reasons {
				v := scan.Verdicts{Addr: addr, State: st}
				if v.Reason, err = parseXMLReason(g.Reason, addr.Is6()); err != nil {
					return bad("host %s: %v", addr, err)
				}
				if g.Ports == "" {
					return bad("host %s: extrareasons without ports: cannot say which ports are %s", addr, st)
				}
				if v.Ports, err = scan.ParsePorts(g.Ports); err != nil {
					return bad("host %s: %v", addr, err)
				}
				p.Verdicts = append(p.Verdicts, v)
			}
		}
		for _, x := range h.Ports.Ports {
			v := scan.Verdicts{Addr: addr, Ports: []scan.PortRange{{Lo: x.PortID, Hi: x.PortID}}}
			if v.State, err = scan.ParseState(x.State.State); err != nil {
				return bad("host %s port %d: %v", addr, x.PortID, err)
			}
			if v.Reason, err = parseXMLReason(x.State.Reason, addr.Is6()); err != nil {
				return bad("host %s port %d: %v", addr, x.PortID, err)
			}
			if x.State.ReasonIP != "" {
				if v.Reason.From, err = netip.ParseAddr(x.State.ReasonIP); err != nil {
					return bad("host %s port %d: %v", addr, x.PortID, err)
				}
			}
			p.Verdicts = append(p.Verdicts, v)
		}
	}
	return p, nil
}
