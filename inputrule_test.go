package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
)

// inputDrop installs, in the lab's prober namespace, `table inet X { chain
// input { type filter hook input priority 0; policy drop; } }` and returns
// X; the table goes at cleanup.
func inputDrop(t *testing.T, l *lab.Lab) string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(l.Prober.Fd()))
	if err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	var b [4]byte
	rand.Read(b[:])
	tab := c.AddTable(&nftables.Table{Name: "twt_in_" + hex.EncodeToString(b[:]), Family: nftables.TableFamilyINet})
	drop := nftables.ChainPolicyDrop
	c.AddChain(&nftables.Chain{Name: "input", Table: tab, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	if err := c.Flush(); err != nil {
		labtest.SkipUnlessPermitted(t, err)
	}
	t.Cleanup(func() {
		c.DelTable(tab)
		if err := c.Flush(); err != nil {
			t.Errorf("cleanup: delete table %s: %v", tab.Name, err)
		}
	})
	return tab.Name
}

// TestLocalInputRuleExplained (issue 15 item 6): with an input chain of
// policy drop in the prober's namespace, no reply reaches tcpwalk; send,
// walk and run say that a local input rule may drop replies, naming it,
// where they report the missing replies.
func TestLocalInputRuleExplained(t *testing.T) {
	t.Parallel()
	l := labtest.New(t)
	table := inputDrop(t, l)
	want := "a local input rule (table inet " + table
	target := netip.AddrPortFrom(l.TargetAddr, lab.PortHold).String()

	r := runApp(t, "--netns", l.Prober.Name, "send", "-c", "1", "--wait", "300ms", target)
	if r.code != exitNoReply || !strings.Contains(r.stderr, want) {
		t.Errorf("send: exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitNoReply, want)
	}
	r = runApp(t, "--netns", l.Prober.Name, "walk", "--json", "--tries", "1", "--reply-timeout", "300ms", "handshake", target)
	if !strings.Contains(r.stdout, want) {
		t.Errorf("walk: the report does not say %q:\n%s", want, r.stdout)
	}
	script := filepath.Join(t.TempDir(), "syn.pkt")
	if err := os.WriteFile(script, []byte("%port 7001\n0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1460>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runApp(t, "--netns", l.Prober.Name, "run", "--json", l.TargetAddr.String(), script)
	if !strings.Contains(r.stdout, want) {
		t.Errorf("run: the report does not say %q:\n%s", want, r.stdout)
	}
}
