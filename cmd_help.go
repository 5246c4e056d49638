//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// helpCommand lists `tcpwalk help CMD` among the commands. reorderArgs
// turns `tcpwalk help CMD [SUB]` into `tcpwalk CMD [SUB] --help` before
// parsing, so this action runs only if that rewrite is bypassed.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the help of a command (the same as COMMAND --help)",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Description: `Examples:
   tcpwalk help send
   tcpwalk help lab up`,
		Action: func(c *cli.Context) error { return cli.ShowAppHelp(c) },
	}
}

// manCommand prints the man page, made from the same command definitions
// as --help, so the two cannot drift apart.
func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print tcpwalk's man page (roff), made from the commands' definitions",
		Description: `Examples:
   tcpwalk man | man -l -
   tcpwalk man > tcpwalk.8`,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("man: takes no arguments, got %s", strings.Join(c.Args().Slice(), " "))
			}
			page, err := c.App.ToMan()
			if err != nil {
				return fmt.Errorf("man: render the man page: %w", err)
			}
			_, err = io.WriteString(c.App.Writer, page)
			return err
		},
	}
}

// completionCommand prints a shell completion script.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a bash, zsh or fish completion script",
		ArgsUsage: "bash|zsh|fish",
		Description: `The script completes commands, subcommands, options and walk's scenarios
from the same definitions as --help.

Examples:
   source <(tcpwalk completion bash)            # bash, this shell
   tcpwalk completion bash > /etc/bash_completion.d/tcpwalk
   source <(tcpwalk completion zsh)             # zsh, after compinit
   tcpwalk completion fish | source             # fish, this shell`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("completion: want one shell: bash, zsh or fish, e.g. tcpwalk completion bash")
			}
			tree := completionTree(c.App)
			var script string
			switch c.Args().First() {
			case "bash":
				script = bashCompletion(tree)
			case "zsh":
				script = zshCompletion(tree)
			case "fish":
				script = fishCompletion(tree)
			default:
				return usageErr("completion: unknown shell %q: want bash, zsh or fish", c.Args().First())
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// compNode is one command of the completion tree: what may follow it.
type compNode struct {
	path  string // "" for the top, "lab up" for a subcommand
	usage string
	words []compWord // subcommands, then options, then fixed arguments
	subs  []*compNode
}

// compWord is one completion candidate.
type compWord struct {
	word, usage string
	option      bool
	long        bool // a long option (--x); else a short one (-x)
	takesValue  bool
}

// completionTree reads the app's visible commands and flags.
func completionTree(app *cli.App) *compNode {
	top := &compNode{usage: app.Usage}
	addFlags(top, app.Flags)
	addOption(top, "--help", "show help")
	addOption(top, "--version", "print the version")
	for _, c := range app.Commands {
		addCommand(top, c, "")
	}
	return top
}

func addCommand(parent *compNode, c *cli.Command, prefix string) {
	if c.Hidden {
		return
	}
	n := &compNode{path: strings.TrimSpace(prefix + " " + c.Name), usage: c.Usage}
	parent.words = append(parent.words, compWord{word: c.Name, usage: c.Usage})
	parent.subs = append(parent.subs, n)
	for _, s := range c.Subcommands {
		addCommand(n, s, n.path)
	}
	addFlags(n, c.Flags)
	addOption(n, "--help", "show help")
	for _, a := range compArguments(n.path) {
		n.words = append(n.words, compWord{word: a})
	}
}

// compArguments are the fixed words a command takes as arguments.
func compArguments(path string) []string {
	switch path {
	case "walk":
		return append(walk.Names(), "all")
	case "completion":
		return []string{"bash", "zsh", "fish"}
	case "help":
		return []string{"send", "walk", "conform", "firewall", "run", "scan", "lab", "demo", "man", "completion"}
	}
	return nil
}

func addFlags(n *compNode, flags []cli.Flag) {
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		for _, name := range f.Names() {
			w := compWord{usage: df.GetUsage(), option: true, takesValue: df.TakesValue(), long: len(name) > 1}
			if w.long {
				w.word = "--" + name
			} else {
				w.word = "-" + name
			}
			n.words = append(n.words, w)
		}
	}
}

// addOption adds a boolean option unless n has it (the app's own flags
// include --help and --version once it has run).
func addOption(n *compNode, word, usage string) {
	for _, w := range n.words {
		if w.word == word {
			return
		}
	}
	n.words = append(n.words, compWord{word: word, usage: usage, option: true, long: true})
}

// valueOptions are the options that take a value, as "PATH:OPTION" for
// each command path (a word after one of them is its value, not a command
// or an argument); the app's own options, accepted after any command, are
// "*:OPTION".
func valueOptions(top *compNode) []string {
	var out []string
	for _, n := range allNodes(top) {
		p := n.path
		if n == top {
			p = "*"
		}
		for _, w := range n.words {
			if w.takesValue {
				out = append(out, p+":"+w.word)
			}
		}
	}
	return out
}

// allNodes is n and every command under it, parents first.
func allNodes(n *compNode) []*compNode {
	out := []*compNode{n}
	for _, s := range n.subs {
		out = append(out, allNodes(s)...)
	}
	return out
}

