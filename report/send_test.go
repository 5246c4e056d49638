package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/send"
)

// TestSendSummaryCounts: counts of one read in the singular ("1 RSTs" was
// printed), of several in the plural.
func TestSendSummaryCounts(t *testing.T) {
	target := netip.MustParseAddrPort("198.18.0.2:7001")
	tests := []struct {
		res  send.Result
		want []string
	}{
		{send.Result{Target: target, Sent: 1, Replies: 1, Answered: 1, GuardDropped: 1},
			[]string{"1 probe sent, 1 answered, 1 reply, 0% without reply", "RST guard stopped 1 local-kernel RST\n"}},
		{send.Result{Target: target, Sent: 3, Replies: 2, Answered: 2, GuardDropped: 2},
			[]string{"3 probes sent, 2 answered, 2 replies, 33% without reply", "RST guard stopped 2 local-kernel RSTs\n"}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		(&SendPrinter{W: &b}).Summary(tt.res)
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("summary %q, want %q in it", b.String(), w)
			}
		}
	}
}

// TestSendLinesWrapOnATerminal: with a width (a terminal's), a reply line
// longer than it is broken after commas, no line wider than the width, and
// nothing lost; without one, each line stays whole.
func TestSendLinesWrapOnATerminal(t *testing.T) {
	r := send.Reply{Kind: probe.EventSegment, From: netip.MustParseAddrPort("198.18.0.2:7001"), To: netip.MustParseAddrPort("198.18.0.1:64035"),
		Flags: craft.FlagSYN | craft.FlagACK, Seq: 1195010318, Ack: 2114410853, Window: 65160,
		Options: []string{"mss 1460", "sackOK", "TS val 2612887981 ecr 2114410853", "nop", "wscale 7"}, TTL: 64, Probe: 1}
	whole := ReplyLine(r)
	if len(whole) <= 80 {
		t.Fatalf("the reply line is %d columns: too short to test wrapping", len(whole))
	}
	var b bytes.Buffer
	(&SendPrinter{W: &b, Width: 80}).Reply(r)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) < 2 {
		t.Errorf("one line of %d columns on an 80-column terminal: %q", len(lines[0]), lines[0])
	}
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
	joined := lines[0]
	for _, l := range lines[1:] {
		joined += " " + strings.TrimPrefix(l, "    ")
	}
	if joined != whole {
		t.Errorf("wrapped lines read %q, want %q", joined, whole)
	}
	b.Reset()
	(&SendPrinter{W: &b}).Reply(r)
	if b.String() != whole+"\n" {
		t.Errorf("without a width: %q, want the line whole", b.String())
	}
}

// A reply line writes addresses as tcpdump does, for both families:
// 198.18.0.2.80, and 2001:2::2.80 without brackets.
func TestReplyLineFamilies(t *testing.T) {
	for _, tt := range []struct {
		from, to, want string
	}{
		{"198.18.0.2:80", "198.18.0.1:61000", "198.18.0.2.80 > 198.18.0.1.61000: Flags [S.], seq 7, ack 8, win 100, length 0, ttl 64, rtt 1.500 ms"},
		{"[2001:2::2]:80", "[2001:2::1]:61000", "2001:2::2.80 > 2001:2::1.61000: Flags [S.], seq 7, ack 8, win 100, length 0, ttl 64, rtt 1.500 ms"},
	} {
		r := send.Reply{Kind: probe.EventSegment, From: netip.MustParseAddrPort(tt.from), To: netip.MustParseAddrPort(tt.to),
			Flags: craft.FlagSYN | craft.FlagACK, Seq: 7, Ack: 8, Window: 100, TTL: 64, RTT: 1500 * time.Microsecond}
		if got := ReplyLine(r); got != tt.want {
			t.Errorf("ReplyLine:\n got %q\nwant %q", got, tt.want)
		}
	}
}
