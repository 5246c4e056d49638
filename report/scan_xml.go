package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcpwalk/tcpwalk/probe/scan"
)

// The XML output follows nmap's DTD (nmap.dtd, as Debian's nmap-common installs it at /usr/share/nmap/nmap.dtd)
// element for element, so that what reads nmap's -oX reads tcpwalk's: ndiff, nmap's XSL stylesheet, and the
// importers of inventory and vulnerability tools. The DTD admits only scanner="nmap"; the version attribute
// says it is tcpwalk. What nmap's format has no place for (the seed and shard of the scan, its counters) is
// in a comment holding the JSON summary line, which tcpwalk merge reads back.

// xmlSummaryTag starts the comment holding the JSON summary.
const xmlSummaryTag = "tcpwalk-summary "

// XMLVersion is the version attribute of tcpwalk's nmaprun element.
const XMLVersion = "tcpwalk"

type xmlNmapRun struct {
	XMLName          xml.Name    `xml:"nmaprun"`
	Scanner          string      `xml:"scanner,attr"`
	Args             string      `xml:"args,attr,omitempty"`
	Start            int64       `xml:"start,attr"`
	StartStr         string      `xml:"startstr,attr"`
	Version          string      `xml:"version,attr"`
	XMLOutputVersion string      `xml:"xmloutputversion,attr"`
	Comment          string      `xml:",comment"`
	ScanInfo         xmlScanInfo `xml:"scaninfo"`
	Verbose          xmlLevel    `xml:"verbose"`
	Debugging        xmlLevel    `xml:"debugging"`
	Hosts            []xmlHost   `xml:"host"`
	RunStats         xmlRunStats `xml:"runstats"`
}

type xmlScanInfo struct {
	Type        string `xml:"type,attr"`
	Protocol    string `xml:"protocol,attr"`
	NumServices int    `xml:"numservices,attr"`
	Services    string `xml:"services,attr"`
}

type xmlLevel struct {
	Level int `xml:"level,attr"`
}

type xmlHost struct {
	Comment string       `xml:"comment,attr,omitempty"`
	Status  xmlStatus    `xml:"status"`
	Address xmlAddress   `xml:"address"`
	Names   xmlHostnames `xml:"hostnames"`
	Ports   *xmlPorts    `xml:"ports"`
}

type xmlStatus struct {
	State     string `xml:"state,attr"`
	Reason    string `xml:"reason,attr"`
	ReasonTTL string `xml:"reason_ttl,attr"`
}

type xmlAddress struct {
	Addr     string `xml:"addr,attr"`
	AddrType string `xml:"addrtype,attr"`
}

type xmlHostnames struct{}

type xmlPorts struct {
	Extra []xmlExtraPorts `xml:"extraports"`
	Ports []xmlPort       `xml:"port"`
}

type xmlExtraPorts struct {
	State   string            `xml:"state,attr"`
	Count   uint64            `xml:"count,attr"`
	Reasons []xmlExtraReasons `xml:"extrareasons"`
}

type xmlExtraReasons struct {
	Reason string `xml:"reason,attr"`
	Count  uint64 `xml:"count,attr"`
	Proto  string `xml:"proto,attr"`
	Ports  string `xml:"ports,attr"`
}

type xmlPort struct {
	Protocol string      `xml:"protocol,attr"`
	PortID   uint16      `xml:"portid,attr"`
	State    xmlState    `xml:"state"`
	Service  *xmlService `xml:"service"`
}

type xmlState struct {
	State     string `xml:"state,attr"`
	Reason    string `xml:"reason,attr"`
	ReasonTTL string `xml:"reason_ttl,attr"`
	ReasonIP  string `xml:"reason_ip,attr,omitempty"`
}

type xmlService struct {
	Name   string `xml:"name,attr"`
	Method string `xml:"method,attr"`
	Conf   string `xml:"conf,attr"`
}

type xmlRunStats struct {
	Finished xmlFinished `xml:"finished"`
	Hosts    xmlHostsRun `xml:"hosts"`
}

type xmlFinished struct {
	Time     int64  `xml:"time,attr"`
	TimeStr  string `xml:"timestr,attr"`
	Elapsed  string `xml:"elapsed,attr"`
	Summary  string `xml:"summary,attr"`
	Exit     string `xml:"exit,attr"`
	ErrorMsg string `xml:"errormsg,attr,omitempty"`
}

type xmlHostsRun struct {
	Up    int `xml:"up,attr"`
	Down  int `xml:"down,attr"`
	Total int `xml:"total,attr"`
}

// icmpReasonNames are nmap's reason names of the ICMP errors a scan reads as filtered.
var icmpReasonNames = map[[2]uint8]string{
	{3, 0}: "net-unreach", {3, 1}: "host-unreach", {3, 2}: "proto-unreach", {3, 3}: "port-unreach",
	{3, 9}: "net-prohibited", {3, 10}: "host-prohibited", {3, 13}: "admin-prohibited", {11, 0}: "time-exceeded",
}

// icmp6ReasonNames are nmap's reason names of the ICMPv6 errors (RFC 4443 §3.1, §3.3) a scan reads as filtered.
var icmp6ReasonNames = map[[2]uint8]string{
	{1, 0}: "no-route", {1, 1}: "admin-prohibited", {1, 2}: "beyond-scope", {1, 3}: "host-unreach",
	{1, 4}: "port-unreach", {1, 6}: "reject-route", {3, 0}: "time-exceeded",
}

