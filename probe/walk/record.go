package walk

import (
	"strings"
	"sync"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// recorder keeps every segment of a walk with relative numbers and the states
// both ends are in after it.
type recorder struct {
	mu     sync.Mutex
	segs   []Segment
	conn   *Conn // for ISNs
	local  string
	remote string

	// What the remote has sent so far, to tell old segments from new ones.
	syns    map[synKey]bool      // its SYNs: a SYN,ACK after a bare SYN of the same ISN is news, not a retransmission
	fins    map[uint32]bool      // sequence numbers of its FINs
	data    []seqRange           // its data, merged ranges
	answers map[[4]uint32]bool   // flags, seq, ack, len of every segment
	copies  map[string]time.Time // TCP bytes of every segment → arrival
}

// seqRange is [start, end) in sequence space.
type seqRange struct{ start, end uint32 }

// dupWindow bounds the gap between a segment and a byte-identical copy of it
// that the path made. A remote's retransmission timer never fires this soon
// (RFC 6298 2.4: RTO at least 1 s; Linux: 200 ms), and with timestamps
// (RFC 7323) a retransmission is never byte-identical anyway.
const dupWindow = 100 * time.Millisecond

func newRecorder(localState, remoteState string) *recorder {
	return &recorder{local: localState, remote: remoteState, syns: map[synKey]bool{}, fins: map[uint32]bool{},
		answers: map[[4]uint32]bool{}, copies: map[string]time.Time{}}
}

// states sets the states from now on and stamps them on the last segment.
func (r *recorder) states(local, remote string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if local != "" {
		r.local = local
	}
	if remote != "" {
		r.remote = remote
	}
	if n := len(r.segs); n > 0 {
		r.segs[n-1].LocalState, r.segs[n-1].RemoteState = r.local, r.remote
	}
}

func (r *recorder) sent(at time.Time, s *craft.Segment, raw []byte, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seg := Segment{At: at, Dir: Out, Flags: s.Flags.String(), Seq: s.Seq, Ack: s.Ack, Win: s.Window,
		Len: len(s.Payload), Note: note, LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)}
	if c := r.conn; c != nil {
		seg.RelSeq = s.Seq - c.ISS
		if c.haveIRS && s.Flags.Has(craft.FlagACK) {
			seg.RelAck = s.Ack - c.IRS
		}
	}
	for _, o := range s.Options {
		seg.Options = append(seg.Options, o.String())
	}
	r.segs = append(r.segs, seg)
}

func (r *recorder) received(at time.Time, p *craft.Packet, raw []byte) *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := p.TCP
	seg := Segment{At: at, Dir: In, Flags: t.Flags().String(), Seq: t.SequenceNumber(), Ack: t.AckNumber(),
		Win: t.WindowSize(), Len: len(t.Payload()), LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)}
	for it := t.Options(); it.Next(); {
		seg.Options = append(seg.Options, it.Option().String())
	}
	if c := r.conn; c != nil {
		if c.haveIRS {
			seg.RelSeq = seg.Seq - c.IRS
		}
		if t.Flags().Has(craft.FlagACK) {
			seg.RelAck = seg.Ack - c.ISS // without ACK the field means nothing (RFC 9293 §3.1)
		}
	}
	f := t.Flags()
	// A byte-identical copy of a segment that came moments ago was made by
	// the path, not sent again by the remote: it is neither a
	// retransmission nor an answer.
	key := string(t)
	if prev, ok := r.copies[key]; ok && at.Sub(prev) < dupWindow {
		seg.Duplicate, seg.Retransmission, seg.Repeat = true, true, true
		seg.Note = "duplicate"
		r.segs = append(r.segs, seg)
		return &r.segs[len(r.segs)-1]
	}
	r.copies[key] = at
	// A segment that occupies sequence space (SYN, FIN, data) is a
	// retransmission when it brings no new transition: its SYN or FIN came
	// before, or, without either, all of its data did, however the remote
	// cut it into segments this time (Linux collapses data and FIN into one
	// retransmission, which may bring data we lost). Pure ACKs are never
	// retransmitted (RFC 9293 §3.8.1).
	if seg.Len > 0 || f.Has(craft.FlagSYN) || f.Has(craft.FlagFIN) {
		start := seg.Seq
		if f.Has(craft.FlagSYN) {
			start++
		}
		end := start + uint32(seg.Len)
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
	// The same flags and numbers again (a repeated ACK or RST) tell nothing
	// new: an answer to a copy of one of our segments, or a duplicate.
	ak := [4]uint32{uint32(f), seg.Seq, seg.Ack, uint32(seg.Len)}
	seg.Repeat = r.answers[ak]
	r.answers[ak] = true
	r.segs = append(r.segs, seg)
	return &r.segs[len(r.segs)-1]
}

