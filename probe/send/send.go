// Package send runs `tcpwalk send`: crafted segments, as given, to one
// target, and what comes back for each. Each source port's probes are one
// connection of the engine (package tcpconn): it records the replies, says
// which are retransmissions, and its tidy resets what our SYNs opened.
//
// The package is Linux-only, like package probe under it.
package send

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// Limits of a send run: every loop that sends is bounded.
const (
	MaxCount     = 100000
	MinInterval  = time.Millisecond
	DefaultWait  = time.Second
	defaultCount = 1
	// MaxRate bounds a flood, in probes per second; DefaultRate is a
	// flood's rate when none is given.
	MaxRate     = 100000
	DefaultRate = 1000
)

func usagef(err error) error { return &probe.UsageError{Err: err} }

// Spec is one `tcpwalk send` job: the segment to craft and how often.
type Spec struct {
	Target netip.AddrPort
	Flags  craft.Flags
	// Seq is our sequence number when SeqSet; otherwise each probe draws a
	// random ISN.
	Seq    uint32
	SeqSet bool
	Ack    uint32
	Window uint16
	Urgent uint16
	TTL    uint8
	TOS    uint8
	ID     uint16 // IPv4 only
	DF     bool   // IPv4 only
	// FlowLabel is the IPv6 flow label (RFC 6437, 20 bits); IPv6 only.
	FlowLabel uint32
	// Options are sent as given. Nil with a SYN (and NoOptions unset) means
	// craft's Linux-like default set, because some firewalls drop
	// option-less SYNs.
	Options   []craft.Option
	NoOptions bool
	Payload   []byte
	// SrcPort fixes the source port; zero gives each probe a fresh one.
	SrcPort uint16
	// Count probes, Interval apart; after the last, Wait for late replies.
	Count    int
	Interval time.Duration
	Wait     time.Duration
	// IPOptions are raw IPv4 options sent in every probe (craft.Segment).
	IPOptions []byte
	// FragSize, when not zero, cuts every probe's IP datagram into
	// fragments of that many payload bytes (a multiple of 8), for testing
	// what a firewall or the remote makes of fragments (RFC 791 §3.2).
	FragSize int
	// Flood sends the Count probes back to back at Rate per second
	// instead of Interval apart; the run still ends after Count probes
	// and Wait.
	Flood bool
	Rate  int
	// LeaveOpen keeps half-open connections the probes created on the
	// remote. By default a SYN-ACK is answered with an exact RST at the end
	// (RFC 9293 §3.5.2), so the remote does not hold a SYN_RCVD for a
	// minute.
	LeaveOpen bool
}

// Validate checks the spec and fills defaults.
func (s *Spec) Validate() error {
	if s.Count == 0 {
		s.Count = defaultCount
	}
	if s.Count < 0 || s.Count > MaxCount {
		return usagef(fmt.Errorf("bad count %d: want 1 to %d", s.Count, MaxCount))
	}
	if s.Interval == 0 {
		s.Interval = time.Second
	}
	if s.Interval < MinInterval {
		return usagef(fmt.Errorf("bad interval %v: want at least %v", s.Interval, MinInterval))
	}
	if s.Wait == 0 {
		s.Wait = DefaultWait
	}
	if s.Wait < 0 || s.Wait > time.Hour {
		return usagef(fmt.Errorf("bad wait %v: want up to 1h", s.Wait))
	}
	if s.NoOptions && len(s.Options) > 0 {
		return usagef(errors.New("--no-options contradicts the option flags given"))
	}
	if s.Target.Addr().Is6() && (s.ID != 0 || s.DF) {
		return usagef(fmt.Errorf("%v is IPv6, which has no IP identification or don't-fragment bit (RFC 8200 §5: routers never fragment): drop --id and --df", s.Target))
	}
	if !s.Target.Addr().Is6() && s.FlowLabel != 0 {
		return usagef(fmt.Errorf("--flow-label is IPv6 only; %v is IPv4", s.Target))
	}
	if s.FlowLabel > 0xfffff {
		return usagef(fmt.Errorf("bad flow label %#x: want 0 to 0xfffff (20 bits, RFC 6437)", s.FlowLabel))
	}
	if len(s.IPOptions) > 0 && s.Target.Addr().Is6() {
		return usagef(fmt.Errorf("%v is IPv6: IP options are IPv4's (IPv6 has extension headers, RFC 8200 §4)", s.Target))
	}
	if len(s.IPOptions) > craft.IPv4OptionsMaximumSize {
		return usagef(fmt.Errorf("%d bytes of IP options: at most %d fit in the IPv4 header", len(s.IPOptions), craft.IPv4OptionsMaximumSize))
	}
	if s.FragSize != 0 && s.Target.Addr().Is6() {
		return usagef(fmt.Errorf("%v is IPv6: --frag cuts IPv4 datagrams (RFC 791); IPv6 fragments need a fragment header (RFC 8200 §4.5), which tcpwalk does not build", s.Target))
	}
	if s.FragSize != 0 {
		if s.FragSize < 8 || s.FragSize%8 != 0 || s.FragSize > probe.MaxPacket {
			return usagef(fmt.Errorf("bad fragment size %d: want a multiple of 8 from 8 to %d (fragment offsets count 8-byte units)", s.FragSize, probe.MaxPacket&^7))
		}
		if s.DF {
			return usagef(errors.New("fragments with don't-fragment set: leave out --df"))
		}
	}
	if s.Flood {
		if s.Rate == 0 {
			s.Rate = DefaultRate
		}
		if s.Rate < 1 || s.Rate > MaxRate {
			return usagef(fmt.Errorf("bad rate %d: want 1 to %d probes per second", s.Rate, MaxRate))
		}
	}
	return nil
}

