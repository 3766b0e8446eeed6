package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// annotatePolicy annotates the workload of a confirmed leak.
const annotatePolicy = `
rateLimit: {perMinute: 600, burst: 100}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: annotate}]
`

// crdKind is a custom resource kind that the lab serves.
type crdKind struct {
	Group, Version, Kind, Plural string
}

func (k crdKind) apiVersion() string { return k.Group + "/" + k.Version }

// Argo Rollouts' Rollout, which deploy/leakguard's role may read, and a
// kind of an operator that it may not.
var (
	rolloutKind = crdKind{"argoproj.io", "v1alpha1", "Rollout", "rollouts"}
	widgetKind  = crdKind{"widgets.leakguard-e2e.io", "v1", "Widget", "widgets"}
)

// ensureCRD creates, as the admin, a namespaced CustomResourceDefinition
// for k that keeps any field, and waits (at most 30 s) until discovery
// serves it, as the engine's metadata look-up needs.
func ensureCRD(ctx context.Context, t *testing.T, k crdKind) {
	t.Helper()
	l := needLab(t)
	dyn, err := dynamic.NewForConfig(l.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": k.Plural + "." + k.Group},
		"spec": map[string]any{
			"group": k.Group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": k.Plural, "singular": strings.ToLower(k.Kind), "kind": k.Kind, "listKind": k.Kind + "List"},
			"versions": []any{map[string]any{
				"name": k.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create CRD %s.%s: %v", k.Plural, k.Group, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := l.Admin.Discovery().ServerResourcesForGroupVersion(k.apiVersion())
		if err == nil {
			for _, r := range list.APIResources {
				if r.Kind == k.Kind {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovery does not serve %s %s after 30 s: %v", k.apiVersion(), k.Kind, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// customOwned creates, as the admin, a custom resource of kind k named
// name (with annotations), a ReplicaSet whose controller it is (its
// owner reference carrying uid, or the resource's own UID when uid is
// empty) and a pod of the ReplicaSet. The ReplicaSet, having no
// Deployment, is the alert's workload.
func (s space) customOwned(t *testing.T, k crdKind, name string, annotations map[string]string, uid types.UID) workload {
	t.Helper()
	ctx := testContext(t)
	l := needLab(t)
	dyn, err := dynamic.NewForConfig(l.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	cr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": k.apiVersion(), "kind": k.Kind, "spec": map[string]any{"replicas": int64(1)}}}
	cr.SetName(name)
	cr.SetAnnotations(annotations)
	gvr := schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Plural}
	created, err := dyn.Resource(gvr).Namespace(s.Namespace).Create(ctx, cr, metav1.CreateOptions{})
	must(t, "create "+k.Kind, func() error { return err })
	if uid == "" {
		uid = created.GetUID()
	}
	tmpl := podTemplate(name)
	tmpl.Labels["rollouts-pod-template-hash"] = "6c8"
	rs, err := l.Admin.AppsV1().ReplicaSets(s.Namespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-6c8", Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{controllerRef(k.apiVersion(), k.Kind, name, uid)}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	must(t, "create replicaset", func() error { return err })
	spec := *tmpl.Spec.DeepCopy()
	spec.NodeName = s.Node
	pod, err := l.Admin.CoreV1().Pods(s.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-abcde", Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
		Spec: spec,
	}, metav1.CreateOptions{})
	must(t, "create pod", func() error { return err })
	return workload{space: s, Kind: "ReplicaSet", Name: rs.Name, Pod: pod.Name}
}

// TestOwnersThroughMetadataClient: owners of kinds without a typed
// client are read through the metadata client, with leakguard's role.
// An Argo Rollout with leakguard.io/ignore: "true" holds its pods'
// alerts (opt-out); an owner reference whose UID is not the Rollout's
// (the Rollout was replaced) is not followed, so the replaced Rollout's
// opt-out does not count and the ReplicaSet is annotated; an owner of a
// kind the role may not read fails closed: an error, a 403 that no
// retry fixes (not transient), and nothing written.
func TestOwnersThroughMetadataClient(t *testing.T) {
	ctx := testContext(t)
	ensureCRD(ctx, t, rolloutKind)
	ensureCRD(ctx, t, widgetKind)
	s := newSpace(t)
	optOut := map[string]string{annotationIgnore: "true"}
	e := newPolicyEngine(t, leakguardClient(t), annotatePolicy, policyOptions{namespace: budgetNamespace(t)})

	t.Run("opt-out on the Rollout", func(t *testing.T) {
		w := s.customOwned(t, rolloutKind, "web", optOut, "")
		before := w.versions(ctx, t)
		d := e.decide(ctx, t, w.leak())
		if got, want := short(d), (decision{Target: w.Target(), Decision: decisionHeld, Reason: reasonOptOut}); got != want {
			t.Fatalf("decision = %+v, want %+v (%s)", got, want, d.Message)
		}
		if !strings.Contains(d.Message, "Rollout "+s.Namespace+"/web") {
			t.Errorf("message %q does not name the Rollout that opted out", d.Message)
		}
		assertVersions(t, "opted out", before, w.versions(ctx, t))
	})

	t.Run("owner UID does not match", func(t *testing.T) {
		w := s.customOwned(t, rolloutKind, "api", optOut, "00000000-0000-0000-0000-000000000000")
		d := e.decide(ctx, t, w.leak())
		if got, want := short(d), (decision{Target: w.Target(), Decision: decisionActed}); got != want {
			t.Fatalf("decision = %+v, want %+v (%s): the replaced Rollout's opt-out must not count", got, want, d.Message)
		}
	})

	t.Run("owner the role cannot read", func(t *testing.T) {
		w := s.customOwned(t, widgetKind, "batch", nil, "")
		before := w.versions(ctx, t)
		d, err := e.e.DecideOne(ctx, leakOf(w.leak()))
		if err == nil || d.Decision != decisionError || d.Reason != reasonTargetError {
			t.Fatalf("decision = %+v, error %v; want %s (%s)", short(d), err, decisionError, reasonTargetError)
		}
		if !apierrors.IsForbidden(err) || isTransient(err) {
			t.Errorf("error %v: want Forbidden, not transient (a 200 with the error decision, not a retry)", err)
		}
		assertVersions(t, "failed closed", before, w.versions(ctx, t))
	})
}
