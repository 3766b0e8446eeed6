package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// policyMessage begins every denial of deploy/leakguard's update policy.
const policyMessage = "leakguard-serve may change only its leakguard.io/* annotations"

// policiesInstalled checks that deploy/leakguard's ValidatingAdmissionPolicies
// and bindings, rendered with kustomize as `kubectl apply -k` renders them
// (kustomize rewrites the folded expressions' line breaks, which CEL
// ignores) and decoded strictly, are in the API server as they ship:
// lab.InstallLeakguard created them before any test
// ran (and waited until they were enforced), so that every test that acts
// as leakguard's service account does so under them. The API server
// compiles every expression on create and refuses one that does not
// compile. (Type-checking against the objects' schemas is the controller
// manager's, which the lab does not run; the expressions walk objects as
// dyn maps, which it would not check anyway: the denials below are the
// check.)
func policiesInstalled(t *testing.T) {
	t.Helper()
	ctx := testContext(t)
	admin := needLab(t).Admin
	_, rendered, err := lab.RenderLeakguard(filepath.Join(repoRoot, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []any
	for _, u := range rendered {
		if !strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") {
			continue
		}
		obj, err := lab.DecodeStrict(u)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	api := admin.AdmissionregistrationV1()
	policies := 0
	for _, obj := range objs {
		switch o := obj.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			policies++
			got, err := api.ValidatingAdmissionPolicies().Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("policy %s: %v", o.Name, err)
			}
			if !equality.Semantic.DeepEqual(got.Spec.Validations, o.Spec.Validations) || !equality.Semantic.DeepEqual(got.Spec.MatchConditions, o.Spec.MatchConditions) {
				t.Errorf("policy %s in the API server is not the one deploy/ ships", o.Name)
			}
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			got, err := api.ValidatingAdmissionPolicyBindings().Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("binding %s: %v", o.Name, err)
			}
			if got.Spec.PolicyName != o.Spec.PolicyName || !equality.Semantic.DeepEqual(got.Spec.ValidationActions, o.Spec.ValidationActions) {
				t.Errorf("binding %s in the API server is not the one deploy/ ships", o.Name)
			}
		default:
			t.Fatalf("validatingadmissionpolicy.yaml holds a %T", obj)
		}
	}
	if policies == 0 {
		t.Fatal("validatingadmissionpolicy.yaml holds no policy")
	}
}

// mergePatch marshals a JSON merge patch.
func mergePatch(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func annotationsPatch(t *testing.T, ann map[string]any) []byte {
	return mergePatch(t, map[string]any{"metadata": map[string]any{"annotations": ann}})
}

// patcher applies a patch to one object of a world with client c.
type patcher func(ctx context.Context, c kubernetes.Interface, w world, pt types.PatchType, data []byte) error

func patchPod(ctx context.Context, c kubernetes.Interface, w world, pt types.PatchType, data []byte) error {
	_, err := c.CoreV1().Pods(w.Namespace).Patch(ctx, w.Pod, pt, data, metav1.PatchOptions{})
	return err
}

func patchDeployment(ctx context.Context, c kubernetes.Interface, w world, pt types.PatchType, data []byte) error {
	_, err := c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, pt, data, metav1.PatchOptions{})
	return err
}

func patchReplicaSet(ctx context.Context, c kubernetes.Interface, w world, pt types.PatchType, data []byte) error {
	_, err := c.AppsV1().ReplicaSets(w.Namespace).Patch(ctx, w.ReplicaSet, pt, data, metav1.PatchOptions{})
	return err
}

func patchNode(ctx context.Context, c kubernetes.Interface, w world, pt types.PatchType, data []byte) error {
	_, err := c.CoreV1().Nodes().Patch(ctx, w.Node, pt, data, metav1.PatchOptions{})
	return err
}

// wantDenied fails unless err is the policy's denial (422 Invalid, the
// answer of a ValidatingAdmissionPolicy with reason Forbidden is 403).
func wantDenied(t *testing.T, what string, err error, message string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want denied by the admission policy", what)
	case !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err):
		t.Errorf("%s: %v, want the admission policy's denial", what, err)
	case !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") || !strings.Contains(err.Error(), message):
		t.Errorf("%s: denied with %q, want the policy's message %q", what, err, message)
	}
}

