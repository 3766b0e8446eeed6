package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/restart"
)

// The reasons of restart's guards on the rollout and on pods that
// nothing it rolls would replace.
const (
	reasonNoReadyReplica  = restart.ReasonNoReadyReplica
	reasonPartition       = restart.ReasonPartition
	reasonNoController    = restart.ReasonNoController
	reasonUnsupportedKind = remediate.ReasonUnsupportedKind
)

// restartPolicyArgs is restartPolicy with restart's args.
func restartPolicyArgs(args string) string {
	return restartPolicy + "        args: " + args + "\n"
}

// evictPolicy is restartPolicy that evicts a pod nothing restart rolls
// would replace.
var evictPolicy = restartPolicyArgs("{evictUnreplicated: true}")

// edit changes, as the admin, the spec of the workload (a Deployment,
// StatefulSet or DaemonSet) and writes its status again as a controller
// manager would after observing the change: every replica ready and
// updated.
func (w workload) edit(t *testing.T, change func(obj metav1.Object)) {
	t.Helper()
	ctx := testContext(t)
	c := needLab(t).Admin
	var err error
	switch w.Kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = c.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			change(d)
			_, err = c.AppsV1().Deployments(w.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = c.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			change(s)
			_, err = c.AppsV1().StatefulSets(w.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = c.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			change(d)
			_, err = c.AppsV1().DaemonSets(w.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		}
	default:
		t.Fatalf("edit: kind %s", w.Kind)
	}
	must(t, "edit "+w.Target(), func() error { return err })
	w.setStatus(t, w.replicas, w.replicas)
}

// withPod creates, as the admin, another running pod of the workload,
// named name, and returns the workload with the alert about that pod.
func (w workload) withPod(t *testing.T, name string) workload {
	t.Helper()
	ctx := testContext(t)
	c := needLab(t).Admin
	first := getAs(ctx, t, c, "Pod", w.Namespace, w.Pod).(*corev1.Pod)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: first.Labels, OwnerReferences: first.OwnerReferences}, Spec: first.Spec}
	created, err := c.CoreV1().Pods(w.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	must(t, "create pod "+name, func() error { return err })
	created.Status = first.Status
	must(t, "set pod "+name+" running", func() error {
		_, err := c.CoreV1().Pods(w.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	w.Pod = name
	return w
}

// assertHeldUntouched checks a held restart: the decision's reason, every
// resourceVersion as before, the workload's pod template as before, the
// pod not being deleted, no eviction and no write but the Event, and one
// LeakguardHeld Event on the target that names the reason.
func assertHeldUntouched(ctx context.Context, t *testing.T, w workload, d fullDecision, wr *wire, reason string, before map[string]string, tmplBefore *corev1.PodTemplateSpec) {
	t.Helper()
	admin := needLab(t).Admin
	if got, want := short(d), (decision{Target: w.Target(), Decision: decisionHeld, Reason: reason}); got != want {
		t.Fatalf("decision = %+v, want %+v (%s)", got, want, d.Message)
	}
	assertVersions(t, "held", before, w.versions(ctx, t))
	if tmplBefore != nil {
		if _, tmpl := templateOf(t, w.object(ctx, t)); !cmp.Equal(tmplBefore, tmpl) {
			t.Errorf("pod template changed (-before +after):\n%s", cmp.Diff(tmplBefore, tmpl))
		}
	}
	if pod := getAs(ctx, t, admin, "Pod", w.Namespace, w.Pod); pod.GetDeletionTimestamp() != nil {
		t.Errorf("pod %s/%s is being deleted", w.Namespace, w.Pod)
	}
	for _, r := range wr.writes() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/events") {
			t.Errorf("held, yet sent %s", r)
		}
	}
	evs := events(ctx, t, admin, w.Namespace, w.Name)
	if len(evs) != 1 || evs[0].Reason != eventHeld || !strings.Contains(evs[0].Message, "held ("+reason+")") {
		t.Errorf("Events on %s = %+v, want one %s naming %s", w.Target(), evs, eventHeld, reason)
	}
}

// TestRestartRolloutHolds, on the real API server (its defaulting of
// strategies included): restart is held, writing nothing but the Event,
// when the workload's own rollout would leave it no ready replica
// (Recreate, maxUnavailable resolving to every replica, a StatefulSet of
// one replica) or when a StatefulSet's partition is above the leaking
// pod's ordinal; the rollouts that keep a replica ready and replace the
// pod are restarted.
func TestRestartRolloutHolds(t *testing.T) {
	maxUnavailable := func(v string) func(metav1.Object) {
		return func(obj metav1.Object) {
			mu := intstr.Parse(v)
			switch o := obj.(type) {
			case *appsv1.Deployment:
				o.Spec.Strategy.RollingUpdate.MaxUnavailable = &mu
			case *appsv1.StatefulSet:
				o.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &mu}
			case *appsv1.DaemonSet:
				o.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &mu
			}
		}
	}
	partition := func(p int32) func(metav1.Object) {
		return func(obj metav1.Object) {
			obj.(*appsv1.StatefulSet).Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: &p}
		}
	}
	cases := []struct {
		name     string
		kind     string
		replicas int32
		change   func(metav1.Object)
		pod      string // another pod of the workload the alert names
		args     string
		reason   string // "" acts
	}{
		{name: "Recreate", kind: "Deployment", replicas: 3, reason: reasonNoReadyReplica, change: func(obj metav1.Object) {
			d := obj.(*appsv1.Deployment)
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}},
		{name: "maxUnavailable 100%", kind: "Deployment", replicas: 3, change: maxUnavailable("100%"), reason: reasonNoReadyReplica},
		{name: "maxUnavailable 3 of 3", kind: "Deployment", replicas: 3, change: maxUnavailable("3"), reason: reasonNoReadyReplica},
		{name: "maxUnavailable 1 of 3", kind: "Deployment", replicas: 3, change: maxUnavailable("1")},
		{name: "one replica, the API server's default strategy surges first", kind: "Deployment", replicas: 1, args: "{minReadyReplicas: 1}"},
		{name: "maxUnavailable 100%", kind: "DaemonSet", replicas: 3, change: maxUnavailable("100%"), reason: reasonNoReadyReplica},
		{name: "one replica", kind: "StatefulSet", replicas: 1, args: "{minReadyReplicas: 1}", reason: reasonNoReadyReplica},
		{name: "one replica, allowed", kind: "StatefulSet", replicas: 1, args: "{minReadyReplicas: 1, allowSingleReplica: true}"},
		{name: "maxUnavailable 100%", kind: "StatefulSet", replicas: 3, change: maxUnavailable("100%"), reason: reasonNoReadyReplica},
		{name: "partition 2 above ordinal 0", kind: "StatefulSet", replicas: 3, change: partition(2), reason: reasonPartition},
		{name: "partition 2 above ordinal 1", kind: "StatefulSet", replicas: 3, change: partition(2), pod: "web-1", reason: reasonPartition},
		{name: "partition 2 at ordinal 2", kind: "StatefulSet", replicas: 3, change: partition(2), pod: "web-2"},
	}
	for _, tc := range cases {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			ctx := testContext(t)
			w := newSpace(t).workload(t, tc.kind, "web", tc.replicas)
			if tc.change != nil {
				w.edit(t, tc.change)
			}
			if tc.pod != "" {
				w = w.withPod(t, tc.pod)
			}
			if tc.kind == "StatefulSet" && tc.name == "maxUnavailable 100%" {
				// The API server drops the field unless it serves it
				// (MaxUnavailableStatefulSet, on by default since 1.37).
				if s := w.object(ctx, t).(*appsv1.StatefulSet); s.Spec.UpdateStrategy.RollingUpdate == nil || s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
					t.Fatalf("the lab's API server dropped the StatefulSet's maxUnavailable: %+v", s.Spec.UpdateStrategy)
				}
			}
			policy := restartPolicy
			if tc.args != "" {
				policy = restartPolicyArgs(tc.args)
			}
			before := w.versions(ctx, t)
			_, tmpl := templateOf(t, w.object(ctx, t))
			var wr wire
			e := newPolicyEngine(t, recordedClient(t, &wr), policy, policyOptions{namespace: budgetNamespace(t)})

			d := e.decide(ctx, t, w.leak())
			if tc.reason != "" {
				assertHeldUntouched(ctx, t, w, d, &wr, tc.reason, before, tmpl)
				return
			}
			if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
				t.Fatalf("decision = %+v, want %+v (%s)", got, want, d.Message)
			}
			if _, after := templateOf(t, w.object(ctx, t)); after.Annotations[annotationRestartedAt] == "" {
				t.Errorf("pod template annotations = %v, want %s", after.Annotations, annotationRestartedAt)
			}
		})
	}
}

