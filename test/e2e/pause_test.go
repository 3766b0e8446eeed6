package e2e

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPauseSwitch: leakguard.io/pause: "true" on leakguard's namespace,
// written by an operator (the admin here), stops a restart that every
// other guard allows: held paused, nothing written to the workload. With
// the annotation removed, the same alert restarts it.
func TestPauseSwitch(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	w := newSpace(t).workload(t, "Deployment", "web", 3)
	ns := budgetNamespace(t)
	e := newPolicyEngine(t, leakguardClient(t), restartPolicy, policyOptions{namespace: ns})
	pause := func(v any) {
		t.Helper()
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotationPause: v}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("set %s on Namespace %s to %v: %v", annotationPause, ns, v, err)
		}
	}

	pause("true")
	before := w.versions(ctx, t)
	d := e.decide(ctx, t, w.leak())
	if got, want := short(d), (decision{Target: w.Target(), Decision: decisionHeld, Reason: reasonPaused}); got != want {
		t.Fatalf("paused: decision = %+v, want %+v (%s)", got, want, d.Message)
	}
	assertVersions(t, "paused", before, w.versions(ctx, t))

	pause(nil) // kubectl annotate namespace leakguard leakguard.io/pause-
	d = e.decide(ctx, t, w.leak())
	if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
		t.Fatalf("resumed: decision = %+v, want %+v (%s)", got, want, d.Message)
	}
	if _, tmpl := templateOf(t, w.object(ctx, t)); tmpl.Annotations[annotationRestartedAt] == "" {
		t.Errorf("resumed: %s not restarted (pod template annotations %v)", w.Target(), tmpl.Annotations)
	}
}
