package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/conform"
	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// htmlWalks are the walks the HTML tests draw: the ladder fixtures, with
// check times so that each check links to the segments before it, and a
// summary that must come out escaped.
func htmlWalks() []walk.Result {
	hs := handshakeWalk()
	hs.Checks[0].At = at(0.9) // after the SYN and the SYN,ACK
	hs.Checks[1].At = at(1.4) // the ACK, KA1 and its answer
	// A check judged at the same moment: it rests on the last segment.
	hs.Checks = append(hs.Checks, walk.Check{Name: "ESTABLISHED: KA1 answered", Rule: "RFC 9293 §3.8.4 (keep-alive)", Verdict: walk.Pass, At: at(1.4)})
	cl := closeWalk()
	for i, ms := range []float64{10.2, 230.4, 250, 0} {
		if ms > 0 {
			cl.Checks[i].At = at(ms)
		}
	}
	sk := skippedWalk()
	sk.Summary = `remote client: <script>alert("x")</script> & SYN_SENT`
	return []walk.Result{hs, cl, sk}
}

func htmlReport() HTMLReport {
	rep := someConform()
	results := htmlWalks()
	return HTMLReport{Title: "tcpwalk walk all 198.18.0.2:7001", Created: t0, Results: append(results, rep.Results...),
		Conform: &rep, Coverage: walk.StateCoverage(results)}
}

func renderHTML(t *testing.T, rep HTMLReport) (string, *html.Node) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	doc, err := html.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("parse the page: %v", err)
	}
	return b.String(), doc
}

// Small DOM helpers over x/net/html, an HTML5 parser independent of
// html/template.
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	visit(n)
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	visit(n)
	return b.String()
}

func byTag(tag string) func(*html.Node) bool { return func(n *html.Node) bool { return n.Data == tag } }

func atoi(t *testing.T, s string) int {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return v
}

// TestHTMLLadderArrowsMatchSegments: each walk's SVG has one arrow per
// segment, in order, pointing the right way, carrying the segment's flags
// and numbers, and labelled with them; the hosts head the two lines.
func TestHTMLLadderArrowsMatchSegments(t *testing.T) {
	rep := htmlReport()
	_, doc := renderHTML(t, rep)
	sections := findAll(doc, func(n *html.Node) bool { return n.Data == "section" && hasClass(n, "walk") })
	if len(sections) != len(rep.Results) {
		t.Fatalf("%d walk sections, want %d", len(sections), len(rep.Results))
	}
	for i, r := range rep.Results {
		sec := sections[i]
		if got := attr(sec, "data-scenario"); got != r.Scenario {
			t.Errorf("section %d is %q, want %q", i, got, r.Scenario)
		}
		svgs := findAll(sec, byTag("svg"))
		if len(r.Segments) == 0 {
			if len(svgs) != 0 {
				t.Errorf("%s: no segments, yet %d drawings", r.Scenario, len(svgs))
			}
			continue
		}
		if len(svgs) != 1 {
			t.Fatalf("%s: %d svg drawings, want 1", r.Scenario, len(svgs))
		}
		heads := textOf(svgs[0])
		for _, host := range []string{r.Local.String(), r.Target.String()} {
			if !strings.Contains(heads, host) {
				t.Errorf("%s: the drawing does not name host %s", r.Scenario, host)
			}
		}
		hostX := map[int]bool{}
		for _, l := range findAll(svgs[0], func(n *html.Node) bool { return n.Data == "line" && hasClass(n, "host") }) {
			hostX[atoi(t, attr(l, "x1"))] = true
		}
		arrows := findAll(svgs[0], func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "seg") })
		if len(arrows) != len(r.Segments) {
			t.Fatalf("%s: %d arrows, want %d (one per segment)", r.Scenario, len(arrows), len(r.Segments))
		}
		prevY := -1
		for j, s := range r.Segments {
			g := arrows[j]
			dir := s.Dir
			if s.ICMP != "" {
				dir = walk.In
			}
			want := map[string]string{"data-dir": string(dir), "data-flags": flagText(s), "data-seq": fmt.Sprint(s.Seq),
				"data-ack": fmt.Sprint(s.Ack), "data-rel-seq": fmt.Sprint(s.RelSeq), "data-rel-ack": fmt.Sprint(s.RelAck), "data-len": fmt.Sprint(s.Len)}
			for k, v := range want {
				if got := attr(g, k); got != v {
					t.Errorf("%s arrow %d: %s=%q, want %q", r.Scenario, j+1, k, got, v)
				}
			}
			lines := findAll(g, byTag("line"))
			if len(lines) != 1 {
				t.Fatalf("%s arrow %d: %d lines", r.Scenario, j+1, len(lines))
			}
			x1, x2 := atoi(t, attr(lines[0], "x1")), atoi(t, attr(lines[0], "x2"))
			y1, y2 := atoi(t, attr(lines[0], "y1")), atoi(t, attr(lines[0], "y2"))
			if !hostX[x1] || !hostX[x2] || x1 == x2 {
				t.Errorf("%s arrow %d runs from x=%d to x=%d, not from one host line to the other %v", r.Scenario, j+1, x1, x2, hostX)
			}
			if (dir == walk.Out) != (x1 < x2) {
				t.Errorf("%s arrow %d (%s) points the wrong way: x %d → %d", r.Scenario, j+1, dir, x1, x2)
			}
			if y2 <= y1 || y1 <= prevY {
				t.Errorf("%s arrow %d: y %d → %d after %d; time must run down the page", r.Scenario, j+1, y1, y2, prevY)
			}
			prevY = y1
			if !strings.Contains(attr(lines[0], "marker-end"), "-ah-"+string(dir)) {
				t.Errorf("%s arrow %d: marker-end %q, want the %s arrowhead", r.Scenario, j+1, attr(lines[0], "marker-end"), dir)
			}
			label := ""
			for _, tx := range findAll(g, func(n *html.Node) bool { return n.Data == "text" && hasClass(n, "label") }) {
				label = textOf(tx)
			}
			wantLabel := fmt.Sprintf("%s seq %d", s.Flags, s.RelSeq)
			if s.ICMP != "" {
				wantLabel = "ICMP " + s.ICMP
			} else if s.Flags.Has(craft.FlagACK) {
				wantLabel += fmt.Sprintf(" ack %d", s.RelAck)
			}
			if !strings.HasPrefix(label, wantLabel) {
				t.Errorf("%s arrow %d: label %q, want it to start %q", r.Scenario, j+1, label, wantLabel)
			}
		}
		// The states are written where they change: as often as the text
		// ladder writes them.
		states := findAll(svgs[0], func(n *html.Node) bool { return n.Data == "text" && hasClass(n, "state") })
		want := 0
		for _, sc := range stateColumns(ladder(t, r, LadderOptions{})) {
			for _, s := range sc {
				if s != "" {
					want++
				}
			}
		}
		if len(states) != want {
			t.Errorf("%s: %d state labels, the text ladder has %d", r.Scenario, len(states), want)
		}
	}
}

