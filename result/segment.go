package result

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Dir is the direction of a recorded segment.
type Dir string

// Directions.
const (
	Out Dir = "out" // we sent it
	In  Dir = "in"  // the remote sent it
)

// Segment is one recorded segment, with the states of both ends right after
// it as far as the caller has established them.
type Segment struct {
	At     time.Time   `json:"time"`
	Dir    Dir         `json:"dir"`
	Flags  craft.Flags `json:"flags"` // tcpdump's form in JSON: "S.", "F."
	Seq    craft.Seq   `json:"seq"`
	Ack    craft.Seq   `json:"ack"`
	RelSeq uint32      `json:"rel_seq"` // relative to the sender's ISN
	RelAck uint32      `json:"rel_ack"` // relative to the receiver's ISN
	Win    uint16      `json:"win"`
	Len    int         `json:"len"`
	// Options in tcpdump's words; empty when none.
	Options []string `json:"options,omitempty"`
	// Note says what the segment is for ("KA1", "retransmission", ...).
	Note string `json:"note,omitempty"`
	// Retransmission marks a remote segment that brings no new transition:
	// its SYN or FIN came before, or, with neither, all of its data did.
	Retransmission bool `json:"retransmission,omitempty"`
	// Duplicate marks a byte-identical copy, made by the path, of a remote
	// segment that came moments before; the engine passes it over.
	Duplicate bool `json:"duplicate,omitempty"`
	// Repeat marks a remote segment with the same flags, numbers and length
	// as an earlier one: an answer to a copy of one of our segments, or a
	// duplicate. It may still be an expected answer, never a wrong one.
	Repeat bool   `json:"repeat,omitempty"`
	ICMP   string `json:"icmp,omitempty"`
	// LocalState and RemoteState are NoState (written "") until the
	// caller has established them.
	LocalState  State `json:"local_state"`
	RemoteState State `json:"remote_state"`
	// Raw is the whole IPv4 or IPv6 packet, for pcap files.
	Raw []byte `json:"-"`
}

// MarshalJSON writes the segment with its flags in tcpdump's form ("S.",
// "F."), as JSON has always carried them; the record of an ICMP error has no
// TCP flags and writes "".
func (s Segment) MarshalJSON() ([]byte, error) {
	type plain Segment
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the caller's encoder escapes, or not, as it is set
	if err := enc.Encode(plain(s)); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if s.ICMP != "" && s.Flags == 0 {
		// The one unescaped "flags" key: every quote inside a string value
		// is escaped.
		out = bytes.Replace(out, []byte(`"flags":"none"`), []byte(`"flags":""`), 1)
	}
	return out, nil
}

// UnmarshalJSON reads what MarshalJSON writes: flags in any form
// craft.ParseFlags takes, "" for none (an ICMP error's record).
func (s *Segment) UnmarshalJSON(b []byte) error {
	type plain Segment
	aux := struct {
		*plain
		Flags string `json:"flags"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.Flags = 0
	if aux.Flags != "" {
		f, err := craft.ParseFlags(aux.Flags)
		if err != nil {
			return fmt.Errorf("result: segment flags: %w", err)
		}
		s.Flags = f
	}
	return nil
}

// TCP returns the TCP header and payload of Raw, an IPv4 or IPv6 packet
// (told apart by its version field).
func (s *Segment) TCP() (craft.TCP, error) {
	if len(s.Raw) > 0 && s.Raw[0]>>4 == 6 {
		p, err := craft.ParseIPv6Packet(s.Raw)
		return p.TCP, err
	}
	p, err := craft.ParsePacket(s.Raw)
	return p.TCP, err
}
