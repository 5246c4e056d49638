package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

// TestVersion: --version prints the build's module version and commit.
func TestVersion(t *testing.T) {
	t.Parallel()
	r := runApp(t, "--version")
	if want := "tcpwalk version " + versionText() + "\n"; r.code != exitOK || r.stdout != want {
		t.Errorf("tcpwalk --version: exit %d, stdout %q; want 0, %q", r.code, r.stdout, want)
	}
	// -v is not --version: hping3 and nmap users mean verbose by it.
	if r := runApp(t, "-v"); r.code != exitUsage {
		t.Errorf("tcpwalk -v: exit %d, want %d (no such option)", r.code, exitUsage)
	}
}

func TestDescribeBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go build in a clean checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261203142331-de75ee43b766"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "de75ee43b766e6dc0725d898dd1456468f370e8d"}, {Key: "vcs.time", Value: "2026-12-03T14:23:31Z"}, {Key: "vcs.modified", Value: "false"}}},
			"v0.0.0-20261203142331-de75ee43b766, commit de75ee43b766 (2026-12-03T14:23:31Z), go1.26.8"},
		{"modified", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel), commit abc (modified), go1.26.8"},
		{"no VCS information", debug.BuildInfo{GoVersion: "go1.26.8"},
			"(devel), commit unknown (not built from a git checkout with go build), go1.26.8"},
	}
	for _, tt := range tests {
		if got := describeBuild(&tt.bi); got != tt.want {
			t.Errorf("%s: describeBuild = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionFromGit builds tcpwalk from a clean clone of this checkout and
// checks that --version names the clone's commit.
func TestVersionFromGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tcpwalk")
	}
	// The checkout's files as they are now, committed in a new repository.
	files, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "version test")
	head := git("rev-parse", "HEAD")
	bin := filepath.Join(dir, "tcpwalk")
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=") // this machine's go env sets -buildvcs=false
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		t.Fatalf("tcpwalk --version: %v", err)
	}
	if want := "commit " + head[:12]; !strings.Contains(string(out), want) {
		t.Errorf("tcpwalk --version = %q, want it to contain %q", out, want)
	}
}

// TestHelpCommand: `tcpwalk help CMD` is `tcpwalk CMD --help`.
func TestHelpCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		help, direct []string
		name         string // the help's NAME line
	}{
		{[]string{"help"}, []string{"--help"}, "tcpwalk - "},
		{[]string{"help", "send"}, []string{"send", "--help"}, "tcpwalk send - "},
		{[]string{"help", "send"}, []string{"send", "-h", "198.18.0.2:80"}, "tcpwalk send - "},
		{[]string{"help", "lab", "up"}, []string{"lab", "up", "--help"}, "tcpwalk lab up - "},
		{[]string{"--netns", "x", "help", "walk"}, []string{"walk", "--help"}, "tcpwalk walk - "},
	} {
		h, d := runApp(t, tt.help...), runApp(t, tt.direct...)
		if h.code != exitOK || h.stderr != "" || !strings.Contains(h.stdout, "NAME:\n   "+tt.name) {
			t.Errorf("tcpwalk %v: exit %d, stderr %q; want 0 and the help headed %q", tt.help, h.code, h.stderr, tt.name)
		}
		if diff := cmp.Diff(d.stdout, h.stdout); diff != "" {
			t.Errorf("tcpwalk %v differs from tcpwalk %v (-want +got):\n%s", tt.help, tt.direct, diff)
		}
	}
	if r := runApp(t, "help", "bogus"); r.code != exitUsage || !strings.Contains(r.stderr, "bogus") {
		t.Errorf("tcpwalk help bogus: exit %d, stderr %q; want %d naming bogus", r.code, r.stderr, exitUsage)
	}
}

