package result

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestCheckKernelErrJSON: a failed kernel read stays an error in the model
// and is written, and read back, as kernel_state "error: ..." as before.
func TestCheckKernelErrJSON(t *testing.T) {
	c := Check{Name: "x", Verdict: Pass, Wire: "LISTEN", KernelErr: errors.New("sockdiag: <denied>"), Disagree: true}
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
	if back.Kernel != "" || back.KernelErr == nil || back.KernelErr.Error() != "sockdiag: <denied>" || back.Wire != "LISTEN" || !back.Disagree {
		t.Errorf("read back %+v", back)
	}
	c.KernelErr, c.Kernel = nil, "LISTEN"
	b, _ = json.Marshal(c)
	if err := json.Unmarshal(b, &back); err != nil || back.KernelErr != nil || back.Kernel != "LISTEN" {
		t.Errorf("a kernel state read back as %+v, %v", back, err)
	}
}
