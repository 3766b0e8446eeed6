package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// leakguardKinds are the kinds of deploy/leakguard that grant serve its
// permissions and bound them: the namespace, the service account, the
// ClusterRoles and the Role of its Leases, their bindings, and the
// ValidatingAdmissionPolicies (and bindings) that limit the account to the
// fields leakguard writes. The rest (Deployment, Service, ...) is not
// installed: the lab runs serve as a process.
var leakguardKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// PolicyEnforcement bounds InstallLeakguard's wait for the admission
// policies to be enforced: the API server's admission plugin learns of a
// new policy through an informer, and compiles it, a moment after it is
// created.
const PolicyEnforcement = 30 * time.Second

// InstallLeakguard creates deploy/leakguard's RBAC and admission policies
// (under repoRoot), with the named components of deploy/components (the
// rights of the remediators a policy enables: "restart", "node",
// "profile"), rendered with kustomize as a user's overlay renders them,
// and returns the service account they bind, once the policies are
// enforced: everything that acts as that account afterwards does so under
// them.
func InstallLeakguard(ctx context.Context, l *Lab, repoRoot string, components ...string) (ns, name string, err error) {
	return InstallLeakguardAs(ctx, l, repoRoot, "", components...)
}

// InstallLeakguardAs is InstallLeakguard under other names, when rename is
// not empty: the namespace rename instead of deploy/'s, every
// cluster-scoped object's name suffixed with "-"+rename, and the admission
// policies matching the account in rename. A second account so installed
// has the rights of its components and no others, beside the first, in
// one lab: the tests of what the base alone refuses use one.
func InstallLeakguardAs(ctx context.Context, l *Lab, repoRoot, rename string, components ...string) (ns, name string, err error) {
	_, rendered, err := RenderLeakguard(filepath.Join(repoRoot, "deploy"), components...)
	if err != nil {
		return "", "", err
	}
	var objs []runtime.Object
	for _, u := range rendered {
		if !leakguardKinds[u.GetKind()] {
			continue
		}
		obj, err := DecodeStrict(u)
		if err != nil {
			return "", "", err
		}
		objs = append(objs, obj.(runtime.Object))
	}
	if rename != "" {
		if objs, err = relocate(objs, rename); err != nil {
			return "", "", err
		}
	}
	var policies []string
	for _, obj := range objs {
		switch o := obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			for _, s := range o.Subjects {
				if s.Kind == rbacv1.ServiceAccountKind {
					ns, name = s.Namespace, s.Name
				}
			}
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			policies = append(policies, o.Name)
		}
	}
	if name == "" {
		return "", "", errors.New("lab: no ClusterRoleBinding of deploy/leakguard binds a service account")
	}
	if len(policies) == 0 {
		return "", "", errors.New("lab: deploy/leakguard holds no ValidatingAdmissionPolicy")
	}
	if err := Create(ctx, l.Admin, objs...); err != nil {
		return "", "", err
	}
	// Only an account that may evict can be denied an eviction by the
	// evictions policy; one without RBAC's grant is probed with the
	// updates policy alone.
	evicts := slices.ContainsFunc(components, func(c string) bool { return c == "restart" || c == "node" })
	if err := l.waitPoliciesEnforced(ctx, ns, name, policies, evicts); err != nil {
		return "", "", err
	}
	if err := l.waitGranted(ctx, ns, name, objs); err != nil {
		return "", "", err
	}
	return ns, name, nil
}

