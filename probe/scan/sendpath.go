package scan

import (
	"fmt"
	"strconv"
	"strings"
)

// SendPath is how probes leave the host. The zero value is invalid; Config.SendPath zero means SendAuto.
type SendPath uint8

const (
	// SendAuto uses the packet path when it can and the raw path otherwise (see Result.SendPathNote).
	SendAuto SendPath = iota + 1
	// SendRaw sends IPv4 packets on an IP_HDRINCL raw socket: the kernel routes each one, resolves the neighbour
	// and runs netfilter OUTPUT. It works towards any destination, loopback included, at about 0.5-0.7 Mpps per
	// core: the route lookup per packet is most of the cost.
	SendRaw
	// SendPacket sends Ethernet frames on an AF_PACKET socket (rawsock.PacketSender) to the one next hop of every
	// host, with the qdisc bypassed: about 1 Mpps per core. It needs an Ethernet egress interface, a next hop that
	// answers ARP, and hosts that are one address or behind one gateway. Netfilter never sees the probes.
	SendPacket
)

var sendPathNames = [...]string{SendAuto: "auto", SendRaw: "raw", SendPacket: "packet"}

// SendPathNames lists the names ParseSendPath accepts.
func SendPathNames() []string { return append([]string(nil), sendPathNames[1:]...) }

// ParseSendPath reads auto, raw or packet.
func ParseSendPath(s string) (SendPath, error) {
	for p, n := range sendPathNames {
		if p > 0 && strings.EqualFold(s, n) {
			return SendPath(p), nil
		}
	}
	return 0, fmt.Errorf("unknown send path %q: want one of %s", s, strings.Join(SendPathNames(), ", "))
}

func (p SendPath) valid() bool { return p >= SendAuto && p <= SendPacket }

func (p SendPath) String() string {
	if !p.valid() {
		return "SendPath(" + strconv.Itoa(int(p)) + ")"
	}
	return sendPathNames[p]
}
