package conform

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// ProfileItem is one line of the stack profile: what the remote does where
// the RFCs leave a choice, and the checks or measurements that showed it.
type ProfileItem struct {
	// Key is a stable name for JSON and JUnit properties, e.g. "rfc5961.rst".
	Key string `json:"key"`
	// Name says what it is in words.
	Name string `json:"name"`
	// Value is what was seen, e.g. "implemented", "not implemented
	// (optional)", "1.00s, 2.00s", "not measured: ...".
	Value string `json:"value"`
	// Evidence lists the check and measurement IDs it comes from.
	Evidence []string `json:"evidence"`
}

// Profile is the stack profile that ends a conformance run: which optional
// mechanisms the remote implements, its timers and formats, and the stack
// family it resembles most. None of it is judged: checks judge, the
// profile describes.
type Profile struct {
	Items []ProfileItem `json:"items"`
}

// Get returns the item with key.
func (p Profile) Get(key string) (ProfileItem, bool) {
	for _, it := range p.Items {
		if it.Key == key {
			return it, true
		}
	}
	return ProfileItem{}, false
}

// Profile keys.
const (
	ProfRFC5961RST  = "rfc5961.rst"
	ProfRFC5961SYN  = "rfc5961.syn"
	ProfRFC5961ACK  = "rfc5961.old_ack"
	ProfRFC1337     = "rfc1337"
	ProfSynCookies  = "syn_cookies"
	ProfOptions     = "synack.options"
	ProfSACK        = "sack"
	ProfTS          = "timestamps"
	ProfWS          = "window_scale"
	ProfInitialRTO  = "rto.initial"
	ProfSynAckSched = "rto.synack_schedule"
	ProfTailLoss    = "tail_loss_probe"
	ProfTimeWait    = "time_wait.length"
	ProfTWReopen    = "time_wait.reopen"
	ProfRSTFormat   = "rst.format"
	ProfISS         = "iss"
	ProfFamily      = "family"
)

// buildProfile reads the profile from a finished run.
func buildProfile(rep Report) Profile {
	var p Profile
	add := func(key, name, value string, evidence []string) {
		if evidence == nil {
			evidence = []string{}
		}
		p.Items = append(p.Items, ProfileItem{Key: key, Name: name, Value: value, Evidence: evidence})
	}
	for _, o := range []struct{ key, optional string }{
		{ProfRFC5961RST, OptRFC5961RST}, {ProfRFC5961SYN, OptRFC5961SYN}, {ProfRFC5961ACK, OptRFC5961ACK},
		{ProfRFC1337, OptRFC1337}, {ProfSACK, OptSACK}, {ProfTS, OptTS}, {ProfWS, OptWS}, {ProfTWReopen, OptTWReopen},
	} {
		v, ev := optionalSeen(rep.Results, o.optional)
		add(o.key, o.optional, v, ev)
	}
	for _, m := range rep.Measurements {
		switch m.ID {
		case MeasureSynCookies:
			add(ProfSynCookies, "SYN cookies", m.Value, []string{m.ID})
		case MeasureSynAckSchedule:
			add(ProfSynAckSched, "SYN,ACK retransmission schedule", m.Value, []string{m.ID})
			add(ProfInitialRTO, "initial RTO (RFC 6298 §2.1: 1 s; RFC 1122: 3 s)", initialRTO(m), []string{m.ID})
		case MeasureFINBackoff:
			add(ProfTailLoss, "tail loss probe (RFC 8985 §7) before the FIN's RTO", tailLoss(m), []string{m.ID})
		}
	}
	if v, ev := synackOptions(rep.Results); v != "" {
		add(ProfOptions, "SYN,ACK options to a SYN offering all", v, ev)
	}
	add(ProfTimeWait, "TIME_WAIT length (RFC 9293: 2 MSL, 240 s)", "not measured: it takes 2 MSL (up to 4 minutes) of one connection", nil)
	v, ev := rstFormat(rep.Results)
	add(ProfRSTFormat, "RST format (RFC 9293 §3.10.7.1)", v, ev)
	v, ev = issPattern(rep.Results)
	add(ProfISS, "ISS predictability (RFC 6528: SHOULD be unpredictable)", v, ev)
	v, ev = family(rep)
	add(ProfFamily, "nearest stack family", v, ev)
	return p
}

