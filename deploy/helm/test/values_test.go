package test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// otherValues sets every value away from its default.
func otherValues() map[string]any {
	return map[string]any{
		"namespace":        map[string]any{"name": "lg", "create": true},
		"commonLabels":     map[string]any{"team": "sre"},
		"image":            map[string]any{"repository": "registry.example/lg", "tag": "v9.9.9", "digest": "sha256:" + strings.Repeat("a", 64), "pullPolicy": "Always"},
		"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
		"serve": map[string]any{
			"replicas":                  int64(3),
			"logLevel":                  "debug",
			"resources":                 map[string]any{"limits": map[string]any{"memory": "256Mi"}, "requests": map[string]any{"cpu": "50m", "memory": "64Mi"}},
			"topologySpreadConstraints": []any{map[string]any{"maxSkew": int64(2), "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "leakguard"}}}},
			"affinity":                  map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "In", "values": []any{"system"}}}}}}}},
			"nodeSelector":              map[string]any{"pool": "system"},
			"tolerations":               []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
			"priorityClassName":         "system-cluster-critical",
			"extraArgs":                 []any{"--cluster=prod-eu"},
			"podDisruptionBudget":       map[string]any{"enabled": false},
		},
		"prometheus": map[string]any{
			"url":          "https://thanos-query.observability.svc:9090",
			"clientConfig": map[string]any{"http_headers": map[string]any{"X-Scope-OrgID": map[string]any{"values": []any{"team-a"}}}},
		},
		"dryRun": true,
		"policy": "dryRun: true\n",
		"token":  map[string]any{"create": true, "value": "t0k3n", "key": "bearer"},
		"tls": map[string]any{"mode": "certManager", "certManager": map[string]any{
			"issuerRef": map[string]any{"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}},
		"monitoring":         map[string]any{"namespace": "observability", "labels": map[string]any{"release": "prom"}},
		"alertmanagerConfig": map[string]any{"labels": map[string]any{"alertmanagerConfig": "leakguard"}},
		"podMonitor":         map[string]any{"enabled": false},
		"networkPolicy":      map[string]any{"enabled": false},
		"admissionPolicies":  map[string]any{"enabled": false},
		"dashboards": map[string]any{
			"sidecar":         map[string]any{"enabled": false},
			"grafanaOperator": map[string]any{"enabled": true, "instanceSelector": map[string]any{"matchLabels": map[string]any{"dashboards": "main"}}},
		},
		"agent": map[string]any{
			"image":        map[string]any{"repository": "registry.example/lg-agent", "tag": "v9.9.8"},
			"resources":    map[string]any{"limits": map[string]any{"memory": "96Mi"}, "requests": map[string]any{"cpu": "5m", "memory": "16Mi"}},
			"tolerations":  []any{},
			"nodeSelector": map[string]any{"kubernetes.io/os": "linux"},
		},
		"rbac": map[string]any{"extraOwnerRules": []any{map[string]any{"apiGroups": []any{"apps.kruise.io"}, "resources": []any{"clonesets"}, "verbs": []any{"get"}}}},
		"remediators": map[string]any{
			"restart": map[string]any{"enabled": true},
			"node":    map[string]any{"enabled": true},
			"profile": map[string]any{"enabled": true},
		},
	}
}

func get(t *testing.T, objs map[string]*unstructured.Unstructured, k string) *unstructured.Unstructured {
	t.Helper()
	o, ok := objs[k]
	if !ok {
		var have []string
		for k := range objs {
			have = append(have, k)
		}
		t.Fatalf("no %s; the render has %v", k, have)
	}
	return o
}

func field(t *testing.T, o *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s: no %v (%v)", key(o), path, err)
	}
	return v
}

func container(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := field(t, o, "spec", "template", "spec", "containers").([]any)
	return cs[0].(map[string]any)
}

