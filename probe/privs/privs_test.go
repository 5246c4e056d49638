package privs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const statusRoot = `Name:	cat
Umask:	0022
State:	R (running)
CapInh:	0000000000000000
CapPrm:	000001ffffffffff
CapEff:	000001ffffffffff
CapBnd:	000001ffffffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
`

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    uint64
		wantErr bool
	}{
		{name: "root", status: statusRoot, want: 0x1ffffffffff},
		{name: "setcap raw+admin", status: "CapPrm:\t0000000000003000\nCapEff:\t0000000000003000\n", want: 0x3000},
		{name: "none", status: "CapEff:\t0000000000000000\n", want: 0},
		{name: "no line", status: "Name:\tx\nCapPrm:\t0000000000003000\n", wantErr: true},
		{name: "not hex", status: "CapEff:\tzz\n", wantErr: true},
		{name: "empty", status: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCapEff(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCapEff() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseCapEff() = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name      string
		eff       uint64
		needAdmin bool
		want      []Cap
	}{
		{name: "root", eff: 0x1ffffffffff, needAdmin: true},
		{name: "raw only, no guard", eff: 1 << 13, needAdmin: false},
		{name: "raw only, guard", eff: 1 << 13, needAdmin: true, want: []Cap{CapNetAdmin}},
		{name: "admin only", eff: 1 << 12, needAdmin: true, want: []Cap{CapNetRaw}},
		{name: "nothing", eff: 0, needAdmin: true, want: []Cap{CapNetRaw, CapNetAdmin}},
		{name: "nothing, no guard", eff: 0, needAdmin: false, want: []Cap{CapNetRaw}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Missing(tt.eff, tt.needAdmin)); diff != "" {
				t.Errorf("Missing(%#x, %v) (-want +got):\n%s", tt.eff, tt.needAdmin, diff)
			}
		})
	}
}

func TestCheckError(t *testing.T) {
	err := check(0, true)
	if !errors.Is(err, ErrPrivileges) {
		t.Fatalf("check(0) = %v, want an error wrapping ErrPrivileges", err)
	}
	want := "missing CAP_NET_RAW (raw sockets): run as root, or: sudo setcap cap_net_raw,cap_net_admin+ep $(command -v tcpwalk)\n" +
		"missing CAP_NET_ADMIN (nftables RST guard and SO_MARK): run as root, or: sudo setcap cap_net_raw,cap_net_admin+ep $(command -v tcpwalk)"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error text (-want +got):\n%s", diff)
	}
	if err := check(1<<12|1<<13, true); err != nil {
		t.Errorf("check(raw|admin) = %v, want nil", err)
	}
}

// TestCheckLive runs Check against this process: as root it must pass.
func TestCheckLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: Check is expected to report missing capabilities")
	}
	if err := Check(true); err != nil {
		t.Errorf("Check(true) as root = %v, want nil", err)
	}
}

// TestCanEnterNSLive runs CanEnterNS against this process: as root (CapEff
// holds CAP_SYS_ADMIN) it must say yes, and the capability is named.
func TestCanEnterNSLive(t *testing.T) {
	if CapSysAdmin.String() != "CAP_SYS_ADMIN" {
		t.Errorf("CapSysAdmin.String() = %q, want CAP_SYS_ADMIN", CapSysAdmin)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: CanEnterNS may rightly say no")
	}
	if !CanEnterNS() {
		t.Errorf("CanEnterNS() as root = false, want true")
	}
}
