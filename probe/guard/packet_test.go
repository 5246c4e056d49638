package guard

import (
	"encoding/binary"
	"net/netip"
)

// TCP flags (RFC 9293 §3.1).
const (
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// tcpPacket builds a 40-byte IPv4+TCP packet with both checksums right; the tests build packets by hand so this
// package does not depend on craft.
func tcpPacket(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags byte) []byte {
	b := make([]byte, 40)
	ip, tcp := b[:20], b[20:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[8] = 64
	ip[9] = 6
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^sum(ip, 0))
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	var pseudo [12]byte
	copy(pseudo[0:], s[:])
	copy(pseudo[4:], d[:])
	pseudo[9] = 6
	binary.BigEndian.PutUint16(pseudo[10:], 20)
	binary.BigEndian.PutUint16(tcp[16:], ^sum(tcp, uint32(sum(pseudo[:], 0))))
	return b
}

// sum is the RFC 1071 one's-complement sum of b plus initial, folded.
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