// TestTemplateValues renders the chart with otherValues and checks that
// each value lands where it should.
func TestTemplateValues(t *testing.T) {
	objs := byKey(mustRender(t, otherValues()))
	dep := get(t, objs, "Deployment lg/leakguard-serve")
	c := container(t, dep)
	pod := field(t, dep, "spec", "template", "spec").(map[string]any)
	args := c["args"].([]any)
	var argStrings []string
	for _, a := range args {
		argStrings = append(argStrings, a.(string))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"namespace", dep.GetNamespace(), "lg"},
		{"commonLabels", dep.GetLabels()["team"], "sre"},
		{"image", c["image"], "registry.example/lg:v9.9.9@sha256:" + strings.Repeat("a", 64)},
		{"pullPolicy", c["imagePullPolicy"], "Always"},
		{"imagePullSecrets", pod["imagePullSecrets"], []any{map[string]any{"name": "regcred"}}},
		{"replicas", field(t, dep, "spec", "replicas"), int64(3)},
		{"resources", c["resources"], map[string]any{"limits": map[string]any{"memory": "256Mi"}, "requests": map[string]any{"cpu": "50m", "memory": "64Mi"}}},
		{"topologySpread", pod["topologySpreadConstraints"].([]any)[0].(map[string]any)["topologyKey"], "topology.kubernetes.io/zone"},
		{"affinity", pod["affinity"] != nil, true},
		{"nodeSelector", pod["nodeSelector"], map[string]any{"pool": "system"}},
		{"tolerations", pod["tolerations"], []any{map[string]any{"key": "dedicated", "operator": "Exists"}}},
		{"priorityClassName", pod["priorityClassName"], "system-cluster-critical"},
		{"args", argStrings, []string{
			"serve", "--listen-address=:8443",
			"--prometheus-url=https://thanos-query.observability.svc:9090",
			"--bearer-token-file=/etc/leakguard/token/bearer",
			"--tls-cert-file=/etc/leakguard/tls/tls.crt", "--tls-key-file=/etc/leakguard/tls/tls.key",
			"--policy=/etc/leakguard/policy/policy.yaml", "--profile-dir=/var/lib/leakguard/profiles", "--log-level=debug",
			"--dry-run", "--prometheus-config-file=/etc/leakguard/prometheus/config.yaml", "--cluster=prod-eu",
		}},
		{"token Secret", get(t, objs, "Secret lg/leakguard-webhook-token").Object["stringData"], map[string]any{"bearer": "t0k3n"}},
		{"token Secret for Alertmanager", get(t, objs, "Secret observability/leakguard-webhook-token").Object["stringData"], map[string]any{"bearer": "t0k3n"}},
		{"token volume", pod["volumes"].([]any)[0].(map[string]any)["secret"], map[string]any{"secretName": "leakguard-webhook-token"}},
		{"prometheus config", get(t, objs, "Secret lg/leakguard-prometheus-config").Object["stringData"], map[string]any{"config.yaml": "http_headers:\n  X-Scope-OrgID:\n    values:\n    - team-a\n"}},
		{"certificate issuer", field(t, get(t, objs, "Certificate lg/leakguard-webhook"), "spec", "issuerRef"), map[string]any{"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
		{"certificate secret", field(t, get(t, objs, "Certificate lg/leakguard-webhook"), "spec", "secretName"), "leakguard-webhook-tls"},
		{"CA copy's issuer", field(t, get(t, objs, "Certificate observability/leakguard-webhook-ca"), "spec", "issuerRef"), map[string]any{"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
		{"certificate names", field(t, get(t, objs, "Certificate lg/leakguard-webhook"), "spec", "dnsNames"), []any{"leakguard.lg.svc", "leakguard.lg.svc.cluster.local"}},
		{"monitoring labels", get(t, objs, "PrometheusRule observability/leakguard").GetLabels()["release"], "prom"},
		{"monitoring labels on the ServiceMonitor", get(t, objs, "ServiceMonitor lg/leakguard-serve").GetLabels()["release"], "prom"},
		{"AlertmanagerConfig labels", get(t, objs, "AlertmanagerConfig observability/leakguard").GetLabels()["alertmanagerConfig"], "leakguard"},
		{"AlertmanagerConfig token", field(t, get(t, objs, "AlertmanagerConfig observability/leakguard"), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)["httpConfig"].(map[string]any)["authorization"], map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "leakguard-webhook-token", "key": "bearer"}}},
		{"AlertmanagerConfig URL", field(t, get(t, objs, "AlertmanagerConfig observability/leakguard"), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)["url"], "https://leakguard.lg.svc:8443/api/v1/alerts"},
		{"agent namespace and image", container(t, get(t, objs, "DaemonSet observability/leakguard-agent"))["image"], "registry.example/lg-agent:v9.9.8"},
		{"agent resources", container(t, get(t, objs, "DaemonSet observability/leakguard-agent"))["resources"], map[string]any{"limits": map[string]any{"memory": "96Mi"}, "requests": map[string]any{"cpu": "5m", "memory": "16Mi"}}},
		{"agent tolerations", field(t, get(t, objs, "DaemonSet observability/leakguard-agent"), "spec", "template", "spec").(map[string]any)["tolerations"], []any{}},
		{"agent nodeSelector", field(t, get(t, objs, "DaemonSet observability/leakguard-agent"), "spec", "template", "spec", "nodeSelector"), map[string]any{"kubernetes.io/os": "linux"}},
		{"grafana-operator selector", field(t, get(t, objs, "GrafanaDashboard observability/leakguard-overview"), "spec", "instanceSelector"), map[string]any{"matchLabels": map[string]any{"dashboards": "main"}}},
		{"ServiceAccount subject", field(t, get(t, objs, "ClusterRoleBinding leakguard-serve"), "subjects"), []any{map[string]any{"kind": "ServiceAccount", "name": "leakguard-serve", "namespace": "lg"}}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	rules := field(t, get(t, objs, "ClusterRole leakguard-serve"), "rules").([]any)
	if diff := cmp.Diff(map[string]any{"apiGroups": []any{"apps.kruise.io"}, "resources": []any{"clonesets"}, "verbs": []any{"get"}}, rules[len(rules)-1]); diff != "" {
		t.Errorf("extraOwnerRules: the last rule (-want +got):\n%s", diff)
	}
	for k, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "leakguard-policy-") {
			if diff := cmp.Diff(map[string]any{"policy.yaml": "dryRun: true\n"}, o.Object["data"]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", k, diff)
			}
		}
	}
	present := []string{
		"Namespace lg", "Certificate lg/leakguard-webhook",
		"ClusterRole leakguard-serve-restart", "ClusterRoleBinding leakguard-serve-node", "ClusterRole leakguard-serve-profile",
		"GrafanaDashboard observability/leakguard-workload",
	}
	for _, k := range present {
		get(t, objs, k)
	}
	absent := []string{
		"PodDisruptionBudget lg/leakguard-serve", "PodMonitor observability/leakguard-agent",
		"NetworkPolicy lg/leakguard-serve", "ValidatingAdmissionPolicy leakguard-serve-updates",
		"ValidatingAdmissionPolicyBinding leakguard-serve-evictions", "ConfigMap observability/grafana-dashboard-leakguard-overview",
		// An issuerRef of the user's: the chart makes no CA.
		"ClusterIssuer leakguard-ca", "ClusterIssuer leakguard-selfsigned", "Certificate cert-manager/leakguard-ca",
	}
	for _, k := range absent {
		if _, ok := objs[k]; ok {
			t.Errorf("%s is rendered, want it left out", k)
		}
	}
}

// TestTemplateOptionalObjects checks each optional object's value (and
// the agent's) that otherValues leaves on: off, the object is gone and
// nothing else is; and the agent's image digest, pull policy and affinity.
func TestTemplateOptionalObjects(t *testing.T) {
	defaults := byKey(mustRender(t, nil))
	for _, tc := range []struct {
		value string
		vals  map[string]any
		gone  []string
	}{
		{"alertmanagerConfig.enabled", map[string]any{"alertmanagerConfig": map[string]any{"enabled": false}}, []string{"AlertmanagerConfig monitoring/leakguard"}},
		{"serviceMonitor.enabled", map[string]any{"serviceMonitor": map[string]any{"enabled": false}}, []string{"ServiceMonitor leakguard/leakguard-serve"}},
		{"prometheusRule.enabled", map[string]any{"prometheusRule": map[string]any{"enabled": false}}, []string{"PrometheusRule monitoring/leakguard"}},
		{"agent.enabled", map[string]any{"agent": map[string]any{"enabled": false}}, []string{
			"DaemonSet monitoring/leakguard-agent", "ServiceAccount monitoring/leakguard-agent", "ClusterRole leakguard-agent",
			"ClusterRoleBinding leakguard-agent", "PriorityClass leakguard-agent", "PodMonitor monitoring/leakguard-agent",
		}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			objs := byKey(mustRender(t, tc.vals))
			for _, k := range tc.gone {
				get(t, defaults, k)
				if _, ok := objs[k]; ok {
					t.Errorf("%s is rendered with %s off", k, tc.value)
				}
			}
			if got, want := len(objs), len(defaults)-len(tc.gone); got != want {
				t.Errorf("%d objects, want %d (the defaults' %d without %d)", got, want, len(defaults), len(tc.gone))
			}
		})
	}
	affinity := map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}}}}}}}
	objs := byKey(mustRender(t, map[string]any{"agent": map[string]any{"image": map[string]any{"digest": "sha256:" + strings.Repeat("b", 64), "pullPolicy": "IfNotPresent"}, "affinity": affinity}}))
	ds := get(t, objs, "DaemonSet monitoring/leakguard-agent")
	if diff := cmp.Diff(affinity, field(t, ds, "spec", "template", "spec", "affinity")); diff != "" {
		t.Errorf("agent affinity (-want +got):\n%s", diff)
	}
	c := container(t, ds)
	if got, want := c["image"], "ghcr.io/leakguard/leakguard-agent:v0.1.0@sha256:"+strings.Repeat("b", 64); got != want {
		t.Errorf("agent image %v, want %s", got, want)
	}
	if got := c["imagePullPolicy"]; got != "IfNotPresent" {
		t.Errorf("agent imagePullPolicy %v, want IfNotPresent", got)
	}
}