// TestHTMLChecksLinkToSegments: every check row has its rule and verdict
// and links to exactly the segments recorded since the check before it.
func TestHTMLChecksLinkToSegments(t *testing.T) {
	rep := htmlReport()
	_, doc := renderHTML(t, rep)
	ids := map[string]bool{}
	for _, g := range findAll(doc, func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "seg") }) {
		ids[attr(g, "id")] = true
	}
	wantLinks := map[string][]string{ // check row id → the arrows it links
		"w0-c1": {"w0-s1", "w0-s2"},
		"w0-c2": {"w0-s3", "w0-s4", "w0-s5"},
		"w0-c3": {"w0-s5"},
		"w1-c1": {"w1-s1", "w1-s2"},
		"w1-c2": {"w1-s3", "w1-s4", "w1-s5", "w1-s6"},
		"w1-c3": {"w1-s7", "w1-s8"},
		"w1-c4": nil, // no time: nothing to link
	}
	rows := findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && strings.HasPrefix(attr(n, "id"), "w") })
	seen := 0
	for _, tr := range rows {
		id := attr(tr, "id")
		want, ok := wantLinks[id]
		if !ok {
			continue
		}
		seen++
		var got []string
		for _, a := range findAll(tr, func(n *html.Node) bool { return n.Data == "a" && hasClass(n, "seglink") }) {
			target := strings.TrimPrefix(attr(a, "href"), "#")
			if !ids[target] {
				t.Errorf("check %s links to %q, which is no arrow", id, target)
			}
			got = append(got, target)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("check %s links %v, want %v", id, got, want)
		}
		var wi, ci int
		fmt.Sscanf(id, "w%d-c%d", &wi, &ci)
		c := rep.Results[wi].Checks[ci-1]
		txt := textOf(tr)
		for _, part := range []string{c.Name, c.Rule, c.Verdict.String()} {
			if !strings.Contains(txt, part) {
				t.Errorf("check row %s lacks %q: %q", id, part, txt)
			}
		}
	}
	if seen != len(wantLinks) {
		t.Errorf("found %d of the %d check rows", seen, len(wantLinks))
	}
}