// TestRestartPodWithoutWorkloadHeld: a pod that nothing restart rolls
// would replace is held, not evicted, unless the entry sets
// evictUnreplicated: a pod without a controller (no-controller), one
// whose controller ReplicaSet no longer exists (no-controller), one
// controlled by a custom resource (an Argo Rollout) or by a kind the API
// server does not serve (unsupported-kind). Held, the pod and its
// resourceVersion stay and only the Event is written; with
// evictUnreplicated the pod controlled by the Rollout is evicted through
// the Eviction API.
func TestRestartPodWithoutWorkloadHeld(t *testing.T) {
	ctx := testContext(t)
	ensureCRD(ctx, t, rolloutKind)
	s := newSpace(t)
	// ownedPod creates, as the admin, a running pod controlled by owner.
	ownedPod := func(t *testing.T, name string, owner metav1.OwnerReference) workload {
		t.Helper()
		w := s.workload(t, "Pod", name, 1)
		pod := getAs(ctx, t, needLab(t).Admin, "Pod", w.Namespace, w.Pod).(*corev1.Pod)
		pod.OwnerReferences = []metav1.OwnerReference{owner}
		_, err := needLab(t).Admin.CoreV1().Pods(w.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
		must(t, "set the pod's controller", func() error { return err })
		return w
	}
	rolloutOwner := func(t *testing.T, name string) metav1.OwnerReference {
		t.Helper()
		cr := s.customOwned(t, rolloutKind, name, nil, "") // a Rollout, its ReplicaSet and pod
		rs := getAs(ctx, t, needLab(t).Admin, "ReplicaSet", s.Namespace, cr.Name)
		return rs.GetOwnerReferences()[0]
	}
	cases := []struct {
		name   string
		pod    func(t *testing.T) workload
		reason string
	}{
		{"no controller", func(t *testing.T) workload { return s.workload(t, "Pod", "solo", 1) }, reasonNoController},
		{"controller ReplicaSet deleted", func(t *testing.T) workload {
			return ownedPod(t, "orphan", controllerRef("apps/v1", "ReplicaSet", "web-6c4", types.UID("7a1c2a4e-0000-4000-8000-000000000001")))
		}, reasonNoController},
		{"controller of a kind the API server does not serve", func(t *testing.T) workload {
			return ownedPod(t, "gizmo", controllerRef("gizmos.leakguard-e2e.io/v1", "Gizmo", "gizmo", types.UID("7a1c2a4e-0000-4000-8000-000000000002")))
		}, reasonUnsupportedKind},
		{"controller an Argo Rollout", func(t *testing.T) workload { return ownedPod(t, "cart", rolloutOwner(t, "cart")) }, reasonUnsupportedKind},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.pod(t)
			before := w.versions(ctx, t)
			var wr wire
			e := newPolicyEngine(t, recordedClient(t, &wr), restartPolicy, policyOptions{namespace: budgetNamespace(t)})
			d := e.decide(ctx, t, w.leak())
			assertHeldUntouched(ctx, t, w, d, &wr, tc.reason, before, nil)
			if !strings.Contains(d.Message, "evictUnreplicated: true") {
				t.Errorf("message %q does not say what allows the eviction", d.Message)
			}
		})
	}

	t.Run("controller an Argo Rollout, evictUnreplicated", func(t *testing.T) {
		w := ownedPod(t, "shop", rolloutOwner(t, "shop"))
		var wr wire
		e := newPolicyEngine(t, recordedClient(t, &wr), evictPolicy, policyOptions{namespace: budgetNamespace(t)})
		d := e.decide(ctx, t, w.leak())
		if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
			t.Fatalf("decision = %+v, want %+v (%s)", got, want, d.Message)
		}
		evicted := 0
		for _, r := range wr.writes() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/pods/"+w.Pod+"/eviction") && r.Status == http.StatusCreated {
				evicted++
			}
		}
		if evicted != 1 {
			t.Errorf("evictions: %d, want 1 (%v)", evicted, wr.writes())
		}
	})
}
