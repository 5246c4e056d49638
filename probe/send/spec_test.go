package send_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tcpwalk/tcpwalk/probe/send"
)

// send's IPv4-only and IPv6-only fields are refused on the other family.
func TestSendSpecFamilies(t *testing.T) {
	v6 := netip.MustParseAddrPort("[2001:2::2]:80")
	v4 := netip.MustParseAddrPort("198.18.0.2:80")
	for _, tt := range []struct {
		name string
		spec send.Spec
		want string
	}{
		{"DF over IPv6", send.Spec{Target: v6, DF: true}, "no IP identification or don't-fragment bit"},
		{"ID over IPv6", send.Spec{Target: v6, ID: 7}, "drop --id and --df"},
		{"flow label over IPv4", send.Spec{Target: v4, FlowLabel: 1}, "--flow-label is IPv6 only"},
		{"flow label over 20 bits", send.Spec{Target: v6, FlowLabel: 0x100000}, "want 0 to 0xfffff"},
		{"IP options over IPv6", send.Spec{Target: v6, IPOptions: []byte{1, 1, 1, 1}}, "IP options are IPv4's"},
		{"fragments over IPv6", send.Spec{Target: v6, FragSize: 8}, "--frag cuts IPv4 datagrams"},
	} {
		err := tt.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v; want an error saying %q", tt.name, err, tt.want)
		}
	}
	ok := send.Spec{Target: v6, FlowLabel: 0xfffff, TTL: 3}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
}