// forget removes a remote segment from what the recorder has seen, after we
// reset its connection: the same segment again then comes from a new
// connection (an answer to our next SYN), not as a retransmission, repeat or
// copy of this one.
func (r *recorder) forget(seg *Segment, f craft.Flags) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.answers, [4]uint32{uint32(f), seg.Seq, seg.Ack, uint32(seg.Len)})
	if f.Has(craft.FlagSYN) {
		delete(r.syns, synKeyOf(seg.Seq, f))
	}
	if p, err := craft.ParsePacket(seg.Raw); err == nil {
		delete(r.copies, string(p.TCP))
	}
}

// synKey tells a remote SYN by its sequence number and whether it carried
// ACK: in a simultaneous open (RFC 9293 §3.5, figure 8) the remote's SYN,ACK
// repeats its SYN's ISN and brings the acknowledgment of ours, a transition.
type synKey struct {
	seq uint32
	ack bool
}

func synKeyOf(seq uint32, f craft.Flags) synKey { return synKey{seq, f.Has(craft.FlagACK)} }

// seqLE is a <= b in sequence space (RFC 9293 §3.4).
func seqLE(a, b uint32) bool { return int32(b-a) >= 0 }

// covered reports whether [start, end) lies within the data seen.
func (r *recorder) covered(start, end uint32) bool {
	for _, d := range r.data {
		if seqLE(d.start, start) && seqLE(end, d.end) {
			return true
		}
	}
	return false
}

// addData merges [start, end) into the data seen.
func (r *recorder) addData(start, end uint32) {
	out := r.data[:0]
	for _, d := range r.data {
		if seqLE(d.start, end) && seqLE(start, d.end) { // overlapping or adjacent
			if seqLE(d.start, start) {
				start = d.start
			}
			if seqLE(end, d.end) {
				end = d.end
			}
			continue
		}
		out = append(out, d)
	}
	r.data = append(out, seqRange{start, end})
}

func (r *recorder) icmp(at time.Time, text string, raw []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.segs = append(r.segs, Segment{At: at, Dir: In, ICMP: text, LocalState: r.local, RemoteState: r.remote, Raw: append([]byte(nil), raw...)})
}

// lastIn is when the latest segment from the remote came (zero if none).
func (r *recorder) lastIn() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.segs) - 1; i >= 0; i-- {
		if r.segs[i].Dir == In {
			return r.segs[i].At
		}
	}
	return time.Time{}
}

func (r *recorder) last() *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.segs) == 0 {
		return nil
	}
	return &r.segs[len(r.segs)-1]
}

// lastFIN is the latest segment from the remote carrying a FIN, nil if none.
func (r *recorder) lastFIN() *Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.segs) - 1; i >= 0; i-- {
		if s := &r.segs[i]; s.Dir == In && s.ICMP == "" && strings.Contains(s.Flags, "F") {
			return s
		}
	}
	return nil
}

func (r *recorder) snapshot() []Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Segment(nil), r.segs...)
}
