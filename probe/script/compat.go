package script

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// This file is the packetdrill compatibility layer of the parser: the lines
// of a packetdrill script that act on the machine under test (system
// calls, shell commands, options, #ifdef) become what the remote must be or
// do. A remote host cannot be programmed, but for most calls the remote
// side has an equivalent: a listener that must exist, a client that dials
// us, an application that closes or writes. Lines with none end the script
// skipped at run time, with the line and the reason; local observations
// (getsockopt, read) are noted, not checked; settings are assumptions.

// Defines are the #ifdef names taken: STANDARD, the branch in which the
// FreeBSD suite writes what the RFC says; other names (FreeBSD, Linux) are
// one stack's own behaviour and left out.
var Defines = map[string]bool{"STANDARD": true}

// preprocess keeps the lines of the #ifdef/#ifndef/#else/#endif branches
// taken and blanks the others and the directives (newlines kept, so
// positions stay). dropped lists the branches left out, for assumptions.
func preprocess(src []byte) (out []byte, dropped []Assumption) {
	lines := strings.Split(string(src), "\n")
	type frame struct {
		on, parentOn bool
		name         string
	}
	var stack []frame
	on := true
	for i, l := range lines {
		t := strings.TrimSpace(l)
		f := strings.Fields(t)
		if len(f) == 0 || !strings.HasPrefix(f[0], "#") {
			if !on {
				lines[i] = ""
			}
			continue
		}
		switch f[0] {
		case "#ifdef", "#ifndef":
			name := ""
			if len(f) > 1 {
				name = f[1]
			}
			take := Defines[name] == (f[0] == "#ifdef")
			stack = append(stack, frame{on: take, parentOn: on, name: name})
			if on && !take {
				dropped = append(dropped, Assumption{Pos{i + 1, 1}, "the " + f[0] + " " + name + " branch is left out: " + strings.Join(takenNames(), ", ") + " taken (the RFC's behaviour, not one stack's)"})
			}
			on = on && take
		case "#else":
			if n := len(stack); n > 0 {
				fr := &stack[n-1]
				fr.on = !fr.on
				on = fr.parentOn && fr.on
			}
		case "#endif":
			if n := len(stack); n > 0 {
				on = stack[n-1].parentOn
				stack = stack[:n-1]
			}
		default:
			if !on {
				lines[i] = ""
			}
			continue
		}
		lines[i] = ""
	}
	return []byte(strings.Join(lines, "\n")), dropped
}

func takenNames() []string {
	var n []string
	for k, v := range Defines {
		if v {
			n = append(n, "#ifdef "+k)
		}
	}
	return n
}

// assume records an assumption at the current line.
func (p *parser) assume(text string) {
	for _, a := range p.s.Assumptions {
		if a.Text == text {
			return
		}
	}
	p.s.Assumptions = append(p.s.Assumptions, Assumption{Pos: Pos{p.ln, 1}, Text: text})
}

var (
	sysctlRe   = regexp.MustCompile(`^sysctl\s+(?:-[wq]+\s+)*([A-Za-z0-9_.]+)=(\S+)$`)
	sockstatRe = regexp.MustCompile(`^sockstat\b.*grep -c ([A-Z_0-9]+)\s*\|\s*grep ([0-9]+)$`)
	tcpiRe     = regexp.MustCompile(`^assert\s+tcpi_state\s*==\s*TCPI_([A-Z_0-9]+)$`)
)

// shell reads a backtick line: a sysctl setting is an assumption about
// the remote (the first value a script sets; a later one restores it); a
// sockstat count of a state is %expect-state; anything else has no remote
// equivalent.
func (p *parser) shell(ev *Event) (bool, error) {
	start := p.i
	end := strings.IndexByte(p.src[p.i+1:], '`')
	if end < 0 {
		return false, p.fail(start, "the shell command is not closed: want a '`' before the end of the line")
	}
	cmd := strings.TrimSpace(p.src[p.i+1 : p.i+1+end])
	p.i += end + 2
	if err := p.end(); err != nil {
		return false, err
	}
	if m := sysctlRe.FindStringSubmatch(cmd); m != nil {
		for _, a := range p.s.Assumptions {
			if strings.HasPrefix(a.Text, "assumes "+m[1]+"=") {
				return false, nil // a restore of a value set before
			}
		}
		p.assume("assumes " + m[1] + "=" + m[2] + " on the machine under test")
		return false, nil
	}
	if m := sockstatRe.FindStringSubmatch(cmd); m != nil {
		st, ok := stateName(m[1])
		if ok && m[2] == "1" {
			ev.Kind, ev.State = ExpectState, st
			return true, nil
		}
		ev.Kind, ev.Reason = Note, "a count of sockets in "+m[1]+" other than 1 is not checked: tcpwalk sees its own connection only"
		return true, nil
	}
	ev.Kind, ev.Reason = Unsupported, "the shell command `"+cmd+"` runs on the machine under test: no remote equivalent"
	return true, nil
}

