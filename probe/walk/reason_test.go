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
func TestCutWalksSayWhy(t *testing.T) {
	cfg, _ := labWalk(t)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want string
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, walk.ReasonInterrupted},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, walk.ReasonTimeLimit},
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
				for _, why := range reasons {
					if strings.Contains(why, "context") {
						t.Errorf("%s: reason %q", r.Scenario, why)
					}
					if why == tc.want {
						found++
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
