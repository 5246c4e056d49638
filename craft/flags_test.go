package craft

import (
	"testing"
)

func TestFlagsString(t *testing.T) {
	tests := []struct {
		f    Flags
		want string
	}{
		{0, "none"},
		{FlagSYN, "S"},
		{FlagSYN | FlagACK, "S."},
		{FlagFIN | FlagACK, "F."},
		{FlagRST, "R"},
		{FlagRST | FlagACK, "R."},
		{FlagPSH | FlagACK, "P."},
		{FlagACK, "."},
		{FlagFIN | FlagPSH | FlagACK, "FP."},
		{FlagSYN | FlagECE | FlagCWR, "SEW"},
		// tcpdump's table puts "." between P and U (print-tcp.c tcp_flag_values).
		{FlagSYN | FlagACK | FlagECE, "S.E"},
		{FlagPSH | FlagACK | FlagURG, "P.U"},
		{FlagFIN | FlagPSH | FlagURG, "FPU"},
		{0xff, "FSRP.UEW"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Flags(%#02x).String() = %q, want %q", uint8(tt.f), got, tt.want)
		}
	}
}

func TestFlagsHas(t *testing.T) {
	f := FlagSYN | FlagACK
	if !f.Has(FlagSYN) || !f.Has(FlagSYN|FlagACK) || f.Has(FlagSYN|FlagFIN) || f.Has(FlagRST) {
		t.Errorf("Has on %v gives wrong answers", f)
	}
	if !f.Has(0) {
		t.Errorf("Has(0) = false, want true (no bits required)")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		in   string
		want Flags
	}{
		{"S", FlagSYN},
		{"SA", FlagSYN | FlagACK},
		{"sa", FlagSYN | FlagACK},
		{"S.", FlagSYN | FlagACK},
		{"FA", FlagFIN | FlagACK},
		{"R", FlagRST},
		{"PA", FlagPSH | FlagACK},
		{"FPU", FlagFIN | FlagPSH | FlagURG},
		{"SEC", FlagSYN | FlagECE | FlagCWR},
		{"SEW", FlagSYN | FlagECE | FlagCWR},
		{"syn,ack", FlagSYN | FlagACK},
		{"fin|ack", FlagFIN | FlagACK},
		{"SYN", FlagSYN},
		{"Rst", FlagRST},
		{"ECE", FlagECE},
		{"syn+ece+cwr", FlagSYN | FlagECE | FlagCWR},
		{"push, ack", FlagPSH | FlagACK},
		{" S ", FlagSYN},
		{"0x12", FlagSYN | FlagACK},
		{"0X02", FlagSYN},
		{"18", FlagSYN | FlagACK},
		{"0", 0},
		{"none", 0},
		{"255", 0xff},
	}
	for _, tt := range tests {
		got, err := ParseFlags(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"SX", `bad TCP flags "SX": unknown flag letter 'X' (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"", `bad TCP flags "": empty (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"  ", `bad TCP flags "  ": empty (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"syn,foo", `bad TCP flags "syn,foo": unknown flag name "foo" (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"0x100", `bad TCP flags "0x100": "0x100" is not a hex number from 0x00 to 0xff (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"0xZZ", `bad TCP flags "0xZZ": "0xZZ" is not a hex number from 0x00 to 0xff (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"256", `bad TCP flags "256": "256" is not a number from 0 to 255 (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"-1", `bad TCP flags "-1": unknown flag letter '-' (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{",,", `bad TCP flags ",,": no flags between the separators (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"synack", `bad TCP flags "synack": unknown flag letter 'y' (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
		{"Sé", `bad TCP flags "Sé": unknown flag letter 'é' (use letters FSRPAUEC, names like syn,ack, or hex like 0x12)`},
	}
	for _, tt := range tests {
		got, err := ParseFlags(tt.in)
		if err == nil {
			t.Errorf("ParseFlags(%q) = %v, nil; want error %q", tt.in, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseFlags(%q) error:\n got %s\nwant %s", tt.in, err, tt.want)
		}
	}
}

// Every String result parses back to the same flags.
func TestParseFlagsStringRoundTrip(t *testing.T) {
	for i := range 256 {
		f := Flags(i)
		got, err := ParseFlags(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v", f.String(), got, err, f)
		}
	}
}

// Flags marshal as tcpdump's letters and read back from any form
// ParseFlags takes.
func TestFlagsText(t *testing.T) {
	for f := 0; f < 256; f++ {
		b, err := Flags(f).MarshalText()
		if err != nil || string(b) != Flags(f).String() {
			t.Fatalf("Flags(%#x).MarshalText() = %q, %v, want %q", f, b, err, Flags(f).String())
		}
		var back Flags
		if err := back.UnmarshalText(b); err != nil || back != Flags(f) {
			t.Fatalf("UnmarshalText(%q) = %v, %v, want %v", b, back, err, Flags(f))
		}
	}
	var f Flags
	if err := f.UnmarshalText([]byte("SQ")); err == nil {
		t.Error("UnmarshalText(\"SQ\") did not fail")
	}
}