// waitGranted waits, at most PolicyEnforcement, until the API server
// grants the service account ns/name every rule of the ClusterRoles in
// objs (SelfSubjectAccessReview as the account): RBAC learns of each
// binding through an informer, and a component's may come after the
// base's, which waitPoliciesEnforced's probes need.
func (l *Lab) waitGranted(ctx context.Context, ns, name string, objs []runtime.Object) error {
	var want []authorizationv1.SelfSubjectAccessReviewSpec
	for _, obj := range objs {
		role, ok := obj.(*rbacv1.ClusterRole)
		if !ok {
			continue
		}
		for _, r := range role.Rules {
			for _, verb := range r.Verbs {
				for _, u := range r.NonResourceURLs {
					want = append(want, authorizationv1.SelfSubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: verb, Path: strings.TrimSuffix(u, "*") + "x"}})
				}
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						resource, sub, _ := strings.Cut(res, "/")
						want = append(want, authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: g, Resource: resource, Subresource: sub}})
					}
				}
			}
		}
	}
	cfg, err := l.ServiceAccountConfig(ctx, ns, name)
	if err != nil {
		return err
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, PolicyEnforcement)
	defer cancel()
	for {
		var missing []string
		for _, spec := range want {
			r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(wctx, &authorizationv1.SelfSubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
			if err != nil || !r.Status.Allowed {
				missing = append(missing, fmt.Sprintf("%+v %+v (%v)", spec.ResourceAttributes, spec.NonResourceAttributes, err))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("lab: %s/%s not granted after %s: %v", ns, name, PolicyEnforcement, missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PolicyComponents returns the components of deploy/components (their
// directory names) that grant the rights of policy's remediators, as
// serve's start-up check asks for them (remediate.RequiredRights); nil
// policy is the embedded default.
func PolicyComponents(policy []byte) ([]string, error) {
	reg := builtin.Registry()
	var p *remediate.Policy
	var err error
	if policy == nil {
		p, err = remediate.DefaultPolicy(reg)
	} else {
		p, err = remediate.ParsePolicy(policy, reg)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var out []string
	for _, g := range remediate.RequiredGrants(remediate.RequiredRights(p, "", false)) {
		c, ok := strings.CutPrefix(g, "deploy/components/")
		if !ok {
			return nil, fmt.Errorf("lab: grant %s is not a component of deploy/components", g)
		}
		out = append(out, c)
	}
	return out, nil
}

// relocate renames deploy/leakguard's objects for InstallLeakguardAs.
func relocate(objs []runtime.Object, rename string) ([]runtime.Object, error) {
	var ns string
	for _, obj := range objs {
		if n, ok := obj.(*corev1.Namespace); ok {
			ns = n.Name
		}
	}
	if ns == "" {
		return nil, errors.New("lab: deploy/leakguard renders no Namespace")
	}
	suffix := func(s string) string { return s + "-" + rename }
	subjects := func(ss []rbacv1.Subject) {
		for i := range ss {
			if ss[i].Kind == rbacv1.ServiceAccountKind && ss[i].Namespace == ns {
				ss[i].Namespace = rename
			}
		}
	}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *corev1.Namespace:
			o.Name = rename
			delete(o.Labels, corev1.LabelMetadataName)
		case *corev1.ServiceAccount:
			o.Namespace = rename
		case *rbacv1.Role:
			o.Namespace = rename
		case *rbacv1.RoleBinding:
			o.Namespace = rename
			subjects(o.Subjects)
		case *rbacv1.ClusterRole:
			o.Name = suffix(o.Name)
		case *rbacv1.ClusterRoleBinding:
			o.Name, o.RoleRef.Name = suffix(o.Name), suffix(o.RoleRef.Name)
			subjects(o.Subjects)
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			o.Name = suffix(o.Name)
			for i, m := range o.Spec.MatchConditions {
				before := m.Expression
				o.Spec.MatchConditions[i].Expression = strings.ReplaceAll(m.Expression, "system:serviceaccount:"+ns+":", "system:serviceaccount:"+rename+":")
				if o.Spec.MatchConditions[i].Expression == before {
					return nil, fmt.Errorf("lab: policy %s: match condition %q names no account in %s", o.Name, before, ns)
				}
			}
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			o.Name, o.Spec.PolicyName = suffix(o.Name), suffix(o.Spec.PolicyName)
		default:
			return nil, fmt.Errorf("lab: cannot relocate %T", obj)
		}
	}
	return objs, nil
}

// probePod is the pod waitPoliciesEnforced probes the policies with, in
// leakguard's namespace while it waits.
const probePod = "leakguard-policy-probe"

// waitPoliciesEnforced waits, at most PolicyEnforcement, until every
// policy denies the service account ns/name a write it denies: as the
// account, a label patch of a probe pod (the updates policy) and, when
// evicts, an eviction of it with gracePeriodSeconds 0 (the evictions
// policy), both dry runs, which admission judges and nothing stores. RBAC's grant
// arrives through an informer as well: a 403 from RBAC is waited out too.
func (l *Lab) waitPoliciesEnforced(ctx context.Context, ns, name string, policies []string, evicts bool) error {
	if err := l.EnsureDefaultServiceAccount(ctx, ns); err != nil {
		return err
	}
	pods := l.Admin.CoreV1().Pods(ns)
	// Leakguard's namespace enforces the restricted Pod Security level.
	yes, no := true, false
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: probePod},
		Spec: corev1.PodSpec{
			// Bound to a node that does not exist, so that no kubelet
			// runs it: on the real node the scheduler would place it
			// there, and the kubelet, failing to tear down the network
			// of its sandbox (it is no hostNetwork pod), would keep its
			// cgroup after its deletion, an orphan.
			NodeName:        "leakguard-lab-probe-nowhere",
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "probe", Image: "registry.invalid/probe:1", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("lab: create the policy probe pod: %w", err)
	}
	defer func() {
		zero := int64(0)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = pods.Delete(dctx, probePod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	cfg, err := l.ServiceAccountConfig(ctx, ns, name)
	if err != nil {
		return err
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dryRun := []string{metav1.DryRunAll}
	zero := int64(0)
	probes := map[string]func(context.Context) error{
		"a label patch": func(ctx context.Context) error {
			_, err := sa.CoreV1().Pods(ns).Patch(ctx, probePod, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"leakguard-probe":"x"}}}`), metav1.PatchOptions{DryRun: dryRun})
			return err
		},
	}
	if evicts {
		probes["an eviction with gracePeriodSeconds 0"] = func(ctx context.Context) error {
			return sa.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: probePod, Namespace: ns},
				DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun, GracePeriodSeconds: &zero},
			})
		}
	}
	wctx, cancel := context.WithTimeout(ctx, PolicyEnforcement)
	defer cancel()
	denied := map[string]bool{}
	last := map[string]string{}
	for {
		for what, probe := range probes {
			if denied[what] {
				continue
			}
			err := probe(wctx)
			switch {
			case err == nil:
				last[what] = "allowed"
			case strings.Contains(err.Error(), "ValidatingAdmissionPolicy") && containsAny(err.Error(), policies):
				denied[what] = true
			default:
				last[what] = err.Error()
			}
		}
		if len(denied) == len(probes) {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("lab: deploy/leakguard's admission policies %v not enforced after %s: %v", policies, PolicyEnforcement, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
