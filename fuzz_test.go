package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/send"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// fuzzTarget is the one target the send fuzzer gives: an address literal,
// so that parsing never asks the DNS.
const fuzzTarget = "198.18.0.2:80"

// parseSend runs the real command line parsing of `tcpwalk send ARGS
// 198.18.0.2:80` (reorderArgs, urfave/cli, sendSpecFromFlags) with the send
// action replaced: nothing is opened or sent. ran is false when cli stopped
// before the action (--help).
func parseSend(args []string) (spec send.Spec, ran bool, err error) {
	app := newApp(io.Discard, io.Discard)
	cmd := app.Command("send")
	cmd.Action = func(c *cli.Context) error {
		ran = true
		spec, err = sendSpecFromFlags(c)
		return err
	}
	argv := append(append([]string{"tcpwalk", "send"}, args...), fuzzTarget)
	if rerr := app.RunContext(context.Background(), reorderArgs(app, argv)); err == nil {
		err = rerr
	}
	return spec, ran, err
}

// FuzzSendFlags: any flags given to `tcpwalk send` either make a spec that
// Validate accepts and whose segment encodes, or fail as bad usage (exit
// status 2) with a one-line message. Never a panic. The input is the
// arguments separated by spaces.
func FuzzSendFlags(f *testing.F) {
	for _, s := range []string{
		"--flags S",
		"--flags FA --seq 1000 --ack 2000 --win 512 --ttl 7 --df",
		"--flags syn --no-options --sport 62000 -c 3 --interval 200ms",
		"--flags S --mss 536 --wscale 2 --sack-perm --ts 100:0 --json",
		"--sack 1-2,3-4,5-6,7-8",            // four blocks: the most that fit
		"--sack 1-2,3-4,5-6,7-8,9-10",       // five: too many
		"--option 30:0102 --option 254",     // raw options
		"--option 300",                      // kind past 255
		"--option 8:zz",                     // bad hex
		"--data-hex 0a:0b:0c",               // payload in hex
		"--data-hex 0a0 --data-string x",    // odd hex, and both payloads
		"--seq 0x10 --ack 4294967295",       // hex and the largest number
		"--seq 4294967296",                  // one past
		"--ttl 0", "--ttl 256", "--tos 256", // out of range
		"--win 65536 --urg 70000",
		"--wscale 15", "--wscale -2",
		"--count 0", "--count 100001", "-c 2 -i 0s", "--wait -1s",
		"--no-options --mss 1460", // contradiction
		"--mss 1460 --ts 1:2 --sack 1-2,3-4,5-6 --wscale 14 --sack-perm", // over 40 bytes
		"--help",
		"--nonsense",
		"-- extra",
		"--seq",
		"\n0", // a newline inside an argument: the message stays on one line
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		spec, ran, err := parseSend(args)
		if err != nil {
			if code := exitCode(err); code != exitUsage {
				t.Fatalf("send %q: %v: exit status %d, want %d (bad usage)", s, err, code, exitUsage)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("send %q: message spans lines: %q", s, err)
			}
			return
		}
		if !ran {
			return // help was printed
		}
		if want := netip.MustParseAddrPort(fuzzTarget); spec.Target != want {
			t.Fatalf("send %q: target %v, want %v", s, spec.Target, want)
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("send %q: accepted, but Validate says %v", s, err)
		}
		if n := craft.OptionsLen(spec.Options); n > craft.TCPOptionsMaximumSize {
			t.Fatalf("send %q: %d option bytes accepted", s, n)
		}
		seg := craft.Segment{Src: netip.MustParseAddr("198.18.0.1"), Dst: spec.Target.Addr(), Flags: spec.Flags,
			Options: spec.Options, Payload: spec.Payload, TTL: spec.TTL}
		var buf [probe.MaxPacket]byte
		if seg.Len() <= len(buf) {
			if _, err := seg.Encode(buf[:]); err != nil {
				t.Fatalf("send %q: accepted, but the segment does not encode: %v", s, err)
			}
		}
	})
}

// FuzzParseNumbers: parseU32 and parseHex accept what reads back the same
// from its canonical text, and refuse with a message that names the input.
func FuzzParseNumbers(f *testing.F) {
	for _, s := range []string{"0", "4294967295", "4294967296", "0x10", "0o17", "0b101", " 7 ", "-1", "", "1_000",
		"0a0b0c", "0a:0b:0c", "0x0a0b", "0a 0b", "abc", "zz", "0X0A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseU32(s); err == nil {
			if again, err := parseU32(strconv.FormatUint(uint64(v), 10)); err != nil || again != v {
				t.Fatalf("parseU32(%q) = %d, but %d reads back as %d, %v", s, v, v, again, err)
			}
		} else if !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Fatalf("parseU32(%q): %q does not name the input", s, err)
		}
		if b, err := parseHex(s); err == nil {
			if again, err := parseHex(hex.EncodeToString(b)); err != nil || !bytes.Equal(again, b) {
				t.Fatalf("parseHex(%q) = %x, but its hex reads back as %x, %v", s, b, again, err)
			}
		}
	})
}

// FuzzParseTrigger: --close-trigger never panics, and what it accepts has
// a name.
func FuzzParseTrigger(f *testing.F) {
	for _, s := range []string{"", "none", "http", "wait", "lab", "string:GET / HTTP/1.0\\r\\n\\r\\n", "string:", "hex:474554200a",
		"hex:", "hex:4", "hex:zz", "hex:47 45:54", "bogus", "string:\\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := walk.ParseTrigger(s, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseTrigger(%q): message spans lines: %q", s, err)
			}
			return
		}
		if tr == nil || tr.Name() == "" {
			t.Fatalf("ParseTrigger(%q) = %v: accepted without a name", s, tr)
		}
	})
}
