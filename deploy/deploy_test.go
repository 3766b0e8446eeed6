// Package deploy holds no Go code: it is leakguard's kustomize base and its
// overlays. This test renders them with the kustomize API, as `kubectl
// apply -k` does, and checks what they install without a cluster; the
// server-side dry-run of every object against a real kube-apiserver is in
// test/e2e (TestDeployDryRun).
package deploy

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// kustomizations are every kustomization a user may apply.
var kustomizations = []string{".", "leakguard", "agent", "overlays/kube-prometheus-stack"}

type rendered struct {
	stream []byte
	objs   []*unstructured.Unstructured
	typed  []any
}

func render(t *testing.T, k string) rendered {
	t.Helper()
	stream, objs, err := lab.RenderDeploy(".", k)
	if err != nil {
		t.Fatalf("render %s: %v", k, err)
	}
	r := rendered{stream: stream, objs: objs}
	for _, obj := range objs {
		typed, err := lab.DecodeStrict(obj)
		if err != nil {
			t.Errorf("render %s: %v", k, err)
			continue
		}
		r.typed = append(r.typed, typed)
	}
	return r
}

// find returns the typed object of the kind and name, failing when absent.
func find[T any](t *testing.T, r rendered, name string) T {
	t.Helper()
	for _, obj := range r.typed {
		if o, ok := obj.(T); ok {
			if m, ok := any(o).(interface{ GetName() string }); ok && m.GetName() == name {
				return o
			}
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

var (
	releaseTag = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)
	latest     = regexp.MustCompile(`:latest(["'\s]|$)`)
)

// TestImages: every kustomization renders, every object decodes strictly,
// and every container runs leakguard's image at one release tag; nothing
// anywhere says :latest.
func TestImages(t *testing.T) {
	tags := map[string]string{}
	for _, k := range kustomizations {
		r := render(t, k)
		if latest.Match(r.stream) {
			t.Errorf("%s: the rendered output names :latest", k)
		}
		for _, obj := range r.typed {
			var spec *corev1.PodSpec
			switch o := obj.(type) {
			case *appsv1.Deployment:
				spec = &o.Spec.Template.Spec
			case *appsv1.DaemonSet:
				spec = &o.Spec.Template.Spec
			case *appsv1.StatefulSet, *corev1.Pod:
				t.Errorf("%s: unexpected %T", k, obj)
			}
			if spec == nil {
				continue
			}
			for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
				// The agent runs its own program (the Dockerfile's agent
				// target), serve the whole binary.
				want := "ghcr.io/leakguard/leakguard"
				if _, ok := obj.(*appsv1.DaemonSet); ok {
					want = "ghcr.io/leakguard/leakguard-agent"
				}
				name, tag, ok := strings.Cut(c.Image, ":")
				if !ok || name != want || !releaseTag.MatchString(tag) {
					t.Errorf("%s: container %s image = %q, want %s:vX.Y.Z", k, c.Name, c.Image, want)
				}
				tags[k+" "+c.Name] = tag
			}
		}
	}
	var distinct []string
	for _, tag := range tags {
		if !slices.Contains(distinct, tag) {
			distinct = append(distinct, tag)
		}
	}
	if len(distinct) != 1 {
		t.Errorf("image tags %v, want one tag everywhere", tags)
	}
}

// TestBase pins what `kubectl apply -k deploy/` installs, and that the
// overlay installs the same objects.
func TestBase(t *testing.T) {
	want := []string{
		"AlertmanagerConfig leakguard/leakguard",
		"ClusterRole leakguard-agent",
		"ClusterRole leakguard-serve",
		"ClusterRoleBinding leakguard-agent",
		"ClusterRoleBinding leakguard-serve",
		"ConfigMap leakguard/leakguard-policy-*",
		"ConfigMap monitoring/grafana-dashboard-leakguard-nodes",
		"ConfigMap monitoring/grafana-dashboard-leakguard-operations",
		"ConfigMap monitoring/grafana-dashboard-leakguard-overview",
		"ConfigMap monitoring/grafana-dashboard-leakguard-workload",
		"DaemonSet monitoring/leakguard-agent",
		"Deployment leakguard/leakguard-serve",
		"Namespace leakguard",
		"NetworkPolicy leakguard/leakguard-serve",
		"PodDisruptionBudget leakguard/leakguard-serve",
		"PodMonitor monitoring/leakguard-agent",
		"PriorityClass leakguard-agent",
		"PrometheusRule monitoring/leakguard",
		"Role leakguard/leakguard-serve",
		"RoleBinding leakguard/leakguard-serve",
		"Secret leakguard/leakguard-webhook-token",
		"Service leakguard/leakguard",
		"ServiceAccount leakguard/leakguard-serve",
		"ServiceAccount monitoring/leakguard-agent",
		"ServiceMonitor leakguard/leakguard-serve",
		"ValidatingAdmissionPolicy leakguard-serve-evictions",
		"ValidatingAdmissionPolicy leakguard-serve-updates",
		"ValidatingAdmissionPolicyBinding leakguard-serve-evictions",
		"ValidatingAdmissionPolicyBinding leakguard-serve-updates",
	}
	names := func(r rendered) []string {
		var out []string
		for _, obj := range r.objs {
			d := lab.Describe(obj)
			if strings.HasPrefix(d, "ConfigMap leakguard/leakguard-policy-") {
				d = "ConfigMap leakguard/leakguard-policy-*" // the content hash
			}
			out = append(out, d)
		}
		sort.Strings(out)
		return out
	}
	base := render(t, ".")
	if diff := cmp.Diff(want, names(base)); diff != "" {
		t.Errorf("deploy/ objects (-want +got):\n%s", diff)
	}
	overlay := render(t, "overlays/kube-prometheus-stack")
	if diff := cmp.Diff(names(base), names(overlay)); diff != "" {
		t.Errorf("overlay objects differ from the base's (-base +overlay):\n%s", diff)
	}
}

// TestOverlayRelease: kube-prometheus-stack's Prometheus selects by the
// release label; the overlay sets it on every object Prometheus selects,
// and the base's own monitors carry none (the generated PrometheusRule
// carries the generator's default).
func TestOverlayRelease(t *testing.T) {
	overlay := render(t, "overlays/kube-prometheus-stack")
	base := render(t, ".")
	for _, obj := range overlay.objs {
		switch obj.GetKind() {
		case "PrometheusRule", "PodMonitor", "ServiceMonitor":
			if got := obj.GetLabels()["release"]; got != "kube-prometheus-stack" {
				t.Errorf("overlay %s: release label = %q, want kube-prometheus-stack", lab.Describe(obj), got)
			}
		}
	}
	for _, obj := range base.objs {
		switch obj.GetKind() {
		case "PodMonitor", "ServiceMonitor":
			if got, ok := obj.GetLabels()["release"]; ok {
				t.Errorf("base %s: release label %q, want none (the overlay's)", lab.Describe(obj), got)
			}
		}
	}
}

// TestServeWiring: the Deployment mounts the policy ConfigMap and the
// token Secret that the base generates, under the paths of its flags; the
// Secret holds the token file's content and nothing else.
func TestServeWiring(t *testing.T) {
	r := render(t, ".")
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	c := pod.Containers[0]
	mountOf := map[string]string{}
	for _, m := range c.VolumeMounts {
		mountOf[m.MountPath] = m.Name
	}
	flagFile := func(flag string) string {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
				return v
			}
		}
		t.Fatalf("serve has no --%s", flag)
		return ""
	}
	dir := func(p string) string { return p[:strings.LastIndex(p, "/")] }

	policy := volumes[mountOf[dir(flagFile("policy"))]]
	var cm *corev1.ConfigMap
	for _, obj := range r.typed {
		if o, ok := obj.(*corev1.ConfigMap); ok && strings.HasPrefix(o.Name, "leakguard-policy-") {
			cm = o
		}
	}
	if cm == nil || policy.ConfigMap == nil || policy.ConfigMap.Name != cm.Name {
		t.Errorf("--policy is not in a volume of the generated ConfigMap (volume %+v)", policy)
	} else if _, ok := cm.Data["policy.yaml"]; !ok {
		t.Errorf("ConfigMap %s has keys %v, want policy.yaml", cm.Name, cm.Data)
	}

	token := volumes[mountOf[dir(flagFile("bearer-token-file"))]]
	s := find[*corev1.Secret](t, r, "leakguard-webhook-token")
	if token.Secret == nil || token.Secret.SecretName != s.Name {
		t.Errorf("--bearer-token-file is not in a volume of Secret %s (volume %+v)", s.Name, token)
	}
	if got := string(s.Data["token"]); strings.TrimSpace(got) != lab.TestWebhookToken || len(s.Data) != 1 {
		t.Errorf("Secret %s data = %v, want only token from leakguard/webhook-token", s.Name, s.Data)
	}
	if _, err := os.Stat("leakguard/webhook-token"); err == nil {
		t.Log("leakguard/webhook-token exists in the checkout; the render used it")
	}
}

