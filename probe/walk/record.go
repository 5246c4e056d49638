package walk

import (
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
	"github.com/tcpwalk/tcpwalk/result"
)

// Segment is one recorded segment: the engine's record (see
// tcpconn.Recorder for what Retransmission, Duplicate and Repeat mean).
type Segment = tcpconn.Segment

// Dir is the direction of a recorded segment.
type Dir = tcpconn.Dir

// Directions.
const (
	Out = tcpconn.Out // we sent it
	In  = tcpconn.In  // the remote sent it
)

// recorder is the walk's view of the engine's recorder, under the names
// the steps use.
type recorder struct{ *tcpconn.Recorder }

func newRecorder(localState, remoteState result.State) recorder {
	return recorder{tcpconn.NewRecorder(localState, remoteState)}
}

func (r recorder) states(local, remote result.State)  { r.States(local, remote) }
func (r recorder) forget(seg *Segment, _ craft.Flags) { r.Forget(seg) }
func (r recorder) lastIn() time.Time                  { return r.LastIn() }
func (r recorder) last() *Segment                     { return r.Last() }
func (r recorder) lastFIN() *Segment                  { return r.LastFIN() }
func (r recorder) snapshot() []Segment                { return r.Snapshot() }
