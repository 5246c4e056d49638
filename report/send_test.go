package report

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
)

// A reply line writes addresses as tcpdump does, for both families:
// 198.18.0.2.80, and 2001:2::2.80 without brackets.
func TestReplyLineFamilies(t *testing.T) {
	for _, tt := range []struct {
		from, to, want string
	}{
		{"198.18.0.2:80", "198.18.0.1:61000", "198.18.0.2.80 > 198.18.0.1.61000: Flags [S.], seq 7, ack 8, win 100, length 0, ttl 64, rtt 1.500 ms"},
		{"[2001:2::2]:80", "[2001:2::1]:61000", "2001:2::2.80 > 2001:2::1.61000: Flags [S.], seq 7, ack 8, win 100, length 0, ttl 64, rtt 1.500 ms"},
	} {
		r := probe.Reply{Kind: probe.EventSegment, From: netip.MustParseAddrPort(tt.from), To: netip.MustParseAddrPort(tt.to),
			Flags: craft.FlagSYN | craft.FlagACK, Seq: 7, Ack: 8, Window: 100, TTL: 64, RTT: 1500 * time.Microsecond}
		if got := ReplyLine(r); got != tt.want {
			t.Errorf("ReplyLine:\n got %q\nwant %q", got, tt.want)
		}
	}
}
