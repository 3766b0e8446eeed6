package e2e

import (
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDryRunRestartWritesNothing: restart in dry-run, on a Deployment it
// would roll and on a pod without a controller it would evict (the entry
// sets evictUnreplicated), twice:
// each decision says it would act, and nothing reaches the objects
// (every resourceVersion unchanged, the pod not evicted), the budget
// Lease is not even created; the only writes are LeakguardDryRun Events.
func TestDryRunRestartWritesNothing(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	s := newSpace(t)
	ws := []workload{s.workload(t, "Deployment", "web", 3), s.workload(t, "Pod", "solo", 1)}
	ns := budgetNamespace(t)
	versions := func() map[string]string {
		out := map[string]string{}
		for _, w := range ws {
			for k, v := range w.versions(ctx, t) {
				out[k] = v
			}
		}
		return out
	}
	before := versions()

	var wr wire
	e := newPolicyEngine(t, recordedClient(t, &wr), evictPolicy, policyOptions{namespace: ns, dryRun: true})
	for round := range 2 {
		for _, w := range ws {
			d := e.decide(ctx, t, w.leak())
			if got, want := short(d), (decision{Target: w.Target(), Decision: decisionDryRun, Reason: reasonWouldAct}); got != want {
				t.Errorf("round %d: decision = %+v, want %+v (%s)", round, got, want, d.Message)
			}
		}
	}
	assertVersions(t, "dry-run", before, versions())
	for _, r := range wr.writes() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/events") {
			t.Errorf("dry-run sent %s, want no write but Events", r)
		}
	}
	if got, want := len(wr.writes()), 2*len(ws); got != want {
		t.Errorf("dry-run sent %d writes, want %d (one Event per decision): %v", got, want, wr.writes())
	}
	if _, err := admin.CoordinationV1().Leases(ns).Get(ctx, budgetLease, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("budget Lease after dry-run: %v, want none (NotFound)", err)
	}
	for _, w := range ws {
		for _, ev := range events(ctx, t, admin, w.Namespace, w.Name) {
			if ev.Reason != eventDryRun {
				t.Errorf("dry-run recorded Event %s with reason %s on %s, want only %s", ev.Name, ev.Reason, w.Target(), eventDryRun)
			}
		}
	}
}