// TestAdmissionPolicyNamesServe: the policies' match condition names the
// service account that the serve Deployment runs as, in its rendered
// namespace; a mismatch would leave serve unrestricted.
func TestAdmissionPolicyNamesServe(t *testing.T) {
	r := render(t, ".")
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	want := "request.userInfo.username == 'system:serviceaccount:" + d.Namespace + ":" + d.Spec.Template.Spec.ServiceAccountName + "'"
	var policies int
	for _, obj := range r.typed {
		p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
		if !ok {
			continue
		}
		policies++
		if len(p.Spec.MatchConditions) != 1 || p.Spec.MatchConditions[0].Expression != want {
			t.Errorf("policy %s: matchConditions = %+v, want one: %s", p.Name, p.Spec.MatchConditions, want)
		}
		if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("policy %s: failurePolicy = %v, want Fail", p.Name, p.Spec.FailurePolicy)
		}
		b := find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, r, p.Name)
		if b.Spec.PolicyName != p.Name || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
			t.Errorf("binding %s = %+v, want policy %s with Deny", b.Name, b.Spec, p.Name)
		}
	}
	if policies != 2 {
		t.Errorf("%d ValidatingAdmissionPolicies, want 2", policies)
	}
}

// TestAdmissionPolicyCoversRole: every resource the serve ClusterRole may
// patch or update is one the update policy narrows, and every subresource
// it may create is one a policy checks; a new write permission needs its
// rule in validatingadmissionpolicy.yaml, or a reason here.
func TestAdmissionPolicyCoversRole(t *testing.T) {
	// Writes that the policies deliberately leave to RBAC alone.
	exempt := map[string]string{
		"/events": "Events are leakguard's own records; it changes no one else's",
	}
	r := render(t, ".")
	covered := map[string]bool{}
	for _, name := range []string{"leakguard-serve-updates", "leakguard-serve-evictions"} {
		p := find[*admissionregistrationv1.ValidatingAdmissionPolicy](t, r, name)
		for _, rule := range p.Spec.MatchConstraints.ResourceRules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, op := range rule.Operations {
						covered[string(op)+" "+g+"/"+res] = true
					}
				}
			}
		}
	}
	role := find[*rbacv1.ClusterRole](t, r, "leakguard-serve")
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				key := g + "/" + res
				for _, verb := range rule.Verbs {
					var op string
					switch {
					case verb == "patch" || verb == "update":
						op = "UPDATE"
					case verb == "create" && strings.Contains(res, "/"):
						op = "CREATE"
					default:
						continue
					}
					if exempt[key] != "" || covered[op+" "+key] {
						continue
					}
					t.Errorf("ClusterRole leakguard-serve may %s %s, which no admission policy narrows", verb, key)
				}
			}
		}
	}
}

