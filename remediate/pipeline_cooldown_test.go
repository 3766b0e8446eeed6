package remediate

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCooldownBeforeCheck: an alert whose every remediator is within its
// cooldown on the target is held before its check, so that its
// redeliveries ask Prometheus nothing (and are not retried while
// Prometheus is down); one that may still act is checked.
func TestCooldownBeforeCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lastAction time.Duration // before testNow; 0 means none
		wantQuery  bool
		decision   string
		reason     string
	}{
		{"within the cooldown", time.Minute, false, DecisionHeld, ReasonCooldown},
		{"cooldown over", 2 * time.Hour, true, DecisionError, ReasonCheckError},
		{"never acted", 0, true, DecisionError, ReasonCheckError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := fixtures()
			for _, o := range objs {
				if kindOf(o) == KindDeployment && tc.lastAction != 0 {
					o.(metav1.Object).SetAnnotations(map[string]string{CooldownAnnotation("annotate"): testNow.Add(-tc.lastAction).Format(time.RFC3339)})
				}
			}
			// Prometheus is down: any query fails, transiently.
			q := &fakeQuerier{Err: errors.New("connection refused")}
			e, _ := newTestEngine(t, engineSetup{objs: objs, querier: q})
			d, err := e.DecideOne(context.Background(), leakAlert())
			if d.Decision != tc.decision || d.Reason != tc.reason {
				t.Errorf("DecideOne() = %s/%s (%s), want %s/%s", d.Decision, d.Reason, d.Message, tc.decision, tc.reason)
			}
			if (err != nil) != tc.wantQuery {
				t.Errorf("DecideOne() error = %v, want an error: %v", err, tc.wantQuery)
			}
			if got := len(q.Queries) > 0; got != tc.wantQuery {
				t.Errorf("Prometheus queried: %v (%q), want %v", got, q.Queries, tc.wantQuery)
			}
		})
	}
}
