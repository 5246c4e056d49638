package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/netns"
)

// Ports of the lab servers; the package doc describes each behaviour.
const (
	PortHold      = 7001
	PortClose     = 7002
	PortControl   = 7003
	PortEcho      = 7004
	PortHalfClose = 7005
	PortClosed    = 7009 // nothing listens here
	PortDialer    = 7010
	// PortHTTP and PortHTTPAlt serve as PortClose and PortHold on the
	// well-known ports that examples (and habits) use: an HTTP/1.0 server
	// that answers and closes, and a server that holds connections open.
	PortHTTP    = 80
	PortHTTPAlt = 8080
)

// Bounds of the servers' own activity.
const (
	// RequestSilence ends a PortClose request after data without a newline.
	RequestSilence = time.Second
	// DialTimeout bounds a PortDialer connection attempt.
	DialTimeout = 10 * time.Second
	// DialLifetime bounds how long a connected PortDialer socket lives.
	DialLifetime = 75 * time.Second
	// MaxDials bounds concurrent PortDialer attempts.
	MaxDials = 16
	// closeWait bounds Servers.Close.
	closeWait = 5 * time.Second
	// maxLine bounds a PortControl or PortDialer command line.
	maxLine = 1024
	// maxRequest bounds a PortClose request; more counts as complete.
	maxRequest = 64 << 10
)

// closeResponse is PortClose's answer.
const closeResponse = "HTTP/1.0 200 OK\r\n\r\nok\n"

// Conn is a server's end of one TCP connection: what the servers need of
// it, which both a kernel socket (*net.TCPConn) and a connection of the
// gvisor stack's netstack provide, so one server code runs on either stack.
type Conn interface {
	net.Conn
	// CloseWrite sends FIN and keeps reading (shutdown(SHUT_WR)).
	CloseWrite() error
	// SetLinger(0) makes Close send RST instead of FIN.
	SetLinger(sec int) error
}

// listener accepts server connections on one port.
type listener interface {
	accept() (Conn, error)
	Close() error
}

// network is the TCP stack the servers run on: the target namespace's
// kernel, or netstack (see StackGVisor).
type network interface {
	// listen listens on local:port; dial connects from local (port 0).
	listen(local netip.Addr, port uint16) (listener, error)
	dial(ctx context.Context, local netip.Addr, to netip.AddrPort) (net.Conn, error)
	close() error
}

// Servers are the lab servers of one target namespace.
type Servers struct {
	net     network
	addr    netip.Addr
	prober  netip.Addr
	addr6   netip.Addr // invalid: no IPv6 listeners
	prober6 netip.Addr

	ctx    context.Context
	cancel context.CancelFunc
	dials  chan struct{} // semaphore of MaxDials

	mu     sync.Mutex
	closed bool
	lns    []listener
	conns  map[net.Conn]uint64 // to the order of tracking: the newest of a peer's wins
	nconn  uint64
	// dialing cancels a dial to a port that a newer dial to the same
	// port replaces: a SYN of the old one, still retried, must not open
	// the prober's next connection on that port.
	dialing map[uint16]*dialAttempt
	wg      sync.WaitGroup
}

// StartServers listens on addr (which must exist in ns) on every server port,
// with the listening sockets created inside ns, and serves them from
// goroutines of this process. PortDialer connects to proberAddr. TCP
// keepalive is off on every socket, so the servers send nothing a test did not
// ask for. Close stops everything.
func StartServers(ns *netns.NS, addr, proberAddr netip.Addr) (*Servers, error) {
	return StartDualServers(ns, addr, proberAddr, netip.Addr{}, netip.Addr{})
}

// StartDualServers is StartServers on both families: every server port
// listens on addr (IPv4) and on addr6 (IPv6, an IPV6_V6ONLY socket), with
// the same behaviour. PortDialer dials the prober in the family its
// command came in on: proberAddr or proberAddr6. An invalid addr6 means
// IPv4 only.
func StartDualServers(ns *netns.NS, addr, proberAddr, addr6, proberAddr6 netip.Addr) (*Servers, error) {
	s, err := startServers(&kernelNet{ns: ns}, addr, proberAddr, addr6, proberAddr6)
	if err != nil {
		return nil, fmt.Errorf("lab: start servers in %s: %w", ns.Name, err)
	}
	return s, nil
}

// StartNetstackServers runs the same servers on gVisor's netstack instead
// of the kernel: netstack attaches to the persistent TUN device tunIf in ns
// (made by Create with StackGVisor) and owns addr there. Close stops the
// servers and netstack and detaches from the TUN device.
func StartNetstackServers(ns *netns.NS, tunIf string, addr, proberAddr netip.Addr) (*Servers, error) {
	return StartDualNetstackServers(ns, tunIf, addr, proberAddr, netip.Addr{}, netip.Addr{})
}

