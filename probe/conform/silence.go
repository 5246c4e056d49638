package conform

import (
	"fmt"
	"math"
	"sync"
)

// Silence is the one observation a lossy path can fake: "no reply" after an
// event is also what a lost event or a lost reply looks like. A check may
// conclude that the remote is silent only after sending the event so many
// times, each time confirming that the connection is still there, that a
// remote which does answer would have been heard at least once, given the
// loss this run has seen.
//
// The loss is estimated from the confirmation probes (KA1, which a remote
// in a synchronized state always answers, with an ACK or a RST, and which
// no rate limit holds back: it carries a byte): a KA1 sent and not answered
// within Timing.Reply is one round trip lost, the same chance an event and
// its reply have. The estimate is the rule of succession, (missed+1) /
// (sent+2), pessimistic while little is known.
const (
	// silenceRisk bounds the chance that a remote which answers is taken
	// for a silent one: every send and its answer lost.
	silenceRisk = 1e-5
	// silenceRiskAgainstRFC bounds that chance where the RFC wants an
	// answer, so that silence makes a fail or a deviation: a claim
	// against the target needs more evidence than a pass. The run's loss
	// estimate is itself uncertain (a lucky streak of answered KA1 probes
	// early in a run makes it low), and at 1e-5 a lossy path turned one
	// challenge ACK lost three times into a fail about once per thousand
	// such checks. It costs a conforming target nothing: it answers the
	// first send.
	silenceRiskAgainstRFC = 1e-8
	// minSilent is the fewest sends that establish silence, however clean
	// the path looks.
	minSilent = 3
	// maxSilent bounds the sends of one event: beyond it (a path losing
	// about a third of round trips or more), silence is inconclusive.
	maxSilent = 16
)

// pathLoss counts the run's confirmation probes and those that went
// unanswered.
type pathLoss struct {
	mu           sync.Mutex
	sent, missed int
	// dups counts the remote's segments that came twice, byte for byte
	// (walk.Segment.Duplicate), in the run's finished checks.
	dups int
}

// addDuplicates counts n copies the path made.
func (p *pathLoss) addDuplicates(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dups += n
}

// duplicates is how many copies the path made in the run so far.
func (p *pathLoss) duplicates() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dups
}

// add counts one confirmation: sends probes, the last of them answered when
// answered.
func (p *pathLoss) add(sends int, answered bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent += sends
	p.missed += sends
	if answered {
		p.missed--
	}
}

// estimate is the chance that one round trip is lost, and the counts it
// rests on.
func (p *pathLoss) estimate() (m float64, sent, missed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.missed+1) / float64(p.sent+2), p.sent, p.missed
}

// silentTries is how many unanswered sends of an event make its silence
// believable on this path: the least n with m^n ≤ risk (silenceRisk or
// silenceRiskAgainstRFC), at least minSilent. It may exceed maxSilent; the
// caller stops there.
func (p *pathLoss) silentTries(risk float64) int {
	m, _, _ := p.estimate()
	n := int(math.Ceil(math.Log(risk) / math.Log(m)))
	return max(n, minSilent)
}

// tooLossy says why silence after sends tries is not believable.
func (p *pathLoss) tooLossy(sends int, risk float64) string {
	m, sent, missed := p.estimate()
	return fmt.Sprintf("no answer to %d sends, but %d of this run's %d KA1 probes went unanswered (≈%.0f%% of round trips lost): silence cannot be told from loss with fewer than %d sends",
		sends, missed, sent, 100*m, p.silentTries(risk))
}