// optionalSeen says whether the checks that show the optional mechanism
// saw it in use: "implemented", "not implemented (optional)", "mixed" (in
// some states only), or "not seen" when no check ran that shows it.
func optionalSeen(results []walk.Result, optional string) (string, []string) {
	var yes, no []string
	for _, r := range results {
		for _, c := range r.Checks {
			if c.Optional != optional || (c.Verdict != walk.Pass && c.Verdict != walk.Deviation) {
				continue
			}
			if c.Has {
				yes = append(yes, r.Scenario)
			} else {
				no = append(no, r.Scenario)
			}
		}
	}
	switch {
	case len(yes) > 0 && len(no) > 0:
		return fmt.Sprintf("in %d of %d states (not in %s)", len(yes), len(yes)+len(no), strings.Join(statesOf(no), ", ")), append(yes, no...)
	case len(yes) > 0:
		return "implemented", yes
	case len(no) > 0:
		return "not implemented (optional)", no
	}
	return "not seen: no check that shows it ran to the end", nil
}

func statesOf(ids []string) []string {
	var out []string
	for _, id := range ids {
		st, _, _ := strings.Cut(id, "/")
		out = append(out, st)
	}
	return out
}

// initialRTO is the first SYN,ACK interval, in the RFC's terms.
func initialRTO(m Measurement) string {
	if !m.OK {
		return m.Value
	}
	if len(m.Intervals) == 0 {
		return "no SYN,ACK retransmission seen (SYN cookies, or an RTO beyond the wait)"
	}
	d := m.Intervals[0]
	switch {
	case d < 900*time.Millisecond:
		return fmt.Sprintf("%.2fs: below RFC 6298's 1 s (a MAY when the stack's RTT estimate allows, §2.4)", d.Seconds())
	case d <= 3300*time.Millisecond:
		return fmt.Sprintf("%.2fs: within RFC 6298 §2.1 (1 s) to RFC 1122 (3 s)", d.Seconds())
	}
	return fmt.Sprintf("%.2fs: above RFC 1122's 3 s", d.Seconds())
}

// tailLoss reads a tail loss probe from the FIN's schedule: a first
// retransmission sooner than half the next interval, which a doubling RTO
// cannot make.
func tailLoss(m Measurement) string {
	if !m.OK {
		return m.Value
	}
	if len(m.Intervals) < 2 {
		return "not measured: fewer than two FIN retransmissions"
	}
	// An RTO doubles with each retransmission (RFC 6298 §5.5): a first
	// interval much shorter than the second, or one the second does not
	// double, is a probe sent before the RTO.
	first, second := m.Intervals[0], m.Intervals[1]
	if first*2 < second*3/4 || sameGap(first, second) {
		return fmt.Sprintf("seen: the second FIN retransmission came %.2fs after the first, which the RTO's doubling cannot make: the first was a probe before the RTO (%s)", second.Seconds(), intervalsText(m.Intervals))
	}
	return fmt.Sprintf("not seen: the FIN's intervals double from the first (%s)", intervalsText(m.Intervals))
}

// synackOptions lists the options of the SYN,ACK that answered the SYN
// offering all of them.
func synackOptions(results []walk.Result) (string, []string) {
	for _, r := range results {
		if r.Scenario != "LISTEN/options-offered" {
			continue
		}
		for _, s := range r.Segments {
			if s.Dir == walk.In && s.Flags == craft.FlagSYN|craft.FlagACK {
				return optionsText(&s), []string{r.Scenario}
			}
		}
	}
	return "", nil
}

