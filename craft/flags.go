package craft

import (
	"fmt"
	"strconv"
	"strings"
)

// Flags is the TCP control-bit byte (RFC 9293 §3.1, RFC 3168 §6.1 for ECE
// and CWR), in the bit positions it has on the wire.
type Flags uint8

// The eight TCP control bits. The ninth (AE, RFC 9768, formerly NS) lives
// in the reserved bits and is not modelled.
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// Has reports whether all bits of x are set in f.
func (f Flags) Has(x Flags) bool { return f&x == x }

// flagLetters is tcpdump's tcp_flag_values table (print-tcp.c), in its
// order: F S R P . U E W. ACK prints as "." between P and U, so an
// ECN-setup SYN-ACK prints "S.E" exactly as tcpdump shows it.
var flagLetters = [8]struct {
	f Flags
	c byte
}{
	{FlagFIN, 'F'}, {FlagSYN, 'S'}, {FlagRST, 'R'}, {FlagPSH, 'P'},
	{FlagACK, '.'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'},
}

// String returns the flags as tcpdump prints them inside "Flags [...]":
// "S", "S.", "F.", "R", "R.", "P.", ".", "FP.", "SEW", and "none" for 0.
func (f Flags) String() string {
	var buf [8]byte
	return string(f.AppendText(buf[:0]))
}

// AppendText appends the tcpdump form of f (see [Flags.String]) to b.
func (f Flags) AppendText(b []byte) []byte {
	if f == 0 {
		return append(b, "none"...)
	}
	for _, l := range flagLetters {
		if f&l.f != 0 {
			b = append(b, l.c)
		}
	}
	return b
}

// MarshalText writes the tcpdump form of f (see [Flags.String]), so that
// flags in JSON read as tcpdump prints them: "S.", "F.", "none".
func (f Flags) MarshalText() ([]byte, error) { return f.AppendText(nil), nil }

// UnmarshalText reads any form [ParseFlags] accepts, and so every form
// MarshalText writes.
func (f *Flags) UnmarshalText(b []byte) error {
	v, err := ParseFlags(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// flagNames are the names ParseFlags accepts, lower case.
var flagNames = map[string]Flags{
	"fin": FlagFIN, "syn": FlagSYN, "rst": FlagRST, "reset": FlagRST,
	"psh": FlagPSH, "push": FlagPSH, "ack": FlagACK, "urg": FlagURG,
	"ece": FlagECE, "cwr": FlagCWR, "none": 0,
}

// ParseFlags parses flags the way a person types them on a command line:
//
//   - letters, case-insensitive: "S", "SA", "FA", "R", "PA", "FPU", with
//     A or "." for ACK, E for ECE and W or C for CWR — so every
//     [Flags.String] result parses back, including "none";
//   - names, case-insensitive, joined by ",", "|", "+" or spaces:
//     "syn,ack", "fin|ack", "SYN";
//   - numbers: hex "0x12" or decimal "18", at most 0xff.
//
// The error names the part it could not read and the accepted forms.
func ParseFlags(s string) (Flags, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, flagsError(s, "empty")
	}
	if len(in) > 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X') {
		v, err := strconv.ParseUint(in[2:], 16, 8)
		if err != nil {
			return 0, flagsError(s, fmt.Sprintf("%q is not a hex number from 0x00 to 0xff", in))
		}
		return Flags(v), nil
	}
	if in[0] >= '0' && in[0] <= '9' {
		v, err := strconv.ParseUint(in, 10, 8)
		if err != nil {
			return 0, flagsError(s, fmt.Sprintf("%q is not a number from 0 to 255", in))
		}
		return Flags(v), nil
	}
	parts := strings.FieldsFunc(in, func(r rune) bool {
		return r == ',' || r == '|' || r == '+' || r == ' ' || r == '\t'
	})
	if len(parts) == 0 {
		return 0, flagsError(s, "no flags between the separators")
	}
	var f Flags
	for _, p := range parts {
		if v, ok := flagNames[strings.ToLower(p)]; ok {
			f |= v
			continue
		}
		if len(parts) > 1 && len(p) > 2 && isLetters(p) {
			// A word in a list of names that is no name: say so rather
			// than complain about its letters.
			return 0, flagsError(s, fmt.Sprintf("unknown flag name %q", p))
		}
		v, err := parseFlagLetters(s, p)
		if err != nil {
			return 0, err
		}
		f |= v
	}
	return f, nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func parseFlagLetters(orig, p string) (Flags, error) {
	var f Flags
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case 'F', 'f':
			f |= FlagFIN
		case 'S', 's':
			f |= FlagSYN
		case 'R', 'r':
			f |= FlagRST
		case 'P', 'p':
			f |= FlagPSH
		case 'A', 'a', '.':
			f |= FlagACK
		case 'U', 'u':
			f |= FlagURG
		case 'E', 'e':
			f |= FlagECE
		case 'W', 'w', 'C', 'c':
			f |= FlagCWR
		default:
			r := []rune(p[i:])[0]
			return 0, flagsError(orig, fmt.Sprintf("unknown flag letter %q", r))
		}
	}
	return f, nil
}

func flagsError(input, problem string) error {
	return fmt.Errorf("bad TCP flags %q: %s (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)", input, problem)
}
