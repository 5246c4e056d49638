package result

import (
	"encoding/json"
	"testing"
)

// The JSON of every verdict and state is the string tcpwalk wrote when they
// were strings, and it reads back to the same value.
func TestEnumJSON(t *testing.T) {
	type doc struct {
		V  Verdict `json:"verdict"`
		S  State   `json:"state"`
		OV Verdict `json:"ov,omitempty"`
		OS State   `json:"os,omitempty"`
	}
	for _, tt := range []struct {
		name string
		in   doc
		want string
	}{
		{"zero", doc{}, `{"verdict":"","state":""}`},
		{"pass", doc{V: Pass, S: Listen, OV: Fail, OS: TimeWait}, `{"verdict":"pass","state":"LISTEN","ov":"fail","os":"TIME_WAIT"}`},
		{"deviation", doc{V: Deviation, S: SynRcvd}, `{"verdict":"deviation","state":"SYN_RCVD"}`},
		{"inconclusive", doc{V: Inconclusive, S: FinWait1}, `{"verdict":"inconclusive","state":"FIN_WAIT_1"}`},
		{"skipped", doc{V: Skipped, S: CloseWait}, `{"verdict":"skipped","state":"CLOSE_WAIT"}`},
		{"interrupted", doc{V: Interrupted, S: LastAck}, `{"verdict":"interrupted","state":"LAST_ACK"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got %s, want %s", b, tt.want)
			}
			var back doc
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back != tt.in {
				t.Errorf("round trip: %+v, want %+v", back, tt.in)
			}
		})
	}
}

func TestEnumNames(t *testing.T) {
	want := []string{"CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
		"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}
	if len(States) != len(want) {
		t.Fatalf("%d states, want RFC 9293's 11", len(States))
	}
	for i, s := range States {
		if s.String() != want[i] || !s.Valid() {
			t.Errorf("States[%d] = %q (valid %v), want %q", i, s, s.Valid(), want[i])
		}
		if p, err := ParseState(want[i]); err != nil || p != s {
			t.Errorf("ParseState(%q) = %v, %v", want[i], p, err)
		}
	}
	for _, v := range Verdicts {
		if p, err := ParseVerdict(v.String()); err != nil || p != v || !v.Valid() {
			t.Errorf("ParseVerdict(%q) = %v, %v", v, p, err)
		}
	}
	if NoState.Valid() || Undecided.Valid() || State(99).Valid() || Verdict(99).Valid() {
		t.Error("a zero or out-of-range value is valid")
	}
}

// Bad input is an error that names it, never a panic or a made-up value.
func TestEnumBad(t *testing.T) {
	var d struct {
		V Verdict `json:"verdict"`
		S State   `json:"state"`
	}
	for _, in := range []string{`{"verdict":"weird"}`, `{"state":"SYN-RECEIVED"}`, `{"verdict":3}`, `{"state":null,"verdict":"PASS"}`} {
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: no error, got %+v", in, d)
		}
	}
	// An out-of-range value is written under a name no reader accepts.
	for _, v := range []any{Verdict(99), State(99)} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d.V); err == nil {
			t.Errorf("%s reads back as a verdict", b)
		}
		if err := json.Unmarshal(b, &d.S); err == nil {
			t.Errorf("%s reads back as a state", b)
		}
	}
	if Verdict(99).String() != "Verdict(99)" || State(99).String() != "State(99)" {
		t.Errorf("out-of-range names: %s %s", Verdict(99), State(99))
	}
}

func TestWorse(t *testing.T) {
	for _, tt := range []struct{ a, b, want Verdict }{
		{Undecided, Pass, Pass},
		{Pass, Undecided, Pass},
		{Pass, Deviation, Deviation},
		{Fail, Interrupted, Fail},
		{Interrupted, Fail, Fail},
		{Inconclusive, Skipped, Inconclusive},
		{Pass, Verdict(99), Verdict(99)},
	} {
		if got := Worse(tt.a, tt.b); got != tt.want {
			t.Errorf("Worse(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