// TestAdmissionPolicy checks, with deploy/leakguard's admission policies
// in force on the real API server (as under every test of the package), as leakguard's service account, that every
// write outside leakguard's own fields is denied with the policy's message
// although RBAC allows it, and that what leakguard writes still goes
// through: the annotate remediator and its cooldown claim on a workload, a
// pod and a node, a rolling restart's restartedAt, a cordon and its taint,
// and an eviction.
func TestAdmissionPolicy(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	lg := leakguardClient(t)
	policiesInstalled(t)

	// Enforced from the start (lab.InstallLeakguard waited for it): the
	// first label patch is denied.
	label := mergePatch(t, map[string]any{"metadata": map[string]any{"labels": map[string]string{"team": "x"}}})
	wantDenied(t, "a label patch", patchPod(ctx, lg, w, types.MergePatchType, label), policyMessage)

	t.Run("denied", func(t *testing.T) {
		before := w.objectVersions(ctx, t, admin)
		// The node's taints as they are (kube-apiserver's admission gives
		// a new node node.kubernetes.io/not-ready) plus extra: a merge
		// patch replaces the whole list.
		taints := func(extra ...corev1.Taint) []byte {
			n, err := admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
			must(t, "get node", func() error { return err })
			return mergePatch(t, map[string]any{"spec": map[string]any{"taints": append(n.Spec.Taints, extra...)}})
		}
		jsonPatch := func(ops ...map[string]any) []byte { return mergePatch(t, ops) }
		cases := []struct {
			name  string
			patch patcher
			pt    types.PatchType
			data  []byte
		}{
			{"pod label", patchPod, types.MergePatchType, label},
			{"pod annotation of another owner", patchPod, types.MergePatchType, annotationsPatch(t, map[string]any{"example.com/owner": "x"})},
			{"pod opt-out annotation", patchPod, types.MergePatchType, annotationsPatch(t, map[string]any{"leakguard.io/ignore": "true"})},
			{"pod container image", patchPod, types.JSONPatchType, jsonPatch(map[string]any{"op": "replace", "path": "/spec/containers/0/image", "value": "registry.invalid/evil:1"})},
			{"pod finalizer", patchPod, types.MergePatchType, mergePatch(t, map[string]any{"metadata": map[string]any{"finalizers": []string{"example.com/hold"}}})},
			{"deployment replicas", patchDeployment, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"replicas": 5}})},
			{"deployment container image", patchDeployment, types.JSONPatchType, jsonPatch(map[string]any{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "registry.invalid/evil:1"})},
			{"deployment pod-template label", patchDeployment, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": "web", "x": "y"}}}}})},
			{"deployment pod-template annotation other than restartedAt", patchDeployment, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]string{"example.com/x": "y"}}}}})},
			{"deployment paused", patchDeployment, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"paused": true}})},
			{"replicaset replicas", patchReplicaSet, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"replicas": 3}})},
			{"node label", patchNode, types.MergePatchType, mergePatch(t, map[string]any{"metadata": map[string]any{"labels": map[string]string{"node-role.kubernetes.io/control-plane": ""}}})},
			{"node taint of another owner", patchNode, types.MergePatchType, taints(corev1.Taint{Key: "example.com/x", Effect: corev1.TaintEffectNoSchedule})},
			{"node taint of another owner removed", patchNode, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"taints": nil}})},
			{"node leakguard taint NoExecute", patchNode, types.MergePatchType, taints(corev1.Taint{Key: "leakguard.io/cgroup-leak", Effect: corev1.TaintEffectNoExecute})},
			{"node providerID", patchNode, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"providerID": "evil://x"}})},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				wantDenied(t, tc.name, tc.patch(ctx, lg, w, tc.pt, tc.data), policyMessage)
			})
		}
		// Nothing denied was written.
		assertUnchanged(ctx, t, w, before)
	})

	t.Run("allowed", func(t *testing.T) {
		// The annotate remediator and its cooldown claim, through the
		// engine, on each kind of target.
		e := newEngine(t, lg, engineOptions{})
		for _, tc := range []struct {
			name   string
			alert  func() decision
			target string
		}{
			{"annotate workload", func() decision { return e.decide(ctx, t, leakAlert(w)) }, "Deployment " + w.Namespace + "/" + w.Deployment},
			{"annotate pod", func() decision { return e.decide(ctx, t, oomAlert(w)) }, "Pod " + w.Namespace + "/" + w.Pod},
			{"annotate node", func() decision { return e.decide(ctx, t, orphanAlert(w)) }, "Node " + w.Node},
		} {
			if got, want := tc.alert(), (decision{Target: tc.target, Decision: decisionActed}); got != want {
				t.Errorf("%s: decision = %+v, want %+v", tc.name, got, want)
			}
		}
		// Removing its own annotation is a change of its own annotations.
		must(t, "remove leakguard's annotation", func() error {
			return patchPod(ctx, lg, w, types.MergePatchType, annotationsPatch(t, map[string]any{annotationFinding: nil}))
		})

		restartedAt := time.Now().UTC().Format(time.RFC3339)
		must(t, "rolling restart (restartedAt)", func() error {
			return patchDeployment(ctx, lg, w, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"template": map[string]any{
				"metadata": map[string]any{"annotations": map[string]string{"kubectl.kubernetes.io/restartedAt": restartedAt}},
			}}}))
		})
		d, err := admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, metav1.GetOptions{})
		must(t, "get deployment", func() error { return err })
		if got := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]; got != restartedAt {
			t.Errorf("restartedAt = %q, want %q", got, restartedAt)
		}

		// Cordon with leakguard's taint beside the node's others, then
		// uncordon.
		n, err := admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
		must(t, "get node", func() error { return err })
		others := n.Spec.Taints
		if len(others) == 0 {
			t.Fatalf("node %s has no taint: the test means to keep another owner's", w.Node)
		}
		leak := corev1.Taint{Key: "leakguard.io/cgroup-leak", Value: "orphan-cgroups", Effect: corev1.TaintEffectNoSchedule}
		must(t, "cordon with leakguard's taint", func() error {
			return patchNode(ctx, lg, w, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{
				"unschedulable": true, "taints": append([]corev1.Taint{leak}, others...),
			}}))
		})
		n, err = admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
		must(t, "get node", func() error { return err })
		if !n.Spec.Unschedulable || len(n.Spec.Taints) != len(others)+1 || n.Spec.Taints[0].Key != leak.Key {
			t.Errorf("node after cordon: unschedulable %v, taints %+v; want true, %s and %+v", n.Spec.Unschedulable, n.Spec.Taints, leak.Key, others)
		}
		must(t, "uncordon", func() error {
			return patchNode(ctx, lg, w, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{
				"unschedulable": nil, "taints": others,
			}}))
		})
		n, err = admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
		must(t, "get node", func() error { return err })
		if n.Spec.Unschedulable || len(n.Spec.Taints) != len(others) {
			t.Errorf("node after uncordon: unschedulable %v, taints %+v; want false and %+v", n.Spec.Unschedulable, n.Spec.Taints, others)
		}

		// Others are not bound by the policy.
		must(t, "a label patch by the admin", func() error { return patchPod(ctx, admin, w, types.MergePatchType, label) })
	})

	t.Run("daemonset template generation", func(t *testing.T) {
		// A DaemonSet's deprecated.daemonset.template.generation is the
		// API server's: an update cannot set it, and its strategy bumps it
		// when the pod template changes. The policy lets it change with
		// the template, which a rolling restart is.
		labels := map[string]string{"app": "agent"}
		ds, err := admin.AppsV1().DaemonSets(w.Namespace).Create(ctx, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent"},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "registry.invalid/agent:1"}}},
			}},
		}, metav1.CreateOptions{})
		must(t, "create daemonset", func() error { return err })
		const generation = "deprecated.daemonset.template.generation"
		dss := lg.AppsV1().DaemonSets(w.Namespace)
		// Set alone, the API server keeps its own value (so nothing is
		// left for the policy to deny).
		got, err := dss.Patch(ctx, ds.Name, types.MergePatchType, annotationsPatch(t, map[string]any{generation: "7"}), metav1.PatchOptions{})
		if err == nil && got.Annotations[generation] != ds.Annotations[generation] {
			t.Errorf("%s set alone to %q (was %q)", generation, got.Annotations[generation], ds.Annotations[generation])
		}
		got, err = dss.Patch(ctx, ds.Name, types.MergePatchType, mergePatch(t, map[string]any{"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().UTC().Format(time.RFC3339)}},
		}}}), metav1.PatchOptions{})
		must(t, "daemonset rolling restart", func() error { return err })
		if got.Annotations[generation] == ds.Annotations[generation] {
			t.Errorf("%s = %q after the restart, as before: the API server did not bump it, and the policy's allowance is untested", generation, got.Annotations[generation])
		}
	})

	t.Run("eviction", func(t *testing.T) {
		evict := func(grace *int64) error {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: w.Pod, Namespace: w.Namespace}}
			if grace != nil {
				ev.DeleteOptions = &metav1.DeleteOptions{GracePeriodSeconds: grace}
			}
			return lg.CoreV1().Pods(w.Namespace).EvictV1(ctx, ev)
		}
		zero := int64(0)
		wantDenied(t, "eviction with gracePeriodSeconds 0", evict(&zero), "leakguard-serve evicts only with the pod's own grace period")
		must(t, "eviction with the pod's grace period", func() error { return evict(nil) })
		p, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
		if err == nil && p.DeletionTimestamp == nil {
			t.Errorf("pod %s/%s after eviction: not being deleted", w.Namespace, w.Pod)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("get evicted pod: %v", err)
		}
	})
}
