package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Limits of a send run: every loop that sends is bounded.
const (
	MaxCount     = 100000
	MinInterval  = time.Millisecond
	DefaultWait  = time.Second
	DefaultWin   = 64240 // Linux's SYN window (one 1460-byte MSS times 44)
	defaultCount = 1
)

// SendSpec is one `tcpwalk send` job: the segment to craft and how often.
type SendSpec struct {
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
	// LeaveOpen keeps half-open connections the probes created on the
	// remote. By default a SYN-ACK is answered with an exact RST at the end
	// (RFC 9293 §3.5.2), so the remote does not hold a SYN_RCVD for a
	// minute.
	LeaveOpen bool
}

// Validate checks the spec and fills defaults.
func (s *SendSpec) Validate() error {
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
	return nil
}

// segment builds the probe's segment for one send.
func (s *SendSpec) segment(seq uint32, tsVal uint32) craft.Segment {
	seg := craft.Segment{
		Seq: seq, Ack: s.Ack, Flags: s.Flags, Window: s.Window, Urgent: s.Urgent,
		TTL: s.TTL, TOS: s.TOS, ID: s.ID, DF: s.DF, Payload: s.Payload, Options: s.Options,
		FlowLabel: s.FlowLabel,
	}
	if seg.Window == 0 {
		seg.Window = DefaultWin
	}
	if seg.ID == 0 && !s.Target.Addr().Is6() {
		// The kernel would fill a zero ID itself; drawing it here keeps
		// the ID in our own records equal to the ID on the wire.
		seg.ID = uint16(RandomUint32())
		if seg.ID == 0 {
			seg.ID = 1
		}
	}
	if s.Options == nil && !s.NoOptions && s.Flags.Has(craft.FlagSYN) {
		seg.Options = craft.DefaultSYNOptions(tsVal)
	}
	return seg
}

// ProbeSent describes one probe as it left.
type ProbeSent struct {
	Index   int // from 1
	At      time.Time
	Local   netip.AddrPort
	Remote  netip.AddrPort
	Flags   craft.Flags
	Seq     uint32
	Ack     uint32
	Len     int // payload bytes
	Options []string
}

