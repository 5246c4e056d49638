package firewall

import (
	"net/netip"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/probe"
)

// conntrackMemory is how long a stateful middlebox may remember a 4-tuple
// after its connection ended: Linux conntrack keeps a reset connection for
// nf_conntrack_tcp_timeout_close (10 s) and a closed one for
// nf_conntrack_tcp_timeout_time_wait (120 s), and judges (and, behind a SYN
// proxy, translates) a new segment on that 4-tuple by the old connection.
const conntrackMemory = 130 * time.Second

// used remembers the 4-tuples this process's rows used, so that no row
// reuses one the path may still track (rows and runs pick local ports at
// random from a few thousand).
var used struct {
	sync.Mutex
	at map[flowKey]time.Time
}

type flowKey struct {
	remote netip.AddrPort
	local  uint16
}

// freshFlow opens a flow to port whose 4-tuple no row of this process used
// within conntrackMemory; after a few tries it takes what it gets.
func freshFlow(p *probe.Prober, port uint16) (*probe.Flow, error) {
	used.Lock()
	defer used.Unlock()
	if used.at == nil {
		used.at = map[flowKey]time.Time{}
	}
	now := time.Now()
	for k, t := range used.at {
		if now.Sub(t) > conntrackMemory {
			delete(used.at, k)
		}
	}
	var f *probe.Flow
	for try := 0; try < 8; try++ {
		var err error
		if f, err = p.NewFlow(port, 0); err != nil {
			return nil, err
		}
		k := flowKey{f.Remote, f.Local.Port()}
		if _, seen := used.at[k]; !seen || try == 7 {
			used.at[k] = now
			return f, nil
		}
		f.Close()
	}
	return f, nil
}
