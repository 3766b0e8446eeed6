package remediate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

const rolloutAPIVersion = remediatetest.RolloutAPIVersion

// rolloutCluster is namespace shop with an Argo Rollout cart (known only
// to the metadata client) → ReplicaSet cart-5f6 → Pod cart-5f6-abcde.
func rolloutCluster(t *testing.T, rolloutAnnotations map[string]string) (k8sClient, *metadatafake.FakeMetadataClient) {
	t.Helper()
	ctrl := true
	cs := newCluster(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "uid-shop", ResourceVersion: "1"}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-5f6", UID: "uid-cart-5f6", ResourceVersion: "1",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: rolloutAPIVersion, Kind: "Rollout", Name: "cart", UID: "uid-rollout-cart", Controller: &ctrl}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-5f6-abcde", UID: "uid-cart-pod", ResourceVersion: "1",
			OwnerReferences: ownedBy(KindReplicaSet, "cart-5f6")}},
	)
	cs.Resources = []*metav1.APIResourceList{{GroupVersion: rolloutAPIVersion, APIResources: []metav1.APIResource{
		{Name: "rollouts", Namespaced: true, Kind: "Rollout"}, {Name: "rollouts/status", Namespaced: true, Kind: "Rollout"},
	}}}
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: rolloutAPIVersion, Kind: "Rollout"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", UID: "uid-rollout-cart", Annotations: rolloutAnnotations},
	})
	return cs, md
}

func cartAlert() map[string]string {
	return map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": "cart-5f6-abcde", "container": "app"}
}

// TestOwnerOfUnknownKind reads an Argo Rollout through the metadata
// client: it is examined for its opt-out, and the ReplicaSet stays the
// workload.
func TestOwnerOfUnknownKind(t *testing.T) {
	cs, md := rolloutCluster(t, map[string]string{AnnotationIgnore: "true"})
	tg, err := resolver{c: cs, md: md}.resolve(context.Background(), TargetWorkload, alert("firing", cartAlert()))
	if err != nil {
		t.Fatalf("resolve() error: %v", err)
	}
	var ex []string
	for _, e := range tg.examined {
		ex = append(ex, e.ref.String())
	}
	if diff := cmp.Diff([]string{"Pod shop/cart-5f6-abcde", "ReplicaSet shop/cart-5f6", "Rollout shop/cart"}, ex); diff != "" {
		t.Errorf("examined mismatch (-want +got):\n%s", diff)
	}
	if tg.Object.String() != "ReplicaSet shop/cart-5f6" {
		t.Errorf("workload = %s, want ReplicaSet shop/cart-5f6", tg.Object)
	}
	ok, why, err := optOutGuard(context.Background(), cs, nil, tg)
	if ok || err != nil || !strings.Contains(why, "Rollout shop/cart") {
		t.Errorf("optOutGuard() = %v, %q, %v; want held by the Rollout's opt-out", ok, why, err)
	}

	// Through the engine: held, nothing written.
	p, _ := ParsePolicy([]byte("alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: none}\n    remediators: [{name: annotate}]\n"), shippedRegistry())
	e, err := NewEngine(Options{Client: cs, Metadata: md, Policy: p, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.DecideOne(context.Background(), alert("firing", cartAlert()))
	if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonOptOut {
		t.Errorf("DecideOne() = %s/%s, %v; want held/opt-out", d.Decision, d.Reason, err)
	}
	if n := len(patches(cs, "replicasets")); n != 0 {
		t.Errorf("%d ReplicaSet patches, want none", n)
	}
}

// TestOwnerUnreadableFailsClosed: a controller owner that cannot be read
// (no metadata client, Forbidden, the API unreachable) is an error, never
// a pass.
func TestOwnerUnreadableFailsClosed(t *testing.T) {
	tests := []struct {
		name          string
		noMD          bool
		err           error
		MarkTransient bool
	}{
		{name: "no metadata client", noMD: true},
		{name: "forbidden", err: apierrors.NewForbidden(schema.GroupResource{Group: "argoproj.io", Resource: "rollouts"}, "cart", errors.New("RBAC"))},
		{name: "unavailable", err: apierrors.NewServiceUnavailable("down"), MarkTransient: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, md := rolloutCluster(t, nil)
			if tc.err != nil {
				md.PrependReactor("get", "rollouts", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			}
			rs := resolver{c: cs, md: md}
			if tc.noMD {
				rs.md = nil
			}
			_, err := rs.resolve(context.Background(), TargetWorkload, alert("firing", cartAlert()))
			if err == nil || errors.Is(err, errTargetNotFound) || IsTransient(err) != tc.MarkTransient {
				t.Errorf("resolve() error = %v (transient %v), want a failure, transient %v", err, IsTransient(err), tc.MarkTransient)
			}
		})
	}
	// A Rollout that is gone (its CRD too) is a dangling reference.
	cs, md := rolloutCluster(t, nil)
	cs.Resources = nil
	if _, err := (resolver{c: cs, md: md}).resolve(context.Background(), TargetWorkload, alert("firing", cartAlert())); err != nil {
		t.Errorf("resolve() with the kind no longer served = %v, want the ReplicaSet as workload", err)
	}
}

// TestOwnerUIDMismatch: a pod's owner reference names ReplicaSet web-7d9,
// but the ReplicaSet of that name is another one (the owner was deleted
// and recreated). It is not followed: the pod is its own workload, and
// the other object's opt-out does not count.
func TestOwnerUIDMismatch(t *testing.T) {
	objs := fixtures()
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.Name == "web-7d9-abcde" {
			p.OwnerReferences[0].UID = "uid-of-a-deleted-replicaset"
		}
		if d, ok := o.(*appsv1.Deployment); ok {
			d.Annotations = map[string]string{AnnotationIgnore: "true"}
		}
	}
	cs := newCluster(t, objs...)
	tg, err := ResolveTarget(context.Background(), cs, TargetWorkload, leakAlert())
	if err != nil {
		t.Fatal(err)
	}
	if tg.Object.String() != "Pod shop/web-7d9-abcde" || len(tg.examined) != 1 {
		t.Errorf("resolveTarget() = %s, examined %v; want the pod alone", tg.Object, tg.examined)
	}
}
