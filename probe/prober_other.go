//go:build !linux

package probe

import (
	"errors"
	"net/netip"
	"sync"
)

// errNeedsLinux is what Open and every probing call return off Linux.
var errNeedsLinux = errors.New("probe: raw sockets, the RST guard and namespaces need Linux (tcpwalk probes only from Linux)")

// Prober owns the sockets for probing one remote host; off Linux there are
// none, and Open fails.
type Prober struct {
	done chan struct{}
	pool sync.Pool
}

// Open fails: probing needs Linux.
func Open(cfg Config) (*Prober, error) { return nil, errNeedsLinux }

// CheckSource fails: probing needs Linux.
func CheckSource(a netip.Addr) error { return errNeedsLinux }

// CheckLabRoute fails: probing needs Linux.
func CheckLabRoute(dst netip.Addr) error { return errNeedsLinux }

// InputRules returns "": there is no nftables input hook to read.
func InputRules() string { return "" }

// InputRules returns "".
func (p *Prober) InputRules() string { return "" }

// PathMTU returns 0.
func (p *Prober) PathMTU() int { return 0 }

// Local returns the zero address.
func (p *Prober) Local() netip.Addr { return netip.Addr{} }

// Remote returns the zero address.
func (p *Prober) Remote() netip.Addr { return netip.Addr{} }

// Guarded returns false.
func (p *Prober) Guarded() bool { return false }

// GuardDropped returns 0.
func (p *Prober) GuardDropped() uint64 { return 0 }

// Stats returns zero counts.
func (p *Prober) Stats() Stats { return Stats{} }

// LastMalformed returns "".
func (p *Prober) LastMalformed() string { return "" }

// Close does nothing.
func (p *Prober) Close() error { return nil }

// NewFlow fails: probing needs Linux.
func (p *Prober) NewFlow(rport, localPort uint16) (*Flow, error) { return nil, errNeedsLinux }

// Listen fails: probing needs Linux.
func (p *Prober) Listen(localPort uint16) (*Flow, error) { return nil, errNeedsLinux }

// Connect fails: probing needs Linux.
func (f *Flow) Connect(rport uint16) error { return errNeedsLinux }

func (p *Prober) closed() bool          { return true }
func (p *Prober) send(pkt []byte) error { return errNeedsLinux }
func (p *Prober) putEvent(e *Event)     {}
func (p *Prober) removeFlow(f *Flow)    {}
