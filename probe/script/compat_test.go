package script

import (
	"strings"
	"testing"
)

// TestCompatMapping: packetdrill's lines become events and assumptions:
// sysctl settings (the first value only), options, the #ifdef STANDARD
// branch, listen (a precondition on port 8080), close/shutdown/write (app
// actions), getsockopt (a note), sockstat and tcpi_state (%expect-state),
// tcpdrop (no remote equivalent), ...(len) on a ">" line.
func TestCompatMapping(t *testing.T) {
	src := strings.Join([]string{
		"--ip_version=ipv4",
		"--tolerance_usecs=75000",
		"--bind_port=8080",
		" 0.00 `sysctl -w net.inet.tcp.insecure_rst=1`",
		"+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
		"+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0",
		"+0.00 bind(3, ..., ...) = 0",
		"+0.00 listen(3, 1) = 0",
		"+0.00 < S 0:0(0) win 32767 <mss 1460>",
		"+0.00 > S. ...(0) ack 1 <...>",
		"+0.00 %{ assert tcpi_state == TCPI_SYN_RECEIVED }%",
		"+0.10 < . 1:1(0) ack 1 win 32767",
		"+0.00 accept(3, ..., ...) = 4",
		"+0.00 getsockopt(4, SOL_SOCKET, SO_ERROR, [0], [4]) = 0",
		"+0.00 write(4, ..., 10) = 10",
		"+0.00 shutdown(4, SHUT_WR) = 0",
		"#ifdef STANDARD",
		"+0.10 `sockstat -4 -P tcp -s | grep packetdril | grep -c FIN_WAIT_1 | grep 1`",
		"#endif",
		"#ifdef FreeBSD",
		"+0.00 `tcpdrop -s TIME_WAIT`",
		"#endif",
		"+0.00 `tcpdrop -s TIME_WAIT`",
		"+0.00 close(4) = 0",
		"+0.00 `sysctl -w net.inet.tcp.insecure_rst=0`",
	}, "\n")
	s, err := Parse("m.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Packetdrill || !s.Listens || s.Dials || s.Port != PacketdrillPort || s.Tolerance.Microseconds() != 75000 {
		t.Errorf("Packetdrill %v Listens %v Dials %v Port %d Tolerance %v; want true true false 8080 75ms", s.Packetdrill, s.Listens, s.Dials, s.Port, s.Tolerance)
	}
	var assume []string
	for _, a := range s.Assumptions {
		assume = append(assume, a.Text)
	}
	all := strings.Join(assume, "\n")
	for _, want := range []string{"IPv4", "--bind_port=8080 is packetdrill's own set-up", "assumes net.inet.tcp.insecure_rst=1 on the machine under test",
		"a listener at the target port (listen(3, 1))", "the #ifdef FreeBSD branch is left out"} {
		if !strings.Contains(all, want) {
			t.Errorf("assumptions lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "insecure_rst=0") {
		t.Errorf("the restoring sysctl became an assumption:\n%s", all)
	}
	type ev struct {
		kind   EventKind
		detail string
	}
	var got []ev
	for _, e := range s.Events {
		d := e.State.String() + e.Action
		if e.Kind == Packet {
			d = string(e.Segment.Dir)
			if e.Segment.AnySeq {
				d += " any seq"
			}
		}
		got = append(got, ev{e.Kind, d})
	}
	want := []ev{{Packet, "<"}, {Packet, "> any seq"}, {ExpectState, "SYN_RCVD"}, {Packet, "<"}, {Note, ""},
		{App, "write 10"}, {App, "shutdown"}, {ExpectState, "FIN_WAIT_1"}, {Unsupported, ""}, {App, "close"}}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d (line %d): %v, want %v", i, s.Events[i].Pos.Line, got[i], want[i])
		}
	}
	if u := s.Events[8]; u.Pos.Line != 23 || !strings.Contains(u.Reason, "tcpdrop -s TIME_WAIT") {
		t.Errorf("unsupported line %d %q, want line 23 naming the tcpdrop", u.Pos.Line, u.Reason)
	}
}

// TestSkipReason strips a skip's line so that reasons count together.
func TestSkipReason(t *testing.T) {
	for in, want := range map[string]string{
		`line 41, "+0.00 ` + "`tcpdrop -s TIME_WAIT`" + `": the shell command runs there: no remote equivalent`: "the shell command runs there: no remote equivalent",
		ReasonNoDialer: ReasonNoDialer,
		`line 7, "close(4) = 0": ` + ReasonNoAppControl: ReasonNoAppControl,
	} {
		if got := SkipReason(in); got != want {
			t.Errorf("SkipReason(%q) = %q, want %q", in, got, want)
		}
	}
}
