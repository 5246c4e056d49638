// Package conform runs the conformance matrix of tcpwalk: for each TCP state
// a one-sided prober can put a remote stack in, the events of [Checks]
// (exact, in-window and out-of-window RST, SYN, ACK above SND.NXT and far
// below SND.UNA, data after our FIN, our FIN
// again, SYNs into TIME_WAIT, a bad ACK and a retransmitted SYN in
// SYN_RCVD), and the options echo of the handshake. Each check names the RFC
// rule it comes from and ends in one of walk's verdicts: pass, fail,
// deviation, inconclusive or skipped. Expectations are the RFC's, never one
// stack's habits: where the RFC allows several answers (with or without
// the optional RFC 5961 challenge ACKs or RFC 1337, options present or
// absent as negotiated, any refusal of a SYN into TIME_WAIT), each passes
// and the check notes the optional mechanism it saw (walk.Check.Optional,
// Has). A known behaviour the RFC does not allow is named by what it does
// ("synack-on-retransmitted-syn"), with the keyword it departs from
// (SHOULD: deviation, MUST: fail) and the stacks it was seen on.
//
// Every check is one walk.Session on its own 4-tuple and yields one
// walk.Result whose Scenario is the check's ID ("ESTABLISHED/rst-in-window"),
// so the JSON, JUnit and pcap writers of package report take the matrix as
// it is. A check first drives the remote into its state, sends one event,
// reads the reply, and then asks the remote whether its connection survived
// (KA1, the keep-alive probe: an ACK when it did, a RST when it is gone);
// with an Oracle the remote kernel's own state (sock_diag) must agree.
//
// States are confirmed only with what RFC 9293 asks of every stack: KA1's
// ACK, resets from CLOSED, SYN-RECEIVED's reset of an ACK above SND.NXT,
// the remote's own retransmissions (never RFC 5961's challenge ACKs).
//
// Checks run concurrently: they use distinct 4-tuples, and each sends at most
// one zero-length probe that needs an answer per 500 ms (Linux's
// tcp_invalid_ratelimit is per socket). At most Config.Parallel of them are
// in the remote's handshake at once (gate.go), so a small server's listen
// backlog does not overflow; SYNs sent again unanswered and SYN cookies in
// use are noticed (Report.Notes), and with cookies no SYN_RCVD check is
// judged. The run ends with a stack profile (profile.go).
//
// Besides the verdicts, Run measures: the SYN-ACK retransmission schedule,
// the FIN retransmission backoff in FIN_WAIT_1, whether SYN cookies are in
// use, and the TIME_WAIT fingerprint (the offset of the ISS a SYN that
// reopens a TIME_WAIT connection gets from the old SND.NXT: Linux picks
// +65537, a trait of the family, not a rule).
//
// On a lossy path a check never guesses. An event that draws no answer is
// sent again, each time after confirming that the connection is as it was,
// until the loss the run's confirmations have seen makes silence believable
// (silence.go); a connection that closed without the answer an expected
// outcome closes it with is inconclusive, as the answer may have been lost.
// A schedule is timed on several connections at once: one whose remote
// numbers its segments (Linux's IP IDs) and shows none missing is believed
// alone, else two must agree; otherwise it is "not measured", never a lost
// retransmission taken for a doubled interval. Those connections read no
// oracle: a kernel read delays our ACK after it, and the remote's timers
// follow the round trips it sees.
//
// The package is Linux-only, like the rest of tcpwalk.
package conform