// segment builds the probe's segment for one send.
func (s *Spec) segment(seq uint32, tsVal uint32) craft.Segment {
	seg := craft.Segment{
		Seq: seq, Ack: s.Ack, Flags: s.Flags, Window: s.Window, Urgent: s.Urgent,
		TTL: s.TTL, TOS: s.TOS, ID: s.ID, DF: s.DF, Payload: s.Payload, Options: s.Options, IPOptions: s.IPOptions,
		FlowLabel: s.FlowLabel,
	}
	if seg.Window == 0 {
		seg.Window = tcpconn.DefaultWindow
	}
	if seg.ID == 0 && !s.Target.Addr().Is6() {
		// The kernel would fill a zero ID itself; drawing it here keeps
		// the ID in our own records equal to the ID on the wire.
		seg.ID = uint16(probe.RandomUint32())
		if seg.ID == 0 {
			seg.ID = 1
		}
	}
	if s.Options == nil && !s.NoOptions && s.Flags.Has(craft.FlagSYN) {
		seg.Options = craft.DefaultSYNOptions(tsVal)
	}
	return seg
}

// Probe describes one probe as it left.
type Probe struct {
	Index   int // from 1
	At      time.Time
	Local   netip.AddrPort
	Remote  netip.AddrPort
	Flags   craft.Flags
	Seq     uint32
	Ack     uint32
	Len     int // payload bytes
	Options []string
	// Fragments is how many IP fragments carried it (0: not fragmented).
	Fragments int
}

// Reply is one thing that came back for a probe.
type Reply struct {
	Probe int // the probe's Index
	Kind  probe.EventKind
	At    time.Time     // kernel receive time
	RTT   time.Duration // At minus the probe's send time
	From  netip.AddrPort
	To    netip.AddrPort
	// TCP fields (Kind == EventSegment).
	Flags   craft.Flags
	Seq     uint32
	Ack     uint32
	Window  uint16
	Options []string
	Len     int
	TTL     uint8
	// Retransmission is set when the remote sent this flags+seq before.
	Retransmission bool
	// ICMP (Kind == EventICMP).
	ICMPType, ICMPCode uint8
	ICMPText           string
}

// Result is what a send run saw.
type Result struct {
	Target       netip.AddrPort
	Sent         int
	Replies      int
	Answered     int // probes with at least one reply
	MinRTT       time.Duration
	MaxRTT       time.Duration
	AvgRTT       time.Duration
	GuardDropped uint64
	// Malformed counts replies to our probes that were dropped as malformed
	// (unparsable, truncated, a bad TCP checksum); LastMalformed says what
	// was wrong with the last packet the Prober dropped.
	Malformed     uint64
	LastMalformed string
	Interrupted   bool
	// Flood is set for a flood run; Elapsed is the time from the first
	// probe to the last (not counting the wait for late replies).
	Flood   bool
	Elapsed time.Duration
}

// Observer receives the run's events as they happen.
type Observer struct {
	Sent  func(Probe)
	Reply func(Reply)
}

// maxOpenFlows bounds the flows a send run keeps open (each holds a source
// port, a receive queue and a goroutine): with more probes than that, the
// oldest flow is retired (its half-open connection reset, its port freed)
// and later replies to it are no longer attributed.
const maxOpenFlows = 512

type probeState struct {
	sent   Probe // the latest probe on this flow
	conn   *tcpconn.Conn
	retire chan struct{}       // closed when the flow is retired
	seen   map[[2]uint32]Probe // SYN/FIN/data replies seen, and the probe they answered
}

