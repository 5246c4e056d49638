package scan

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testServices = `# a table in nmap-services' format
ssh	22/tcp	0.18	# Secure Shell
ssh	22/udp	0.004
http	80/tcp	0.48
http	8008/tcp	0.0068
http-alt	8080/tcp	0.04
domain	53/udp	0.2
smtp	25/tcp	0.13
unranked	7000/tcp
`

func TestParseServices(t *testing.T) {
	s, err := ParseServices(strings.NewReader(testServices), "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Name(22); got != "ssh" {
		t.Errorf("Name(22) = %q, want ssh", got)
	}
	if got := s.Name(53); got != "" {
		t.Errorf("Name(53) = %q: a udp-only entry named a tcp port", got)
	}
	for _, tc := range []struct {
		n    int
		want []PortRange
	}{
		{1, []PortRange{{80, 80}}},
		{3, []PortRange{{22, 22}, {25, 25}, {80, 80}}},
		{100, []PortRange{{22, 22}, {25, 25}, {80, 80}, {7000, 7000}, {8008, 8008}, {8080, 8080}}},
	} {
		if d := cmp.Diff(tc.want, s.Top(tc.n)); d != "" {
			t.Errorf("Top(%d) (-want +got):\n%s", tc.n, d)
		}
	}
	for _, tc := range []struct {
		in   string
		want []PortRange
	}{
		{"http,ssh", []PortRange{{22, 22}, {80, 80}, {8008, 8008}}},
		{"HTTP*", []PortRange{{80, 80}, {8008, 8008}, {8080, 8080}}},
		{"ssh,1-3,443", []PortRange{{1, 3}, {22, 22}, {443, 443}}},
		{"1-10", []PortRange{{1, 10}}},
	} {
		got, err := ParsePortsNamed(tc.in, s)
		if err != nil {
			t.Errorf("ParsePortsNamed(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("ParsePortsNamed(%q) (-want +got):\n%s", tc.in, d)
		}
	}
	for _, bad := range []string{"nosuchservice", "domain", "ssh,0", "ssh,,80"} {
		if got, err := ParsePortsNamed(bad, s); err == nil {
			t.Errorf("ParsePortsNamed(%q) = %v, want an error", bad, got)
		}
	}
	for _, bad := range []string{"", "# only a comment\n", "ssh 22\n", "ssh 0/tcp 0.1\n", "ssh 22/tcp 2\n", "ssh x/tcp\n"} {
		if _, err := ParseServices(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("ParseServices(%q): no error", bad)
		}
	}
}

// The built-in table parses and ranks the ports every scanner looks at first.
func TestBuiltinServices(t *testing.T) {
	s := BuiltinServices()
	if s.Len() < 50 {
		t.Errorf("built-in table has %d ports, want at least 50", s.Len())
	}
	if d := cmp.Diff([]PortRange{{21, 23}, {80, 80}, {443, 443}}, s.Top(5)); d != "" {
		t.Errorf("Top(5) (-want +got):\n%s", d)
	}
	for port, name := range map[uint16]string{22: "ssh", 80: "http", 443: "https", 3389: "ms-wbt-server"} {
		if got := s.Name(port); got != name {
			t.Errorf("Name(%d) = %q, want %q", port, got, name)
		}
	}
}

// The system's table, when nmap is installed, is the one DefaultServices reads.
func TestSystemServices(t *testing.T) {
	if _, err := os.Stat(SystemServicesFile); err != nil {
		t.Skipf("no %s (nmap-common not installed): %v", SystemServicesFile, err)
	}
	s, err := DefaultServices()
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != SystemServicesFile || s.Len() < 1000 || s.Name(22) != "ssh" {
		t.Errorf("DefaultServices: source %s, %d ports, port 22 %q; want nmap's table", s.Source, s.Len(), s.Name(22))
	}
	if top := s.Top(1); len(top) != 1 || top[0].Lo != 80 {
		t.Errorf("Top(1) = %v, want port 80, nmap's most common", top)
	}
}