// TestAlertmanagerConfigMatchesReceiver: the AlertmanagerConfig routes the
// same alerts, the same way, to the same URL as the plain receiver
// snippet, and that URL is the Service's.
func TestAlertmanagerConfigMatchesReceiver(t *testing.T) {
	r := render(t, ".")
	amc := find[*monitoringv1alpha1.AlertmanagerConfig](t, r, "leakguard")
	data, err := os.ReadFile("alertmanager/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var plain struct {
		Route struct {
			Routes []struct {
				Receiver       string   `json:"receiver"`
				Matchers       []string `json:"matchers"`
				GroupBy        []string `json:"group_by"`
				GroupWait      string   `json:"group_wait"`
				GroupInterval  string   `json:"group_interval"`
				RepeatInterval string   `json:"repeat_interval"`
				Continue       bool     `json:"continue"`
			} `json:"routes"`
		} `json:"route"`
		Receivers []struct {
			Name           string `json:"name"`
			WebhookConfigs []struct {
				URL          string `json:"url"`
				SendResolved bool   `json:"send_resolved"`
				MaxAlerts    int32  `json:"max_alerts"`
				HTTPConfig   any    `json:"http_config"`
			} `json:"webhook_configs"`
		} `json:"receivers"`
	}
	if err := yaml.UnmarshalStrict(data, &plain); err != nil {
		t.Fatalf("receiver.yaml: %v", err)
	}
	if len(plain.Route.Routes) != 1 || len(plain.Receivers) != 1 || len(plain.Receivers[0].WebhookConfigs) != 1 {
		t.Fatalf("receiver.yaml: want one route, one receiver, one webhook: %+v", plain)
	}
	pr, pw := plain.Route.Routes[0], plain.Receivers[0].WebhookConfigs[0]

	route := amc.Spec.Route
	var matchers []string
	for _, m := range route.Matchers {
		matchers = append(matchers, m.Name+string(m.MatchType)+`"`+m.Value+`"`)
	}
	str := func(d *monitoringv1.NonEmptyDuration) string {
		if d == nil {
			return ""
		}
		return string(*d)
	}
	got := []any{route.Receiver, matchers, route.GroupBy, str(route.GroupWait), str(route.GroupInterval), str(route.RepeatInterval), route.Continue}
	want := []any{pr.Receiver, pr.Matchers, pr.GroupBy, pr.GroupWait, pr.GroupInterval, pr.RepeatInterval, pr.Continue}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AlertmanagerConfig route differs from receiver.yaml's (-receiver.yaml +AlertmanagerConfig):\n%s", diff)
	}
	if len(amc.Spec.Receivers) != 1 || len(amc.Spec.Receivers[0].WebhookConfigs) != 1 {
		t.Fatalf("AlertmanagerConfig receivers = %+v, want one webhook", amc.Spec.Receivers)
	}
	w := amc.Spec.Receivers[0].WebhookConfigs[0]
	if amc.Spec.Receivers[0].Name != route.Receiver || w.URL == nil || string(*w.URL) != pw.URL ||
		w.SendResolved == nil || *w.SendResolved != pw.SendResolved || w.MaxAlerts != pw.MaxAlerts {
		t.Errorf("AlertmanagerConfig webhook = %+v, want receiver.yaml's %+v", w, pw)
	}
	if a := w.HTTPConfig.Authorization; a == nil || a.Type != "Bearer" || a.Credentials == nil || a.Credentials.Name != "leakguard-webhook-token" || a.Credentials.Key != "token" {
		t.Errorf("AlertmanagerConfig authorization = %+v, want Bearer from Secret leakguard-webhook-token key token", a)
	}
	svc := find[*corev1.Service](t, r, "leakguard")
	wantURL := "https://" + svc.Name + "." + svc.Namespace + ".svc:" + "8443" + "/api/v1/alerts"
	if pw.URL != wantURL || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 {
		t.Errorf("webhook URL %s, Service %s/%s ports %+v: want %s", pw.URL, svc.Namespace, svc.Name, svc.Spec.Ports, wantURL)
	}
}