// StartDualNetstackServers is StartNetstackServers on both families, as
// StartDualServers is StartServers: netstack owns addr6 too and every
// server port listens on it (an IPv6-only endpoint). An invalid addr6
// means IPv4 only.
func StartDualNetstackServers(ns *netns.NS, tunIf string, addr, proberAddr, addr6, proberAddr6 netip.Addr) (*Servers, error) {
	if !proberAddr6.IsValid() {
		addr6 = netip.Addr{}
	}
	n, err := openNetstack(ns, tunIf, addr, addr6)
	if err != nil {
		return nil, fmt.Errorf("lab: start netstack servers in %s: %w", ns.Name, err)
	}
	// Attaching gives the TUN device carrier; until the kernel has
	// attached its qdisc (linkwatch, up to a second later) packets routed
	// to it are dropped, so wait for that as Create waits for the veth.
	if err := waitTUNUp(ns, tunIf); err != nil {
		n.close()
		return nil, fmt.Errorf("lab: start netstack servers in %s: %w", ns.Name, err)
	}
	s, err := startServers(n, addr, proberAddr, addr6, proberAddr6)
	if err != nil {
		return nil, fmt.Errorf("lab: start netstack servers in %s: %w", ns.Name, err)
	}
	return s, nil
}

// startServers listens on every server port of n, on addr and on addr6
// when valid, and serves them; on an error it closes n.
func startServers(n network, addr, proberAddr, addr6, proberAddr6 netip.Addr) (*Servers, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Servers{
		net:     n,
		addr:    addr,
		prober:  proberAddr,
		addr6:   addr6,
		prober6: proberAddr6,
		ctx:     ctx,
		cancel:  cancel,
		dials:   make(chan struct{}, MaxDials),
		conns:   make(map[net.Conn]uint64),
	}
	handlers := []struct {
		port int
		fn   func(Conn)
	}{
		{PortHold, s.hold},
		{PortClose, s.closeAfterRequest},
		{PortControl, s.control},
		{PortEcho, s.echo},
		{PortHalfClose, s.halfClose},
		{PortDialer, s.dialer},
		{PortHTTP, s.closeAfterRequest},
		{PortHTTPAlt, s.hold},
	}
	locals := []netip.Addr{addr}
	if addr6.IsValid() {
		locals = append(locals, addr6)
	}
	var fns []func(Conn)
	for _, local := range locals {
		for _, h := range handlers {
			ln, err := n.listen(local, uint16(h.port))
			if err != nil {
				s.Close()
				return nil, err
			}
			s.lns = append(s.lns, ln)
			fns = append(fns, h.fn)
		}
	}
	for i, fn := range fns {
		s.wg.Add(1)
		go s.serve(s.lns[i], fn)
	}
	return s, nil
}

// kernelNet is the target namespace's own kernel TCP, on both families.
type kernelNet struct {
	ns *netns.NS
}

// family is Go's network name for a local address's family.
func family(a netip.Addr) string {
	if a.Is6() {
		return "tcp6" // Go sets IPV6_V6ONLY on tcp6 listeners
	}
	return "tcp4"
}

func (k *kernelNet) listen(local netip.Addr, port uint16) (listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	var ln net.Listener
	a := netip.AddrPortFrom(local, port).String()
	err := k.ns.Do(func() error {
		var err error
		ln, err = lc.Listen(context.Background(), family(local), a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a, err)
	}
	return kernelListener{ln.(*net.TCPListener)}, nil
}

func (k *kernelNet) dial(ctx context.Context, local netip.Addr, to netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)),
		KeepAlive: -1,
	}
	var c net.Conn
	err := k.ns.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, family(local), to.String())
		return err
	})
	return c, err
}

func (k *kernelNet) close() error { return nil }

type kernelListener struct{ *net.TCPListener }

