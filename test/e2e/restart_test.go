package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// noNil compares a nil map equal to an empty one.
var noNil = cmp.Transformer("noNil", func(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
})

// templateOf returns the workload's spec and its pod template.
func templateOf(t *testing.T, obj metav1.Object) (any, *corev1.PodTemplateSpec) {
	t.Helper()
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec, &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec, &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec, &w.Spec.Template
	}
	t.Fatalf("templateOf(%T)", obj)
	return nil, nil
}

// TestRestartPatchesOnlyRestartedAt restarts a Deployment, a StatefulSet
// and a DaemonSet as leakguard's service account: the pod template gains
// kubectl.kubernetes.io/restartedAt (as kubectl rollout restart sets it)
// and nothing else of the spec changes; the workload's own metadata gains
// only leakguard's cooldown claim and restart history.
func TestRestartPatchesOnlyRestartedAt(t *testing.T) {
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
		t.Run(kind, func(t *testing.T) {
			ctx := testContext(t)
			w := newSpace(t).workload(t, kind, "web", 3)
			before := w.object(ctx, t)
			e := newPolicyEngine(t, leakguardClient(t), restartPolicy, policyOptions{namespace: budgetNamespace(t)})

			d := e.decide(ctx, t, w.leak())
			if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
				t.Fatalf("decision = %+v, want %+v (%+v)", got, want, d)
			}
			after := w.object(ctx, t)

			bSpec, _ := templateOf(t, before)
			aSpec, aTmpl := templateOf(t, after)
			stamp, ok := aTmpl.Annotations[annotationRestartedAt]
			if !ok {
				t.Fatalf("pod template annotations = %v, want %s", aTmpl.Annotations, annotationRestartedAt)
			}
			if _, err := time.Parse(time.RFC3339, stamp); err != nil {
				t.Errorf("%s = %q, want an RFC 3339 time: %v", annotationRestartedAt, stamp, err)
			}
			delete(aTmpl.Annotations, annotationRestartedAt)
			if len(aTmpl.Annotations) == 0 {
				aTmpl.Annotations = nil
			}
			if diff := cmp.Diff(bSpec, aSpec); diff != "" {
				t.Errorf("spec changed beyond restartedAt (-before +after):\n%s", diff)
			}
			// Leakguard's own records aside, and the API server's count of
			// a DaemonSet's template changes
			// (deprecated.daemonset.template.generation), the workload's
			// annotations are what they were.
			others := func(m map[string]string) map[string]string {
				out := map[string]string{}
				for k, v := range m {
					if k != restartCooldown && k != annotationRestartHistory && k != "deprecated.daemonset.template.generation" {
						out[k] = v
					}
				}
				return out
			}
			if diff := cmp.Diff(others(before.GetAnnotations()), others(after.GetAnnotations())); diff != "" {
				t.Errorf("workload annotations beyond the claim and the history (-before +after):\n%s", diff)
			}
			if after.GetAnnotations()[restartCooldown] == "" {
				t.Errorf("no cooldown claim %s on %s: %v", restartCooldown, w.Target(), after.GetAnnotations())
			}
			var hist map[string][]time.Time
			if err := json.Unmarshal([]byte(after.GetAnnotations()[annotationRestartHistory]), &hist); err != nil || len(hist["ContainerMemoryLeak"]) != 1 {
				t.Errorf("%s = %q (%v), want one restart for ContainerMemoryLeak", annotationRestartHistory, after.GetAnnotations()[annotationRestartHistory], err)
			}
			if diff := cmp.Diff(before.GetLabels(), after.GetLabels()); diff != "" {
				t.Errorf("labels changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRestartGuardsHold: restart's own guards hold, on what the status
// subresource says, and write nothing to the objects (every
// resourceVersion unchanged): a Deployment and a StatefulSet with fewer
// ready replicas than minReadyReplicas (2), a Deployment whose rollout
// has not finished, a Job's pod.
func TestRestartGuardsHold(t *testing.T) {
	cases := []struct {
		name     string
		kind     string
		replicas int32
		// ready and updated replicas, as the status says
		ready, updated int32
		reason         string
	}{
		{"single replica", "Deployment", 1, 1, 1, reasonNotReady},
		{"one of three ready", "StatefulSet", 3, 1, 3, reasonNotReady},
		{"rollout in progress", "Deployment", 3, 3, 1, reasonRolloutInProgress},
		{"rollout in progress", "DaemonSet", 3, 3, 2, reasonRolloutInProgress},
		{"job", "Job", 1, 0, 0, reasonJob},
	}
	for _, tc := range cases {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			ctx := testContext(t)
			admin := needLab(t).Admin
			w := newSpace(t).workload(t, tc.kind, "web", tc.replicas)
			if tc.kind != "Job" {
				w.setStatus(t, tc.ready, tc.updated)
			}
			before := w.versions(ctx, t)
			e := newPolicyEngine(t, leakguardClient(t), restartPolicy, policyOptions{namespace: budgetNamespace(t)})

			d := e.decide(ctx, t, w.leak())
			if got, want := short(d), (decision{Target: w.Target(), Decision: decisionHeld, Reason: tc.reason}); got != want {
				t.Fatalf("decision = %+v, want %+v (%s)", got, want, d.Message)
			}
			assertVersions(t, "held", before, w.versions(ctx, t))
			if evs := reasons(events(ctx, t, admin, w.Namespace, w.Name)); evs[eventHeld] != 1 || len(evs) != 1 {
				t.Errorf("Events on %s by reason = %v, want one %s", w.Target(), evs, eventHeld)
			}
		})
	}
}

// TestRestartEvictsPodWithoutController: a pod that no controller would
// replace is evicted, when the entry sets evictUnreplicated, through the
// Eviction API (policy/v1), never deleted directly; with no
// PodDisruptionBudget the API server takes it down (gracefully: with no
// kubelet it stays, marked for deletion).
func TestRestartEvictsPodWithoutController(t *testing.T) {
	ctx := testContext(t)
	w := newSpace(t).workload(t, "Pod", "solo", 1)
	var wr wire
	e := newPolicyEngine(t, recordedClient(t, &wr), evictPolicy, policyOptions{namespace: budgetNamespace(t)})

	d := e.decide(ctx, t, w.leak())
	if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
		t.Fatalf("decision = %+v, want %+v (%+v)", got, want, d)
	}
	pod, err := needLab(t).Admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
	if err == nil && pod.DeletionTimestamp == nil {
		t.Errorf("pod %s after the eviction: not being deleted", w.Target())
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	evictions := 0
	for _, r := range wr.writes() {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/pods/"+w.Pod+"/eviction"):
			evictions++
			if r.Status != http.StatusCreated {
				t.Errorf("eviction answered %d, want 201", r.Status)
			}
		case r.Method == http.MethodDelete:
			t.Errorf("restart sent %s; it must evict, not delete", r)
		}
	}
	if evictions != 1 {
		t.Errorf("evictions sent: %d, want 1 (%v)", evictions, wr.writes())
	}
}

// TestRestartPDBRefusalHeld: restart may evict the pod without a
// controller (evictUnreplicated), but a real PodDisruptionBudget that
// allows no disruption (its status, as the admin writes it in place of
// the disruption controller: disruptionsAllowed 0) makes the Eviction
// API answer 429. The alert is held with reason pdb, without an error (so
// serve answers 200, not a 5xx that Alertmanager would retry), the pod
// is not evicted, the cooldown claim is given back and the PDB is not
// touched.
func TestRestartPDBRefusalHeld(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	w := newSpace(t).workload(t, "Pod", "solo", 1)
	one := intstr.FromInt32(1)
	pdb, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "solo"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "solo"}}},
	}, metav1.CreateOptions{})
	must(t, "create the PodDisruptionBudget", func() error { return err })
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	pdb, err = admin.PolicyV1().PodDisruptionBudgets(w.Namespace).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
	must(t, "set the PodDisruptionBudget's status", func() error { return err })
	podBefore, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
	must(t, "get pod", func() error { return err })

	var wr wire
	e := newPolicyEngine(t, recordedClient(t, &wr), evictPolicy, policyOptions{namespace: budgetNamespace(t)})
	// The whole delivery, as serve's handler decides it: no error, so
	// the answer is 200.
	ds, err := e.e.Decide(ctx, []template.Alert{leakOf(w.leak())})
	if err != nil {
		t.Fatalf("Decide error: %v (transient %v): serve would not answer 200", err, isTransient(err))
	}
	if got, want := short(ds[0]), (decision{Target: w.Target(), Decision: decisionHeld, Reason: reasonPDB}); got != want {
		t.Fatalf("decision = %+v, want %+v (%s)", got, want, ds[0].Message)
	}

	refused := 0
	for _, r := range wr.writes() {
		if strings.HasSuffix(r.Path, "/pods/"+w.Pod+"/eviction") {
			if r.Status != http.StatusTooManyRequests {
				t.Errorf("eviction answered %d, want 429", r.Status)
			}
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("evictions sent: %d, want 1 (%v)", refused, wr.writes())
	}
	pod, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
	must(t, "get pod", func() error { return err })
	if pod.DeletionTimestamp != nil {
		t.Errorf("pod %s is being deleted despite the PDB", w.Target())
	}
	if diff := cmp.Diff(podBefore.Annotations, pod.Annotations, noNil); diff != "" {
		t.Errorf("pod annotations after the refusal (-before +after): the claim must be given back\n%s", diff)
	}
	after, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Get(ctx, pdb.Name, metav1.GetOptions{})
	must(t, "get the PodDisruptionBudget", func() error { return err })
	if after.ResourceVersion != pdb.ResourceVersion {
		t.Errorf("PodDisruptionBudget changed: resourceVersion %s -> %s", pdb.ResourceVersion, after.ResourceVersion)
	}
}

