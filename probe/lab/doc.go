// Package lab builds a two-namespace test lab: a prober namespace and a target
// namespace joined by a veth pair, dual-stack: addressed from 198.18.0.0/15
// (RFC 2544's benchmarking range) and from 2001:2::/48 (RFC 5180's), with no
// default route for either family in either namespace. Nothing in the lab
// can reach, or be reached from, any other network.
//
// The package is Linux-only, like the rest of tcpwalk.
//
// # Layout
//
//	namespace PREFIX-prober            namespace PREFIX-target
//	  lo (up)                            lo (up)
//	  tw-HASH-p 198.18.0.1/24  <-veth->  tw-HASH-t 198.18.0.2/24
//	            2001:2::1/64                       2001:2::2/64
//
// HASH is the first 8 hex digits of SHA-256(PREFIX), which keeps interface
// names within the kernel's 15-byte limit for any prefix. The veth pair is
// created directly inside the namespaces, so it never appears in the caller's
// namespace. IPv6 neighbour discovery works as usual, but nothing sends or
// takes router advertisements (accept_ra 0, autoconf 0, forwarding off) and
// no router solicitations are sent; duplicate address detection is off
// (accept_dad 0, IFA_F_NODAD), so the addresses are usable at once. The link
// still carries the kernel's own IPv6 chatter when an interface comes up
// (MLD reports for its multicast groups) and neighbour solicitations when an
// address is first used; a capture should filter for what it looks for.
//
// # Two stacks
//
// [Config.Stack] chooses the TCP that answers at the target address. With
// [StackLinux] (the default) it is the target namespace's kernel, laid out
// as above. With [StackGVisor] it is gVisor's netstack (gvisor.dev/gvisor,
// a user-space TCP/IP stack in Go that shares no code with Linux), so that
// tcpwalk's verdicts can be checked against a second, independent
// implementation:
//
//	namespace PREFIX-prober            namespace PREFIX-target
//	  tw-HASH-p 198.18.0.1/24  <-veth->  tw-HASH-t  (up, no lab address)
//	            2001:2::1/64               | kernel forwards, proxy ARP/NDP
//	                                     tw-HASH-n  TUN, routes 198.18.0.2/32
//	                                       |             and 2001:2::2/128
//	                                       | IP packets
//	                                     netstack owning 198.18.0.2
//	                                                 and 2001:2::2
//
// The target's kernel has no lab address at all (on IPv6 only its own
// link-local one), so it has no TCP of its own to answer with: it answers
// ARP for 198.18.0.2 on the veth (proxy_arp, with proxy_delay 0) and
// neighbour solicitations for 2001:2::2 (proxy_ndp and a proxy entry, with
// proxy_delay 0; Linux answers for a proxy entry only with IPv6 forwarding
// on, which sends no router advertisements by itself), forwards between
// veth and TUN (ip_forward and IPv6 forwarding; IPv4 redirects off), and
// reaches the prober through permanent neighbour entries and scope-link
// routes for the prober's subnets. Segments from netstack therefore arrive
// at the prober with TTL and hop limit 63 (netstack's 64, forwarded once).
// Netstack's IPv6 does no duplicate address detection, sends no router
// solicitations, ignores router advertisements and has no link-local
// address; on the TUN device it resolves no neighbours. A TUN device has
// no checksum offload, so the kernel completes
// checksums before netstack reads a packet. Create makes the TUN device
// persistent; the servers' netstack ([StartNetstackServers], in the
// process that runs them) attaches to it, and a killed server process
// leaves the device for [Destroy] to remove. Netstack runs with SACK on and
// timestamps and window scaling as gVisor ships them; keep-alive is off.
//
// sock_diag sees only kernel sockets: a gvisor lab has no oracle of the
// target's states ([Stack.HasOracle]), and tools must say so rather than
// report the empty kernel's "CLOSED". [Open] tells the two layouts apart by
// the TUN device and sets [Lab.Stack].
//
// # Checksum offload
//
// veth leaves TX checksum offload on. A segment that a kernel TCP socket in
// one namespace sends arrives in the other with CHECKSUM_PARTIAL: the TCP
// checksum field holds only the pseudo-header sum, and the receiving kernel
// trusts it without checking. A raw socket or packet capture in the prober
// therefore sees "bad" TCP checksums on segments from the target. A prober on
// this lab must not reject segments for their checksum (or the target end must
// have tx checksumming turned off, `ethtool -K tw-HASH-t tx off`). Segments
// the prober builds itself carry complete checksums and are verified normally.
// The lab leaves the offload alone on purpose: it is how a real host behaves.
//
// # Impairment
//
// [Lab.Impair] makes the path lossy and noisy with the kernel's own nftables
// (the kernel has no netem here): each TCP segment is duplicated with a given
// probability by `dup to` in a netdev egress chain on its sender's veth end,
// and dropped with a given probability in a netdev ingress chain on its
// receiver's end, as on a wire. (A drop in the sender's own egress would be
// reported to its socket as a local error, which Linux handles unlike a
// loss on the path.) ARP is left alone. The tables are named
// ImpairTable(PREFIX), one per namespace, go with the namespaces, and
// [Lab.ClearImpairment] removes them.
//
// # Servers
//
// [StartServers] runs small TCP servers on real kernel sockets in the target
// namespace, one behaviour per port, so a prober can drive the target's TCP
// into each RFC 9293 state. [StartDualServers] (what [Lab.StartServers] uses
// on a dual-stack lab) runs each on both families, the IPv6 ones on
// IPV6_V6ONLY sockets of their own; [StartNetstackServers] and
// [StartDualNetstackServers] (both families, what a gvisor lab uses) run
// the same server code on netstack's connections (the [Conn] interface),
// so both stacks serve the same ports, behaviours and control protocol on
// both families:
//
//	PortHold      7001  accept; read and discard; never close. After the
//	                    peer's FIN the server socket stays in CLOSE_WAIT.
//	PortClose     7002  read one request, answer "HTTP/1.0 200 OK\r\n\r\nok\n",
//	                    close(): the server is the active closer (FIN_WAIT_1,
//	                    FIN_WAIT_2, TIME_WAIT). The request ends at the first
//	                    blank line ("\r\n\r\n" or "\n\n") if its first line
//	                    contains "HTTP/", else at the first "\n"; also at EOF or
//	                    after 1 s without new bytes once some have arrived.
//	                    Bytes that arrive after that point make Linux answer
//	                    close() with RST instead of FIN (RFC 2525 2.17).
//	PortControl   7003  a line protocol (lines end in "\n", "\r\n" accepted,
//	                    at most 1024 bytes):
//	                      "close"           close() now (FIN)
//	                      "shutdown"        shutdown(SHUT_WR): half-close, keep
//	                                        reading commands ("echo" then has
//	                                        nowhere to write and is ignored)
//	                      "rst"             SO_LINGER 0 and close(): RST
//	                      "echo TEXT"       write "TEXT\n"
//	                      "close-after-fin" close() as soon as the peer's FIN
//	                                        (EOF) is read
//	                      "close-after-fin MS"  answer "armed", then close()
//	                                        MS milliseconds (0-10000) after
//	                                        EOF: CLOSE_WAIT, then LAST_ACK
//	                      anything else     write "?\n"
//	                    Only "echo", "close-after-fin MS" and unknown lines
//	                    get an answer. Without "close-after-fin", EOF leaves
//	                    the socket in CLOSE_WAIT.
//	PortEcho      7004  echo all bytes back; close() at EOF, so after the peer's
//	                    FIN the server sends its own (LAST_ACK on the target).
//	PortHalfClose 7005  on accept write "hello\n" and shutdown(SHUT_WR) at once
//	                    (the server's FIN comes first), read and discard until
//	                    EOF, then close().
//	PortClosed    7009  nothing listens: SYN gets RST (RFC 9293 3.10.7.1).
//	PortDialer    7010  "dial PORT\n": answer "dialing\n", then the target
//	                    connects to ProberAddr:PORT, or [ProberAddr6]:PORT
//	                    when the command came over IPv6 (a SYN to the prober; with
//	                    nobody answering the socket stays in SYN_SENT), giving
//	                    up after 10 s. A connected dialer socket reads and
//	                    discards, and closes at EOF or after 75 s at most.
//	                    "dial PORT hold": the same, but the connected socket
//	                    stays open after EOF (CLOSE_WAIT) until an app action
//	                    or 75 s.
//	                    "app PORT ACTION": out-of-band app control of the
//	                    connection (accepted by any server, or dialed) whose
//	                    peer is the prober at PORT; ACTION is "close",
//	                    "shutdown" (SHUT_WR), "rst" (SO_LINGER 0, close) or
//	                    "write N" (N bytes 'x', 1-65536); answers "ok",
//	                    "none" (no such connection) or "?". The connection
//	                    under test carries no command, so a script's
//	                    sequence numbers stay as written.
//	                    Other lines get "?\n". At most 16 dials run at once;
//	                    more get "busy\n".
//
//	PortHTTP        80  as PortClose: an HTTP/1.0 server that answers and closes
//	PortHTTPAlt   8080  as PortHold
//
// Sockets held open (PortHold, PortControl after EOF) live until
// [Servers.Close], which closes every listener and connection.
//
// # Routed labs
//
// [CreateRouted] puts one or two router namespaces (PREFIX-fw, PREFIX-fw2)
// between the prober (198.18.0.1/24, 2001:2::1/64) and the target
// (198.18.2.2/24, 2001:2:0:2::2/64), dual-stack with one /64 of 2001:2::/48
// per link, with IPv4 and IPv6 forwarding on, one route for 198.18.0.0/15
// and one for 2001:2::/48 per host, no default route and no router
// advertisements. Each router's forward hook gets a [Firewall] ruleset
// (nftables over netlink, table inet tcpwalk_lab so both families get it,
// each rule's nft text in its comment): none, stateless, stateful, reject,
// clamp, synproxy (with a prerouting raw chain and the router's conntrack
// sysctls), loose, or v6-open, the broken one: stateful in a table ip, so
// IPv6 passes unfiltered. [Destroy] removes the routers and their rules too.
package lab
