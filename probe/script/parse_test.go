package script

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

func TestParsePacketLines(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Event
	}{
		{
			name: "packetdrill SYN with options",
			line: "0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>",
			want: Event{Kind: Packet, Time: Time{Kind: Absolute},
				Segment: &Segment{Dir: ToRemote, Flags: craft.FlagSYN, Win: 65535, HasWin: true, HasOptions: true,
					Options: []Option{{Kind: craft.OptMSS, Value: 1460}, {Kind: craft.OptSACKPermitted},
						{Kind: craft.OptTimestamps, TSVal: 100}, {Kind: craft.OptNOP}, {Kind: craft.OptWindowScale, Value: 7}}}},
		},
		{
			name: "expected SYN-ACK, options skipped",
			line: "+0 > S. 0:0(0) ack 1 <...>",
			want: Event{Kind: Packet, Time: Time{Kind: Relative},
				Segment: &Segment{Dir: FromRemote, Flags: craft.FlagSYN | craft.FlagACK, Ack: 1, HasAck: true, HasOptions: true, AnyOptions: true}},
		},
		{
			name: "relative time without a leading zero",
			line: "+.1 < . 1:1(0) ack 1 win 257",
			want: Event{Kind: Packet, Time: Time{Kind: Relative, Start: 100 * time.Millisecond, End: 100 * time.Millisecond},
				Segment: &Segment{Dir: ToRemote, Flags: craft.FlagACK, Start: 1, End: 1, Ack: 1, HasAck: true, Win: 257, HasWin: true}},
		},
		{
			name: "relative range",
			line: "+0.9~+1.1 > F. 1:1(0) ack 1",
			want: Event{Kind: Packet, Time: Time{Kind: Relative, Start: 900 * time.Millisecond, End: 1100 * time.Millisecond, Range: true},
				Segment: &Segment{Dir: FromRemote, Flags: craft.FlagFIN | craft.FlagACK, Start: 1, End: 1, Ack: 1, HasAck: true}},
		},
		{
			name: "any time",
			line: "* > R 5:5(0)",
			want: Event{Kind: Packet, Time: Time{Kind: Any}, Segment: &Segment{Dir: FromRemote, Flags: craft.FlagRST, Start: 5, End: 5}},
		},
		{
			name: "data with a payload, urg, sack",
			line: `1.5 < P.U 1:7(6) ack 1 urg 3 <nop,nop,sack 1:2 3:4> "close\n"`,
			want: Event{Kind: Packet, Time: Time{Kind: Absolute, Start: 1500 * time.Millisecond, End: 1500 * time.Millisecond},
				Segment: &Segment{Dir: ToRemote, Flags: craft.FlagPSH | craft.FlagACK | craft.FlagURG, Start: 1, End: 7, Ack: 1, HasAck: true,
					Urg: 3, HasUrg: true, HasOptions: true, Payload: []byte("close\n"),
					Options: []Option{{Kind: craft.OptNOP}, {Kind: craft.OptNOP}, {Kind: craft.OptSACK, Blocks: []craft.SACKBlock{{Left: 1, Right: 2}, {Left: 3, Right: 4}}}}}},
		},
		{
			name: "no flags, wrapping sequence numbers",
			line: "0 < - 4294967295:9(10)",
			want: Event{Kind: Packet, Time: Time{Kind: Absolute}, Segment: &Segment{Dir: ToRemote, Start: 4294967295, End: 9}},
		},
		{
			name: "ECN flags and a comment",
			line: "0 < SEW 0:0(0) win 0 // an ECN-setup SYN",
			want: Event{Kind: Packet, Time: Time{Kind: Absolute},
				Segment: &Segment{Dir: ToRemote, Flags: craft.FlagSYN | craft.FlagECE | craft.FlagCWR, HasWin: true}},
		},
		{
			name: "directive with a time",
			line: "+0.5 %expect-state fin-wait-1",
			want: Event{Kind: ExpectState, State: result.FinWait1, Time: Time{Kind: Relative, Start: 500 * time.Millisecond, End: 500 * time.Millisecond}},
		},
		{
			name: "directive without a time is +0",
			line: "%expect-state SYN_RECV",
			want: Event{Kind: ExpectState, State: result.SynRcvd, Time: Time{Kind: Relative}},
		},
		{
			name: "wait",
			line: "%wait 0.25",
			want: Event{Kind: Wait, Time: Time{Kind: Relative, Start: 250 * time.Millisecond, End: 250 * time.Millisecond}},
		},
		{
			name: "send",
			line: `+0 %send "GET / HTTP/1.0\r\n\r\n"`,
			want: Event{Kind: Send, Time: Time{Kind: Relative}, Data: []byte("GET / HTTP/1.0\r\n\r\n")},
		},
		{
			name: "dial",
			line: "0 %dial",
			want: Event{Kind: Dial, Time: Time{Kind: Absolute}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.pkt", []byte(tt.line))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			if len(s.Events) != 1 {
				t.Fatalf("got %d events, want 1", len(s.Events))
			}
			got := s.Events[0]
			tt.want.Pos = Pos{1, 1}
			tt.want.Text = strings.TrimSpace(strings.SplitN(tt.line, "//", 2)[0])
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	src := `--tolerance_usecs=10000
--tolerance_percent=25
/* a block comment
   over two lines */
%port 7003 # the lab's control port
%summary FIN_WAIT_1: the remote closes first
%allow-retransmissions
0 %dial
`
	s, err := Parse("s.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Script{Name: "s.pkt", Port: 7003, Summary: "FIN_WAIT_1: the remote closes first", AllowRetransmissions: true,
		Tolerance: 10 * time.Millisecond, TolerancePercent: 25, Dials: true,
		Events: []Event{{Pos: Pos{8, 1}, Text: "0 %dial", Time: Time{Kind: Absolute}, Kind: Dial}}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestParseErrors checks that each malformed line is refused at the right
// file:line:col with a message that says what was expected.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // file:line:col: and a part of the message
	}{
		{"empty script", "// nothing\n", "e.pkt:1:1: no events"},
		{"syscall only", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "e.pkt:1:1: no events"},
		{"unclosed call", "0 < S 0:0(0)\n+0 listen(3, 1 = 0", "e.pkt:2:10: the argument list of listen( is not closed"},
		{"unclosed shell", "0 < S 0:0(0)\n+0 `sysctl -w a=1", "e.pkt:2:4: the shell command is not closed"},
		{"ip version 5", "--ip_version=ipv5\n0 < S 0:0(0)", "e.pkt:1:1: --ip_version=ipv5: want ipv4, ipv6 or ipv4-mapped-ipv6"},
		{"connect twice", "0 connect(3, ..., ...) = 0\n+0 connect(3, ..., ...) = 0", "e.pkt:2:4: connect() given twice"},
		{"packet without time", "< S 0:0(0)", "e.pkt:1:1: want the time before '<'"},
		{"bad flags", "0 < SX 0:0(0)", "e.pkt:1:5: want TCP flags from S . F R P U E W"},
		{"flag twice", "0 < SS 0:0(0)", `e.pkt:1:5: flag 'S' given twice in "SS"`},
		{"missing seq", "0 < S win 100", "e.pkt:1:7: want start:end(len)"},
		{"length mismatch", "0 < P. 1:11(9) ack 1", "e.pkt:1:13: length 9 does not match 1:11, which holds 10 bytes"},
		{"missing paren", "0 < . 1:1 ack 1", `e.pkt:1:10: want '(' before the length`},
		{"unknown clause", "0 < . 1:1(0) wn 100", `e.pkt:1:14: want ack N, win N, urg N, <options> or a "payload", got "wn"`},
		{"window too large", "0 < . 1:1(0) win 70000", "e.pkt:1:18: 70000 is too large: want a window (0-65535) after win, at most 65535"},
		{"ack twice", "0 < . 1:1(0) ack 1 ack 2", "e.pkt:1:20: ack given twice"},
		{"unknown option", "0 < S 0:0(0) <mss 1460,foo>", `e.pkt:1:24: want a TCP option (nop, eol, mss N, wscale N, sackOK, sack L:R..., TS val N ecr N), got "foo"`},
		{"unsupported option", "0 < S 0:0(0) <md5 abc>", "e.pkt:1:15: option md5 is not supported"},
		{"unclosed options", "0 < S 0:0(0) <mss 1460", "e.pkt:1:23: want ',' or '>' after an option, got end of line"},
		{"TS without ecr", "0 < S 0:0(0) <TS val 1>", "e.pkt:1:15: want `TS val N ecr N`"},
		{"payload length", `0 < P. 1:3(2) "abc"`, "e.pkt:1:15: the payload is 3 bytes but 1:3(2) says 2"},
		{"unclosed string", `0 < P. 1:3(2) "ab`, "e.pkt:1:15: the string is not closed"},
		{"bad escape", `0 < P. 1:3(2) "a\q"`, `e.pkt:1:15: bad string "a\q"`},
		{"star on a sent segment", "* < S 0:0(0)", "e.pkt:1:1: event time * can only be used with expected (>) segments"},
		{"range on a sent segment", "0~1 < S 0:0(0)", "e.pkt:1:1: an event time range (~) can only be used with expected (>) segments"},
		{"mixed range", "+0~1 > S 0:0(0)", "e.pkt:1:4: want `+T` after `~`"},
		{"reversed range", "2~1 > S 0:0(0)", "e.pkt:1:3: the range ends before it starts"},
		{"time too long", "9999 < S 0:0(0)", "e.pkt:1:1: time 9999 is over an hour"},
		{"IP fields", "0 < [ect0] S 0:0(0)", "e.pkt:1:5: IP-level fields"},
		{"unknown directive", "%foo", "e.pkt:1:1: unknown directive %foo"},
		{"unknown state", "%expect-state OPEN", `e.pkt:1:15: want one of the 11 states`},
		{"port zero", "%port 0\n0 %dial", "e.pkt:1:1: %port 0 is not a TCP port"},
		{"port twice", "%port 1\n%port 2\n0 %dial", "e.pkt:2:1: %port given twice (first at line 1)"},
		{"timed setting", "0 %port 80", "e.pkt:1:3: %port is a setting, not an event"},
		{"dial after packets", "0 < S 0:0(0)\n+0 %dial", "e.pkt:2:4: %dial must come before the first packet line"},
		{"wait zero", "%wait 0", "e.pkt:1:7: %wait 0 waits for nothing"},
		{"timed wait", "+1 %wait 1", "e.pkt:1:4: %wait takes its time after it"},
		{"send without quotes", "%send close", "e.pkt:1:7: want a quoted payload after %send"},
		{"trailing junk", "%dial now", `e.pkt:1:7: want the end of the line, got "now"`},
		{"column counts characters", "/* é */ 0 < X 0:0(0)", "e.pkt:1:13: want TCP flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("e.pkt", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.src, s)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse(%q) error %T, want an ErrorList", tt.src, err)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Parse(%q) error\n  %s\nwant it to start with\n  %s", tt.src, got, tt.want)
			}
		})
	}
}