// Run runs spec on p: Count probes, each on a fresh source port unless
// spec.SrcPort is set, printing replies as they arrive through obs. It stops
// early, with Interrupted set, when ctx is cancelled.
func Run(ctx context.Context, p *probe.Prober, spec Spec, obs Observer) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{Target: spec.Target, Flood: spec.Flood}
	var (
		mu     sync.Mutex
		probes []*probeState
		events = make(chan Reply, 64)
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	pumpCtx, cancelPumps := context.WithCancel(context.Background())
	retired := 0 // probes[:retired] have their flows retired
	defer func() {
		close(stop)
		cancelPumps()
		wg.Wait()
		for _, ps := range probes[retired:] {
			ps.conn.Flow.Close()
		}
	}()

	// pump reads one flow's replies until the run stops or the flow is
	// retired; every reply goes through the flow's connection engine.
	pump := func(ps *probeState, done context.Context) {
		defer wg.Done()
		f := ps.conn.Flow
		for {
			e, err := f.Next(done, time.Now().Add(time.Hour))
			if err != nil {
				if errors.Is(err, probe.ErrTimeout) {
					continue
				}
				return
			}
			mu.Lock()
			if ps.seen == nil { // retired meanwhile
				mu.Unlock()
				f.Release(e)
				return
			}
			r := toReply(ps, e)
			rp, _ := ps.conn.Take(e)
			// A reply that occupies sequence space and comes again is the
			// remote's retransmission (the engine's rule): it answers the
			// probe of the first copy, not the latest probe.
			if r.Kind == probe.EventSegment && (r.Len > 0 || r.Flags.Has(craft.FlagSYN) || r.Flags.Has(craft.FlagFIN)) {
				key := [2]uint32{uint32(r.Flags), r.Seq}
				if first, ok := ps.seen[key]; ok {
					r.Probe, r.RTT = first.Index, r.At.Sub(first.At)
				} else {
					ps.seen[key] = ps.sent
				}
				r.Retransmission = rp == nil || rp.Seg.Retransmission
			}
			mu.Unlock()
			f.Release(e)
			select {
			case events <- r:
			case <-stop:
				return
			case <-ps.retire:
				return
			}
		}
	}

	answered := map[int]bool{}
	var rttSum time.Duration
	var rttN int
	record := func(r Reply) {
		res.Replies++
		answered[r.Probe] = true
		// Only a probe's first reply measures its round trip; later ones
		// are retransmissions or follow-ups.
		if r.RTT > 0 && !r.Retransmission {
			if rttN == 0 || r.RTT < res.MinRTT {
				res.MinRTT = r.RTT
			}
			res.MaxRTT = max(res.MaxRTT, r.RTT)
			rttSum += r.RTT
			rttN++
		}
		if obs.Reply != nil {
			obs.Reply(r)
		}
	}
	var shared *probeState // the flow reused when the source port is fixed
	deliverUntil := func(deadline time.Time) bool {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		for {
			select {
			case r := <-events:
				record(r)
			case <-t.C:
				return true
			case <-ctx.Done():
				res.Interrupted = true
				return false
			}
		}
	}

	// A flood keeps to its rate against a fixed schedule, so that a late
	// probe does not push every later one back.
	var start time.Time
	floodGap := time.Duration(0)
	if spec.Flood {
		floodGap = time.Second / time.Duration(spec.Rate)
	}
	for i := 1; i <= spec.Count; i++ {
		seq := spec.Seq
		if !spec.SeqSet {
			seq = probe.RandomUint32()
		}
		var ps *probeState
		if spec.SrcPort != 0 && shared != nil {
			ps = shared
		} else {
			f, err := p.NewFlow(spec.Target.Port(), spec.SrcPort)
			if err != nil {
				return res, err
			}
			ps = &probeState{conn: tcpconn.New(f, nil), seen: map[[2]uint32]Probe{}, retire: make(chan struct{})}
			done, cancel := context.WithCancel(pumpCtx)
			go func() {
				select {
				case <-ps.retire:
				case <-pumpCtx.Done():
				}
				cancel()
			}()
			mu.Lock()
			probes = append(probes, ps)
			mu.Unlock()
			wg.Add(1)
			go pump(ps, done)
			if len(probes)-retired > maxOpenFlows {
				retireProbe(probes[retired], spec.LeaveOpen, &mu)
				retired++
			}
			if spec.SrcPort != 0 {
				shared = ps
			}
		}
		seg := spec.segment(seq, ps.conn.TSVal())
		// Hold mu across the send: on a fast link the reply reaches the
		// pump before Send returns, and the pump must not read ps.sent
		// (probe index, send time) before it is set.
		mu.Lock()
		var frags int
		var err error
		if spec.FragSize > 0 {
			// Fragments are not the engine's segments: the flow cuts and
			// sends the IP datagram (RFC 791), the connection's state stays.
			_, frags, err = ps.conn.Flow.SendFragments(&seg, spec.FragSize)
		} else {
			err = ps.conn.SendVerbatim(&seg, fmt.Sprintf("probe %d", i))
		}
		if err != nil {
			mu.Unlock()
			return res, err
		}
		f := ps.conn.Flow
		at := ps.conn.LastSend
		if frags > 0 {
			at = time.Now()
		}
		ps.sent = Probe{Index: i, At: at, Local: f.Local, Remote: f.Remote, Flags: seg.Flags,
			Seq: seg.Seq, Ack: seg.Ack, Len: len(seg.Payload), Options: optionTexts(seg.Options), Fragments: frags}
		sent := ps.sent
		mu.Unlock()
		if i == 1 {
			start = at
		}
		res.Sent++
		res.Elapsed = at.Sub(start)
		if obs.Sent != nil {
			obs.Sent(sent)
		}
		next := time.Now().Add(spec.Interval)
		switch {
		case i == spec.Count:
			next = time.Now().Add(spec.Wait)
		case spec.Flood:
			next = start.Add(time.Duration(i) * floodGap)
		}
		if !deliverUntil(next) {
			break
		}
	}
	// Drain what the pumps already hold.
	for drained := false; !drained; {
		select {
		case r := <-events:
			record(r)
		default:
			drained = true
		}
	}
	res.Answered = len(answered)
	if rttN > 0 {
		res.AvgRTT = rttSum / time.Duration(rttN)
	}
	if !spec.LeaveOpen {
		tidy(probes, &mu)
	}
	res.GuardDropped = p.GuardDropped()
	for _, ps := range probes {
		res.Malformed += ps.conn.Flow.Malformed()
	}

	if res.Malformed > 0 {
		res.LastMalformed = p.LastMalformed()
	}
	return res, nil
}