// xmlReason is nmap's name of a reason: syn-ack, reset, no-response, or the ICMP or ICMPv6 error's (host-unreach,
// admin-prohibited, time-exceeded, ...).
func xmlReason(r scan.Reason) string {
	if r.Kind != scan.ReasonICMP {
		return r.Kind.String()
	}
	names, timeEx, prefix := icmpReasonNames, uint8(11), "icmp-"
	if r.ICMPv6 {
		names, timeEx, prefix = icmp6ReasonNames, 3, "icmpv6-"
	}
	code := r.ICMPCode
	if r.ICMPType == timeEx {
		code = 0 // nmap names every time exceeded alike
	}
	if n, ok := names[[2]uint8{r.ICMPType, code}]; ok {
		return n
	}
	return prefix + strconv.Itoa(int(r.ICMPType)) + "-" + strconv.Itoa(int(code))
}

// addrType is nmap's addrtype of an address: ipv4 or ipv6.
func addrType(a netip.Addr) string {
	if a.Is6() {
		return "ipv6"
	}
	return "ipv4"
}

// ctime is C's ctime format, which nmap's startstr and timestr use.
const ctime = "Mon Jan _2 15:04:05 2006"

func (p *ScanPrinter) printXML(r *scan.Result, views []hostView, silent int) error {
	sum, err := json.Marshal(p.summary(r))
	if err != nil {
		return err
	}
	run := xmlNmapRun{Scanner: "nmap", Args: strings.Join(p.Args, " "), Start: r.Start.Unix(),
		StartStr: r.Start.Format(ctime), Version: XMLVersion, XMLOutputVersion: "1.05",
		// "--" may not appear in a comment; JSON can write "-" as \u002d.
		Comment:  " " + xmlSummaryTag + strings.ReplaceAll(string(sum), "--", `-\u002d`) + " ",
		ScanInfo: xmlScanInfo{Type: r.Type.String(), Protocol: "tcp", Services: scan.FormatPorts(r.Ports)}}
	for _, pr := range r.Ports {
		run.ScanInfo.NumServices += int(pr.Hi) - int(pr.Lo) + 1
	}
	up := 0
	for _, h := range r.HostResults() {
		if h.Status == scan.HostUp {
			up++
		}
	}
	for _, v := range views {
		h := xmlHost{Status: xmlStatus{State: v.status.String(), Reason: v.why.String(), ReasonTTL: "0"},
			Address: xmlAddress{Addr: v.addr.String(), AddrType: addrType(v.addr)}, Ports: &xmlPorts{}}
		for _, n := range v.notShown {
			e := xmlExtraPorts{State: n.state.String(), Count: n.count}
			for _, g := range n.groups {
				e.Reasons = append(e.Reasons, xmlExtraReasons{Reason: xmlReason(g.reason), Count: g.count, Proto: "tcp",
					Ports: scan.FormatPorts(g.ports)})
			}
			h.Ports.Extra = append(h.Ports.Extra, e)
		}
		for _, pr := range v.ports {
			x := xmlPort{Protocol: "tcp", PortID: pr.Port, State: xmlState{State: pr.State.String(),
				Reason: xmlReason(pr.Reason), ReasonTTL: "0"}}
			if pr.Reason.Kind == scan.ReasonICMP && pr.Reason.From.IsValid() {
				x.State.ReasonIP = pr.Reason.From.String()
			}
			if name := p.Services.Name(pr.Port); name != "" {
				x.Service = &xmlService{Name: name, Method: "table", Conf: "3"}
			}
			h.Ports.Ports = append(h.Ports.Ports, x)
		}
		run.Hosts = append(run.Hosts, h)
	}
	for _, sk := range r.Skipped {
		run.Hosts = append(run.Hosts, xmlHost{Comment: sk.Reason + "; TCP is unicast, a broadcast address gets no probe",
			Status:  xmlStatus{State: "skipped", Reason: "broadcast", ReasonTTL: "0"},
			Address: xmlAddress{Addr: sk.Addr.String(), AddrType: addrType(sk.Addr)}})
	}
	total := len(r.HostResults())
	elapsed := r.End.Sub(r.Start).Seconds()
	run.RunStats = xmlRunStats{
		Finished: xmlFinished{Time: r.End.Unix(), TimeStr: r.End.Format(ctime), Elapsed: fmt.Sprintf("%.2f", elapsed),
			Summary: fmt.Sprintf("tcpwalk done at %s; %d IP addresses (%d hosts up) scanned in %.2f seconds",
				r.End.Format(ctime), total, up, elapsed), Exit: "success"},
		Hosts: xmlHostsRun{Up: up, Down: total - up, Total: total}}
	if r.Interrupted {
		run.RunStats.Finished.Exit = "error"
		run.RunStats.Finished.ErrorMsg = fmt.Sprintf("interrupted: %d of %d targets probed; the results are partial", r.Probed, r.Targets)
	}
	out, err := xml.MarshalIndent(run, "", " ")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(p.W, xml.Header+"<!DOCTYPE nmaprun>\n"); err != nil {
		return err
	}
	if _, err := p.W.Write(out); err != nil {
		return err
	}
	_, err = io.WriteString(p.W, "\n")
	return err
}
