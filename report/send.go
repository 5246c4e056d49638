package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/send"
)

// SendPrinter prints a `tcpwalk send` run as it happens: one tcpdump-style
// line per segment, then a summary; or, with JSON, one object per line.
type SendPrinter struct {
	W    io.Writer
	JSON bool
	// Quiet hides our own probes and prints only replies and the summary.
	Quiet bool
}

// JSON field names are part of tcpwalk's interface (see README): do not
// rename them.
type jsonSent struct {
	Event   string   `json:"event"` // "sent"
	Probe   int      `json:"probe"`
	Time    string   `json:"time"`
	Src     string   `json:"src"`
	Dst     string   `json:"dst"`
	Flags   string   `json:"flags"`
	Seq     uint32   `json:"seq"`
	Ack     uint32   `json:"ack"`
	Len     int      `json:"len"`
	Options []string `json:"options,omitempty"`
}

type jsonReply struct {
	Event    string   `json:"event"` // "reply" or "icmp"
	Probe    int      `json:"probe"`
	Time     string   `json:"time"`
	RTTMs    float64  `json:"rtt_ms"`
	Src      string   `json:"src"`
	Dst      string   `json:"dst,omitempty"`
	Flags    string   `json:"flags,omitempty"`
	Seq      uint32   `json:"seq,omitempty"`
	Ack      uint32   `json:"ack,omitempty"`
	Win      uint16   `json:"win,omitempty"`
	Len      int      `json:"len"`
	TTL      uint8    `json:"ttl,omitempty"`
	Options  []string `json:"options,omitempty"`
	Retrans  bool     `json:"retransmission,omitempty"`
	ICMPType *uint8   `json:"icmp_type,omitempty"`
	ICMPCode *uint8   `json:"icmp_code,omitempty"`
	Verdict  string   `json:"verdict,omitempty"`
	Text     string   `json:"text,omitempty"`
}

type jsonSummary struct {
	Event        string  `json:"event"` // "summary"
	Target       string  `json:"target"`
	Sent         int     `json:"sent"`
	Replies      int     `json:"replies"`
	Answered     int     `json:"answered"`
	RTTMinMs     float64 `json:"rtt_min_ms"`
	RTTAvgMs     float64 `json:"rtt_avg_ms"`
	RTTMaxMs     float64 `json:"rtt_max_ms"`
	GuardDropped uint64  `json:"guard_dropped"`
	Malformed    uint64  `json:"malformed,omitempty"`
	Interrupted  bool    `json:"interrupted"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Sent prints one of our probes.
func (p *SendPrinter) Sent(s send.Probe) {
	if p.Quiet {
		return
	}
	if p.JSON {
		p.json(jsonSent{Event: "sent", Probe: s.Index, Time: stamp(s.At), Src: s.Local.String(), Dst: s.Remote.String(),
			Flags: s.Flags.String(), Seq: s.Seq, Ack: s.Ack, Len: s.Len, Options: s.Options})
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s > %s: Flags [%s], seq %d", dotted(s.Local.String()), dotted(s.Remote.String()), s.Flags, s.Seq)
	if s.Flags.Has(craft.FlagACK) || s.Ack != 0 {
		fmt.Fprintf(&b, ", ack %d", s.Ack)
	}
	if len(s.Options) > 0 {
		fmt.Fprintf(&b, ", options [%s]", strings.Join(s.Options, ","))
	}
	fmt.Fprintf(&b, ", length %d  (probe %d)\n", s.Len, s.Index)
	io.WriteString(p.W, b.String())
}

// Reply prints one reply: a segment, or an ICMP error about our probe.
func (p *SendPrinter) Reply(r send.Reply) {
	if p.JSON {
		j := jsonReply{Probe: r.Probe, Time: stamp(r.At), RTTMs: ms(r.RTT), Src: r.From.String()}
		if r.Kind == probe.EventICMP {
			t, c := r.ICMPType, r.ICMPCode
			j.Event, j.Src, j.ICMPType, j.ICMPCode = "icmp", r.From.Addr().String(), &t, &c
			j.Verdict, j.Text = "filtered", r.ICMPText
		} else {
			j.Event, j.Dst, j.Flags, j.Seq, j.Ack, j.Win = "reply", r.To.String(), r.Flags.String(), r.Seq, r.Ack, r.Window
			j.Len, j.TTL, j.Options, j.Retrans = r.Len, r.TTL, r.Options, r.Retransmission
		}
		p.json(j)
		return
	}
	io.WriteString(p.W, ReplyLine(r)+"\n")
}

// ReplyLine is a reply in tcpdump's words plus TTL and RTT.
func ReplyLine(r send.Reply) string {
	var b strings.Builder
	if r.Kind == probe.EventICMP {
		fmt.Fprintf(&b, "%s: filtered, %s (probe %d), rtt %.3f ms", r.From.Addr(), r.ICMPText, r.Probe, ms(r.RTT))
		return b.String()
	}
	fmt.Fprintf(&b, "%s > %s: Flags [%s], seq %d", dotted(r.From.String()), dotted(r.To.String()), r.Flags, r.Seq)
	if r.Flags.Has(craft.FlagACK) {
		fmt.Fprintf(&b, ", ack %d", r.Ack)
	}
	fmt.Fprintf(&b, ", win %d", r.Window)
	if len(r.Options) > 0 {
		fmt.Fprintf(&b, ", options [%s]", strings.Join(r.Options, ","))
	}
	fmt.Fprintf(&b, ", length %d, ttl %d, rtt %.3f ms", r.Len, r.TTL, ms(r.RTT))
	if r.Retransmission {
		b.WriteString(" (retransmission)")
	}
	return b.String()
}

// Summary prints the closing statistics.
func (p *SendPrinter) Summary(s send.Result) {
	if p.JSON {
		p.json(jsonSummary{Event: "summary", Target: s.Target.String(), Sent: s.Sent, Replies: s.Replies, Answered: s.Answered,
			RTTMinMs: ms(s.MinRTT), RTTAvgMs: ms(s.AvgRTT), RTTMaxMs: ms(s.MaxRTT), GuardDropped: s.GuardDropped, Malformed: s.Malformed, Interrupted: s.Interrupted})
		return
	}
	lost := 0
	if s.Sent > 0 {
		lost = 100 * (s.Sent - s.Answered) / s.Sent
	}
	fmt.Fprintf(p.W, "--- %s tcpwalk statistics ---\n", s.Target)
	fmt.Fprintf(p.W, "%d probes sent, %d answered, %d replies, %d%% without reply", s.Sent, s.Answered, s.Replies, lost)
	if s.Answered > 0 {
		fmt.Fprintf(p.W, ", rtt min/avg/max = %.3f/%.3f/%.3f ms", ms(s.MinRTT), ms(s.AvgRTT), ms(s.MaxRTT))
	}
	io.WriteString(p.W, "\n")
	if s.GuardDropped > 0 {
		fmt.Fprintf(p.W, "RST guard stopped %d local-kernel RSTs\n", s.GuardDropped)
	}
	if s.Malformed > 0 {
		fmt.Fprintf(p.W, "%d malformed replies dropped; the last: %s\n", s.Malformed, s.LastMalformed)
	}
	if s.Interrupted {
		io.WriteString(p.W, "interrupted: results above are partial\n")
	}
}

func (p *SendPrinter) json(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.W.Write(append(b, '\n'))
}

// dotted writes addr:port the way tcpdump does, addr.port.
func dotted(ap string) string {
	if i := strings.LastIndexByte(ap, ':'); i >= 0 {
		return ap[:i] + "." + ap[i+1:]
	}
	return ap
}
