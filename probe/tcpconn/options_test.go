package tcpconn

import (
	"net/netip"
	"testing"
)

// The MSS follows the family: 1460 over IPv4, 1440 over IPv6 (RFC 8200
// §8.3: the MTU less 60), and a SYN without an MSS option means 536 over
// IPv4 (RFC 9293 §3.7.1) and 1220 over IPv6 (RFC 8200 §8.3).
func TestMSSByFamily(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:2::2")
	if got := DefaultMSSFor(v4); got != 1460 {
		t.Errorf("DefaultMSSFor(%v) = %d, want 1460", v4, got)
	}
	if got := DefaultMSSFor(v6); got != 1440 {
		t.Errorf("DefaultMSSFor(%v) = %d, want 1440", v6, got)
	}
	if o := LinuxOfferFor(v6); o.MSS != 1440 || !o.SACKPermitted || !o.Timestamps || o.WindowShift != 7 {
		t.Errorf("LinuxOfferFor(%v) = %+v, want LinuxOffer with MSS 1440", v6, o)
	}
	for _, tt := range []struct {
		a    netip.Addr
		want uint16
	}{{v4, 536}, {v6, 1220}} {
		if n := negotiate(LinuxOffer, Offer{}, defaultSendMSSFor(tt.a)); n.SendMSS != tt.want {
			t.Errorf("no MSS option from %v: SendMSS %d, want %d", tt.a, n.SendMSS, tt.want)
		}
	}
}
