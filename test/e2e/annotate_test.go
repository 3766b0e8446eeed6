package e2e

import (
	"context"
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestAnnotateWithLeakguardRole runs the engine as leakguard's service
// account, with the ClusterRole of deploy/leakguard/, on each kind of
// target: the annotations and the cooldown claim land on the object, the
// Events are created, and the second delivery of an alert is held by the
// cooldown the first one wrote.
func TestAnnotateWithLeakguardRole(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	e := newEngine(t, leakguardClient(t), engineOptions{})

	cases := []struct {
		name string
		run  func() decision
		// target as the engine names it, and where its Events go.
		target, eventNS, object string
		annotations             func() map[string]string
	}{
		{
			name:   "workload",
			run:    func() decision { return e.decide(ctx, t, leakAlert(w)) },
			target: "Deployment " + w.Namespace + "/" + w.Deployment, eventNS: w.Namespace, object: w.Deployment,
			annotations: func() map[string]string {
				d, err := admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, metav1.GetOptions{})
				must(t, "get deployment", func() error { return err })
				return d.Annotations
			},
		},
		{
			name:   "pod",
			run:    func() decision { return e.decide(ctx, t, oomAlert(w)) },
			target: "Pod " + w.Namespace + "/" + w.Pod, eventNS: w.Namespace, object: w.Pod,
			annotations: func() map[string]string {
				p, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
				must(t, "get pod", func() error { return err })
				return p.Annotations
			},
		},
		{
			name: "node",
			run:  func() decision { return e.decide(ctx, t, orphanAlert(w)) },
			// A node's Events go to the default namespace, as kubectl's do.
			target: "Node " + w.Node, eventNS: metav1.NamespaceDefault, object: w.Node,
			annotations: func() map[string]string {
				n, err := admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
				must(t, "get node", func() error { return err })
				return n.Annotations
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run()
			want := decision{Target: tc.target, Decision: decisionActed}
			if got != want {
				t.Fatalf("first delivery: decision = %+v, want %+v", got, want)
			}
			ann := tc.annotations()
			if ann[annotationFinding] == "" || ann[cooldownAnnotation] == "" {
				t.Errorf("annotations of %s = %v, want %s and %s set", tc.target, ann, annotationFinding, cooldownAnnotation)
			}

			got = tc.run()
			want = decision{Target: tc.target, Decision: decisionHeld, Reason: reasonCooldown}
			if got != want {
				t.Errorf("second delivery: decision = %+v, want %+v", got, want)
			}
			if got, want := tc.annotations()[cooldownAnnotation], ann[cooldownAnnotation]; got != want {
				t.Errorf("held delivery rewrote the cooldown annotation: %q, was %q", got, want)
			}

			evs := reasons(events(ctx, t, admin, tc.eventNS, tc.object))
			if evs[eventActed] != 1 || evs[eventHeld] != 1 {
				t.Errorf("Events on %s by reason = %v, want one %s and one %s", tc.target, evs, eventActed, eventHeld)
			}
		})
	}
}

// TestOptOutOnNamespace writes the opt-out annotation on the namespace as
// an operator would; the engine, reading the namespace with leakguard's
// role, holds the alert and leaves the workload untouched.
func TestOptOutOnNamespace(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotationIgnore: "true"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Patch(ctx, w.Namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("opt the namespace out: %v", err)
	}
	before := w.objectVersions(ctx, t, admin)

	got := newEngine(t, leakguardClient(t), engineOptions{}).decide(ctx, t, leakAlert(w))
	want := decision{Target: "Deployment " + w.Namespace + "/" + w.Deployment, Decision: decisionHeld, Reason: reasonOptOut}
	if got != want {
		t.Fatalf("decision = %+v, want %+v", got, want)
	}
	assertUnchanged(ctx, t, w, before)
	if evs := reasons(events(ctx, t, admin, w.Namespace, w.Deployment)); evs[eventHeld] != 1 || len(evs) != 1 {
		t.Errorf("Events on the Deployment by reason = %v, want one %s", evs, eventHeld)
	}
}

// assertUnchanged fails unless every object of w has the resourceVersion
// it had in before.
func assertUnchanged(ctx context.Context, t *testing.T, w world, before map[string]versioned) {
	t.Helper()
	after := w.objectVersions(ctx, t, needLab(t).Admin)
	for key, b := range before {
		if a := after[key]; a.ResourceVersion != b.ResourceVersion {
			t.Errorf("%s changed: resourceVersion %s -> %s, annotations %v -> %v", key, b.ResourceVersion, a.ResourceVersion, b.Annotations, a.Annotations)
		}
	}
}