// rstFormat describes the remote's resets: whether they carry ACK where
// §3.10.7.1 asks for none (the answer to a segment with ACK is
// <SEQ=SEG.ACK><CTL=RST>), their windows and options.
func rstFormat(results []walk.Result) (string, []string) {
	n, withACK, windows, opts := 0, 0, map[uint16]int{}, 0
	var ev []string
	for _, r := range results {
		seen := false
		for _, s := range r.Segments {
			if s.Dir != walk.In || s.ICMP != "" || s.Duplicate {
				continue
			}
			f := s.Flags
			if !f.Has(craft.FlagRST) {
				continue
			}
			n++
			if f.Has(craft.FlagACK) {
				withACK++
			}
			windows[s.Win]++
			if len(s.Options) > 0 {
				opts++
			}
			seen = true
		}
		if seen {
			ev = append(ev, r.Scenario)
		}
	}
	if n == 0 {
		return "not seen: no reset came", nil
	}
	var ws []string
	for w, k := range windows {
		ws = append(ws, fmt.Sprintf("%d (%d)", w, k))
	}
	sort.Strings(ws)
	return fmt.Sprintf("%d resets: %d with ACK, window %s, %d with options", n, withACK, strings.Join(ws, ", "), opts), firstN(ev, 5)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// issPattern looks at the ISSs of the SYN,ACKs the run drew, in the order
// they were sent: equal steps, or all steps small against 2^32, are
// predictable (RFC 6528 §3 asks for a secret hash of the 4-tuple plus a
// clock; distinct 4-tuples then give unrelated numbers).
func issPattern(results []walk.Result) (string, []string) {
	type sample struct {
		at  time.Time
		iss uint32
	}
	var ss []sample
	var ev []string
	for _, r := range results {
		for _, s := range r.Segments {
			if s.Dir == walk.In && s.Flags == craft.FlagSYN|craft.FlagACK && !s.Retransmission && !s.Repeat {
				ss = append(ss, sample{s.At, uint32(s.Seq)})
				ev = append(ev, r.Scenario)
				break
			}
		}
	}
	if len(ss) < 4 {
		return fmt.Sprintf("not measured: %d SYN,ACKs, want at least 4", len(ss)), ev
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].at.Before(ss[j].at) })
	small, same := 0, 0
	var prev uint32
	for i, s := range ss {
		if i == 0 {
			continue
		}
		d := s.iss - ss[i-1].iss
		if d < 1<<20 {
			small++
		}
		if i > 1 && d == prev {
			same++
		}
		prev = d
	}
	steps := len(ss) - 1
	switch {
	case same >= steps/2 && steps >= 3:
		return fmt.Sprintf("predictable: %d of %d steps between successive ISSs are equal (%d)", same+1, steps, prev), firstN(ev, 5)
	case small == steps:
		return fmt.Sprintf("predictable: every step between successive ISSs of %d connections is below 2^20", len(ss)), firstN(ev, 5)
	}
	return fmt.Sprintf("no pattern in %d ISSs (as RFC 6528 asks)", len(ss)), firstN(ev, 5)
}

// family names the stack family whose known choices the run saw most of,
// with those choices. Only families whose traits were seen in tcpwalk's
// labs are named; a stack with none of them is "unknown", never guessed.
func family(rep Report) (string, []string) {
	type trait struct {
		what string
		seen bool
		id   string
	}
	devSeen := func(name string) (bool, string) {
		for _, r := range rep.Results {
			for _, d := range Deviations(r) {
				if d == name {
					return true, r.Scenario
				}
			}
		}
		return false, ""
	}
	var linux []trait
	if ok, id := devSeen("synack-on-retransmitted-syn"); ok {
		linux = append(linux, trait{"a SYN,ACK again for a retransmitted SYN", true, id})
	}
	if ok, id := devSeen("rst-at-rcv-nxt-minus-1-accepted"); ok {
		linux = append(linux, trait{"a RST at RCV.NXT−1 accepted after the peer's FIN", true, id})
	}
	for _, m := range rep.Measurements {
		if m.ID == MeasureTWFingerprint && strings.Contains(m.Value, fmt.Sprintf("+ %d", linuxTWOffset)) {
			linux = append(linux, trait{fmt.Sprintf("TIME_WAIT reopened with ISS = old SND.NXT + %d", linuxTWOffset), true, m.ID})
		}
		if m.ID == MeasureSynAckSchedule && len(m.Intervals) >= 2 && sameGap(m.Intervals[0], time.Second) && sameGap(m.Intervals[1], 2*time.Second) {
			linux = append(linux, trait{"SYN,ACK retransmitted after 1 s, then 2 s", true, m.ID})
		}
	}
	if len(linux) == 0 {
		return "unknown: none of the traits of the families tcpwalk knows (Linux) was seen", nil
	}
	var what, ids []string
	for _, t := range linux {
		what = append(what, t.what)
		ids = append(ids, t.id)
	}
	return fmt.Sprintf("Linux (%d of 4 traits: %s)", len(linux), strings.Join(what, "; ")), ids
}
