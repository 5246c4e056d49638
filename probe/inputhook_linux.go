package probe

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
)

// InputRules describes the netfilter hooks on the receive path of the
// current network namespace that may drop replies before our raw socket
// sees them ("" when there are none): nftables chains of family ip or inet
// at the prerouting or input hook ("a local input rule (table inet X) may
// drop replies"), or loaded legacy iptables tables. A raw socket gets its
// copy after the input hook (ip_local_deliver), so such a rule stops
// replies from reaching tcpwalk exactly as from any local socket. It is the
// check `scan --send-path auto` makes; send, walk and run say it where
// replies are missing.
func InputRules() string {
	if b, err := os.ReadFile("/proc/net/ip_tables_names"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return fmt.Sprintf("local legacy iptables tables (%s) may drop replies", strings.Join(strings.Fields(string(b)), ", "))
	}
	c, err := nftables.New()
	if err != nil {
		return ""
	}
	chains, err := c.ListChains()
	if err != nil {
		return ""
	}
	for _, ch := range chains {
		if ch.Hooknum == nil || ch.Table == nil || (ch.Table.Family != nftables.TableFamilyIPv4 && ch.Table.Family != nftables.TableFamilyINet) {
			continue
		}
		if *ch.Hooknum != *nftables.ChainHookInput && *ch.Hooknum != *nftables.ChainHookPrerouting {
			continue
		}
		fam := "ip"
		if ch.Table.Family == nftables.TableFamilyINet {
			fam = "inet"
		}
		return fmt.Sprintf("a local input rule (table %s %s, chain %s) may drop replies", fam, ch.Table.Name, ch.Name)
	}
	return ""
}
