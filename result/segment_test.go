package result

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpwalk/tcpwalk/craft"
)

// Flags are craft.Flags in the model and tcpdump's letters in JSON, as they
// were when they were strings; an ICMP error's record writes "".
func TestSegmentJSON(t *testing.T) {
	for _, tt := range []struct {
		name string
		seg  Segment
		want string
	}{
		{"syn-ack", Segment{Dir: In, Flags: craft.FlagSYN | craft.FlagACK, Seq: 5000, Ack: 1001, Note: "<a & b>"},
			`{"time":"0001-01-01T00:00:00Z","dir":"in","flags":"S.","seq":5000,"ack":1001,"rel_seq":0,"rel_ack":0,"win":0,"len":0,"note":"<a & b>","local_state":"","remote_state":""}`},
		{"no flags", Segment{Dir: In},
			`{"time":"0001-01-01T00:00:00Z","dir":"in","flags":"none","seq":0,"ack":0,"rel_seq":0,"rel_ack":0,"win":0,"len":0,"local_state":"","remote_state":""}`},
		{"icmp", Segment{Dir: In, ICMP: `198.18.0.2 "flags":"none" unreachable`},
			`{"time":"0001-01-01T00:00:00Z","dir":"in","flags":"","seq":0,"ack":0,"rel_seq":0,"rel_ack":0,"win":0,"len":0,"icmp":"198.18.0.2 \"flags\":\"none\" unreachable","local_state":"","remote_state":""}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b []byte
			enc := json.NewEncoder((*sliceWriter)(&b))
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tt.seg); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want+"\n", string(b)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
			var back Segment
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.seg, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	var s Segment
	if err := json.Unmarshal([]byte(`{"flags":"SQ"}`), &s); err == nil {
		t.Errorf("bad flags read as %v", s.Flags)
	}
}

type sliceWriter []byte

func (w *sliceWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
