package report

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe"
)

// TestSendSummaryCounts: counts of one read in the singular ("1 RSTs" was
// printed), of several in the plural.
func TestSendSummaryCounts(t *testing.T) {
	target := netip.MustParseAddrPort("198.18.0.2:7001")
	tests := []struct {
		res  probe.SendResult
		want []string
	}{
		{probe.SendResult{Target: target, Sent: 1, Replies: 1, Answered: 1, GuardDropped: 1},
			[]string{"1 probe sent, 1 answered, 1 reply, 0% without reply", "RST guard stopped 1 local-kernel RST\n"}},
		{probe.SendResult{Target: target, Sent: 3, Replies: 2, Answered: 2, GuardDropped: 2},
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
