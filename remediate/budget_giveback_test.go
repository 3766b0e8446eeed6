package remediate

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/alertmanager/template"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestBudgetGivenBackWhenALaterBudgetFails: the rate token is taken,
// then the disruption budget's Lease update fails (a 500: transient,
// Alertmanager retries the delivery). Nothing acted, so the token goes
// back: the retry, and every other alert, find the bucket as it was.
func TestBudgetGivenBackWhenALaterBudgetFails(t *testing.T) {
	policy := "rateLimit: {perMinute: 1, burst: 3}\nalerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: restart, enabled: true}]\n"
	failed := false
	e, cs := newTestEngine(t, engineSetup{objs: restartFixtures(nil), policy: policy, react: func(cs *fake.Clientset) {
		// The rate take creates the Lease; the disruption take's update
		// is the first, and fails once.
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failed {
				return false, nil, nil
			}
			failed = true
			return true, nil, apierrors.NewInternalError(errors.New("etcd leader changed"))
		})
	}})
	_, err := e.Decide(context.Background(), []template.Alert{leakAlert()})
	if !IsTransient(err) {
		t.Fatalf("Decide() error = %v, want a transient one", err)
	}
	st, err := decodeBudget(getLease(t, cs).Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Rate.tokensAt(testNow, 1, 3); got != 3 {
		t.Errorf("rate tokens after the failed delivery = %g, want 3: the token must be given back", got)
	}
}
