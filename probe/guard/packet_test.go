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

// tcpPacket builds an IPv4+TCP (40 bytes) or IPv6+TCP (60 bytes) packet, after src's family, with every checksum
// right; the tests build packets by hand so this package does not depend on craft.
func tcpPacket(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags byte) []byte {
	var b, tcp, pseudo []byte
	if src.Is6() {
		b = make([]byte, 60)
		ip := b[:40]
		tcp = b[40:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], 20) // payload length
		ip[6], ip[7] = 6, 64                   // next header TCP, hop limit
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		// RFC 8200 §8.1: addresses, upper-layer length (32 bits), zero, next header.
		pseudo = append(append(append([]byte(nil), s[:]...), d[:]...), 0, 0, 0, 20, 0, 0, 0, 6)
	} else {
		b = make([]byte, 40)
		ip := b[:20]
		tcp = b[20:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 40)
		ip[8] = 64
		ip[9] = 6
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^sum(ip, 0))
		pseudo = append(append(append([]byte(nil), s[:]...), d[:]...), 0, 6, 0, 20)
	}
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	binary.BigEndian.PutUint16(tcp[16:], ^sum(tcp, uint32(sum(pseudo, 0))))
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
