package script

import (
	"os"
	"path/filepath"
	"testing"
)

type scriptFile struct {
	name string
	src  []byte
}

// conformanceFiles reads the scripts shipped in scripts/conformance.
func conformanceFiles(t testing.TB) []scriptFile {
	t.Helper()
	files, err := filepath.Glob("../../scripts/conformance/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in ../../scripts/conformance (%v)", err)
	}
	var out []scriptFile
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, scriptFile{filepath.Base(f), src})
	}
	return out
}

// FuzzParse feeds the parser arbitrary bytes: it must never panic, must
// return either a script or an error, and every error must carry a
// position inside the input.
func FuzzParse(f *testing.F) {
	// Seeds: every shipped script, and lines that reach each branch.
	for _, s := range conformanceFiles(f) {
		f.Add(s.src)
	}
	for _, s := range []string{
		"0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>", // packetdrill SYN
		"+0 > S. 0:0(0) ack 1 <...>",                     // skipped options
		"+0.9~+1.1 > F. 1:1(0) ack 1",                    // range
		"* > R 5:5(0)",                                   // any time
		`0 < P. 1:7(6) ack 1 "close\n"`,                  // payload
		"0 < . 1:1(0) ack 1 <sack 1:2 3:4 5:6 7:8 9:10>", // too many SACK blocks
		"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",    // syscall
		"`echo`\n/* unclosed",                            // shell, open comment
		"%port 7001\n%summary x\n%allow-retransmissions\n%dial\n%wait 1\n%send \"a\"\n%expect-state CLOSED",
		"--tolerance_usecs=1\n--tolerance_percent=1e309",
		"0 < S 4294967295:4294967295(0)\n0 < S 0:4294967295(4294967295)",
		"#ifdef STANDARD\n#else\n#endif\n#endif\n#ifndef X\n+0 close(3) = 0",               // preprocessor
		"+0 listen(3, 1) = 0\n+0 > S. ...(0) ack 1\n+0 write(4, ..., 99999) = 99999",       // calls
		"+0 `sockstat | grep -c TIME_WAIT | grep 1`\n+0 %{ assert tcpi_state == TCPI_X }%", // observations
		"+0 ...0.1 read(3, ..., 1) = 1\n+0 f((((\n+0 `unclosed",                            // blocking, bad calls
		"\"\\", "0 < P. 0:1(1) \"\\", "0.\n+.\n+~\n~", "\xff\xfe %wait 1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse("f.pkt", src)
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned script %v and error %v: want exactly one", s != nil, err)
		}
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 || len(list) > maxErrors {
				t.Fatalf("error %T with %d entries", err, len(list))
			}
			lines := 1
			for _, c := range src {
				if c == '\n' {
					lines++
				}
			}
			for _, e := range list {
				if e.Pos.Line < 1 || e.Pos.Line > lines || e.Pos.Col < 1 || e.Pos.Col > len(src)+1 {
					t.Fatalf("error position %d:%d outside the input (%d lines, %d bytes): %v", e.Pos.Line, e.Pos.Col, lines, len(src), e)
				}
			}
			return
		}
		for _, ev := range s.Events {
			if ev.Time.End < ev.Time.Start || ev.Time.End > maxTime {
				t.Fatalf("bad time %+v", ev.Time)
			}
			if ev.Kind == Packet {
				seg := ev.Segment
				if seg.Payload != nil && uint32(len(seg.Payload)) != seg.Len() {
					t.Fatalf("payload %d bytes, length %d", len(seg.Payload), seg.Len())
				}
				if seg.Len() > maxPayload {
					t.Fatalf("length %d over the limit", seg.Len())
				}
			}
		}
	})
}
