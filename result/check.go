package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Check is one expected transition or state and what came of it.
type Check struct {
	// Name is the transition or property, e.g. "LISTEN → SYN_RCVD".
	Name string `json:"name"`
	// Rule is where the expectation comes from, e.g. "RFC 9293 §3.10.7.2".
	Rule     string  `json:"rule"`
	Probe    string  `json:"probe,omitempty"`
	Expected string  `json:"expected"`
	Received string  `json:"received"`
	Verdict  Verdict `json:"verdict"`
	Reason   string  `json:"reason,omitempty"`
	// Deviation names the documented non-RFC behaviour seen, by what it
	// does, e.g. "synack-on-retransmitted-syn": with Level SHOULD its
	// Verdict is Deviation (a failure only with --strict), with MUST Fail.
	Deviation string `json:"deviation,omitempty"`
	// Level is the RFC keyword the deviation departs from: MUST, SHOULD.
	Level string `json:"level,omitempty"`
	// SeenOn lists the stacks the deviation has been seen on.
	SeenOn []string `json:"seen_on,omitempty"`
	// Optional names an optional mechanism (a MAY) the check saw in use or
	// not, e.g. "RFC 5961 §3.2 challenge ACK to an in-window RST"; Has says
	// which. A missing one is "not implemented (optional)", never a fail.
	Optional string `json:"optional,omitempty"`
	Has      bool   `json:"implemented,omitempty"`
	// Wire is the remote's state inferred from the wire after this check;
	// Kernel is what the remote kernel reports (sock_diag), when an oracle
	// is available. A disagreement is reported, never hidden.
	Wire     State `json:"wire_state,omitempty"`
	Kernel   State `json:"kernel_state,omitempty"`
	Disagree bool  `json:"disagree,omitempty"`
	// KernelErr is why the kernel could not be read, when the oracle
	// failed (Kernel is then NoState). A failed read is a disagreement: the
	// wire's state is not confirmed. JSON writes it in kernel_state as
	// "error: " and the error, as it always has.
	KernelErr error `json:"-"`
	// KernelAhead says the kernel was already in the state the wire shows
	// next in this walk: the remote moved on (its app closed at once)
	// between its reply and the oracle's read. Not a disagreement: the
	// wire confirms that state itself one step later.
	KernelAhead bool `json:"kernel_ahead,omitempty"`
	// KernelLag is how long after the latest segment from the remote the
	// kernel was read. A remote may leave a state by itself (its app
	// closes, a timer fires); when a loaded machine reads the kernel late,
	// a disagreement may be the remote having moved on, not the wire wrong.
	KernelLag time.Duration `json:"kernel_lag_ns,omitempty"`
	At        time.Time     `json:"time"`
}

// kernelErrPrefix starts kernel_state in JSON when the kernel could not be
// read.
const kernelErrPrefix = "error: "

// MarshalJSON writes the check with KernelErr in kernel_state.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	p := plain(c)
	if c.KernelErr != nil {
		p.Kernel = NoState // omitted: the error goes in its place below
	}
	out, err := encode(p)
	if err != nil || c.KernelErr == nil {
		return out, err
	}
	v, err := encode(kernelErrPrefix + c.KernelErr.Error())
	if err != nil {
		return nil, err
	}
	// kernel_state comes right before the first of the keys that follow
	// it in Check; "time" is always written. A key's quotes are the only
	// unescaped ones (every quote inside a string value is escaped), and
	// Check has no nested object, so the first match is the key.
	at := -1
	for _, k := range []string{`,"disagree":`, `,"kernel_ahead":`, `,"kernel_lag_ns":`, `,"time":`} {
		if i := bytes.Index(out, []byte(k)); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return nil, errors.New("result: check JSON has no \"time\" key")
	}
	field := append([]byte(`,"kernel_state":`), v...)
	return append(out[:at:at], append(field, out[at:]...)...), nil
}

// encode writes v as JSON without the trailing newline and without HTML
// escapes (the caller's encoder escapes, or not, as it is set).
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON writes: a kernel_state that starts
// "error: " is a KernelErr, any other is a state name.
func (c *Check) UnmarshalJSON(b []byte) error {
	type plain Check
	aux := struct {
		*plain
		Kernel string `json:"kernel_state,omitempty"`
	}{plain: (*plain)(c)}
	c.KernelErr = nil
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if msg, ok := strings.CutPrefix(aux.Kernel, kernelErrPrefix); ok {
		c.Kernel, c.KernelErr = NoState, errors.New(msg)
		return nil
	}
	k, err := ParseState(aux.Kernel)
	if err != nil {
		return fmt.Errorf("result: check kernel_state: %w", err)
	}
	c.Kernel = k
	return nil
}