// inline reads packetdrill's %{ python }% line: an assertion of the state
// is %expect-state; other code has no remote equivalent.
func (p *parser) inline(ev *Event) error {
	start := p.i
	end := strings.Index(p.src[p.i:], "}%")
	if end < 0 {
		return p.fail(start, "the %%{ ... }%% block is not closed on its line")
	}
	code := strings.TrimSpace(p.src[p.i+2 : p.i+end])
	p.i += end + 2
	if err := p.end(); err != nil {
		return err
	}
	if m := tcpiRe.FindStringSubmatch(code); m != nil {
		if st, ok := stateName(m[1]); ok {
			ev.Kind, ev.State = ExpectState, st
			return nil
		}
	}
	ev.Kind, ev.Reason = Unsupported, "packetdrill's inline code %{ "+code+" }% reads the machine under test's socket: no remote equivalent"
	return nil
}

// call reads a system-call line, "name(args) = result [(text)]", and maps
// it to what the remote must be or do.
func (p *parser) call(ev *Event) error {
	start := p.i
	p.s.Packetdrill = true
	if p.fds == nil {
		p.fds = map[string]string{}
	}
	name := p.word()
	p.space()
	if p.peek() != '(' {
		return p.fail(start, "want `<` (we send), `>` (the remote must send), a %%directive or a system call `name(...)` after the time, got %q", name)
	}
	depth, j := 0, p.i
	for ; j < len(p.src); j++ {
		if p.src[j] == '(' {
			depth++
		} else if p.src[j] == ')' {
			depth--
			if depth == 0 {
				break
			}
		}
	}
	if depth != 0 {
		return p.fail(p.i, "the argument list of %s( is not closed", name)
	}
	args := splitArgs(p.src[p.i+1 : j])
	p.i = j + 1
	p.space()
	ret := ""
	if p.peek() == '=' {
		p.i++
		if f := strings.Fields(p.src[p.i:]); len(f) > 0 {
			ret = f[0]
		}
	}
	p.i = len(p.src)
	arg := func(n int) string {
		if n < len(args) {
			return args[n]
		}
		return ""
	}
	fd := arg(0)
	call := name + "(" + strings.Join(args, ", ") + ")"
	switch name {
	case "socket":
		p.fds[ret] = "socket"
		p.assume("a TCP socket on the machine under test (socket(): nothing on the wire)")
		return errNoEvent
	case "setsockopt", "bind", "fcntl":
		return errNoEvent // the socket's setup: nothing on the wire
	case "listen":
		p.fds[fd] = "listener"
		p.s.Listens = true
		if p.s.Port == 0 {
			p.s.Port = PacketdrillPort
		}
		p.assume("a listener at the target port (" + call + "): its first SYN checks it")
		return errNoEvent
	case "accept":
		p.fds[ret] = "conn"
		return errNoEvent // the lab's servers accept at once
	case "connect":
		p.fds[fd] = "conn"
		if p.s.Dials {
			return p.fail(start, "connect() given twice: one script is one connection")
		}
		p.s.Dials = true
		p.assume("the remote dials us when asked (connect(): the lab's client, or --dial-trigger)")
		ev.Kind = Dial
		return nil
	case "close":
		ev.Kind, ev.Action, ev.Listener = App, "close", p.fds[fd] == "listener"
		return nil
	case "shutdown":
		switch arg(1) {
		case "SHUT_WR", "SHUT_RDWR":
			ev.Kind, ev.Action = App, "shutdown"
		default:
			ev.Kind, ev.Reason = Note, "shutdown("+arg(1)+") changes nothing on the wire"
		}
		return nil
	case "write", "send":
		n, err := strconv.Atoi(ret)
		if err != nil || n <= 0 || n > 65536 {
			ev.Kind, ev.Reason = Unsupported, call+" = "+ret+": only a write of 1 to 65536 bytes has a remote equivalent (the lab app's write)"
			return nil
		}
		ev.Kind, ev.Action = App, "write "+strconv.Itoa(n)
		return nil
	case "read", "recv", "getsockopt", "ioctl", "poll", "select":
		ev.Kind, ev.Reason = Note, call+" = "+ret+" is a local observation of the machine under test: not checked (the lab's app reads all that comes)"
		return nil
	}
	ev.Kind, ev.Reason = Unsupported, call+" has no remote equivalent tcpwalk knows"
	return nil
}

// errNoEvent ends a line that is read but makes no event (a socket's
// setup, a setting).
var errNoEvent = errors.New("no event")

// PacketdrillPort is the port a listening packetdrill script binds
// (packetdrill's default), used when the script has no %port.
const PacketdrillPort = 8080

// splitArgs splits a call's arguments at top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if t := strings.TrimSpace(s[start:]); t != "" || len(out) > 0 {
		out = append(out, t)
	}
	return out
}