// Reply is one thing that came back for a probe.
type Reply struct {
	Probe int // the probe's Index
	Kind  EventKind
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

// SendResult is what a send run saw.
type SendResult struct {
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
}

// SendObserver receives the run's events as they happen.
type SendObserver struct {
	Sent  func(ProbeSent)
	Reply func(Reply)
}

// maxOpenFlows bounds the flows a send run keeps open (each holds a source
// port, a receive queue and a goroutine): with more probes than that, the
// oldest flow is retired (its half-open connection reset, its port freed)
// and later replies to it are no longer attributed.
const maxOpenFlows = 512

type probeState struct {
	sent     ProbeSent // the latest probe on this flow
	flow     *Flow
	retire   chan struct{}           // closed when the flow is retired
	seen     map[[2]uint32]ProbeSent // SYN/FIN/data replies seen, and the probe they answered
	synAcked bool
	resetSeq uint32
}

// Send runs spec on p: Count probes, each on a fresh source port unless
// spec.SrcPort is set, printing replies as they arrive through obs. It stops
// early, with Interrupted set, when ctx is cancelled.
func Send(ctx context.Context, p *Prober, spec SendSpec, obs SendObserver) (SendResult, error) {
	if err := spec.Validate(); err != nil {
		return SendResult{}, err
	}
	res := SendResult{Target: spec.Target}
	var (
		mu     sync.Mutex
		probes []*probeState
		events = make(chan Reply, 64)
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	retired := 0 // probes[:retired] have their flows retired
	defer func() {
		close(stop)
		wg.Wait()
		for _, ps := range probes[retired:] {
			ps.flow.Close()
		}
	}()

	pump := func(ps *probeState) {
		defer wg.Done()
		f := ps.flow
		for {
			select {
			case <-stop:
				return
			case <-ps.retire:
				return
			case e := <-f.in:
				mu.Lock()
				if ps.seen == nil { // retired meanwhile
					mu.Unlock()
					f.Release(e)
					return
				}
				r := toReply(ps, e)
				// A reply that occupies sequence space and comes again is
				// the remote's retransmission: it answers the probe of the
				// first copy, not the latest probe (pure ACKs are never
				// retransmitted, RFC 9293 §3.8.1).
				key := [2]uint32{uint32(r.Flags), r.Seq}
				if r.Kind == EventSegment && (r.Len > 0 || r.Flags.Has(craft.FlagSYN) || r.Flags.Has(craft.FlagFIN)) {
					if first, ok := ps.seen[key]; ok {
						r.Retransmission, r.Probe, r.RTT = true, first.Index, r.At.Sub(first.At)
					} else {
						ps.seen[key] = ps.sent
					}
				}
				if r.Kind == EventSegment {
					if r.Flags.Has(craft.FlagSYN|craft.FlagACK) && !ps.synAcked {
						ps.synAcked, ps.resetSeq = true, r.Ack
					}
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

	for i := 1; i <= spec.Count; i++ {
		seq := spec.Seq
		if !spec.SeqSet {
			seq = RandomUint32()
		}
		var ps *probeState
		if spec.SrcPort != 0 && shared != nil {
			ps = shared
		} else {
			f, err := p.NewFlow(spec.Target.Port(), spec.SrcPort)
			if err != nil {
				return res, err
			}
			ps = &probeState{flow: f, seen: map[[2]uint32]ProbeSent{}, retire: make(chan struct{})}
			mu.Lock()
			probes = append(probes, ps)
			mu.Unlock()
			wg.Add(1)
			go pump(ps)
			if len(probes)-retired > maxOpenFlows {
				retireProbe(p, probes[retired], spec.LeaveOpen, &mu)
				retired++
			}
			if spec.SrcPort != 0 {
				shared = ps
			}
		}
		seg := spec.segment(seq, uint32(time.Now().UnixMilli()))
		// Hold mu across the send: on a fast link the reply reaches the
		// pump before Send returns, and the pump must not read ps.sent
		// (probe index, send time) before it is set.
		mu.Lock()
		at, err := ps.flow.Send(&seg)
		if err != nil {
			mu.Unlock()
			return res, err
		}
		ps.sent = ProbeSent{Index: i, At: at, Local: ps.flow.Local, Remote: ps.flow.Remote, Flags: seg.Flags,
			Seq: seg.Seq, Ack: seg.Ack, Len: len(seg.Payload), Options: optionTexts(seg.Options)}
		sent := ps.sent
		mu.Unlock()
		res.Sent++
		if obs.Sent != nil {
			obs.Sent(sent)
		}
		wait := spec.Interval
		if i == spec.Count {
			wait = spec.Wait
		}
		if !deliverUntil(time.Now().Add(wait)) {
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
		tidy(p, probes, &mu)
	}
	res.GuardDropped = p.GuardDropped()
	for _, ps := range probes {
		res.Malformed += ps.flow.Malformed()
	}

	if res.Malformed > 0 {
		res.LastMalformed = p.LastMalformed()
	}
	return res, nil
}

// tidy resets the half-open connections our SYNs made: an exact RST
// <SEQ=SEG.ACK of the SYN-ACK><CTL=RST> (RFC 9293 §3.10.7.4) removes the
// remote's SYN_RCVD entry at once.
// retireProbe stops following an old probe's flow: its half-open
// connection is reset (unless leaveOpen), its pump stops, its port is freed.
func retireProbe(p *Prober, ps *probeState, leaveOpen bool, mu *sync.Mutex) {
	close(ps.retire)
	if !leaveOpen {
		tidy(p, []*probeState{ps}, mu)
	}
	mu.Lock()
	ps.synAcked, ps.seen = false, nil
	mu.Unlock()
	ps.flow.Close()
}

func tidy(p *Prober, probes []*probeState, mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	for _, ps := range probes {
		if !ps.synAcked {
			continue
		}
		rst := craft.Segment{Seq: ps.resetSeq, Flags: craft.FlagRST, TTL: 64}
		_, _ = ps.flow.Send(&rst)
	}
}

func toReply(ps *probeState, e *Event) Reply {
	r := Reply{Probe: ps.sent.Index, Kind: e.Kind, At: e.At}
	if !ps.sent.At.IsZero() && e.At.After(ps.sent.At) {
		r.RTT = e.At.Sub(ps.sent.At)
	}
	switch e.Kind {
	case EventSegment:
		tcp := e.Seg.TCP
		r.From = netip.AddrPortFrom(e.Source(), tcp.SourcePort())
		r.To = netip.AddrPortFrom(e.Destination(), tcp.DestinationPort())
		r.Flags, r.Seq, r.Ack, r.Window = tcp.Flags(), tcp.SequenceNumber(), tcp.AckNumber(), tcp.WindowSize()
		r.Len, r.TTL = len(tcp.Payload()), e.HopLimit()
		for it := tcp.Options(); it.Next(); {
			r.Options = append(r.Options, it.Option().String())
		}
	case EventICMP:
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
