package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/netns"
	"golang.org/x/sys/unix"
)

// allStates selects states 1 to 12 (bits 1 to 12 of idiag_states), which leaves
// out TCPF_BOUND_INACTIVE: bound sockets that neither listen nor connect.
const allStates = 1<<13 - 2

// maxDumpTries bounds the restarts after NLM_F_DUMP_INTR (the socket tables
// changed during the dump).
const maxDumpTries = 5

// recvTimeout bounds a wait for the kernel's answer.
const recvTimeout = 5 * time.Second

// Dump returns all IPv4 and IPv6 TCP sockets in ns (nil: the calling thread's
// namespace), in every state including request sockets and TIME_WAIT.
func Dump(ns *netns.NS) ([]Socket, error) {
	var socks []Socket
	run := func() error {
		var err error
		socks, err = dump()
		return err
	}
	var err error
	if ns == nil {
		err = run()
	} else {
		err = ns.Do(run)
	}
	if err != nil {
		where := "the current namespace"
		if ns != nil {
			where = "namespace " + ns.Name
		}
		return nil, fmt.Errorf("sockdiag: dump TCP sockets in %s: %w", where, err)
	}
	return socks, nil
}

// Lookup returns the socket with the 4-tuple local (this namespace's side)
// and remote. false means the kernel has no such socket: the connection is
// CLOSED here. If the tuple appears twice (a TIME_WAIT socket and a new
// connection reusing it), the one not in TIME_WAIT wins.
func Lookup(ns *netns.NS, local, remote netip.AddrPort) (Socket, bool, error) {
	socks, err := Dump(ns)
	if err != nil {
		return Socket{}, false, err
	}
	var found Socket
	ok := false
	for _, s := range socks {
		if s.Local == local && s.Remote == remote {
			if !ok || found.State == TimeWait {
				found, ok = s, true
			}
		}
	}
	return found, ok, nil
}

// dump queries the calling thread's namespace.
func dump() ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open NETLINK_SOCK_DIAG socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set receive timeout: %w", err)
	}
	buf := make([]byte, 64<<10)
	var out []Socket
	seq := uint32(1)
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		for try := 1; ; try++ {
			socks, intr, err := dumpFamily(fd, buf, family, seq)
			seq++
			if err != nil {
				return nil, err
			}
			if !intr {
				out = append(out, socks...)
				break
			}
			if try == maxDumpTries {
				return nil, fmt.Errorf("dump interrupted %d times by changing socket tables; try again", try)
			}
		}
	}
	return out, nil
}

// Sizes of the kernel structures (include/uapi/linux/inet_diag.h).
const (
	sizeofSockID  = 48 // struct inet_diag_sockid
	sizeofReqV2   = 8 + sizeofSockID
	sizeofDiagMsg = 4 + sizeofSockID + 20 // struct inet_diag_msg
)

// dumpFamily sends one INET_DIAG dump request and collects the answer. intr
// reports NLM_F_DUMP_INTR: the result may be inconsistent and must be
// retried.
func dumpFamily(fd int, buf []byte, family uint8, seq uint32) (socks []Socket, intr bool, err error) {
	var req [unix.SizeofNlMsghdr + sizeofReqV2]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	r := req[unix.SizeofNlMsghdr:]
	r[0] = family
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], allStates) // idiag_states
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, false, fmt.Errorf("send INET_DIAG request: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, false, fmt.Errorf("receive INET_DIAG answer: %w", err)
		}
		b := buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := ne.Uint32(b[0:])
			typ := ne.Uint16(b[4:])
			flags := ne.Uint16(b[6:])
			mseq := ne.Uint32(b[8:])
			if l < unix.SizeofNlMsghdr || int(l) > len(b) {
				return nil, false, fmt.Errorf("malformed netlink message (length %d of %d bytes)", l, len(b))
			}
			body := b[unix.SizeofNlMsghdr:l]
			b = b[min(int(nlmAlign(l)), len(b)):]
			if mseq != seq {
				continue // an answer to an older request
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				return socks, intr, nil
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return nil, false, errors.New("short netlink error message")
				}
				if e := int32(ne.Uint32(body)); e != 0 {
					return nil, false, fmt.Errorf("kernel refused INET_DIAG dump: %w", unix.Errno(-e))
				}
			case unix.SOCK_DIAG_BY_FAMILY:
				if s, ok := parseDiagMsg(body); ok {
					socks = append(socks, s)
				}
			}
		}
	}
}

func nlmAlign(l uint32) uint32 { return (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// inetDiagSKV6Only is INET_DIAG_SKV6ONLY (include/uapi/linux/inet_diag.h),
// the attribute the kernel adds to every full AF_INET6 socket's message.
const inetDiagSKV6Only = 11

// parseDiagMsg decodes a struct inet_diag_msg and its attributes; ok is
// false for a short message or a family other than AF_INET and AF_INET6.
func parseDiagMsg(b []byte) (Socket, bool) {
	if len(b) < sizeofDiagMsg {
		return Socket{}, false
	}
	ne := binary.NativeEndian
	id := b[4 : 4+sizeofSockID]
	local, ok1 := sockAddr(b[0], id[4:20], binary.BigEndian.Uint16(id[0:]))
	remote, ok2 := sockAddr(b[0], id[20:36], binary.BigEndian.Uint16(id[2:]))
	if !ok1 || !ok2 {
		return Socket{}, false
	}
	if local.Addr().Is4() && remote.Addr().Is6() && remote.Addr().IsUnspecified() {
		// A listener bound to an IPv4-mapped address: its remote is
		// 0.0.0.0:0 like an AF_INET listener's.
		remote = netip.AddrPortFrom(netip.IPv4Unspecified(), remote.Port())
	}
	rest := b[4+sizeofSockID:]
	v6only := false
	for attrs := b[sizeofDiagMsg:]; len(attrs) >= 4; {
		l, typ := int(ne.Uint16(attrs[0:])), ne.Uint16(attrs[2:])
		if l < 4 || l > len(attrs) {
			break
		}
		if typ == inetDiagSKV6Only && l >= 5 {
			v6only = attrs[4] != 0
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return Socket{
		V6Only:      v6only,
		State:       State(b[1]),
		Local:       local,
		Remote:      remote,
		Timer:       b[2],
		Retransmits: b[3],
		Expires:     time.Duration(ne.Uint32(rest[0:])) * time.Millisecond,
		RecvQueue:   ne.Uint32(rest[4:]),
		SendQueue:   ne.Uint32(rest[8:]),
		Inode:       ne.Uint32(rest[16:]),
	}, true
}

// sockAddr decodes an idiag_src/idiag_dst field: an IPv4 address, or an
// IPv6 one, unmapped when IPv4-mapped.
func sockAddr(family byte, a []byte, port uint16) (netip.AddrPort, bool) {
	switch family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), port), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[:16])).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}
