package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/bpf"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/netns"
	"github.com/tcpwalk/tcpwalk/probe/rawsock"
)

// Capture sizes: a ring of the last capSlots packets to or from the prober,
// each cut to capSnap bytes (every IPv4 or IPv6 and TCP header with options fits).
const (
	capSlots = 2048
	capSnap  = 256
)

// capPacket is one captured packet.
type capPacket struct {
	at time.Time
	n  int
	b  [capSnap]byte
}

// capture records, in the target's namespace, every TCP packet from or to
// the prober, as the target's interface sees it: before the target's own
// netfilter and TCP, and after them for what the target sends.
type capture struct {
	r      *rawsock.PacketReceiver
	prober netip.Addr
	wg     sync.WaitGroup

	mu   sync.Mutex
	ring []capPacket
	next int // slots written so far
}

// captureProgram keeps TCP packets whose source or destination is prober,
// cut to capSnap bytes.
func captureProgram(prober netip.Addr) []bpf.Instruction {
	if prober.Is6() {
		return captureProgram6(prober)
	}
	a := prober.As4()
	ip := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: craft.ProtocolTCP, SkipFalse: 5},
		bpf.LoadAbsolute{Off: 12, Size: 4}, // source
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ip, SkipTrue: 2},
		bpf.LoadAbsolute{Off: 16, Size: 4}, // destination
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ip, SkipFalse: 1},
		bpf.RetConstant{Val: capSnap},
		bpf.RetConstant{Val: 0},
	}
}

// captureProgram6 is captureProgram for an IPv6 prober: TCP right after
// the fixed header (the prober sends no extension headers, RFC 8200 §4;
// the target's Linux adds none) from or to prober.
func captureProgram6(prober netip.Addr) []bpf.Instruction {
	a := prober.As16()
	var w [4]uint32
	for i := range w {
		w[i] = uint32(a[4*i])<<24 | uint32(a[4*i+1])<<16 | uint32(a[4*i+2])<<8 | uint32(a[4*i+3])
	}
	// match(off, next) compares the 16 bytes at off with prober: a
	// mismatch skips next instructions past the end of the block, a match
	// falls through to the instruction after it.
	match := func(off uint32, next uint8) []bpf.Instruction {
		var out []bpf.Instruction
		for i := range w {
			out = append(out, bpf.LoadAbsolute{Off: off + uint32(4*i), Size: 4},
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: w[i], SkipFalse: uint8(2*(3-i)) + next})
		}
		return out
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 6, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: craft.ProtocolTCP, SkipFalse: 18},
	}
	prog = append(prog, match(8, 1)...)                // source (8 instructions); a mismatch skips the return
	prog = append(prog, bpf.RetConstant{Val: capSnap}) // source is prober
	prog = append(prog, match(24, 1)...)               // destination; a mismatch returns 0
	return append(prog, bpf.RetConstant{Val: capSnap}, bpf.RetConstant{Val: 0})
}

// startCapture opens the capture socket inside ns and starts reading.
func startCapture(ns *netns.NS, prober netip.Addr) (*capture, error) {
	c := &capture{prober: prober, ring: make([]capPacket, capSlots)}
	open := rawsock.NewPacketReceiver
	if prober.Is6() {
		open = rawsock.NewPacketReceiver6
	}
	err := ns.Do(func() error {
		r, err := open(captureProgram(prober))
		c.r = r
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("firewall: capture in %s: %w (needs CAP_NET_RAW there)", ns.Name, err)
	}
	c.wg.Add(1)
	go c.read()
	return c, nil
}

func (c *capture) read() {
	defer c.wg.Done()
	var buf [probe.MaxPacket]byte
	for {
		n, ts, err := c.r.Read(buf[:])
		if err != nil && !errors.Is(err, rawsock.ErrTruncated) {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		c.mu.Lock()
		p := &c.ring[c.next%capSlots]
		p.at, p.n = ts, copy(p.b[:], buf[:n])
		c.next++
		c.mu.Unlock()
	}
}

// probeKey identifies a probe in the capture: its IP ID (unique per probe,
// rarely rewritten) or, failing that, its sequence number and flags.
type probeKey struct {
	local uint16
	id    uint32 // IPv4 ID or IPv6 flow label
	seq   uint32
	flags craft.Flags
}

// findProbe returns a copy of the probe as it arrived at the target, and
// when, looking at packets stamped from since on.
func (c *capture) findProbe(k probeKey, since time.Time) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fallback *capPacket
	for i := max(0, c.next-capSlots); i < c.next; i++ {
		p := &c.ring[i%capSlots]
		if p.at.Before(since) {
			continue
		}
		pkt, ok := parseWireTCP(p.b[:p.n])
		if !ok || pkt.src != c.prober || pkt.tcp.SourcePort() != k.local {
			continue
		}
		if pkt.id == k.id {
			return append([]byte(nil), p.b[:p.n]...), p.at, true
		}
		if fallback == nil && pkt.tcp.SequenceNumber() == k.seq && pkt.tcp.Flags() == k.flags {
			fallback = p
		}
	}
	if fallback != nil {
		return append([]byte(nil), fallback.b[:fallback.n]...), fallback.at, true
	}
	return nil, time.Time{}, false
}

// findAnswer returns the flags of the first segment the target sent to our
// local port from since on.
func (c *capture) findAnswer(local uint16, since time.Time) (craft.Flags, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := max(0, c.next-capSlots); i < c.next; i++ {
		p := &c.ring[i%capSlots]
		if p.at.Before(since) {
			continue
		}
		pkt, ok := parseWireTCP(p.b[:p.n])
		if !ok || pkt.dst != c.prober || pkt.tcp.DestinationPort() != local {
			continue
		}
		return pkt.tcp.Flags(), true
	}
	return 0, false
}

// Close stops the capture.
func (c *capture) Close() {
	c.r.Close()
	c.wg.Wait()
}

// findTargetSYNACK returns the sequence number (ISS) of the first SYN-ACK
// the target sent to our local port.
func (c *capture) findTargetSYNACK(local uint16) (uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := max(0, c.next-capSlots); i < c.next; i++ {
		p := &c.ring[i%capSlots]
		pkt, ok := parseWireTCP(p.b[:p.n])
		if !ok || pkt.dst != c.prober || pkt.tcp.DestinationPort() != local {
			continue
		}
		if pkt.tcp.Flags().Has(craft.FlagSYN | craft.FlagACK) {
			return pkt.tcp.SequenceNumber(), true
		}
	}
	return 0, false
}

// sawTargetSend says whether the target itself sent a segment with seq and
// flags to our local port (as the capture saw it leave).
func (c *capture) sawTargetSend(local uint16, seq uint32, flags craft.Flags) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := max(0, c.next-capSlots); i < c.next; i++ {
		p := &c.ring[i%capSlots]
		pkt, ok := parseWireTCP(p.b[:p.n])
		if !ok || pkt.dst != c.prober || pkt.tcp.DestinationPort() != local {
			continue
		}
		if pkt.tcp.SequenceNumber() == seq && pkt.tcp.Flags() == flags {
			return true
		}
	}
	return false
}
