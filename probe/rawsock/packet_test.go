package rawsock

import (
	"encoding/binary"
	"net/netip"
)

// TCP flags (RFC 9293 §3.1) used by the tests.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// seg describes a test segment; the tests build packets by hand so this package does not depend on craft.
type seg struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        byte
	ipFlagsFrag  uint16
}

// sum is the RFC 1071 one's-complement sum of b, folded, added to initial.
func sum(b []byte, initial uint32) uint16 {
	s := initial
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// packet returns a 40-byte IPv4+TCP packet with both checksums right.
func (s seg) packet() []byte {
	b := make([]byte, 40)
	ip, tcp := b[:20], b[20:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], s.ipFlagsFrag)
	ip[8] = 64
	ip[9] = protoTCP
	src, dst := s.src.As4(), s.dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^sum(ip, 0))
	binary.BigEndian.PutUint16(tcp[0:], s.sport)
	binary.BigEndian.PutUint16(tcp[2:], s.dport)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = 5 << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	pseudo := uint32(binary.BigEndian.Uint16(src[:2])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[:2])) + uint32(binary.BigEndian.Uint16(dst[2:])) + protoTCP + 20
	binary.BigEndian.PutUint16(tcp[16:], ^sum(tcp, pseudo))
	return b
}

// icmpError wraps quoted (an IPv4 packet; the first 28 bytes are kept, as RFC 792 requires at least) in an ICMP
// error of type typ from src to dst.
func icmpError(src, dst netip.Addr, typ, code byte, quoted []byte) []byte {
	q := quoted[:min(len(quoted), 28)]
	b := make([]byte, 20+8+len(q))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = protoICMP
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], ^sum(b[:20], 0))
	icmp := b[20:]
	icmp[0], icmp[1] = typ, code
	copy(icmp[8:], q)
	binary.BigEndian.PutUint16(icmp[2:], ^sum(icmp, 0))
	return b
}

// parsed is what the tests read back from a received IPv4+TCP packet.
type parsed struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        byte
}

func parse(b []byte) (parsed, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return parsed{}, false
	}
	ihl := int(b[0]&0xf) * 4
	if len(b) < ihl+20 || b[9] != protoTCP {
		return parsed{}, false
	}
	t := b[ihl:]
	return parsed{
		src:   netip.AddrFrom4([4]byte(b[12:16])),
		dst:   netip.AddrFrom4([4]byte(b[16:20])),
		sport: binary.BigEndian.Uint16(t[0:]),
		dport: binary.BigEndian.Uint16(t[2:]),
		seq:   binary.BigEndian.Uint32(t[4:]),
		ack:   binary.BigEndian.Uint32(t[8:]),
		flags: t[13],
	}, true
}
