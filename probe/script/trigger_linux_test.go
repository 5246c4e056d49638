package script_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/script"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// closeTriggerScript is a packetdrill active close of the remote app
// (shutdown(SHUT_WR) in ESTABLISHED) through FIN_WAIT_2 to TIME_WAIT,
// each state asked of the remote kernel.
const closeTriggerScript = `--ip_version=ipv4
--tolerance_usecs=75000
 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S  0:0(0) win 32767 <mss 1460>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.05 <  . 1:1(0) ack 1 win 32767
+0.00 accept(3, ..., ...) = 4
+0.05 shutdown(4, SHUT_WR) = 0
+0.00 > F. 1:1(0) ack 1 win 65535
+0.05 <  . 1:1(0) ack 2 win 32767
+0.05 ` + "`sockstat -4 -P tcp -s | grep -c FIN_WAIT_2 | grep 1`" + `
+0.00 < F. 1:1(0) ack 2 win 32767
+0.00 >  . 2:2(0) ack 2 win 65535
+0.05 ` + "`sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 1`" + `
+0.00 close(4) = 0
`

// TestCloseTriggerOffsetsOnTheWire runs a shutdown(SHUT_WR) script
// against the lab's HTTP server without its app control: the HTTP close
// trigger makes the server answer and close, and the script's numbers go
// on the wire shifted by the request's length (ours) and the answer's (the
// remote's). The remote kernel (the oracle) confirms each: it is in
// FIN_WAIT_2 only if our ACK acknowledged its FIN at IRS+1+M, and in
// TIME_WAIT only if it took our FIN at ISS+1+N.
func TestCloseTriggerOffsetsOnTheWire(t *testing.T) {
	cfg := labConfig(t)
	cfg.Lab, cfg.Port = nil, lab.PortHTTP
	trig, err := walk.ParseTrigger("http", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CloseTrigger = trig
	plan, err := trig.Plan(walk.CloseFirst, lab.PortHTTP)
	if err != nil {
		t.Fatal(err)
	}
	n := uint32(len(plan.Payload))
	s, err := script.Parse("close-trigger.pkt", []byte(closeTriggerScript))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := script.Run(ctx, cfg, s)
	logResult(t, r)
	if r.Verdict != walk.Pass {
		t.Fatalf("verdict %s (%s), want pass", r.Verdict, r.Reason)
	}
	for _, st := range []result.State{result.FinWait2, result.TimeWait} {
		found := false
		for _, c := range r.Checks {
			if c.Expected == st.String() && c.Kernel == st && c.Verdict == walk.Pass {
				found = true
			}
		}
		if !found {
			t.Errorf("no passing check of %s by the remote kernel", st)
		}
	}
	// The wire, in absolute numbers.
	var iss, irs tcpconn.Seq
	var m uint32
	var req, fin, ourFIN, lastACK *tcpconn.Segment
	for i := range r.Segments {
		g := &r.Segments[i]
		switch {
		case g.Dir == tcpconn.Out && g.Flags == craft.FlagSYN:
			iss = g.Seq
		case g.Dir == tcpconn.In && g.Flags == craft.FlagSYN|craft.FlagACK:
			irs = g.Seq
		case g.Dir == tcpconn.Out && g.Len > 0:
			req = g
		case g.Dir == tcpconn.In && g.Len > 0:
			m += uint32(g.Len)
		case g.Dir == tcpconn.In && g.Flags.Has(craft.FlagFIN):
			fin = g
		case g.Dir == tcpconn.Out && g.Flags == craft.FlagFIN|craft.FlagACK:
			ourFIN = g
		case g.Dir == tcpconn.In && g.Flags == craft.FlagACK && ourFIN != nil:
			lastACK = g
		}
	}
	if req == nil || fin == nil || ourFIN == nil || lastACK == nil || m == 0 {
		t.Fatalf("missing on the wire: request %v, answer %d bytes, the remote's FIN %v, our FIN %v, its ACK %v", req != nil, m, fin != nil, ourFIN != nil, lastACK != nil)
	}
	if uint32(req.Len) != n || req.Seq != iss+1 || req.Ack != irs+1 {
		t.Errorf("the request: %d bytes at %d ack %d, want %d at ISS+1 = %d ack IRS+1 = %d", req.Len, req.Seq, req.Ack, n, iss+1, irs+1)
	}
	if fin.Seq != irs+1+tcpconn.Seq(m) || fin.Ack != iss+1+tcpconn.Seq(n) {
		t.Errorf("the remote's FIN at %d ack %d, want IRS+1+%d = %d ack ISS+1+%d = %d", fin.Seq, fin.Ack, m, irs+1+tcpconn.Seq(m), n, iss+1+tcpconn.Seq(n))
	}
	if ourFIN.Seq != iss+1+tcpconn.Seq(n) || ourFIN.Ack != irs+2+tcpconn.Seq(m) {
		t.Errorf("our FIN (the script's 1:1 ack 2) at %d ack %d, want %d ack %d", ourFIN.Seq, ourFIN.Ack, iss+1+tcpconn.Seq(n), irs+2+tcpconn.Seq(m))
	}
	if lastACK.Ack != iss+2+tcpconn.Seq(n) {
		t.Errorf("the remote's last ACK acknowledges %d, want ISS+2+%d = %d", lastACK.Ack, n, iss+2+tcpconn.Seq(n))
	}
	want := "sequence numbers offset by " + itoa(n) + "/" + itoa(m)
	found := false
	for _, a := range r.Assumptions {
		if strings.Contains(a, "with an HTTP close trigger") && strings.Contains(a, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no assumption %q with an HTTP close trigger among %q", want, r.Assumptions)
	}
}

func itoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