// TestGlobalOptionAnywhere: --netns may come before or after the command
// and the target, and a command's options before the command.
func TestGlobalOptionAnywhere(t *testing.T) {
	t.Parallel()
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	tests := []struct{ in, want []string }{
		{[]string{"tcpwalk", "--netns", "n", "send", "198.18.0.2:80"}, []string{"tcpwalk", "--netns", "n", "send", "--", "198.18.0.2:80"}},
		{[]string{"tcpwalk", "send", "--netns", "n", "198.18.0.2:80"}, []string{"tcpwalk", "--netns", "n", "send", "--", "198.18.0.2:80"}},
		{[]string{"tcpwalk", "send", "198.18.0.2:80", "-c", "2", "--netns=n"}, []string{"tcpwalk", "--netns=n", "send", "-c", "2", "--", "198.18.0.2:80"}},
		{[]string{"tcpwalk", "lab", "up", "--netns", "n", "--prefix", "p"}, []string{"tcpwalk", "--netns", "n", "lab", "up", "--prefix", "p"}},
		// A command's options before the command.
		{[]string{"tcpwalk", "--json", "demo"}, []string{"tcpwalk", "demo", "--json"}},
		{[]string{"tcpwalk", "-c", "3", "--netns", "n", "send", "198.18.0.2:80"}, []string{"tcpwalk", "--netns", "n", "send", "-c", "3", "--", "198.18.0.2:80"}},
		{[]string{"tcpwalk", "--prefix", "p", "lab", "down"}, []string{"tcpwalk", "lab", "down", "--prefix", "p"}},
		{[]string{"tcpwalk", "--bogus", "send", "198.18.0.2:80"}, []string{"tcpwalk", "--bogus", "send", "--", "198.18.0.2:80"}},
		{[]string{"tcpwalk", "-h", "send"}, []string{"tcpwalk", "-h", "send"}},
		{[]string{"tcpwalk", "walk", "-6", "all", "[2001:2::2]:7001"}, []string{"tcpwalk", "-6", "walk", "--", "all", "[2001:2::2]:7001"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, reorderArgs(app, tt.in)); diff != "" {
			t.Errorf("reorderArgs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	// And it is read: a namespace that does not exist is an environment
	// error naming it, wherever --netns stands.
	for _, args := range [][]string{
		{"--netns", "tcpwalk-no-such-ns", "send", "198.18.0.2:80"},
		{"send", "198.18.0.2:80", "--netns", "tcpwalk-no-such-ns"},
		{"--flags", "SA", "send", "198.18.0.2:80", "--netns", "tcpwalk-no-such-ns"},
	} {
		r := runApp(t, args...)
		if r.code != exitEnv || !strings.Contains(r.stderr, "--netns tcpwalk-no-such-ns") {
			t.Errorf("tcpwalk %v: exit %d, stderr %q; want %d naming --netns tcpwalk-no-such-ns", args, r.code, r.stderr, exitEnv)
		}
	}
}

// TestHelpDefaultsOnce: no option's help states its default twice (it
// once read "window (default 64240) (default: 0)").
func TestHelpDefaultsOnce(t *testing.T) {
	t.Parallel()
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	var paths [][]string
	for _, c := range app.Commands {
		eachCommandPath(c, nil, func(p []string) { paths = append(paths, p) })
	}
	twice := regexp.MustCompile(`\(default.*\(default`)
	for _, p := range append(paths, nil) {
		r := runApp(t, append(p, "--help")...)
		for _, l := range strings.Split(r.stdout, "\n") {
			if twice.MatchString(l) {
				t.Errorf("tcpwalk %s --help: a default twice: %q", strings.Join(p, " "), l)
			}
			if strings.Contains(l, "(default: false)") {
				t.Errorf("tcpwalk %s --help: a switch says it is off by default: %q", strings.Join(p, " "), l)
			}
		}
		if len(p) == 1 && p[0] == "send" && !regexp.MustCompile(`--win value +window \(default: 64240\)\n`).MatchString(r.stdout) {
			t.Errorf("tcpwalk send --help: want --win's default 64240, once:\n%s", r.stdout)
		}
	}
}

func eachCommandPath(c *cli.Command, parent []string, fn func([]string)) {
	if c.Hidden {
		return
	}
	p := append(append([]string{}, parent...), c.Name)
	fn(p)
	for _, s := range c.Subcommands {
		eachCommandPath(s, p, fn)
	}
}

// TestManPage: `tcpwalk man` is a man page groff reads without a warning,
// with every command and every option of the command definitions in it.
func TestManPage(t *testing.T) {
	t.Parallel()
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("groff is needed to read the man page: %v (apt-get install groff-base)", err)
		}
		t.Skipf("no groff: %v", err)
	}
	r := runApp(t, "man")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, ".nh\n.TH tcpwalk 8") {
		t.Fatalf("tcpwalk man: exit %d, starts %q; want 0 and a man page", r.code, r.stdout[:min(40, len(r.stdout))])
	}
	cmd := exec.Command(groff, "-k", "-man", "-Tutf8", "-ww")
	cmd.Stdin = strings.NewReader(r.stdout)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff: %v, warnings:\n%s", err, stderr.String())
	}
	// groff hyphenates and overstrikes: compare letters only.
	plain := regexp.MustCompile(`.\x08`).ReplaceAllString(string(out), "")
	plain = strings.NewReplacer("‐\n", "", "-\n", "", "\n", " ").Replace(plain)
	plain = strings.Join(strings.Fields(plain), " ")
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		eachCommand(c, func(c *cli.Command) {
			if c.Hidden {
				return
			}
			if !strings.Contains(plain, c.Name) {
				t.Errorf("man page lacks the command %s", c.Name)
			}
			for _, f := range c.Flags {
				if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
					continue
				}
				if !strings.Contains(plain, "--"+f.Names()[0]) {
					t.Errorf("man page lacks %s's option --%s", c.Name, f.Names()[0])
				}
			}
		})
	}
}

