package main

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// TestCheckServeAccess: serve's check asks for the policy's rights in
// serve's namespace, refuses (naming the component) what the API server
// denies, and asks for no component's right under --dry-run.
func TestCheckServeAccess(t *testing.T) {
	policy, err := remediate.ParsePolicy([]byte(`
alerts:
  ContainerMemoryLeak: {target: workload, check: {name: working-set-slope}, remediators: [{name: annotate}, {name: restart, enabled: true}]}
`), builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	// The API server of the base alone: it denies evictions and the verb
	// restart, and records the namespaces of the Lease reviews.
	cs := fake.NewClientset()
	var leaseNamespaces []string
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		ra := r.Spec.ResourceAttributes
		if ra != nil && ra.Resource == "leases" {
			leaseNamespaces = append(leaseNamespaces, ra.Namespace)
		}
		r.Status.Allowed = ra == nil || (ra.Verb != "restart" && ra.Subresource != "eviction")
		return true, r, nil
	})
	f := serveFlags{namespace: "lg"}
	err = checkServeAccess(context.Background(), cs, policy, f)
	if !remediate.IsAccessError(err) || !strings.Contains(err.Error(), "add deploy/components/restart") {
		t.Errorf("check as the base alone = %v, want an access error naming deploy/components/restart", err)
	}
	for _, ns := range leaseNamespaces {
		if ns != "lg" {
			t.Errorf("Lease reviewed in namespace %q, want serve's --namespace lg", ns)
		}
	}
	if len(leaseNamespaces) == 0 {
		t.Error("no Lease right reviewed")
	}
	f.dryRun = true
	if err := checkServeAccess(context.Background(), cs, policy, f); err != nil {
		t.Errorf("check under --dry-run = %v, want nil (no component's right)", err)
	}
}
