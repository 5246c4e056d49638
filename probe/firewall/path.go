package firewall

import (
	"fmt"
	"strconv"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Change is one header field a middlebox changed between what was sent and
// what arrived (at the target, or at a router that quoted it in ICMP).
type Change struct {
	// Field is the changed field in tcpdump's words: "seq", "ack", "win",
	// "flags", "tos", "mss", "wscale", "sackOK", "TS", "options", "len".
	Field string `json:"field"`
	Sent  string `json:"sent"`
	Got   string `json:"got"`
}

// String writes "mss 1460 → 1000".
func (c Change) String() string { return c.Field + " " + c.Sent + " → " + c.Got }

// Compare lists what differs between the segment we sent and the one that
// arrived, both whole IPv4 or both IPv6 packets. It ignores what every
// router changes (TTL or hop limit, IP and TCP checksums), the IP ID and the
// flow label. got may be a quote cut short
// (RFC 792 asks only for 8 bytes of the segment): fields it does not reach
// are not compared, and complete reports whether the TCP header was whole.
// An acknowledgment number is compared only when ACK is set in both.
func Compare(sent, got []byte) (changes []Change, complete bool) {
	sw, ok1 := parseWire(sent)
	gw, ok2 := parseWire(got)
	if !ok1 || !ok2 || sw.v6 != gw.v6 {
		return nil, false
	}
	add := func(field string, a, b uint64) {
		if a != b {
			changes = append(changes, Change{field, strconv.FormatUint(a, 10), strconv.FormatUint(b, 10)})
		}
	}
	add("tos", uint64(sw.tos), uint64(gw.tos))
	st, gt := sw.tcp, gw.tcp
	if len(st) < craft.TCPMinimumSize || len(gt) < 8 {
		return changes, false
	}
	add("seq", uint64(st.SequenceNumber()), uint64(gt.SequenceNumber()))
	if len(gt) < craft.TCPMinimumSize {
		return changes, false
	}
	if sf, gf := st.Flags(), gt.Flags(); sf != gf {
		changes = append(changes, Change{"flags", sf.String(), gf.String()})
	}
	if st.Flags().Has(craft.FlagACK) && gt.Flags().Has(craft.FlagACK) {
		add("ack", uint64(st.AckNumber()), uint64(gt.AckNumber()))
	}
	add("win", uint64(st.WindowSize()), uint64(gt.WindowSize()))
	add("urg", uint64(st.UrgentPointer()), uint64(gt.UrgentPointer()))
	if gt.DataOffset() > len(gt) || st.DataOffset() > len(st) {
		return changes, false
	}
	changes = append(changes, compareOptions(st.OptionBytes(), gt.OptionBytes())...)
	// The payload length from the IP total length: a quote holds only part
	// of the payload, but its IP header still says how long it was.
	sl := sw.tcpLen - st.DataOffset()
	gl := gw.tcpLen - gt.DataOffset()
	add("len", uint64(max(sl, 0)), uint64(max(gl, 0)))
	return changes, true
}

// optionSummary is what Compare reads from an options block.
type optionSummary struct {
	kinds  string // kinds in order, e.g. "2,4,8,1,3"
	values map[craft.OptionKind]string
}

func summarize(b []byte) optionSummary {
	s := optionSummary{values: map[craft.OptionKind]string{}}
	it := craft.NewOptionIter(b)
	for it.Next() {
		o := it.Option()
		if o.Kind == craft.OptEOL {
			break
		}
		if s.kinds != "" {
			s.kinds += ","
		}
		s.kinds += strconv.Itoa(int(o.Kind))
		switch o.Kind {
		case craft.OptMSS:
			s.values[o.Kind] = strconv.Itoa(int(o.MSS()))
		case craft.OptWindowScale:
			s.values[o.Kind] = strconv.Itoa(int(o.WindowScale()))
		case craft.OptTimestamps:
			v, e := o.Timestamps()
			s.values[o.Kind] = fmt.Sprintf("%d/%d", v, e)
		case craft.OptNOP:
		default:
			s.values[o.Kind] = fmt.Sprintf("%x", o.Data)
		}
	}
	return s
}

// optionNames are the fields Compare reports per option kind.
var optionNames = map[craft.OptionKind]string{
	craft.OptMSS:           "mss",
	craft.OptWindowScale:   "wscale",
	craft.OptSACKPermitted: "sackOK",
	craft.OptTimestamps:    "TS",
}

// compareOptions reports a changed value per known option, a removed or
// added option as "-" on its side, and a different order or set of NOPs
// as "options".
func compareOptions(sent, got []byte) []Change {
	s, g := summarize(sent), summarize(got)
	var out []Change
	for _, k := range []craft.OptionKind{craft.OptMSS, craft.OptWindowScale, craft.OptSACKPermitted, craft.OptTimestamps} {
		sv, sok := s.values[k]
		gv, gok := g.values[k]
		switch {
		case sok && !gok:
			out = append(out, Change{optionNames[k], present(sv), "-"})
		case !sok && gok:
			out = append(out, Change{optionNames[k], "-", present(gv)})
		case sok && sv != gv:
			out = append(out, Change{optionNames[k], sv, gv})
		}
	}
	if len(out) == 0 && s.kinds != g.kinds {
		out = append(out, Change{"options", "kinds " + s.kinds, "kinds " + g.kinds})
	}
	return out
}

func present(v string) string {
	if v == "" {
		return "present"
	}
	return v
}
