package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/firewall"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/result"
)

// HTMLReport is what one HTML page shows. The page is self-contained: its
// CSS, script and SVG drawings are inline, it loads nothing from anywhere,
// so it can be attached to a ticket or mailed and opened offline.
type HTMLReport struct {
	// Title heads the page, e.g. "tcpwalk walk all 198.18.0.2:7001".
	Title string
	// Created is when the run ended; zero leaves it out.
	Created time.Time
	// Results are the walks (or conformance checks, scripts, firewall
	// states), each drawn as a ladder with its checks.
	Results []walk.Result
	// Conform, when set, adds the conformance matrix, states × events,
	// each cell coloured by its verdict and linked to its check.
	Conform *conform.Report
	// Coverage, when set, adds the table of the 11 states of RFC 9293 and
	// the walks that confirmed each.
	Coverage []walk.Coverage
	// Firewall, when set, adds the firewall matrix: probes × connection
	// states, each cell what became of the probe on the path.
	Firewall *firewall.Matrix
	// StackProfile, when set, adds the remote stack's profile that conform
	// ends with: its optional mechanisms, timers and formats, the stack
	// family it resembles, each with its evidence linked to the checks.
	// Nil takes Conform's profile, if any.
	StackProfile *conform.Profile
}

// Ladder geometry of the SVG drawing, in CSS pixels.
const (
	svgWidth   = 1000
	svgLeftX   = 250 // our host line
	svgRightX  = 750 // the remote's host line
	svgTop     = 64  // the first arrow's start
	svgRowH    = 44  // vertical room per segment
	svgSlope   = 22  // how far an arrow falls: time passes while it travels
	svgBottomP = 24
	svgCharW   = 7   // a 12px monospace character, about
	svgLabelW  = 480 // the room for a label between the host lines
)

//go:embed html.tmpl
var htmlFS embed.FS

var htmlTemplate = template.Must(template.New("html.tmpl").ParseFS(htmlFS, "html.tmpl"))

// WriteHTML writes rep as one HTML page.
func WriteHTML(w io.Writer, rep HTMLReport) error {
	v := htmlView{Title: rep.Title}
	prof := rep.StackProfile
	if prof == nil && rep.Conform != nil {
		prof = &rep.Conform.Profile
	}
	if v.Title == "" {
		v.Title = "tcpwalk report"
	}
	if !rep.Created.IsZero() {
		v.Created = rep.Created.UTC().Format(time.RFC3339)
	}
	for i, r := range rep.Results {
		v.Walks = append(v.Walks, walkView(i, r))
	}
	n := countVerdicts(rep.Results)
	noun := "walks"
	switch {
	case rep.Conform != nil:
		noun = "checks"
	case rep.Firewall != nil:
		noun = "states"
	}
	v.Counts = fmt.Sprintf("%d %s: %d pass, %d fail, %d inconclusive, %d skipped", len(rep.Results), noun, n.pass, n.fail, n.inconclusive, n.skipped)
	if n.deviation > 0 {
		v.Counts += fmt.Sprintf(", %d deviation", n.deviation)
	}
	if rep.Conform != nil {
		v.Matrix = matrixView(*rep.Conform, v.Walks)
	}
	if prof != nil {
		v.Profile = profileView(*prof, v.Walks)
	}
	if rep.Firewall != nil {
		v.Firewall = firewallView(rep.Firewall)
	}
	for _, c := range rep.Coverage {
		cv := coverageRow{State: c.State.String(), By: strings.Join(c.By, ", "), Mark: "confirmed", Class: "v-pass"}
		switch {
		case len(c.By) == 0:
			cv.Mark, cv.Class = "not seen", "v-fail"
		case !c.Kernel:
			cv.Mark, cv.Class = "wire only", "v-inconclusive"
		}
		v.Coverage = append(v.Coverage, cv)
	}
	if err := htmlTemplate.Execute(w, v); err != nil {
		return fmt.Errorf("report: write the HTML report: %w", err)
	}
	return nil
}

// htmlView is the page as the template reads it: every position and
// label computed here, so the template only places them.
type htmlView struct {
	Title, Created string
	Counts         string
	Walks          []walkHTML
	Matrix         *matrixHTML
	Firewall       *firewallHTML
	Coverage       []coverageRow
	Profile        []profileRow
}

// profileRow is one item of the stack profile, its evidence linked to the
// walks (checks) that show it when they are on the page.
type profileRow struct {
	Key, Name, Value string
	Evidence         []evidenceLink
}

type evidenceLink struct{ ID, Href string }

func profileView(p conform.Profile, walks []walkHTML) []profileRow {
	href := map[string]string{}
	for _, w := range walks {
		href[w.Scenario] = "#" + w.ID
	}
	var out []profileRow
	for _, it := range p.Items {
		r := profileRow{Key: it.Key, Name: it.Name, Value: it.Value}
		for _, e := range it.Evidence {
			r.Evidence = append(r.Evidence, evidenceLink{ID: e, Href: href[e]})
		}
		out = append(out, r)
	}
	return out
}

type walkHTML struct {
	ID, Scenario, Summary string
	Verdict, Class        string
	Reason                string
	Local, Remote         string
	Duration              string
	Height                int
	Segments              []segHTML
	Checks                []checkHTML
}

// segHTML is one arrow. The data-* attributes carry the segment's fields
// for scripts and tests; Label is what is written on the arrow.
type segHTML struct {
	ID                       string
	Dir                      walk.Dir
	Class                    string
	Flags, Note              string
	Seq, Ack, RelSeq, RelAck uint32
	Len                      int
	Label, Title             string
	X1, Y1, X2, Y2, LX, LY   int
	Time, LocalSt, RemoteSt  string
	TimeY, StateY            int
	Fit                      int // textLength for a long label; 0: none
	ICMP                     bool
}

type checkHTML struct {
	ID, Name, Rule, Verdict, Class, Mark string
	Expected, Received, Reason, Probe    string
	Wire, Kernel, Deviation              string
	Disagree, Failed                     bool
	Segs                                 []segLink
}

type segLink struct{ ID, Text string }

type matrixHTML struct {
	Target, Trigger string
	Events          []string
	Rows            []matrixRow
	Measurements    []conform.Measurement
}

type matrixRow struct {
	State string
	Cells []matrixCell
}

type matrixCell struct {
	Verdict, Class, Href, Title string
}

type coverageRow struct{ State, Mark, Class, By string }

func verdictClass(v walk.Verdict) string {
	switch v {
	case walk.Pass, walk.Deviation, walk.Fail, walk.Inconclusive, walk.Skipped:
		return "v-" + v.String()
	}
	return "v-fail"
}

func walkView(i int, r walk.Result) walkHTML {
	id := fmt.Sprintf("w%d", i)
	wv := walkHTML{ID: id, Scenario: r.Scenario, Summary: r.Summary, Verdict: r.Verdict.String(), Class: verdictClass(r.Verdict),
		Reason: r.Reason, Local: "tcpwalk", Remote: "target", Duration: seconds(r.Duration)}
	if r.Local.IsValid() {
		wv.Local += " " + r.Local.String()
	}
	if r.Target.IsValid() {
		wv.Remote = r.Target.String()
	}
	base := r.Start
	if base.IsZero() && len(r.Segments) > 0 {
		base = r.Segments[0].At
	}
	var prevL, prevR result.State
	for j, s := range r.Segments {
		y := svgTop + j*svgRowH
		sv := segHTML{ID: fmt.Sprintf("%s-s%d", id, j+1), Dir: s.Dir, Flags: flagText(s), Note: s.Note, Seq: uint32(s.Seq), Ack: uint32(s.Ack),
			RelSeq: s.RelSeq, RelAck: s.RelAck, Len: s.Len, Time: elapsed(s.At.Sub(base)) + " ms", TimeY: y + svgSlope/2 + 4,
			StateY: y + svgSlope + 4, Y1: y, Y2: y + svgSlope}
		if j == 0 || s.LocalState != prevL {
			sv.LocalSt = s.LocalState.String()
		}
		if j == 0 || s.RemoteState != prevR {
			sv.RemoteSt = s.RemoteState.String()
		}
		prevL, prevR = s.LocalState, s.RemoteState
		if s.ICMP != "" {
			sv.ICMP, sv.Dir = true, walk.In
			sv.Label = "ICMP " + s.ICMP
			sv.Title = sv.Label
		} else {
			sv.Label = segmentLabel(s, true)
			sv.Title = fmt.Sprintf("%s: %s (seq %d, ack %d absolute, win %d)", s.Dir, segmentLabel(s, false), s.Seq, s.Ack, s.Win)
		}
		if sv.Dir == walk.Out {
			sv.X1, sv.X2, sv.Class = svgLeftX, svgRightX, "seg out"
		} else {
			sv.X1, sv.X2, sv.Class = svgRightX, svgLeftX, "seg in"
		}
		if sv.ICMP {
			sv.Class += " icmp"
		}
		sv.LX, sv.LY = (svgLeftX+svgRightX)/2, y+svgSlope/2-10 // above the arrow's middle
		// A label wider than the gap between the hosts is squeezed into
		// it rather than drawn over the state columns.
		if utf8.RuneCountInString(sv.Label)*svgCharW > svgLabelW {
			sv.Fit = svgLabelW
		}
		wv.Segments = append(wv.Segments, sv)
	}
	wv.Height = svgTop + len(r.Segments)*svgRowH + svgBottomP
	wv.Checks = checkViews(id, r, wv.Segments)
	return wv
}

