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
	// Width, when nonzero (a terminal's columns), wraps a longer probe or
	// reply line after one of its commas, the rest indented: an 80-column
	// terminal would cut it anywhere. Zero writes each on one line, for
	// grep and files.
	Width int
}

// writeLine writes one probe or reply line (without its newline), wrapped
// to p.Width.
func (p *SendPrinter) writeLine(s string) {
	if p.Width <= 0 || runeLen(s) <= p.Width {
		io.WriteString(p.W, s+"\n")
		return
	}
	const indent = "    "
	var b strings.Builder
	cur := ""
	for i, part := range strings.SplitAfter(s, ", ") {
		if i > 0 && runeLen(cur)+runeLen(strings.TrimRight(part, " ")) > p.Width {
			b.WriteString(strings.TrimRight(cur, " ") + "\n")
			cur = indent
		}
		cur += part
	}
	b.WriteString(cur + "\n")
	io.WriteString(p.W, b.String())
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
	// Fragments: how many IP fragments carried the probe (omitted when
	// it was not fragmented).
	Fragments int `json:"fragments,omitempty"`
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
	// A flood's time from the first probe to the last, and its rate.
	FloodMs   float64 `json:"flood_ms,omitempty"`
	FloodRate float64 `json:"flood_rate,omitempty"`
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
			Flags: s.Flags.String(), Seq: s.Seq, Ack: s.Ack, Len: s.Len, Options: s.Options, Fragments: s.Fragments})
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
	if s.Fragments > 0 {
		fmt.Fprintf(&b, ", length %d  (probe %d, in %d IP fragments)", s.Len, s.Index, s.Fragments)
	} else {
		fmt.Fprintf(&b, ", length %d  (probe %d)", s.Len, s.Index)
	}
	p.writeLine(b.String())
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
	p.writeLine(ReplyLine(r))
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
			RTTMinMs: ms(s.MinRTT), RTTAvgMs: ms(s.AvgRTT), RTTMaxMs: ms(s.MaxRTT), GuardDropped: s.GuardDropped, Malformed: s.Malformed, Interrupted: s.Interrupted,
			FloodMs: floodMs(s), FloodRate: floodRate(s)})
		return
	}
	lost := 0
	if s.Sent > 0 {
		lost = 100 * (s.Sent - s.Answered) / s.Sent
	}
	fmt.Fprintf(p.W, "--- %s tcpwalk statistics ---\n", s.Target)
	fmt.Fprintf(p.W, "%s sent, %d answered, %s, %d%% without reply", plural(s.Sent, "probe"), s.Answered, pluralReplies(s.Replies), lost)
	if s.Answered > 0 {
		fmt.Fprintf(p.W, ", rtt min/avg/max = %.3f/%.3f/%.3f ms", ms(s.MinRTT), ms(s.AvgRTT), ms(s.MaxRTT))
	}
	io.WriteString(p.W, "\n")
	if s.Flood {
		fmt.Fprintf(p.W, "flood: %d probes in %.3f s, %.0f per second\n", s.Sent, s.Elapsed.Seconds(), floodRate(s))
	}
	if s.GuardDropped > 0 {
		fmt.Fprintf(p.W, "RST guard stopped %s\n", plural(int(s.GuardDropped), "local-kernel RST"))
	}
	if s.Malformed > 0 {
		fmt.Fprintf(p.W, "%d malformed replies dropped; the last: %s\n", s.Malformed, s.LastMalformed)
	}
	if s.Interrupted {
		io.WriteString(p.W, "interrupted: results above are partial\n")
	}
}

// floodMs and floodRate are a flood's length and its probes per second,
// counted between the first probe and the last; zero when not a flood.
func floodMs(s send.Result) float64 {
	if !s.Flood {
		return 0
	}
	return ms(s.Elapsed)
}

func floodRate(s send.Result) float64 {
	if !s.Flood || s.Sent < 2 || s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent-1) / s.Elapsed.Seconds()
}

func (p *SendPrinter) json(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.W.Write(append(b, '\n'))
}

// dotted writes addr:port the way tcpdump does, addr.port; an IPv6
// "[addr]:port" loses its brackets too (tcpdump: 2001:2::1.80).
func dotted(ap string) string {
	if i := strings.LastIndexByte(ap, ':'); i >= 0 {
		host := strings.TrimSuffix(strings.TrimPrefix(ap[:i], "["), "]")
		return host + "." + ap[i+1:]
	}
	return ap
}

// pluralReplies writes "1 reply" or "n replies".
func pluralReplies(n int) string {
	if n == 1 {
		return "1 reply"
	}
	return fmt.Sprintf("%d replies", n)
}
