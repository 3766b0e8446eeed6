package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// LeakguardManifests are deploy/leakguard's files that grant serve its
// permissions and bound them, read as they ship: the namespace, the
// service account, the ClusterRole and the Role of its budget Leases,
// their bindings, and the ValidatingAdmissionPolicies (and bindings) that
// limit the account to the fields leakguard writes.
var LeakguardManifests = []string{"namespace.yaml", "serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml", "role.yaml", "rolebinding.yaml", "validatingadmissionpolicy.yaml"}

// PolicyEnforcement bounds InstallLeakguard's wait for the admission
// policies to be enforced: the API server's admission plugin learns of a
// new policy through an informer, and compiles it, a moment after it is
// created.
const PolicyEnforcement = 30 * time.Second

// InstallLeakguard creates deploy/leakguard's RBAC manifests and admission
// policies (under repoRoot) in l and returns the service account they
// bind, once the policies are enforced: everything that acts as that
// account afterwards does so under them.
func InstallLeakguard(ctx context.Context, l *Lab, repoRoot string) (ns, name string, err error) {
	paths := make([]string, len(LeakguardManifests))
	for i, f := range LeakguardManifests {
		paths[i] = filepath.Join(repoRoot, "deploy", "leakguard", f)
	}
	objs, err := ReadManifests(paths...)
	if err != nil {
		return "", "", err
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
		return "", "", fmt.Errorf("lab: no ClusterRoleBinding in deploy/leakguard's %v binds a service account", LeakguardManifests)
	}
	if len(policies) == 0 {
		return "", "", errors.New("lab: deploy/leakguard/validatingadmissionpolicy.yaml holds no ValidatingAdmissionPolicy")
	}
	// The Role and its binding name no namespace: kustomize puts them in
	// leakguard's (deploy/leakguard/kustomization.yaml), as this does.
	for _, obj := range objs {
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" {
			switch obj.(type) {
			case *rbacv1.Role, *rbacv1.RoleBinding:
				m.SetNamespace(ns)
			}
		}
	}
	if err := Create(ctx, l.Admin, objs...); err != nil {
		return "", "", err
	}
	if err := l.waitPoliciesEnforced(ctx, ns, name, policies); err != nil {
		return "", "", err
	}
	return ns, name, nil
}

// probePod is the pod waitPoliciesEnforced probes the policies with, in
// leakguard's namespace while it waits.
const probePod = "leakguard-policy-probe"

// waitPoliciesEnforced waits, at most PolicyEnforcement, until every
// policy denies the service account ns/name a write it denies: as the
// account, a label patch of a probe pod (the updates policy) and an
// eviction of it with gracePeriodSeconds 0 (the evictions policy), both
// dry runs, which admission judges and nothing stores. RBAC's grant
// arrives through an informer as well: a 403 from RBAC is waited out too.
func (l *Lab) waitPoliciesEnforced(ctx context.Context, ns, name string, policies []string) error {
	if err := l.EnsureDefaultServiceAccount(ctx, ns); err != nil {
		return err
	}
	pods := l.Admin.CoreV1().Pods(ns)
	// Leakguard's namespace enforces the restricted Pod Security level.
	yes, no := true, false
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: probePod},
		Spec: corev1.PodSpec{
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
		"an eviction with gracePeriodSeconds 0": func(ctx context.Context) error {
			return sa.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: probePod, Namespace: ns},
				DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun, GracePeriodSeconds: &zero},
			})
		},
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
