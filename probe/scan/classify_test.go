package scan

import (
	"testing"
)

// nmap's reading of replies (see the package doc), per scan type.
func TestClassify(t *testing.T) {
	icmp13 := ansUnreach + 13
	ttl := ansTimeEx
	type row struct {
		typ  Type
		a    answer
		want State
		why  ReasonKind
	}
	var rows []row
	for _, typ := range []Type{TypeSYN, TypeACK, TypeWindow, TypeFIN, TypeNULL, TypeXmas, TypeMaimon} {
		rows = append(rows, row{typ, icmp13, Filtered, ReasonICMP}, row{typ, ttl, Filtered, ReasonICMP})
	}
	rows = append(rows,
		row{TypeSYN, ansSynAck, Open, ReasonSynAck},
		row{TypeSYN, ansSyn, Open, ReasonSyn},
		row{TypeSYN, ansRST, Closed, ReasonReset},
		row{TypeSYN, ansRSTWin, Closed, ReasonReset},
		row{TypeSYN, ansNone, Filtered, ReasonNoResponse},
		row{TypeACK, ansRST, Unfiltered, ReasonReset},
		row{TypeACK, ansRSTWin, Unfiltered, ReasonReset},
		row{TypeACK, ansNone, Filtered, ReasonNoResponse},
		row{TypeWindow, ansRSTWin, Open, ReasonReset},
		row{TypeWindow, ansRST, Closed, ReasonReset},
		row{TypeWindow, ansNone, Filtered, ReasonNoResponse},
	)
	for _, typ := range []Type{TypeFIN, TypeNULL, TypeXmas, TypeMaimon} {
		rows = append(rows, row{typ, ansRST, Closed, ReasonReset}, row{typ, ansNone, OpenFiltered, ReasonNoResponse})
	}
	for _, r := range rows {
		st, why := classify(r.typ, r.a)
		if st != r.want || why.Kind != r.why {
			t.Errorf("%v scan, answer %d: %v (%v), want %v (%v)", r.typ, r.a, st, why.Kind, r.want, r.why)
		}
	}
}

func TestICMPAnswer(t *testing.T) {
	for code := range uint8(16) {
		a := icmpAnswer(3, code)
		want := code <= 3 || code == 9 || code == 10 || code == 13
		if (a != ansNone) != want {
			t.Errorf("ICMP 3/%d read as filtered: %v, want %v", code, a != ansNone, want)
		}
		if a != ansNone {
			_, why := classify(TypeSYN, a)
			if why.ICMPType != 3 || why.ICMPCode != code {
				t.Errorf("ICMP 3/%d comes back as %d/%d", code, why.ICMPType, why.ICMPCode)
			}
		}
	}
	if icmpAnswer(11, 0) == ansNone || icmpAnswer(12, 0) != ansNone || icmpAnswer(3, 4) != ansNone {
		t.Error("type 11 must count, 12 and 3/4 (fragmentation needed) must not")
	}
}

func TestAnswerPrecedence(t *testing.T) {
	for _, tc := range []struct {
		old, a answer
		want   bool
	}{
		{ansNone, ansRST, true},
		{ansNone, ansUnreach + 13, true},
		{ansUnreach + 13, ansSynAck, true}, // the host itself beats a router's error
		{ansSyn, ansSynAck, true},          // a cookie beats none
		{ansSynAck, ansRST, false},         // first validated answer stays
		{ansRST, ansUnreach + 3, false},
		{ansSynAck, ansSyn, false},
		{ansUnreach + 3, ansUnreach + 13, false},
		{ansRST, ansNone, false},
	} {
		if got := tc.a.wins(tc.old); got != tc.want {
			t.Errorf("answer %d over %d: %v, want %v", tc.a, tc.old, got, tc.want)
		}
	}
}

func TestParseTypeAndStrings(t *testing.T) {
	for _, n := range TypeNames() {
		typ, err := ParseType(n)
		if err != nil || typ.String() != n {
			t.Errorf("ParseType(%q) = %v, %v", n, typ, err)
		}
	}
	if _, err := ParseType("connect"); err == nil {
		t.Error("ParseType(connect): no error")
	}
	if OpenFiltered.String() != "open|filtered" || State(0).String() != "State(0)" {
		t.Error("State strings")
	}
}