// bashPatterns joins "PATH:OPTION" items into a case pattern (the same
// syntax in bash and zsh): quoted, with a leading * left as a wildcard.
func bashPatterns(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		if rest, ok := strings.CutPrefix(it, "*"); ok {
			out[i] = "*" + fmt.Sprintf("%q", rest)
		} else {
			out[i] = fmt.Sprintf("%q", it)
		}
	}
	return strings.Join(out, "|")
}

func wordList(n *compNode) string {
	ws := make([]string, len(n.words))
	for i, w := range n.words {
		ws[i] = w.word
	}
	return strings.Join(ws, " ")
}

// bashCompletion: the command path is the words before the cursor that are
// neither options nor option values and name a command; the candidates
// are what may follow that path. Anything else completes file names.
func bashCompletion(top *compNode) string {
	var b strings.Builder
	b.WriteString(`# bash completion for tcpwalk; generated by: tcpwalk completion bash
_tcpwalk() {
    local cur="${COMP_WORDS[COMP_CWORD]}" path="" i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$path:$w" in
`)
	fmt.Fprintf(&b, "            %s) ((i++)); continue ;;\n", bashPatterns(valueOptions(top)))
	b.WriteString(`            *:-*) continue ;;
        esac
        case "${path:+$path }$w" in
`)
	for _, n := range allNodes(top)[1:] {
		fmt.Fprintf(&b, "            %q) path=%q ;;\n", n.path, n.path)
	}
	b.WriteString(`        esac
    done
    local words
    case "$path" in
`)
	for _, n := range allNodes(top) {
		fmt.Fprintf(&b, "        %q) words=%q ;;\n", n.path, wordList(n))
	}
	b.WriteString(`    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _tcpwalk tcpwalk
`)
	return b.String()
}

// zshCompletion works like the bash script, with descriptions. It serves
// both as an autoloaded _tcpwalk on $fpath and when sourced.
func zshCompletion(top *compNode) string {
	var b strings.Builder
	b.WriteString(`#compdef tcpwalk
# zsh completion for tcpwalk; generated by: tcpwalk completion zsh
_tcpwalk() {
    local path_="" i w
    local -a cands
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        case "$path_:$w" in
`)
	fmt.Fprintf(&b, "            (%s) ((i++)); continue ;;\n", bashPatterns(valueOptions(top)))
	b.WriteString(`            (*:-*) continue ;;
        esac
        case "${path_:+$path_ }$w" in
`)
	for _, n := range allNodes(top)[1:] {
		fmt.Fprintf(&b, "            (%s) path_=%s ;;\n", zshQuote(n.path), zshQuote(n.path))
	}
	b.WriteString(`        esac
    done
    case $path_ in
`)
	for _, n := range allNodes(top) {
		fmt.Fprintf(&b, "        (%s) cands=(", zshQuote(n.path))
		for _, w := range n.words {
			desc := strings.ReplaceAll(firstLine(w.usage), ":", `\:`)
			b.WriteString(" " + zshQuote(w.word+":"+desc))
		}
		b.WriteString(" ) ;;\n")
	}
	b.WriteString(`    esac
    _describe -t tcpwalk 'tcpwalk' cands || _files
}
if [[ ${funcstack[1]} == _tcpwalk ]]; then
    _tcpwalk "$@"
else
    compdef _tcpwalk tcpwalk
fi
`)
	return b.String()
}

// zshQuote quotes s in single quotes for zsh (and fish: the same rule
// with \' is not needed there, see fishQuote).
func zshQuote(s string) string {
	if s == "" {
		return "''"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishQuote quotes s in single quotes for fish, where \' and \\ are the
// only escapes inside them.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// fishCompletion writes one `complete` line per candidate, each guarded by
// a condition on the command path typed so far (__tcpwalk_path, defined in
// the script the same way as the bash function finds it).
func fishCompletion(top *compNode) string {
	var b strings.Builder
	b.WriteString(`# fish completion for tcpwalk; generated by: tcpwalk completion fish
function __tcpwalk_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l path ""
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch "$path:$w"
`)
	var pats []string
	for _, p := range valueOptions(top) {
		if strings.HasPrefix(p, "*:") {
			pats = append(pats, "'*'"+fishQuote(p[1:]))
		} else {
			pats = append(pats, fishQuote(p))
		}
	}
	fmt.Fprintf(&b, "            case %s\n                set skip 1\n                continue\n", strings.Join(pats, " "))
	b.WriteString(`            case '*:-*'
                continue
        end
        set -l next (string trim -- "$path $w")
        switch $next
`)
	var paths []string
	for _, n := range allNodes(top)[1:] {
		paths = append(paths, fishQuote(n.path))
	}
	fmt.Fprintf(&b, "            case %s\n                set path $next\n", strings.Join(paths, " "))
	b.WriteString(`        end
    end
    echo $path
end
complete -c tcpwalk -f
`)
	for _, n := range allNodes(top) {
		cond := fishQuote(fmt.Sprintf("test (__tcpwalk_path) = %s", fishQuote(n.path)))
		for _, w := range n.words {
			line := "complete -c tcpwalk -n " + cond
			switch {
			case w.option && w.long:
				line += " -l " + fishQuote(strings.TrimPrefix(w.word, "--"))
			case w.option:
				line += " -s " + fishQuote(strings.TrimPrefix(w.word, "-"))
			default:
				line += " -a " + fishQuote(w.word)
			}
			if w.takesValue {
				line += " -r -F"
			}
			if d := firstLine(w.usage); d != "" {
				line += " -d " + fishQuote(d)
			}
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
