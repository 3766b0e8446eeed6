package lab

import (
	"context"
	"fmt"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LeakguardManifests are deploy/leakguard's files that grant serve its
// permissions, read as they ship: the namespace, the service account, the
// ClusterRole and the Role of its budget Leases, and their bindings.
var LeakguardManifests = []string{"namespace.yaml", "serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml", "role.yaml", "rolebinding.yaml"}

// InstallLeakguard creates deploy/leakguard's RBAC manifests (under
// repoRoot) in l and returns the service account they bind.
func InstallLeakguard(ctx context.Context, l *Lab, repoRoot string) (ns, name string, err error) {
	paths := make([]string, len(LeakguardManifests))
	for i, f := range LeakguardManifests {
		paths[i] = filepath.Join(repoRoot, "deploy", "leakguard", f)
	}
	objs, err := ReadManifests(paths...)
	if err != nil {
		return "", "", err
	}
	for _, obj := range objs {
		if b, ok := obj.(*rbacv1.ClusterRoleBinding); ok {
			for _, s := range b.Subjects {
				if s.Kind == rbacv1.ServiceAccountKind {
					ns, name = s.Namespace, s.Name
				}
			}
		}
	}
	if name == "" {
		return "", "", fmt.Errorf("lab: no ClusterRoleBinding in deploy/leakguard's %v binds a service account", LeakguardManifests)
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
	return ns, name, nil
}
