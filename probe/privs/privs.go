// Package privs says exactly which Linux capabilities tcpwalk lacks and how to get them.
//
// Raw sockets need CAP_NET_RAW; the RST guard (nftables) and SO_MARK on the sender need CAP_NET_ADMIN.
// The check reads the effective set (CapEff) from /proc/self/status, so it is Linux-only, like the project.
package privs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrPrivileges is wrapped by every error Check returns for a missing capability, so a caller can map it to its own
// exit status (tcpwalk uses 3) with errors.Is.
var ErrPrivileges = errors.New("insufficient privileges")

// Cap is a Linux capability number (include/uapi/linux/capability.h).
type Cap uint

// The capabilities tcpwalk uses.
const (
	CapNetAdmin Cap = 12 // nftables RST guard, SO_MARK
	CapNetRaw   Cap = 13 // raw and packet sockets
	CapSysAdmin Cap = 21 // setns(2): entering the lab's namespaces
)

// String returns the kernel's name for c ("CAP_NET_RAW").
func (c Cap) String() string {
	switch c {
	case CapNetAdmin:
		return "CAP_NET_ADMIN"
	case CapNetRaw:
		return "CAP_NET_RAW"
	case CapSysAdmin:
		return "CAP_SYS_ADMIN"
	}
	return "CAP_" + strconv.FormatUint(uint64(c), 10)
}

// why says what tcpwalk needs c for.
func (c Cap) why() string {
	switch c {
	case CapNetAdmin:
		return "nftables RST guard and SO_MARK"
	case CapNetRaw:
		return "raw sockets"
	case CapSysAdmin:
		return "entering another network namespace"
	}
	return "unknown use"
}

// fix is the remedy printed after each missing capability.
const fix = "run as root, or: sudo setcap cap_net_raw,cap_net_admin+ep $(command -v tcpwalk)"

// Missing returns the capabilities tcpwalk needs that the effective set capEff lacks, CAP_NET_RAW first.
// needAdmin adds CAP_NET_ADMIN (needed unless the RST guard is off).
func Missing(capEff uint64, needAdmin bool) []Cap {
	need := []Cap{CapNetRaw}
	if needAdmin {
		need = append(need, CapNetAdmin)
	}
	var miss []Cap
	for _, c := range need {
		if capEff&(1<<c) == 0 {
			miss = append(miss, c)
		}
	}
	return miss
}

// ParseCapEff finds the "CapEff:" line in the text of /proc/<pid>/status and returns its hex bit mask.
func ParseCapEff(status io.Reader) (uint64, error) {
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("privs: parse CapEff %q: %w", strings.TrimSpace(v), err)
		}
		return eff, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("privs: read process status: %w", err)
	}
	return 0, errors.New("privs: no CapEff line in process status (is /proc mounted?)")
}

// MissingError lists capabilities that are not in the effective set. It wraps ErrPrivileges.
type MissingError struct {
	Caps []Cap
}

// Error puts each missing capability on its own line with the fix.
func (e *MissingError) Error() string {
	var b strings.Builder
	for i, c := range e.Caps {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "missing %s (%s): %s", c, c.why(), fix)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrPrivileges) true.
func (e *MissingError) Unwrap() error { return ErrPrivileges }

// Check returns nil if this process may open raw sockets and, with needAdmin, install the RST guard; otherwise a
// *MissingError (wrapping ErrPrivileges) naming each missing capability. Failing to read /proc/self/status is
// returned as is: it is not a privilege problem.
func Check(needAdmin bool) error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return fmt.Errorf("privs: read capabilities: %w", err)
	}
	defer f.Close()
	eff, err := ParseCapEff(f)
	if err != nil {
		return err
	}
	return check(eff, needAdmin)
}

func check(capEff uint64, needAdmin bool) error {
	if miss := Missing(capEff, needAdmin); len(miss) > 0 {
		return &MissingError{Caps: miss}
	}
	return nil
}

// CanEnterNS reports whether this process may enter another network
// namespace: setns(2) needs CAP_SYS_ADMIN, which a tcpwalk given only
// CAP_NET_RAW and CAP_NET_ADMIN by setcap (and run inside a namespace with
// `ip netns exec`) does not have. It then probes from where it is instead
// of failing on the lab's namespace. Unknown means yes.
func CanEnterNS() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true
	}
	defer f.Close()
	eff, err := ParseCapEff(f)
	if err != nil {
		return true
	}
	return eff&(1<<CapSysAdmin) != 0
}
