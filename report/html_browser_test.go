package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// browser finds a Chromium to render pages with. Without one the test
// skips, except under CI=true, where .ci/run installs Debian's chromium.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium to render the HTML report: apt-get install chromium (.ci/run does)")
	}
	t.Skip("no Chromium (apt-get install chromium): the HTML report is not rendered")
	return ""
}

// headless runs the browser on a file with nothing that reaches a network:
// no background fetches, no updates, no sync, a throwaway profile.
func headless(t *testing.T, bin, file string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+file)...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", bin, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleErrors are the page's script errors and console messages in
// Chromium's log: "...:INFO:CONSOLE(12)] "Uncaught ReferenceError: ...".
var consoleErrors = regexp.MustCompile(`(?m)^.*(CONSOLE\(\d+\)|Uncaught).*$`)

func writePage(t *testing.T, page []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHTMLInBrowser renders the report in a real headless Chromium: the
// page's script runs without an error and finds every arrow in the DOM
// the browser built.
func TestHTMLInBrowser(t *testing.T) {
	bin := browser(t)
	// The detector first: a page with a script error must be caught, or a
	// clean log proves nothing.
	broken := writePage(t, []byte(`<!DOCTYPE html><html><body><script>tcpwalkNoSuchFunction();</script></body></html>`))
	if _, stderr := headless(t, bin, broken, "--dump-dom"); !consoleErrors.MatchString(stderr) {
		t.Fatalf("a page with a script error logged no console error; the check below would be blind. stderr:\n%s", stderr)
	}

	rep := htmlReport()
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	dom, stderr := headless(t, bin, writePage(t, b.Bytes()), "--dump-dom")
	if m := consoleErrors.FindAllString(stderr, -1); len(m) > 0 {
		t.Errorf("console errors while rendering the report:\n%s", strings.Join(m, "\n"))
	}
	segments := 0
	for _, r := range rep.Results {
		segments += len(r.Segments)
	}
	state := regexp.MustCompile(`id="script-state" data-state="([^"]*)" data-arrows="(\d+)"`).FindStringSubmatch(dom)
	if state == nil {
		t.Fatalf("the page's script did not finish (no data-arrows in the rendered DOM):\n%.2000s", dom)
	}
	if state[1] != "ok" || state[2] != strconv.Itoa(segments) {
		t.Errorf("script state %q saw %s arrows in the rendered DOM, want ok and %d", state[1], state[2], segments)
	}
	if n := strings.Count(dom, "<svg"); n != 2 {
		t.Errorf("%d svg drawings in the rendered DOM, want 2 (the walks with segments)", n)
	}
}

// TestHTMLScreenshot: a screenshot of the page shows the ladder: pixels in
// the colours of our arrows and the remote's. Set TCPWALK_SCREENSHOT=FILE
// to keep the picture.
func TestHTMLScreenshot(t *testing.T) {
	bin := browser(t)
	var b bytes.Buffer
	ws := htmlWalks()[:2]
	if err := WriteHTML(&b, HTMLReport{Title: "tcpwalk walk handshake 198.18.0.2:7001", Created: t0, Results: ws, Coverage: walk.StateCoverage(ws)}); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "shot.png")
	if keep := os.Getenv("TCPWALK_SCREENSHOT"); keep != "" {
		shot = keep
	}
	_, stderr := headless(t, bin, writePage(t, b.Bytes()), "--screenshot="+shot, "--window-size=1100,1500", "--hide-scrollbars")
	if m := consoleErrors.FindAllString(stderr, -1); len(m) > 0 {
		t.Errorf("console errors while rendering the report:\n%s", strings.Join(m, "\n"))
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\nstderr:\n%s", err, stderr)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := countNear(img, 0x0e, 0x74, 0x90) // our arrows (svg .seg.out)
	in := countNear(img, 0xa2, 0x1c, 0xaf)  // the remote's
	t.Logf("screenshot %s: %v, %d pixels of our arrows' colour, %d of the remote's", shot, img.Bounds().Size(), out, in)
	if out < 200 || in < 200 {
		t.Errorf("the screenshot shows no ladder: %d pixels of our arrow colour, %d of the remote's; want hundreds of each", out, in)
	}
}

// countNear counts the pixels within a small distance of an RGB colour
// (anti-aliasing blends the edges of thin lines).
func countNear(img image.Image, r, g, b uint8) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr>>8, r) && near(pg>>8, g) && near(pb>>8, b) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, want uint8) bool {
	d := int(v) - int(want)
	return d > -24 && d < 24
}
