package tcpconn

import (
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/result"
)

// Dir is the direction of a recorded segment (see result.Dir).
type Dir = result.Dir

// Directions.
const (
	Out = result.Out // we sent it
	In  = result.In  // the remote sent it
)

// Segment is one recorded segment (see result.Segment).
type Segment = result.Segment

// Recorder keeps every segment of a connection, both ways, with relative
// numbers and the states both ends are in after it, and decides for each
// remote segment, by one rule, whether it is new, a retransmission, a
// repeat or a path's duplicate (see [Recorder.Received]).
type Recorder struct {
	mu     sync.Mutex
	segs   []*Segment
	conn   *Conn // for ISNs
	local  result.State
	remote result.State

	// What the remote has sent so far, to tell old segments from new ones.
	syns    map[synKey]bool      // its SYNs: a SYN,ACK after a bare SYN of the same ISN is news, not a retransmission
	fins    map[Seq]bool         // sequence numbers of its FINs
	data    []seqRange           // its data, merged ranges
	answers map[[4]uint32]bool   // flags, seq, ack, len of every segment
	copies  map[string]time.Time // TCP bytes of every segment → arrival
}

// seqRange is [start, end) in sequence space.
type seqRange struct{ start, end Seq }

// DupWindow bounds the gap between a segment and a byte-identical copy of it
// that the path made. A remote's retransmission timer never fires this soon
// (RFC 6298 §2.4: RTO at least 1 s; Linux: 200 ms), and with timestamps
// (RFC 7323) a retransmission is never byte-identical anyway.
const DupWindow = 100 * time.Millisecond

// NewRecorder returns a recorder whose segments start with the given states.
func NewRecorder(localState, remoteState result.State) *Recorder {
	return &Recorder{local: localState, remote: remoteState, syns: map[synKey]bool{}, fins: map[Seq]bool{},
		answers: map[[4]uint32]bool{}, copies: map[string]time.Time{}}
}

// States sets the states from now on and stamps them on the last segment
// (result.NoState keeps one).
func (r *Recorder) States(local, remote result.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if local != result.NoState {
		r.local = local
	}
	if remote != result.NoState {
		r.remote = remote
	}
	if n := len(r.segs); n > 0 {
		r.segs[n-1].LocalState, r.segs[n-1].RemoteState = r.local, r.remote
	}
}

// sent records one of our segments as it went out (raw: the packet).
func (r *Recorder) sent(at time.Time, s *craft.Segment, raw []byte, note string) *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	seg := &Segment{At: at, Dir: Out, Flags: s.Flags, Seq: Seq(s.Seq), Ack: Seq(s.Ack), Win: s.Window,
		Len: len(s.Payload), Note: note, LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)}
	if c := r.conn; c != nil {
		seg.RelSeq = uint32(c.ISS.Size(seg.Seq))
		if c.HaveIRS && s.Flags.Has(craft.FlagACK) {
			seg.RelAck = uint32(c.IRS.Size(seg.Ack)) // without ACK the field means nothing (RFC 9293 §3.1)
		}
	}
	for _, o := range s.Options {
		seg.Options = append(seg.Options, o.String())
	}
	r.segs = append(r.segs, seg)
	return seg
}