// TestRestartRecurrence: the same alert restarts one Deployment three
// times, 2 h apart (past the 1 h cooldown; the status says each rollout
// finished); the fourth time restart stops: held with reason
// recurrence, the Deployment marked leakguard.io/recurring, a Warning
// Event "leak recurs about every 2.0 h", and the history (three times)
// kept on the Deployment, not on a pod.
func TestRestartRecurrence(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	w := newSpace(t).workload(t, "Deployment", "web", 3)
	clk := newClock(time.Now().UTC().Truncate(time.Second))
	e := newPolicyEngine(t, leakguardClient(t), restartPolicy, policyOptions{namespace: budgetNamespace(t), now: clk.now})

	var last string
	for i := range 3 {
		last = clk.now().Format(time.RFC3339)
		d := e.decide(ctx, t, w.leak())
		if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
			t.Fatalf("restart %d: decision = %+v, want %+v (%s)", i+1, got, want, d.Message)
		}
		w.setStatus(t, 3, 3) // the rollout finished
		clk.advance(2 * time.Hour)
	}
	before := w.versions(ctx, t)
	d := e.decide(ctx, t, w.leak())
	if got, want := short(d), (decision{Target: w.Target(), Decision: decisionHeld, Reason: reasonRecurrence}); got != want {
		t.Fatalf("fourth time: decision = %+v, want %+v (%s)", got, want, d.Message)
	}

	dep := w.object(ctx, t)
	if _, tmpl := templateOf(t, dep); tmpl.Annotations[annotationRestartedAt] != last {
		t.Errorf("%s = %q, want %q: three restarts, not four", annotationRestartedAt, tmpl.Annotations[annotationRestartedAt], last)
	}
	mark := dep.GetAnnotations()[annotationRecurring]
	if !strings.Contains(mark, "ContainerMemoryLeak: restarted 3 times within 24h0m0s, about every 2.0 h") {
		t.Errorf("%s = %q, want the alert, 3 restarts and about every 2.0 h", annotationRecurring, mark)
	}
	var hist map[string][]time.Time
	if err := json.Unmarshal([]byte(dep.GetAnnotations()[annotationRestartHistory]), &hist); err != nil || len(hist["ContainerMemoryLeak"]) != 3 {
		t.Errorf("%s = %q (%v), want three restarts of ContainerMemoryLeak", annotationRestartHistory, dep.GetAnnotations()[annotationRestartHistory], err)
	}
	pod := getAs(ctx, t, admin, "Pod", w.Namespace, w.Pod)
	if _, ok := pod.GetAnnotations()[annotationRestartHistory]; ok {
		t.Errorf("the history is on the pod %s, want it on the workload only", w.Pod)
	}
	// The mark is the only write of the held decision.
	after := w.versions(ctx, t)
	delete(before, w.Target())
	assertVersions(t, "held by recurrence", before, after)

	warned := false
	for _, ev := range events(ctx, t, admin, w.Namespace, w.Name) {
		if ev.Reason == eventHeld && ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, "leak recurs about every 2.0 h; restarting is not fixing it") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no Warning %s Event saying the leak recurs on %s: %v", eventHeld, w.Target(), events(ctx, t, admin, w.Namespace, w.Name))
	}
}
