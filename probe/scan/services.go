package scan

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tcpwalk/tcpwalk/probe"
)

// SystemServicesFile is where Debian's nmap-common installs nmap's service
// table, which names ports and says how often each is found open.
const SystemServicesFile = "/usr/share/nmap/nmap-services"

// builtinServices is tcpwalk's own small table, in the same format, for
// machines without nmap (see the file's header).
//
//go:embed services.txt
var builtinServices string

// Service is one TCP entry of a service table.
type Service struct {
	Name string
	Port uint16
	Freq float64 // how often the port is found open, 0 to 1
}

// Services is a TCP service table: names for ports, ports for names, and the
// ports ranked by how often they are open (--top-ports).
type Services struct {
	Source  string    // the file read, or "tcpwalk's built-in table"
	ranked  []Service // by frequency, most common first; ties by port
	byPort  map[uint16]string
	byName  map[string][]uint16
	maxName int
}

// ParseServices reads a table in nmap-services' format: "name port/proto
// frequency [# comment]" per line; lines of other protocols than tcp are
// skipped, as are comments. A missing frequency counts as 0.
func ParseServices(r io.Reader, source string) (*Services, error) {
	s := &Services{Source: source, byPort: map[uint16]string{}, byName: map[string][]uint16{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("service table %s line %d %q: %s", source, line, sc.Text(), why)
		}
		if len(f) < 2 {
			return nil, bad("want name, port/protocol and frequency")
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			return nil, bad("want port/protocol, e.g. 22/tcp")
		}
		if proto != "tcp" {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, bad("port is not 1 to 65535")
		}
		var freq float64
		if len(f) > 2 {
			if freq, err = strconv.ParseFloat(f[2], 64); err != nil || freq < 0 || freq > 1 {
				return nil, bad("frequency is not a number from 0 to 1")
			}
		}
		name := strings.ToLower(f[0])
		if _, dup := s.byPort[uint16(p)]; dup {
			continue // the first entry names a port, as nmap reads its table
		}
		s.byPort[uint16(p)] = name
		s.byName[name] = append(s.byName[name], uint16(p))
		s.ranked = append(s.ranked, Service{Name: name, Port: uint16(p), Freq: freq})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read service table %s: %w", source, err)
	}
	if len(s.ranked) == 0 {
		return nil, fmt.Errorf("service table %s has no tcp entries", source)
	}
	slices.SortStableFunc(s.ranked, func(a, b Service) int {
		switch {
		case a.Freq > b.Freq:
			return -1
		case a.Freq < b.Freq:
			return 1
		}
		return int(a.Port) - int(b.Port)
	})
	for _, ps := range s.byName {
		slices.Sort(ps)
	}
	return s, nil
}

var (
	servicesOnce sync.Once
	services     *Services
	servicesErr  error
)

// DefaultServices returns the system's nmap-services table when there is
// one, else tcpwalk's built-in table. It is read once.
func DefaultServices() (*Services, error) {
	servicesOnce.Do(func() {
		f, err := os.Open(SystemServicesFile)
		if err == nil {
			defer f.Close()
			services, servicesErr = ParseServices(f, SystemServicesFile)
			return
		}
		if !errors.Is(err, os.ErrNotExist) {
			servicesErr = fmt.Errorf("open the service table: %w", err)
			return
		}
		services, servicesErr = BuiltinServices(), nil
	})
	return services, servicesErr
}

// BuiltinServices returns tcpwalk's own table.
func BuiltinServices() *Services {
	s, err := ParseServices(strings.NewReader(builtinServices), "tcpwalk's built-in table")
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return s
}

// Name returns the service name of a port, or "" if the table has none.
func (s *Services) Name(port uint16) string {
	if s == nil {
		return ""
	}
	return s.byPort[port]
}

// Top returns the n most commonly open ports, as nmap's --top-ports, sorted
// and merged. n beyond the table's size gives all of its ports.
func (s *Services) Top(n int) []PortRange {
	n = min(n, len(s.ranked))
	rs := make([]PortRange, n)
	for i, sv := range s.ranked[:n] {
		rs[i] = PortRange{sv.Port, sv.Port}
	}
	return mergePorts(rs)
}

// Len is how many TCP ports the table names.
func (s *Services) Len() int { return len(s.ranked) }

// lookup returns the ports of a service name or a wildcard pattern
// ("http*", as path.Match reads it).
func (s *Services) lookup(name string) []uint16 {
	name = strings.ToLower(name)
	if !strings.ContainsAny(name, "*?[") {
		return s.byName[name]
	}
	var ps []uint16
	for n, p := range s.byName {
		if ok, _ := path.Match(name, n); ok {
			ps = append(ps, p...)
		}
	}
	return ps
}

// ParsePortsNamed reads a port list as ParsePorts does, where items may also
// be service names from svc ("http,ssh", every port the table gives the
// name) or wildcards of names ("http*"), as nmap's -p takes them.
func ParsePortsNamed(s string, svc *Services) ([]PortRange, error) {
	if svc == nil || strings.Trim(s, "0123456789-, ") == "" {
		return ParsePorts(s)
	}
	var nums []string
	var out []PortRange
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" || strings.Trim(item, "0123456789-") == "" {
			nums = append(nums, item)
			continue
		}
		ps := svc.lookup(item)
		if len(ps) == 0 {
			return nil, &probe.UsageError{Err: fmt.Errorf("bad port list %q: %q is no port and no service name in %s (write e.g. 22,80 or ssh,http)", s, item, svc.Source)}
		}
		for _, p := range ps {
			out = append(out, PortRange{p, p})
		}
	}
	if len(nums) > 0 {
		rs, err := ParsePorts(strings.Join(nums, ","))
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return mergePorts(out), nil
}