// Received records a remote segment and classifies it, by one rule for
// every user of the engine:
//   - Duplicate: byte-identical to one that came less than DupWindow ago:
//     a copy the path made, neither a retransmission nor an answer;
//   - Retransmission: it occupies sequence space (SYN, FIN, data) and brings
//     no new transition: its SYN or FIN came before, or, without either,
//     all of its data did, however the remote cut it into segments this
//     time (Linux collapses data and FIN into one retransmission, which may
//     bring data we lost). Pure ACKs are never retransmitted (RFC 9293
//     §3.8.1);
//   - Repeat: the same flags, numbers and length as an earlier segment (a
//     repeated ACK or RST tells nothing new: an answer to a copy of one of
//     our segments, or a duplicate).
//
// The returned segment stays valid (and is not changed by later records).
func (r *Recorder) Received(at time.Time, p *craft.Packet, raw []byte) *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := p.TCP
	seg := &Segment{At: at, Dir: In, Flags: t.Flags(), Seq: Seq(t.SequenceNumber()), Ack: Seq(t.AckNumber()),
		Win: t.WindowSize(), Len: len(t.Payload()), LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)}
	for it := t.Options(); it.Next(); {
		seg.Options = append(seg.Options, it.Option().String())
	}
	if c := r.conn; c != nil {
		if c.HaveIRS {
			seg.RelSeq = uint32(c.IRS.Size(seg.Seq))
		}
		if t.Flags().Has(craft.FlagACK) {
			seg.RelAck = uint32(c.ISS.Size(seg.Ack)) // without ACK the field means nothing (RFC 9293 §3.1)
		}
	}
	f := t.Flags()
	key := string(t)
	if prev, ok := r.copies[key]; ok && at.Sub(prev) < DupWindow {
		seg.Duplicate, seg.Retransmission, seg.Repeat = true, true, true
		seg.Note = "duplicate"
		r.segs = append(r.segs, seg)
		return seg
	}
	r.copies[key] = at
	if seg.Len > 0 || f.Has(craft.FlagSYN) || f.Has(craft.FlagFIN) {
		start := seg.Seq
		if f.Has(craft.FlagSYN) {
			start++
		}
		end := start.Add(Size(seg.Len))
		var old bool
		if f.Has(craft.FlagSYN) || f.Has(craft.FlagFIN) {
			old = (!f.Has(craft.FlagSYN) || r.syns[synKeyOf(seg.Seq, f)]) && (!f.Has(craft.FlagFIN) || r.fins[end])
		} else {
			old = r.covered(start, end)
		}
		if old {
			seg.Retransmission = true
			seg.Note = "retransmission"
		}
		if f.Has(craft.FlagSYN) {
			r.syns[synKeyOf(seg.Seq, f)] = true
		}
		if f.Has(craft.FlagFIN) {
			r.fins[end] = true
		}
		if seg.Len > 0 {
			r.addData(start, end)
		}
	}
	ak := [4]uint32{uint32(f), uint32(seg.Seq), uint32(seg.Ack), uint32(seg.Len)}
	seg.Repeat = r.answers[ak]
	r.answers[ak] = true
	r.segs = append(r.segs, seg)
	return seg
}

// Forget removes a remote segment from what the recorder has seen, after we
// reset its connection: the same segment again then comes from a new
// connection (an answer to our next SYN), not as a retransmission, repeat or
// copy of this one.
func (r *Recorder) Forget(seg *Segment) {
	f := seg.Flags
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.answers, [4]uint32{uint32(f), uint32(seg.Seq), uint32(seg.Ack), uint32(seg.Len)})
	if f.Has(craft.FlagSYN) {
		delete(r.syns, synKeyOf(seg.Seq, f))
	}
	if t, err := seg.TCP(); err == nil {
		delete(r.copies, string(t))
	}
}

// covered reports whether [start, end) lies within the data seen.
func (r *Recorder) covered(start, end Seq) bool {
	for _, d := range r.data {
		if d.start.LessEq(start) && end.LessEq(d.end) {
			return true
		}
	}
	return false
}

// addData merges [start, end) into the data seen.
func (r *Recorder) addData(start, end Seq) {
	out := r.data[:0]
	for _, d := range r.data {
		if d.start.LessEq(end) && start.LessEq(d.end) { // overlapping or adjacent
			if d.start.LessEq(start) {
				start = d.start
			}
			if end.LessEq(d.end) {
				end = d.end
			}
			continue
		}
		out = append(out, d)
	}
	r.data = append(out, seqRange{start, end})
}

// ICMP records an ICMP error about the connection.
func (r *Recorder) ICMP(at time.Time, text string, raw []byte) *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	seg := &Segment{At: at, Dir: In, ICMP: text, LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)}
	r.segs = append(r.segs, seg)
	return seg
}

// LastIn is when the latest segment from the remote came (zero if none).
func (r *Recorder) LastIn() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.segs) - 1; i >= 0; i-- {
		if r.segs[i].Dir == In {
			return r.segs[i].At
		}
	}
	return time.Time{}
}

// Last is the latest segment recorded, nil if none.
func (r *Recorder) Last() *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.segs) == 0 {
		return nil
	}
	return r.segs[len(r.segs)-1]
}

// LastFIN is the latest segment from the remote carrying a FIN, nil if none.
func (r *Recorder) LastFIN() *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.segs) - 1; i >= 0; i-- {
		if s := r.segs[i]; s.Dir == In && s.ICMP == "" && s.Flags.Has(craft.FlagFIN) {
			return s
		}
	}
	return nil
}

// Snapshot returns a copy of what was recorded so far, in recording order.
func (r *Recorder) Snapshot() []Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Segment, len(r.segs))
	for i, s := range r.segs {
		out[i] = *s
	}
	return out
}

// synKey tells a remote SYN by its sequence number and whether it carried
// ACK: in a simultaneous open (RFC 9293 §3.5, figure 8) the remote's SYN,ACK
// repeats its SYN's ISN and brings the acknowledgment of ours, a transition.
type synKey struct {
	seq Seq
	ack bool
}

func synKeyOf(seq Seq, f craft.Flags) synKey { return synKey{seq, f.Has(craft.FlagACK)} }