func (l kernelListener) accept() (Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Addr returns the address of a server port.
func (s *Servers) Addr(port uint16) netip.AddrPort { return netip.AddrPortFrom(s.addr, port) }

// Addr6 returns the IPv6 address of a server port; it is invalid when the
// servers listen on IPv4 only.
func (s *Servers) Addr6(port uint16) netip.AddrPort {
	if !s.addr6.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(s.addr6, port)
}

// Close closes every listener and connection, cancels dials, and waits (at
// most 5 s) for the serving goroutines to end. Calling it again is harmless.
func (s *Servers) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	var errs []error
	for _, ln := range s.lns {
		if err := ln.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		if err := s.net.close(); err != nil {
			errs = append(errs, err)
		}
	case <-time.After(closeWait):
		errs = append(errs, fmt.Errorf("servers did not stop within %v", closeWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: close servers: %w", err)
	}
	return nil
}

// track registers c and a goroutine for it; false means the servers are
// closing and c has been closed.
func (s *Servers) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.nconn++
	s.conns[c] = s.nconn
	s.wg.Add(1)
	return true
}

// release closes c and forgets it.
func (s *Servers) release(c net.Conn) {
	s.mu.Lock()
	if s.conns != nil {
		delete(s.conns, c)
	}
	s.mu.Unlock()
	c.Close()
}

func (s *Servers) serve(ln listener, fn func(Conn)) {
	defer s.wg.Done()
	for {
		c, err := ln.accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		if !s.track(c) {
			return
		}
		go func() {
			defer s.wg.Done()
			fn(c)
		}()
	}
}

// hold reads and discards; the connection stays open until Close.
func (s *Servers) hold(c Conn) {
	io.Copy(io.Discard, readerOnly{c})
}

// closeAfterRequest reads one request, answers and closes.
func (s *Servers) closeAfterRequest(c Conn) {
	buf := make([]byte, 0, 4096)
	var tmp [4096]byte
	for !requestComplete(buf) && len(buf) < maxRequest {
		if len(buf) > 0 {
			c.SetReadDeadline(time.Now().Add(RequestSilence))
		}
		n, err := c.Read(tmp[:])
		buf = append(buf, tmp[:n]...)
		if err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() && len(buf) > 0 {
				break
			}
			s.release(c) // closed by Close, or reset
			return
		}
	}
	c.SetDeadline(time.Now().Add(DialTimeout))
	c.Write([]byte(closeResponse))
	s.release(c)
}

// requestComplete reports whether buf holds a whole request: an HTTP request
// up to its blank line, or any other single line.
func requestComplete(buf []byte) bool {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	if !bytes.Contains(buf[:i], []byte("HTTP/")) {
		return true
	}
	return bytes.Contains(buf, []byte("\r\n\r\n")) || bytes.Contains(buf, []byte("\n\n"))
}

// lines calls fn for each command line read from c (without "\r\n"), with
// over-long lines passed as nil. It returns the read error that ended it
// (io.EOF at the peer's FIN) or nil when fn returns false.
func lines(c Conn, fn func(line []byte) bool) error {
	r := bufio.NewReaderSize(readerOnly{c}, maxLine)
	skipping := false
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			skipping = true
			continue
		case err != nil:
			return err
		case skipping:
			skipping = false
			line = nil
		default:
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		}
		if !fn(line) {
			return nil
		}
	}
}

// control runs PortControl's line protocol.
func (s *Servers) control(c Conn) {
	shut, armed := false, false
	var delay time.Duration
	reply := func(b []byte) {
		if !shut {
			c.Write(b)
		}
	}
	err := lines(c, func(line []byte) bool {
		cmd, arg, _ := bytes.Cut(line, []byte(" "))
		switch {
		case line == nil:
			reply([]byte("?\n"))
		case string(line) == "close":
			return false
		case string(line) == "shutdown":
			shut = true
			c.CloseWrite()
		case string(line) == "rst":
			c.SetLinger(0)
			return false
		case string(line) == "close-after-fin":
			armed = true
		case string(cmd) == "close-after-fin":
			// "close-after-fin MS": close MS milliseconds after EOF, so a
			// prober can see CLOSE_WAIT before LAST_ACK.
			ms, err := strconv.Atoi(string(arg))
			if err != nil || ms < 0 || ms > 10000 {
				reply([]byte("?\n"))
				break
			}
			armed, delay = true, time.Duration(ms)*time.Millisecond
			reply([]byte("armed\n"))
		case string(cmd) == "echo":
			reply(append(arg, '\n'))
		default:
			reply([]byte("?\n"))
		}
		return true
	})
	if err == nil || errors.Is(err, io.EOF) && armed {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
			}
		}
		s.release(c)
	}
	// Otherwise EOF without close-after-fin: stay in CLOSE_WAIT until Close.
}

// echo copies input back and closes at EOF.
func (s *Servers) echo(c Conn) {
	io.Copy(writerOnly{c}, readerOnly{c})
	s.release(c)
}

// halfClose greets, sends FIN at once, drains until EOF and closes.
func (s *Servers) halfClose(c Conn) {
	c.Write([]byte("hello\n"))
	c.CloseWrite()
	io.Copy(io.Discard, readerOnly{c})
	s.release(c)
}