// checkViews links each check to the segments that led to it: those
// recorded after the previous check's time, up to its own.
func checkViews(id string, r walk.Result, segs []segHTML) []checkHTML {
	var out []checkHTML
	var prev time.Time
	for k, c := range r.Checks {
		mark, _ := verdictMark(c.Verdict)
		cv := checkHTML{ID: fmt.Sprintf("%s-c%d", id, k+1), Name: c.Name, Rule: c.Rule, Verdict: c.Verdict.String(),
			Class: verdictClass(c.Verdict), Mark: mark, Expected: orNothing(c.Expected), Received: orNothing(c.Received),
			Reason: c.Reason, Probe: c.Probe, Wire: c.Wire.String(), Kernel: kernelText(c), Deviation: c.Deviation, Disagree: c.Disagree,
			Failed: c.Verdict != walk.Pass && c.Verdict != walk.Skipped}
		if !c.At.IsZero() {
			latest := -1 // the last segment at or before the check
			for j, s := range r.Segments {
				if s.At.After(c.At) {
					continue
				}
				latest = j
				if s.At.After(prev) {
					cv.Segs = append(cv.Segs, segLink{ID: segs[j].ID, Text: fmt.Sprintf("#%d", j+1)})
				}
			}
			// A check judged on what an earlier one saw (no segment
			// since) links to the segment it rests on.
			if len(cv.Segs) == 0 && latest >= 0 {
				cv.Segs = []segLink{{ID: segs[latest].ID, Text: fmt.Sprintf("#%d", latest+1)}}
			}
			prev = c.At
		}
		out = append(out, cv)
	}
	return out
}

// matrixView lays the conformance checks out as states (rows, in RFC
// 9293's order) × events (columns, in the order the matrix first names
// them); an empty cell is a pair the matrix does not test.
func matrixView(rep conform.Report, walks []walkHTML) *matrixHTML {
	sectionOf := map[string]string{} // check ID → its walk's section
	for _, w := range walks {
		if _, dup := sectionOf[w.Scenario]; !dup {
			sectionOf[w.Scenario] = "#" + w.ID
		}
	}
	m := &matrixHTML{Target: rep.Target.String(), Trigger: rep.Trigger, Measurements: rep.Measurements}
	type key struct{ state, event string }
	cells := map[key]matrixCell{}
	states := map[string]bool{}
	seenEvent := map[string]bool{}
	for _, r := range rep.Results {
		st, ev, ok := strings.Cut(r.Scenario, "/")
		if ch, found := conform.Lookup(r.Scenario); found {
			st, ev, ok = ch.State.String(), ch.Event, true
		}
		if !ok {
			continue
		}
		title := r.Scenario + ": " + r.Verdict.String()
		if d := conform.Deviations(r); len(d) > 0 {
			title += " (" + strings.Join(d, ", ") + ")"
		} else if r.Reason != "" {
			title += " (" + r.Reason + ")"
		}
		cells[key{st, ev}] = matrixCell{Verdict: r.Verdict.String(), Class: verdictClass(r.Verdict), Href: sectionOf[r.Scenario], Title: title}
		states[st] = true
		if !seenEvent[ev] {
			seenEvent[ev] = true
			m.Events = append(m.Events, ev)
		}
	}
	order := append([]string{}, walk.States...)
	for st := range states { // a state outside RFC 9293's names goes last
		if !contains(order, st) {
			order = append(order, st)
		}
	}
	for _, st := range order {
		if !states[st] {
			continue
		}
		row := matrixRow{State: st}
		for _, ev := range m.Events {
			row.Cells = append(row.Cells, cells[key{st, ev}])
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type firewallHTML struct {
	Target, Local, How, Policy, Verdict string
	States                              []string
	Rows                                []firewallRow
}

type firewallRow struct {
	Probe string
	Cells []matrixCell
}

// firewallView lays the firewall matrix out as probes (rows, in the order
// first probed) × connection states (columns). A cell is coloured by its
// verdict when a policy was judged, else by its outcome.
func firewallView(m *firewall.Matrix) *firewallHTML {
	v := &firewallHTML{Target: m.Target.String(), Local: m.Local.String(), How: "answers only (no capture)",
		Policy: string(m.Policy), Verdict: m.Verdict.String()}
	if m.Capture {
		v.How = "a capture at the target"
	}
	states := map[firewall.State]bool{}
	for _, c := range m.Cells {
		states[c.State] = true
	}
	for _, st := range firewall.States {
		if states[st] {
			v.States = append(v.States, string(st))
		}
	}
	index := map[string]int{}
	for _, c := range m.Cells {
		i, ok := index[c.Probe]
		if !ok {
			i = len(v.Rows)
			index[c.Probe] = i
			v.Rows = append(v.Rows, firewallRow{Probe: c.Probe, Cells: make([]matrixCell, len(v.States))})
		}
		col := -1
		for k, st := range v.States {
			if st == string(c.State) {
				col = k
			}
		}
		if col < 0 {
			continue
		}
		text := string(c.Outcome)
		if c.Outcome == firewall.Rejected && c.RejectedBy.IsValid() {
			text += " by " + c.RejectedBy.String()
		}
		class := "o-" + strings.ReplaceAll(string(c.Outcome), " ", "-")
		if m.Policy != "" && c.Verdict != result.Undecided {
			class = verdictClass(c.Verdict)
		}
		title := c.Sent + ": " + c.Detail
		if c.Reason != "" {
			title += " (" + c.Reason + ")"
		}
		v.Rows[i].Cells[col] = matrixCell{Verdict: text, Class: class, Title: title}
	}
	return v
}
