package result

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCheckKernelErrJSON: a failed kernel read stays an error in the model
// and is written, and read back, as kernel_state "error: ..." as before.
func TestCheckKernelErrJSON(t *testing.T) {
	c := Check{Name: "x", Verdict: Pass, Wire: Listen, KernelErr: errors.New("sockdiag: <denied>"), Disagree: true}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"kernel_state":"error: sockdiag: \u003cdenied\u003e"`; !strings.Contains(string(b), want) {
		t.Errorf("JSON %s has no %s", b, want)
	}
	var back Check
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Kernel != NoState || back.KernelErr == nil || back.KernelErr.Error() != "sockdiag: <denied>" || back.Wire != Listen || !back.Disagree {
		t.Errorf("read back %+v", back)
	}
	c.KernelErr, c.Kernel = nil, Listen
	b, _ = json.Marshal(c)
	if err := json.Unmarshal(b, &back); err != nil || back.KernelErr != nil || back.Kernel != Listen {
		t.Errorf("a kernel state read back as %+v, %v", back, err)
	}
}

// TestCheckJSONKeyOrder: kernel_state keeps its place among the keys
// whether it holds a state or an error, and with or without the keys
// after it, so the JSON is what it was when Kernel was a string.
func TestCheckJSONKeyOrder(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		c    Check
		want string
	}{
		{Check{Name: "a", Verdict: Pass, Wire: SynRcvd, Kernel: SynRcvd, At: at},
			`{"name":"a","rule":"","expected":"","received":"","verdict":"pass","wire_state":"SYN_RCVD","kernel_state":"SYN_RCVD","time":"2026-01-02T03:04:05Z"}`},
		{Check{Name: "b", Verdict: Pass, Wire: Closed, KernelErr: errors.New(`no "netlink"`), Disagree: true, KernelLag: 7, At: at},
			`{"name":"b","rule":"","expected":"","received":"","verdict":"pass","wire_state":"CLOSED","kernel_state":"error: no \"netlink\"","disagree":true,"kernel_lag_ns":7,"time":"2026-01-02T03:04:05Z"}`},
		{Check{Name: "c", Verdict: Pass, Wire: Listen, KernelErr: errors.New("x"), At: at},
			`{"name":"c","rule":"","expected":"","received":"","verdict":"pass","wire_state":"LISTEN","kernel_state":"error: x","time":"2026-01-02T03:04:05Z"}`},
		{Check{Name: "d", Verdict: Fail, Reason: "no reply", At: at},
			`{"name":"d","rule":"","expected":"","received":"","verdict":"fail","reason":"no reply","time":"2026-01-02T03:04:05Z"}`},
	} {
		b, err := json.Marshal(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("JSON\n got %s\nwant %s", b, tc.want)
		}
		var back Check
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back.Wire != tc.c.Wire || back.Kernel != tc.c.Kernel || (back.KernelErr == nil) != (tc.c.KernelErr == nil) {
			t.Errorf("read back %+v from %s", back, b)
		}
	}
	var back Check
	if err := json.Unmarshal([]byte(`{"kernel_state":"OPEN"}`), &back); err == nil {
		t.Errorf("kernel_state OPEN read as %v, want an error", back.Kernel)
	}
}