// TestHTMLMatrixAndCoverage: the conformance matrix is states × events
// with each cell coloured by its check's verdict and linked to it; the
// coverage table lists the 11 states.
func TestHTMLMatrixAndCoverage(t *testing.T) {
	rep := htmlReport()
	_, doc := renderHTML(t, rep)
	tables := findAll(doc, func(n *html.Node) bool { return n.Data == "table" && hasClass(n, "matrix") })
	if len(tables) != 1 {
		t.Fatalf("%d matrix tables, want 1", len(tables))
	}
	trs := findAll(tables[0], byTag("tr"))
	var events []string
	for _, th := range findAll(trs[0], byTag("th"))[1:] {
		events = append(events, textOf(th))
	}
	cells := map[string]*html.Node{}
	var states []string
	for _, tr := range trs[1:] {
		st := textOf(findAll(tr, byTag("th"))[0])
		states = append(states, st)
		tds := findAll(tr, byTag("td"))
		if len(tds) != len(events) {
			t.Fatalf("row %s has %d cells for %d events", st, len(tds), len(events))
		}
		for k, td := range tds {
			cells[st+"/"+events[k]] = td
		}
	}
	if got, want := strings.Join(states, " "), "SYN_RCVD ESTABLISHED FIN_WAIT_1 CLOSE_WAIT TIME_WAIT"; got != want {
		t.Errorf("matrix rows %q, want %q (RFC 9293's order)", got, want)
	}
	sectionOf := map[string]string{}
	for _, sec := range findAll(doc, func(n *html.Node) bool { return n.Data == "section" }) {
		sectionOf[attr(sec, "data-scenario")] = attr(sec, "id")
	}
	for _, r := range rep.Conform.Results {
		td := cells[r.Scenario]
		if td == nil {
			t.Errorf("no cell for %s", r.Scenario)
			continue
		}
		if !hasClass(td, "v-"+r.Verdict.String()) || strings.TrimSpace(textOf(td)) != r.Verdict.String() {
			t.Errorf("cell %s: class %q text %q, want verdict %s", r.Scenario, attr(td, "class"), textOf(td), r.Verdict)
		}
		if a := findAll(td, byTag("a")); len(a) != 1 || attr(a[0], "href") != "#"+sectionOf[r.Scenario] || sectionOf[r.Scenario] == "" {
			t.Errorf("cell %s does not link to its check's section", r.Scenario)
		}
		delete(cells, r.Scenario)
	}
	for id, td := range cells {
		if textOf(td) != "" || !hasClass(td, "none") {
			t.Errorf("cell %s has no check but shows %q", id, textOf(td))
		}
	}
	cov := findAll(doc, func(n *html.Node) bool { return n.Data == "table" && hasClass(n, "coverage") })
	if len(cov) != 1 {
		t.Fatalf("%d coverage tables, want 1", len(cov))
	}
	rowsCov := findAll(cov[0], byTag("tr"))[1:]
	if len(rowsCov) != len(walk.States) {
		t.Fatalf("coverage has %d rows, want the %d states", len(rowsCov), len(walk.States))
	}
	for i, tr := range rowsCov {
		tds := findAll(tr, byTag("td"))
		if textOf(tds[0]) != walk.States[i] {
			t.Errorf("coverage row %d is %q, want %s", i, textOf(tds[0]), walk.States[i])
		}
	}
	// SYN_RCVD was confirmed by the handshake, with the kernel agreeing.
	if tds := findAll(rowsCov[3], byTag("td")); textOf(tds[1]) != "confirmed" || textOf(tds[2]) != "handshake" {
		t.Errorf("SYN_RCVD coverage %q by %q, want confirmed by handshake", textOf(tds[1]), textOf(tds[2]))
	}
}

