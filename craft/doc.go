// Package craft encodes and decodes the bytes tcpwalk puts on the wire: one
// IPv4 header (RFC 791) or IPv6 header (RFC 8200) carrying one TCP segment
// (RFC 9293), its options (RFC 9293 §3.2, RFC 7323, RFC 2018), the
// Internet checksum (RFC 1071, RFC 1624) with either family's
// pseudo-header, and the ICMP errors (RFC 792) and ICMPv6 errors (RFC
// 4443) a network sends back about them.
//
// The model is gVisor's pkg/tcpip/header: a header is its bytes. [IPv4],
// [IPv6] and [TCP] are []byte views with getters named after the RFC fields and Set
// methods that write in place, so reading a packet a raw socket handed us
// copies and allocates nothing. [Segment] is the other direction: a value
// that says what to send, written into a caller's buffer by one
// [Segment.Encode] call, whose family is its addresses'. [Template] is the
// fast path for scans. [ParsePacket] reads IPv4, [ParseIPv6Packet] IPv6
// (walking extension headers to the TCP header).
// [TCP.DecodeOptions] fills an [OptionSet] in one pass for callers that
// ask what the remote offered; [OptionIter] keeps order and raw bytes.
//
// The hot paths allocate nothing, and the layouts nearly every packet
// carries (Linux's SYN options, nop,nop,TS on data) take fast paths that
// differential tests and fuzz targets hold equal to the general code;
// bench_test.go compares the speed with gopacket.
//
// Unlike gVisor, parsing never trusts its input: [ParsePacket],
// [ParseIPv6Packet], [ParseTCP], [ParseICMPError], [ParseICMPv6Error] and
// [OptionIter] return errors (wrapping [ErrMalformed])
// for malformed bytes instead of skipping them or panicking, and keep
// unknown option kinds raw, because a prober must report what the remote
// got wrong. No parse, encode or build function panics on any input; the
// header views' fixed-field getters and setters ([IPv4], [IPv6], [TCP])
// index the slice as Go does and panic on one shorter than the header, so
// a view is made from what a parse function accepted, or from a buffer of
// [Segment.Len] bytes.
//
// The package itself is portable Go; the rest of tcpwalk is Linux-only.
package craft
