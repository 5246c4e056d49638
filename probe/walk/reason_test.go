package walk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcpwalk/tcpwalk/probe/walk"
)

// Walks cut short by their context say why in words: a cancelled context (SIGINT or SIGTERM) is an
// interruption, an expired one a time limit; never Go's "context canceled" or "context deadline exceeded".
// An interrupted walk has the verdict Interrupted, never Pass (issue: walks cut after their last passing
// check read as passed); one cut by a time limit is inconclusive.
func TestCutWalksSayWhy(t *testing.T) {
	cfg, _ := labWalk(t)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want string
		cut  walk.Verdict
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, walk.ReasonInterrupted, walk.Interrupted},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, walk.ReasonTimeLimit, walk.Inconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			found := 0
			for _, r := range walk.Run(ctx, cfg, walk.Scenarios()) {
				reasons := []string{r.Reason}
				for _, c := range r.Checks {
					reasons = append(reasons, c.Reason)
				}
				cut := false
				for _, why := range reasons {
					if strings.Contains(why, "context") {
						t.Errorf("%s: reason %q", r.Scenario, why)
					}
					if why == tc.want {
						found++
						cut = true
					}
				}
				if cut && r.Verdict != tc.cut {
					t.Errorf("%s was cut short (%s) but its verdict is %s, want %s", r.Scenario, tc.want, r.Verdict, tc.cut)
				}
				for _, c := range r.Checks {
					if c.Reason == tc.want && c.Verdict != tc.cut {
						t.Errorf("%s: check %q was cut short but is %s, want %s", r.Scenario, c.Name, c.Verdict, tc.cut)
					}
				}
				if r.Verdict == walk.Fail {
					t.Errorf("%s failed when cut short: %s", r.Scenario, r.Reason)
				}
			}
			if found == 0 {
				t.Errorf("no walk or check says %q: none was cut short, or the reason is worded otherwise", tc.want)
			}
		})
	}
}