// TestHTMLSelfContained: the page fetches nothing (no src, no link, no
// remote URL anywhere) and escapes what came from the wire or the user.
func TestHTMLSelfContained(t *testing.T) {
	page, doc := renderHTML(t, htmlReport())
	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		if n.Data == "link" || n.Data == "iframe" || n.Data == "img" || n.Data == "object" || n.Data == "embed" {
			t.Errorf("a <%s> element: the page must load nothing", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "src" || a.Key == "srcset" {
				t.Errorf("<%s %s=%q>: the page must load nothing", n.Data, a.Key, a.Val)
			}
			if a.Key == "href" && !strings.HasPrefix(a.Val, "#") {
				t.Errorf("<%s href=%q>: only links within the page", n.Data, a.Val)
			}
		}
	}
	for _, bad := range []string{"http://", "https://", "@import", "//fonts"} {
		// The SVG namespace URI is an identifier, never fetched.
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if strings.Contains(page, `<script>alert`) {
		t.Error("a summary's <script> came through unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; SYN_SENT") {
		t.Error("the escaped summary is missing")
	}
}

// TestHTMLStackProfile: conform's stack profile is a table on the page, one
// row per item, each piece of evidence linked to the check that shows it
// (issue 14: the page renders the stack profile); a page without one has
// no such table.
func TestHTMLStackProfile(t *testing.T) {
	rep := htmlReport()
	rep.Conform.Profile = conform.Profile{Items: []conform.ProfileItem{
		{Key: conform.ProfRFC5961RST, Name: "RFC 5961 §3.2 challenge ACK to an in-window RST", Value: "implemented",
			Evidence: []string{"ESTABLISHED/rst-in-window", "not-on-the-page"}},
		{Key: "family", Name: "the stack family it most resembles", Value: "Linux (2 of 4 traits)", Evidence: []string{}},
	}}
	page, doc := renderHTML(t, rep)
	rows := findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && strings.HasPrefix(attr(n, "id"), "profile-") })
	if len(rows) != 2 || attr(rows[0], "id") != "profile-"+conform.ProfRFC5961RST {
		t.Fatalf("%d profile rows (first %q), want 2 starting with %s", len(rows), attr(rows[0], "id"), conform.ProfRFC5961RST)
	}
	links := findAll(rows[0], func(n *html.Node) bool { return n.Data == "a" })
	if len(links) != 1 || !strings.HasPrefix(attr(links[0], "href"), "#") {
		t.Fatalf("the evidence links %d checks, want the one on the page", len(links))
	}
	target := strings.TrimPrefix(attr(links[0], "href"), "#")
	if sec := findAll(doc, func(n *html.Node) bool {
		return attr(n, "id") == target && attr(n, "data-scenario") == "ESTABLISHED/rst-in-window"
	}); len(sec) != 1 {
		t.Errorf("the evidence link %q leads to no section of ESTABLISHED/rst-in-window", target)
	}
	if !strings.Contains(page, "not-on-the-page") || !strings.Contains(page, "Linux (2 of 4 traits)") {
		t.Error("an item's evidence or value is missing")
	}
	rep.Conform.Profile = conform.Profile{}
	if page, _ := renderHTML(t, rep); strings.Contains(page, `id="profile"`) {
		t.Error("an empty profile still draws its table")
	}
}

func TestHTMLEmptyAndOdd(t *testing.T) {
	for _, rep := range []HTMLReport{{}, {Results: []walk.Result{{}}}, {Results: []walk.Result{{Segments: []walk.Segment{{}}, Checks: []walk.Check{{}}}}}} {
		var b bytes.Buffer
		if err := WriteHTML(&b, rep); err != nil {
			t.Errorf("WriteHTML(%+v): %v", rep, err)
		}
		if _, err := html.Parse(&b); err != nil {
			t.Errorf("parse: %v", err)
		}
	}
	if err := WriteHTML(&failWriter{n: 100}, htmlReport()); err == nil {
		t.Error("WriteHTML to a failing writer: no error")
	}
}

// TestHTMLFirewallMatrix: the firewall matrix is probes × states, each
// cell the probe's outcome, coloured by it.
func TestHTMLFirewallMatrix(t *testing.T) {
	m := sampleMatrix()
	_, doc := renderHTML(t, HTMLReport{Results: m.Results(), Firewall: m})
	tables := findAll(doc, func(n *html.Node) bool { return n.Data == "table" && hasClass(n, "firewall") })
	if len(tables) != 1 {
		t.Fatalf("%d firewall tables, want 1", len(tables))
	}
	trs := findAll(tables[0], byTag("tr"))
	var states []string
	for _, th := range findAll(trs[0], byTag("th"))[1:] {
		states = append(states, textOf(th))
	}
	if got := strings.Join(states, " "); got != "none established" {
		t.Errorf("columns %q, want the states probed: none established", got)
	}
	got := map[string]string{}
	for _, tr := range trs[1:] {
		probe := textOf(findAll(tr, byTag("th"))[0])
		for k, td := range findAll(tr, byTag("td")) {
			if txt := textOf(td); txt != "" {
				got[probe+"/"+states[k]] = txt + " " + attr(td, "class")
			}
		}
	}
	want := map[string]string{
		"SYN with options/none":         "rewritten o-rewritten",
		"FIN scan/none":                 "dropped o-dropped",
		"ACK without a connection/none": "rejected by 198.18.2.2 o-rejected",
		"data in window/established":    "delivered o-delivered",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("firewall cells (-want +got):\n%s", diff)
	}
}