// TestParseErrorsAllLines checks that a parse goes on after a bad line, so
// that one run shows every mistake.
func TestParseErrorsAllLines(t *testing.T) {
	src := "0 < S 0:0(0)\n+0 > Q 0:0(0)\n+0 close(3 = 0\n+0 > S. 0:0(0) ack 1\n"
	_, err := Parse("m.pkt", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v, want an ErrorList", err)
	}
	var got []Pos
	for _, e := range list {
		got = append(got, e.Pos)
	}
	if diff := cmp.Diff([]Pos{{2, 6}, {3, 9}}, got); diff != "" {
		t.Errorf("error positions (-want +got):\n%s", diff)
	}
}

// TestShippedScriptsParse parses every script in scripts/conformance, so a
// broken script fails here even without privileges for the lab test.
func TestShippedScriptsParse(t *testing.T) {
	for _, s := range conformanceFiles(t) {
		if _, err := Parse(s.name, s.src); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestWireSegString(t *testing.T) {
	w := &wireSeg{Flags: craft.FlagSYN | craft.FlagACK, Seq: 0, Ack: 1, Win: 65160,
		Options: []Option{{Kind: craft.OptMSS, Value: 1460}, {Kind: craft.OptSACKPermitted}, {Kind: craft.OptTimestamps, TSVal: 7, TSEcr: 100},
			{Kind: craft.OptNOP}, {Kind: craft.OptWindowScale, Value: 7}, {Kind: craft.OptSACK, Blocks: []craft.SACKBlock{{Left: 1, Right: 5}}}}}
	want := "S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 7 ecr 100,nop,wscale 7,sack 1:5>"
	if got := w.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// What String writes, Parse reads back.
	s, err := Parse("r.pkt", []byte("0 > "+want))
	if err != nil {
		t.Fatalf("Parse(String()): %v", err)
	}
	if got := s.Events[0].Segment; got.Flags != w.Flags || got.Ack != 1 || !sameOptions(w.Options, got.Options) {
		t.Errorf("round trip: got %+v", got)
	}
	d := &wireSeg{Payload: []byte("ok\n"), Seq: 7}
	if got, want := d.String(), `- 7:10(3) win 0 "ok\n"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestParseStackNeutral: the extensions for where stacks may differ parse
// into the fields the runner matches with, and only on expected lines.
func TestParseStackNeutral(t *testing.T) {
	src := "%needs lab\n%optional RFC 5961 §4.2 challenge ACK\n%deviation silent-on-x RFC 9293 §3.10.7.4 answers it\n%port 7001\n" +
		"0 < S 0:0(0) win 65535 <mss 1460>\n" +
		"+0 > S. 0:0(0) ack 1 <mss *,sackOK?,TS? val 1 ecr 100,wscale? *>\n" +
		"+0 >? . 1:1(0) ack 1\n" +
		"+0 > S. *:*(0) ack 1 <mss *>\n"
	s, err := Parse("neutral.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !s.NeedsLab || s.Optional != "RFC 5961 §4.2 challenge ACK" || s.Deviation != "silent-on-x" || s.DeviationWhy != "RFC 9293 §3.10.7.4 answers it" {
		t.Errorf("NeedsLab %v, Optional %q, Deviation %q %q", s.NeedsLab, s.Optional, s.Deviation, s.DeviationWhy)
	}
	synack := s.Events[1].Segment
	if !synack.Negotiated || len(synack.Options) != 4 || !synack.Options[0].AnyValue || !synack.Options[1].Optional ||
		!synack.Options[2].Optional || synack.Options[2].TSEcr != 100 || !synack.Options[3].Optional || !synack.Options[3].AnyValue {
		t.Errorf("SYN,ACK options %+v", synack)
	}
	if !s.Events[2].Segment.MayBeAbsent || !s.Events[3].Segment.AnySeq {
		t.Errorf("MayBeAbsent %v, AnySeq %v", s.Events[2].Segment.MayBeAbsent, s.Events[3].Segment.AnySeq)
	}
	for _, bad := range []string{
		"0 < S 0:0(0) win 65535 <mss *>\n",       // we send exact values
		"0 <? S 0:0(0) win 65535\n",              // we send what we inject
		"0 < S *:*(0) win 65535\n",               // and exact numbers
		"%needs root\n0 < S 0:0(0) win 65535\n",  // only the lab
		"0 > S. 0:0(0) ack 1 <nop?>\n",           // only negotiated options
		"%optional\n0 < S 0:0(0) win 65535\n",    // say which
		"%deviation x\n0 < S 0:0(0) win 65535\n", // and why
	} {
		if _, err := Parse("bad.pkt", []byte(bad)); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}

// TestNegotiatedOptions: options matched as a set, optional ones may be
// missing, NOPs are padding, nothing unnamed may come.
func TestNegotiatedOptions(t *testing.T) {
	want := []Option{{Kind: craft.OptMSS, AnyValue: true}, {Kind: craft.OptSACKPermitted, Optional: true},
		{Kind: craft.OptWindowScale, AnyValue: true, Optional: true}}
	for _, tt := range []struct {
		name string
		got  []Option
		ok   bool
	}{
		{"MSS only", []Option{{Kind: craft.OptMSS, Value: 1460}}, true},
		{"Linux's", []Option{{Kind: craft.OptMSS, Value: 1460}, {Kind: craft.OptSACKPermitted}, {Kind: craft.OptNOP}, {Kind: craft.OptWindowScale, Value: 10}}, true},
		{"other order", []Option{{Kind: craft.OptWindowScale, Value: 7}, {Kind: craft.OptMSS, Value: 536}}, true},
		{"no MSS", []Option{{Kind: craft.OptSACKPermitted}}, false},
		{"an unnamed TSopt", []Option{{Kind: craft.OptMSS, Value: 1460}, {Kind: craft.OptTimestamps}}, false},
	} {
		if got := negotiatedOptions(tt.got, want); got != tt.ok {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// TestIPVersion: packetdrill's --ip_version names the family a script runs
// over; ipv4-mapped-ipv6 is IPv4 on the wire (packetdrill's own socket is
// AF_INET6), and a script without the option runs over either.
func TestIPVersion(t *testing.T) {
	for _, tc := range []struct {
		opt    string
		family int
		assume string
	}{
		{"", 0, ""},
		{"--ip_version=ipv4\n", 4, "speaks IPv4"},
		{"--ip_version=ipv6\n", 6, "speaks IPv6"},
		{"--ip_version=ipv4-mapped-ipv6\n", 4, "on the wire, and for the remote, it is IPv4"},
	} {
		s, err := Parse("v.pkt", []byte(tc.opt+"0 < S 0:0(0) win 100\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.opt, err)
		}
		if got := s.Family(); got != tc.family {
			t.Errorf("%q: Family() = %d, want %d", tc.opt, got, tc.family)
		}
		found := tc.assume == ""
		for _, a := range s.Assumptions {
			if tc.assume != "" && strings.Contains(a.Text, tc.assume) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: assumptions %v lack %q", tc.opt, s.Assumptions, tc.assume)
		}
	}
}