// TestCompletion runs the completion scripts in the real shells: the
// candidates after a partial word are the commands, subcommands, options
// and scenarios that fit, and option values are skipped.
func TestCompletion(t *testing.T) {
	t.Parallel()
	scripts := map[string]string{}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := runApp(t, "completion", sh)
		if r.code != exitOK || r.stdout == "" {
			t.Fatalf("tcpwalk completion %s: exit %d", sh, r.code)
		}
		scripts[sh] = r.stdout
	}
	if r := runApp(t, "completion", "tcsh"); r.code != exitUsage {
		t.Errorf("tcpwalk completion tcsh: exit %d, want %d", r.code, exitUsage)
	}
	cases := []struct {
		line string // what is typed, the cursor at its end
		want []string
	}{
		{"tcpwalk s", []string{"scan", "send"}},
		{"tcpwalk --netns x wa", []string{"walk"}},
		{"tcpwalk walk ha", []string{"half-close", "handshake"}},
		{"tcpwalk lab s", []string{"status"}},
		{"tcpwalk send --quiet 198.18.0.2:80 --js", []string{"--json"}},
		{"tcpwalk firewall --quiet 1s --tr", []string{"--trace"}},
		{"tcpwalk lab up --pre", []string{"--prefix"}},
		{"tcpwalk send -c 3 --fla", []string{"--flags"}},
		{"tcpwalk completion f", []string{"fish"}},
	}
	dir := t.TempDir()
	for sh, script := range scripts {
		path, err := exec.LookPath(sh)
		if err != nil {
			if os.Getenv("CI") == "true" || sh == "bash" {
				t.Errorf("%s is needed to test its completion: %v (apt-get install %s)", sh, err, sh)
			} else {
				t.Logf("no %s: its completion is not tested (%v)", sh, err)
			}
			continue
		}
		file := filepath.Join(dir, "tcpwalk."+sh)
		if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			got := completeIn(t, path, sh, file, tc.line)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: completing %q (-want +got):\n%s", sh, tc.line, diff)
			}
		}
	}
}

// completeIn asks shell sh, with the completion script file loaded, for the
// candidates at the end of line; they come back sorted.
func completeIn(t *testing.T, shell, sh, file, line string) []string {
	t.Helper()
	var prog string
	words := strings.Split(line, " ")
	switch sh {
	case "bash":
		prog = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _tcpwalk; printf '%s\n' "${COMPREPLY[@]}"`
	case "zsh":
		// zsh's completion system needs a terminal; its two entry points
		// are stood in for: _describe prints the candidates it is given.
		prog = `compdef() { :; }; _files() { print FILES; }
_describe() { local -a c; c=("${(@P)4}"); print -l -- "${(@)c%%:*}"; }
source "$1"; shift; words=("$@"); CURRENT=$#; _tcpwalk`
	case "fish":
		prog = `source $argv[1]; complete -C (string join ' ' -- $argv[2..-1])`
	}
	args := []string{"-c", prog}
	if sh != "fish" {
		args = append(args, "x")
	}
	args = append(args, file)
	args = append(args, words...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, shell, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s completing %q: %v\n%s", sh, line, err, out)
	}
	cur := words[len(words)-1]
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		w, _, _ := strings.Cut(l, "\t") // fish: candidate, tab, description
		if w != "" && strings.HasPrefix(w, cur) {
			got = append(got, w)
		}
	}
	// zsh's _describe and fish's complete -C filter nothing themselves in
	// these stand-ins: the prefix filter above is the shells' own rule.
	sortStrings(got)
	return got
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestNoFlagCollisions: within a command, no two options share a name or
// an alias, none takes -h (help), and none shadows a global option, which
// reorderArgs moves before the command when given after it.
func TestNoFlagCollisions(t *testing.T) {
	t.Parallel()
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	global := map[string]bool{}
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			global[n] = true
		}
	}
	for _, c := range app.Commands {
		eachCommand(c, func(c *cli.Command) {
			seen := map[string]bool{"h": true, "help": true}
			for _, f := range c.Flags {
				for _, n := range f.Names() {
					if seen[n] {
						t.Errorf("%s: option -%s is defined twice (or is -h)", c.Name, n)
					}
					if global[n] {
						t.Errorf("%s: option -%s shadows the global option", c.Name, n)
					}
					seen[n] = true
				}
			}
		})
	}
}
