package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate/profile"
)

func readManifest(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, "deploy", "leakguard", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestServeClusterRole pins the ClusterRole to exactly the verbs serve
// uses: reads of targets, owners, nodes and namespaces, patches of what it
// annotates, and Event writes.
func TestServeClusterRole(t *testing.T) {
	var role rbacv1.ClusterRole
	readManifest(t, "clusterrole.yaml", &role)
	got := map[string][]string{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := g + "/" + res
				if _, dup := got[key]; dup {
					t.Errorf("%s appears in two rules", key)
				}
				got[key] = r.Verbs
			}
		}
		for _, u := range r.NonResourceURLs {
			got["url:"+u] = r.Verbs
		}
	}
	// serve reads one object at a time (Get) and never watches; it lists
	// nodes; it creates Events and patches the count of an aggregated
	// one. The rights of restart, cordon, drain and profile (evictions,
	// the list of every pod, pods/proxy, /debug/pprof) are components of
	// deploy/components, not the base's (deploy/deploy_test.go).
	rw := []string{"get", "patch"}
	want := map[string][]string{
		"/pods": rw, "/nodes": {"get", "list", "patch"}, "/namespaces": {"get"},
		"apps/replicasets": rw, "apps/deployments": rw, "apps/statefulsets": rw, "apps/daemonsets": rw,
		"batch/jobs": rw, "batch/cronjobs": {"get"}, "argoproj.io/rollouts": {"get"}, "/events": {"create", "get", "patch"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClusterRole rules mismatch (-want +got):\n%s", diff)
	}
}

// TestServeRole pins the namespaced Role to the budget Lease's verbs, and
// its binding to serve's service account.
func TestServeRole(t *testing.T) {
	var role rbacv1.Role
	readManifest(t, "role.yaml", &role)
	want := []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("Role rules mismatch (-want +got):\n%s", diff)
	}
	var binding rbacv1.RoleBinding
	readManifest(t, "rolebinding.yaml", &binding)
	if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != "leakguard-serve" {
		t.Errorf("RoleBinding = %+v, want Role %s bound to leakguard-serve", binding, role.Name)
	}
}

// TestServeDeployment checks that the Deployment runs two replicas whose
// arguments parse as serve's flags, and that the files they name are
// where the Secrets are mounted.
func TestServeDeployment(t *testing.T) {
	var d appsv1.Deployment
	readManifest(t, "deployment.yaml", &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args = %v, want serve first", c.Args)
	}
	var f serveFlags
	fs := serveFlagSet(&f, io.Discard)
	if err := fs.Parse(c.Args[1:]); err != nil || fs.NArg() != 0 {
		t.Fatalf("serve flags %v: %v (left %v)", c.Args[1:], err, fs.Args())
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	for _, file := range []string{f.server.BearerTokenFile, f.server.TLSCertFile, f.server.TLSKeyFile} {
		if file == "" || !mounts[filepath.Dir(file)] {
			t.Errorf("flag file %q is not under a mounted volume %v", file, mounts)
		}
	}
	if !strings.HasSuffix(f.listen, ":8443") {
		t.Errorf("--listen-address = %q, want port 8443 (the receiver.yaml URL)", f.listen)
	}
	// POD_NAMESPACE: the budget Lease's namespace; POD_NAME: the replica
	// that profile's Event names.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		} else {
			env[e.Name] = "value " + e.Value
		}
	}
	if diff := cmp.Diff(map[string]string{"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}, env); diff != "" {
		t.Errorf("env (-want +got, the downward API's field):\n%s", diff)
	}
	// The profile store: --profile-dir is an emptyDir on disk whose
	// sizeLimit holds --profile-max-bytes and every fetch streaming at once
	// at profile's default maxBytes, so that pruning, not the kubelet's
	// eviction, bounds it.
	var profiles *corev1.Volume
	for _, m := range c.VolumeMounts {
		if m.MountPath == f.profiles.dir {
			for i, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					profiles = &d.Spec.Template.Spec.Volumes[i]
				}
			}
		}
	}
	switch {
	case f.profiles.dir == "":
		t.Errorf("serve has no --profile-dir: profile would be held (no-profile-store)")
	case profiles == nil || profiles.EmptyDir == nil:
		t.Errorf("--profile-dir %s is not the mount of an emptyDir (%+v)", f.profiles.dir, profiles)
	case profiles.EmptyDir.Medium == corev1.StorageMediumMemory:
		t.Errorf("the profile emptyDir is in memory: its files count against the memory limit")
	case profiles.EmptyDir.SizeLimit == nil:
		t.Errorf("the profile emptyDir has no sizeLimit")
	default:
		need := f.profiles.maxBytes + int64(f.profiles.maxFetches)*profile.DefaultProfileFetchBytes
		if got := profiles.EmptyDir.SizeLimit.Value(); got < need {
			t.Errorf("profile emptyDir sizeLimit %d bytes, want at least --profile-max-bytes + fetches × 16 MiB = %d", got, need)
		}
	}
	if d.Spec.Template.Spec.ServiceAccountName != "leakguard-serve" {
		t.Errorf("serviceAccountName = %q, want leakguard-serve", d.Spec.Template.Spec.ServiceAccountName)
	}
}

// TestServePodDisruptionBudget checks that the budget keeps one replica but
// does not block a node drain when the replicas are unready, as they all
// are while Prometheus is down (readiness checks it).
func TestServePodDisruptionBudget(t *testing.T) {
	var pdb policyv1.PodDisruptionBudget
	readManifest(t, "poddisruptionbudget.yaml", &pdb)
	if m := pdb.Spec.MinAvailable; m == nil || m.IntValue() != 1 {
		t.Errorf("minAvailable = %v, want 1", m)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy = %v, want %s", p, policyv1.AlwaysAllow)
	}
}
