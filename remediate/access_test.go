package remediate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// accessPolicy is a policy whose ContainerMemoryLeak entry runs the
// remediators given (YAML flow list items) on target.
func accessPolicy(t *testing.T, global, target, remediators, entry string) *Policy {
	t.Helper()
	check := "{name: working-set-slope}"
	if target == TargetNode || target == TargetAPIServer {
		check = "{name: orphan-cgroups}"
	}
	doc := global + "\nalerts:\n  ContainerMemoryLeak: {target: " + target + ", check: " + check + ", remediators: [" + remediators + "]" + entry + "}\n"
	p, err := ParsePolicy([]byte(doc), shippedRegistry())
	if err != nil {
		t.Fatalf("policy %q: %v", doc, err)
	}
	return p
}

// rightStrings returns the rights of a grant, as String writes them.
func rightStrings(rights []Right, grant string) []string {
	var out []string
	for _, r := range rights {
		if r.Grant == grant {
			out = append(out, r.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestRequiredRights(t *testing.T) {
	restart := "{name: annotate}, {name: restart, enabled: true}"
	tests := []struct {
		name                          string
		global, target, rems, entry   string
		dryRun                        bool
		wantGrants                    []string
		wantRestart, wantNode, wantPr []string
	}{
		{name: "annotate needs the base alone", target: TargetWorkload, rems: "{name: annotate}"},
		{name: "restart", target: TargetWorkload, rems: restart, wantGrants: []string{GrantRestart},
			wantRestart: []string{"create pods/eviction (cluster-wide)", "restart apps/daemonsets (cluster-wide)", "restart apps/deployments (cluster-wide)", "restart apps/statefulsets (cluster-wide)"}},
		{name: "cordon", target: TargetNode, rems: "{name: cordon, enabled: true}", wantGrants: []string{GrantNode},
			wantNode: []string{"cordon nodes (cluster-wide)"}},
		{name: "cordon and drain", target: TargetNode, rems: "{name: cordon, enabled: true}, {name: drain, enabled: true}", wantGrants: []string{GrantNode},
			wantNode: []string{"cordon nodes (cluster-wide)", "create pods/eviction (cluster-wide)", "list pods (cluster-wide)"}},
		{name: "profile of a workload", target: TargetWorkload, rems: "{name: profile}", wantGrants: []string{GrantProfile},
			wantPr: []string{"get pods/proxy (cluster-wide)"}},
		{name: "profile of the apiserver", target: TargetAPIServer, rems: "{name: profile}", wantGrants: []string{GrantProfile},
			wantPr: []string{"get /debug/pprof/heap"}},
		{name: "a dry-run policy needs no component", global: "dryRun: true", target: TargetWorkload, rems: restart + ", {name: profile}"},
		{name: "a dry-run entry needs no component", target: TargetWorkload, rems: restart, entry: ", dryRun: true"},
		{name: "serve's --dry-run needs no component", target: TargetWorkload, rems: restart, dryRun: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := accessPolicy(t, tc.global, tc.target, tc.rems, tc.entry)
			rights := RequiredRights(p, "lg", tc.dryRun)
			if diff := cmp.Diff(tc.wantGrants, RequiredGrants(rights)); diff != "" {
				t.Errorf("grants (-want +got):\n%s", diff)
			}
			for grant, want := range map[string][]string{GrantRestart: tc.wantRestart, GrantNode: tc.wantNode, GrantProfile: tc.wantPr} {
				if diff := cmp.Diff(want, rightStrings(rights, grant)); diff != "" {
					t.Errorf("rights of %s (-want +got):\n%s", grant, diff)
				}
			}
			// The engine's rights, whatever the policy: annotate's
			// patches, the Leases of leakguard's namespace.
			base := rightStrings(rights, GrantBase)
			for _, want := range []string{"patch pods (cluster-wide)", "patch nodes (cluster-wide)", "patch apps/deployments (cluster-wide)", "create events (cluster-wide)", "update coordination.k8s.io/leases in namespace lg"} {
				if !slices.Contains(base, want) {
					t.Errorf("base rights %v lack %q", base, want)
				}
			}
			// The base grants no component's right.
			for _, r := range rights {
				disrupts := r.Verb == "restart" || r.Verb == "cordon" || r.Subresource == "eviction" || r.Subresource == "proxy" || r.NonResourceURL != ""
				if r.Grant == GrantBase && disrupts {
					t.Errorf("base right %s is a component's", r)
				}
			}
			if rights[0].Grant != GrantBase {
				t.Errorf("first right %s, want the base's first", rights[0])
			}
		})
	}
}

// TestRequiredRightsOnce: a request two remediators need is asked once,
// naming both.
func TestRequiredRightsOnce(t *testing.T) {
	p, err := ParsePolicy([]byte(`
alerts:
  ContainerMemoryLeak: {target: workload, check: {name: working-set-slope}, remediators: [{name: restart, enabled: true}]}
  NodeOrphanCgroups: {target: node, check: {name: orphan-cgroups}, remediators: [{name: cordon, enabled: true}, {name: drain, enabled: true}]}
`), shippedRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var evictions []Right
	for _, r := range RequiredRights(p, "lg", false) {
		if r.Subresource == "eviction" {
			evictions = append(evictions, r)
		}
	}
	if len(evictions) != 1 {
		t.Fatalf("eviction rights %v, want one", evictions)
	}
	// The first grant that names it (alert names in order:
	// ContainerMemoryLeak's restart first).
	if e := evictions[0]; e.Grant != GrantRestart || !slices.Equal(e.For, []string{RemediatorRestart, RemediatorDrain}) {
		t.Errorf("eviction right %+v, want granted by %s for restart and drain", e, GrantRestart)
	}
	if diff := cmp.Diff([]string{GrantNode, GrantRestart}, RequiredGrants(RequiredRights(p, "lg", false))); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
}

// reviewKey is the request of a SelfSubjectAccessReview, as Right.String
// writes it for the same attributes.
func reviewKey(s authorizationv1.SelfSubjectAccessReviewSpec) string {
	if n := s.NonResourceAttributes; n != nil {
		return Right{Verb: n.Verb, NonResourceURL: n.Path}.String()
	}
	a := s.ResourceAttributes
	return Right{Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace}.String()
}

// reviewingClient answers SelfSubjectAccessReviews: allowed unless the
// request is in denied; err, when set, fails every review.
func reviewingClient(denied []string, err error) (*fake.Clientset, *[]string) {
	cs := fake.NewClientset()
	var asked []string
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if err != nil {
			return true, nil, err
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		key := reviewKey(r.Spec)
		asked = append(asked, key)
		r.Status.Allowed = !slices.Contains(denied, key)
		r.Status.Denied = !r.Status.Allowed
		return true, r, nil
	})
	return cs, &asked
}

func TestCheckAccess(t *testing.T) {
	p := accessPolicy(t, "", TargetWorkload, "{name: annotate}, {name: restart, enabled: true}", "")
	rights := RequiredRights(p, "lg", false)
	ctx := context.Background()

	t.Run("every right granted", func(t *testing.T) {
		cs, asked := reviewingClient(nil, nil)
		if err := CheckAccess(ctx, cs, rights); err != nil {
			t.Fatalf("CheckAccess = %v, want nil", err)
		}
		var want []string
		for _, r := range rights {
			want = append(want, r.String())
		}
		if diff := cmp.Diff(want, *asked); diff != "" {
			t.Errorf("reviews asked (-want +got):\n%s", diff)
		}
	})

	t.Run("the base alone", func(t *testing.T) {
		denied := rightStrings(rights, GrantRestart)
		cs, _ := reviewingClient(denied, nil)
		err := CheckAccess(ctx, cs, rights)
		var ae *AccessError
		if !errors.As(err, &ae) {
			t.Fatalf("CheckAccess = %v, want an *AccessError", err)
		}
		var got []string
		for _, r := range ae.Missing {
			got = append(got, r.String())
		}
		slices.Sort(got)
		if diff := cmp.Diff(denied, got); diff != "" {
			t.Errorf("missing (-want +got):\n%s", diff)
		}
		msg := err.Error()
		for _, want := range append([]string{"add deploy/components/restart", "for restart"}, denied...) {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, "deploy/components/node") || strings.Contains(msg, "deploy/components/profile") {
			t.Errorf("error %q names a component the policy does not need", msg)
		}
	})

	t.Run("a base right missing names the base", func(t *testing.T) {
		cs, _ := reviewingClient([]string{"update coordination.k8s.io/leases in namespace lg"}, nil)
		err := CheckAccess(ctx, cs, rights)
		if !IsAccessError(err) || !strings.Contains(err.Error(), "granted by deploy/leakguard") || strings.Contains(err.Error(), "add deploy/") {
			t.Errorf("CheckAccess = %v, want an AccessError naming deploy/leakguard and no component to add", err)
		}
	})

	t.Run("a review that fails fails the check", func(t *testing.T) {
		cs, _ := reviewingClient(nil, errors.New("connection refused"))
		err := CheckAccess(ctx, cs, rights)
		if err == nil || IsAccessError(err) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("CheckAccess = %v, want the review's error (fail closed)", err)
		}
	})
}

// TestReloadPolicyFileIf: a policy that admit refuses leaves the running
// policy; one it accepts replaces it.
func TestReloadPolicyFileIf(t *testing.T) {
	e, _ := newTestEngine(t, engineSetup{})
	path := filepath.Join(t.TempDir(), "policy.yaml")
	before := e.Policy()
	if err := os.WriteFile(path, []byte("alerts:\n  NodeCgroupLeak: {target: node, check: {name: orphan-cgroups}, remediators: [{name: cordon, enabled: true}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, _ := reviewingClient([]string{"cordon nodes (cluster-wide)"}, nil)
	admit := func(p *Policy) error { return CheckAccess(context.Background(), cs, RequiredRights(p, "lg", false)) }
	err := e.ReloadPolicyFileIf(path, shippedRegistry(), admit)
	if !IsAccessError(err) || !strings.Contains(err.Error(), "keeping the running policy") || !strings.Contains(err.Error(), GrantNode) {
		t.Errorf("reload = %v, want an AccessError naming %s, the running policy kept", err, GrantNode)
	}
	if e.Policy() != before {
		t.Errorf("policy replaced by a refused reload: %v", e.Policy().AlertNames())
	}
	granted, _ := reviewingClient(nil, nil)
	admit = func(p *Policy) error {
		return CheckAccess(context.Background(), granted, RequiredRights(p, "lg", false))
	}
	if err := e.ReloadPolicyFileIf(path, shippedRegistry(), admit); err != nil {
		t.Fatalf("reload with every right = %v", err)
	}
	if got := e.Policy().AlertNames(); !slices.Equal(got, []string{"NodeCgroupLeak"}) {
		t.Errorf("policy alerts %v after the reload, want [NodeCgroupLeak]", got)
	}
}