// retireProbe stops following an old probe's flow: its half-open
// connection is reset (unless leaveOpen), its pump stops, its port is freed.
func retireProbe(ps *probeState, leaveOpen bool, mu *sync.Mutex) {
	close(ps.retire)
	if !leaveOpen {
		tidy([]*probeState{ps}, mu)
	}
	mu.Lock()
	ps.seen = nil
	mu.Unlock()
	ps.conn.Flow.Close()
}

// tidy resets the half-open connections our SYNs made, by the engine's
// rule (tcpconn.Conn.Tidy): an exact RST <SEQ=SEG.ACK of the SYN-ACK>
// once a SYN-ACK answered one of our SYNs (RFC 9293 §3.10.7.4), which
// removes the remote's SYN_RCVD entry at once, and <SEQ=SYN+1><CTL=RST>
// for a last SYN whose answer did not come (yet): a listener that never
// took it ignores that (§3.10.7.2).
func tidy(probes []*probeState, mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	for _, ps := range probes {
		ps.conn.Tidy()
	}
}

func toReply(ps *probeState, e *probe.Event) Reply {
	r := Reply{Probe: ps.sent.Index, Kind: e.Kind, At: e.At}
	if !ps.sent.At.IsZero() && e.At.After(ps.sent.At) {
		r.RTT = e.At.Sub(ps.sent.At)
	}
	switch e.Kind {
	case probe.EventSegment:
		tcp := e.Seg.TCP
		r.From = netip.AddrPortFrom(e.Source(), tcp.SourcePort())
		r.To = netip.AddrPortFrom(e.Destination(), tcp.DestinationPort())
		r.Flags, r.Seq, r.Ack, r.Window = tcp.Flags(), tcp.SequenceNumber(), tcp.AckNumber(), tcp.WindowSize()
		r.Len, r.TTL = len(tcp.Payload()), e.HopLimit()
		for it := tcp.Options(); it.Next(); {
			r.Options = append(r.Options, it.Option().String())
		}
	case probe.EventICMP:
		r.From = netip.AddrPortFrom(e.Source(), 0)
		r.ICMPType, r.ICMPCode = e.ICMPTypeCode()
		r.ICMPText = e.ICMPText()
	}
	return r
}

func optionTexts(opts []craft.Option) []string {
	if len(opts) == 0 {
		return nil
	}
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.String()
	}
	return out
}