// dialer runs PortDialer's line protocol: "dial PORT" and "dial PORT hold"
// make the target connect to us; "app PORT ACTION" makes the app end of the
// connection whose peer (the prober) uses PORT act, out of band, so that
// the connection under test carries no command bytes (a script's sequence
// numbers stay as written).
func (s *Servers) dialer(c Conn) {
	lines(c, func(line []byte) bool {
		if rest, ok := bytes.CutPrefix(line, []byte("app ")); ok {
			c.Write([]byte(s.app(string(rest)) + "\n"))
			return true
		}
		arg, ok := bytes.CutPrefix(line, []byte("dial "))
		arg, hold := bytes.CutSuffix(arg, []byte(" hold"))
		port, err := strconv.ParseUint(string(arg), 10, 16)
		if !ok || err != nil || port == 0 {
			c.Write([]byte("?\n"))
			return true
		}
		select {
		case s.dials <- struct{}{}:
		default:
			c.Write([]byte("busy\n"))
			return true
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			<-s.dials
			return false
		}
		s.wg.Add(1)
		s.mu.Unlock()
		c.Write([]byte("dialing\n"))
		go s.dial(uint16(port), c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Is6(), hold)
		return true
	})
	s.release(c)
}

// App actions of "app PORT ACTION" on PortDialer.
const (
	AppClose    = "close"    // close(): FIN
	AppShutdown = "shutdown" // shutdown(SHUT_WR): FIN, keep reading
	AppReset    = "rst"      // SO_LINGER 0 and close(): RST
	AppWrite    = "write"    // "write N": write N bytes ('x'), 1-65536
)

// app performs "PORT ACTION" on the connection whose peer is the prober at
// PORT (a server's accepted connection or a dialed one) and says how it
// went: "ok", "none" (no such connection) or "?" (a bad command).
func (s *Servers) app(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) < 2 {
		return "?"
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return "?"
	}
	n := 0
	switch {
	case f[1] == AppWrite && len(f) == 3:
		n, err = strconv.Atoi(f[2])
		if err != nil || n < 1 || n > 65536 {
			return "?"
		}
	case len(f) != 2 || f[1] != AppClose && f[1] != AppShutdown && f[1] != AppReset:
		return "?"
	}
	c := s.peer(uint16(port))
	if c == nil {
		return "none"
	}
	switch f[1] {
	case AppClose:
		c.Close()
	case AppShutdown:
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			return "?"
		}
	case AppReset:
		if l, ok := c.(interface{ SetLinger(int) error }); ok {
			l.SetLinger(0)
		}
		c.Close()
	case AppWrite:
		c.SetWriteDeadline(time.Now().Add(DialTimeout))
		c.Write(bytes.Repeat([]byte("x"), n))
	}
	return "ok"
}

// peer finds the connection whose remote end is the prober at port.
func (s *Servers) peer(port uint16) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A held connection of an earlier test from the same port may still
	// be there (PortHold never closes): the newest is the one in use.
	var found net.Conn
	var newest uint64
	for c, n := range s.conns {
		ra := c.RemoteAddr() // netstack's is nil once closed
		if ra == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(ra.String())
		if a := ap.Addr().Unmap(); err == nil && (a == s.prober || s.prober6.IsValid() && a == s.prober6) && ap.Port() == port && n > newest {
			found, newest = c, n
		}
	}
	return found
}

// dial connects from the target namespace to the prober, over IPv6 if v6.
// Without hold the connection reads and closes at EOF; with hold it reads
// and stays open (CLOSE_WAIT after the peer's FIN) until an app action or
// DialLifetime.
func (s *Servers) dial(port uint16, v6, hold bool) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, DialTimeout)
	defer cancel()
	me := &dialAttempt{cancel: cancel}
	s.mu.Lock()
	if s.dialing == nil {
		s.dialing = map[uint16]*dialAttempt{}
	}
	if old := s.dialing[port]; old != nil {
		old.cancel()
	}
	s.dialing[port] = me
	s.mu.Unlock()
	local, remote := s.addr, s.prober
	if v6 {
		local, remote = s.addr6, s.prober6
	}
	c, err := s.net.dial(ctx, local, netip.AddrPortFrom(remote, port))
	s.mu.Lock()
	if s.dialing[port] == me {
		delete(s.dialing, port)
	}
	s.mu.Unlock()
	<-s.dials
	if err != nil || !s.track(c) {
		return
	}
	defer s.wg.Done()
	deadline := time.Now().Add(DialLifetime)
	c.SetDeadline(deadline)
	// nil: EOF, the peer's FIN; an error: closed by an app action, reset.
	if _, err := io.Copy(io.Discard, readerOnly{c}); err == nil && hold {
		select {
		case <-time.After(time.Until(deadline)):
		case <-s.ctx.Done():
		}
	}
	s.release(c)
}

// dialAttempt is one dial in progress.
type dialAttempt struct{ cancel context.CancelFunc }

// readerOnly and writerOnly hide TCPConn's ReadFrom/WriteTo so that io.Copy
// uses plain read(2)/write(2) and sees EOF exactly at the peer's FIN.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }
