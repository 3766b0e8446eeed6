package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the agent's DaemonSet and what goes with it.
const manifestDir = "../deploy/agent"

func readManifest(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(manifestDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// TestManifestsListed checks that the kustomization lists exactly the
// manifests in the directory.
func TestManifestsListed(t *testing.T) {
	var k struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want the directory's manifests %v", got, want)
	}
}

// TestDaemonSetLeastPrivilege checks that the agent runs with no privilege
// beyond reading the cgroup tree.
func TestDaemonSetLeastPrivilege(t *testing.T) {
	var ds appsv1.DaemonSet
	readManifest(t, "daemonset.yaml", &ds)
	spec := ds.Spec.Template.Spec
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("pod uses host namespaces: network %v, pid %v, ipc %v", spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("want one container and no init container, got %d and %d", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container is privileged")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
	}

	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	if len(hostPaths) != 1 || hostPaths["cgroup"] != "/sys/fs/cgroup" {
		t.Errorf("hostPath volumes = %v, want only cgroup: /sys/fs/cgroup", hostPaths)
	}
	var cgroupMount string
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("volume mount %s at %s is not read-only", m.Name, m.MountPath)
		}
		if m.Name == "cgroup" {
			cgroupMount = m.MountPath
		}
	}
	if want := "--cgroup-root=" + cgroupMount; cgroupMount == "" || !slices.Contains(c.Args, want) {
		t.Errorf("args %v do not contain %q", c.Args, want)
	}
	if len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Errorf("args %v do not start with the agent subcommand", c.Args)
	}
	var nodeFromAPI bool
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeFromAPI = true
		}
	}
	if !nodeFromAPI {
		t.Error("NODE_NAME is not set from spec.nodeName")
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9808 {
		t.Errorf("ports = %+v, want metrics: 9808", c.Ports)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("no /healthz liveness probe")
	}
	if _, ok := c.Resources.Limits["memory"]; !ok {
		t.Error("no memory limit")
	}
}

// TestClusterRoleReadsPodsOnly checks the agent's only permission.
func TestClusterRoleReadsPodsOnly(t *testing.T) {
	var role rbacv1.ClusterRole
	readManifest(t, "clusterrole.yaml", &role)
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Verbs, want[0].Verbs) ||
		!slices.Equal(role.Rules[0].Resources, want[0].Resources) || !slices.Equal(role.Rules[0].APIGroups, want[0].APIGroups) {
		t.Errorf("ClusterRole rules = %+v, want %+v", role.Rules, want)
	}
	var binding rbacv1.ClusterRoleBinding
	readManifest(t, "clusterrolebinding.yaml", &binding)
	var sa struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	data, err := os.ReadFile(filepath.Join(manifestDir, "serviceaccount.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &sa); err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	readManifest(t, "daemonset.yaml", &ds)
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Metadata.Name ||
		ds.Spec.Template.Spec.ServiceAccountName != sa.Metadata.Name {
		t.Errorf("binding %+v does not tie role %q to the DaemonSet's service account %q (account %q)",
			binding, role.Name, ds.Spec.Template.Spec.ServiceAccountName, sa.Metadata.Name)
	}
}

// TestPodMonitorScrapesAgent checks that the PodMonitor selects the agent's
// pods, on its port, as the job the rules select.
func TestPodMonitorScrapesAgent(t *testing.T) {
	var pm monitoringv1.PodMonitor
	readManifest(t, "podmonitor.yaml", &pm)
	var ds appsv1.DaemonSet
	readManifest(t, "daemonset.yaml", &ds)
	podLabels := ds.Spec.Template.Labels
	for k, v := range pm.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("PodMonitor selects %s=%s, the agent's pods have %q", k, v, podLabels[k])
		}
	}
	if job := podLabels[pm.Spec.JobLabel]; job != "leakguard-agent" {
		t.Errorf("job label from pod label %q = %q, want leakguard-agent (the rules' selector)", pm.Spec.JobLabel, job)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor endpoints = %d, want 1", len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port == nil || *ep.Port != "metrics" || !strings.HasSuffix(ep.Path, "/metrics") {
		t.Errorf("PodMonitor endpoint port %v path %q, want metrics and /metrics", ep.Port, ep.Path)
	}
}
