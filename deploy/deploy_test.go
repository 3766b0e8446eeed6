// Package deploy holds no Go code: it is leakguard's kustomize base and its
// overlays. This test renders them with the kustomize API, as `kubectl
// apply -k` does, and checks what they install without a cluster; the
// server-side dry-run of every object against a real kube-apiserver is in
// test/e2e (TestDeployDryRun).
package deploy

import (
	"maps"
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
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
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
		"AlertmanagerConfig monitoring/leakguard",
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

	// The token's Secret is the user's (or an ExternalSecret's): the base
	// names it and renders none, so that it renders from a fresh clone.
	token := volumes[mountOf[dir(flagFile("bearer-token-file"))]]
	if token.Secret == nil || token.Secret.SecretName != "leakguard-webhook-token" {
		t.Errorf("--bearer-token-file is not in a volume of Secret leakguard-webhook-token (volume %+v)", token)
	}
	for _, obj := range r.typed {
		if s, ok := obj.(*corev1.Secret); ok {
			t.Errorf("the render holds Secret %s/%s; the base renders no Secret", s.Namespace, s.Name)
		}
	}

	// The profile store: a bounded emptyDir on disk, one per replica, and
	// the replica's name for profile's Event.
	profiles := volumes[mountOf[flagFile("profile-dir")]]
	if e := profiles.EmptyDir; e == nil || e.SizeLimit == nil || e.SizeLimit.IsZero() || e.Medium == corev1.StorageMediumMemory {
		t.Errorf("--profile-dir is not the mount of a bounded emptyDir on disk (volume %+v)", profiles)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}) {
		t.Errorf("serve's env %+v has no POD_NAME from metadata.name (the replica profile's Event names)", c.Env)
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

// TestAdmissionPolicyCoversRole: every resource the serve ClusterRoles (the
// base's and every component's) may patch or update is one the update policy narrows, and every subresource
// it may create is one a policy checks; a new write permission needs its
// rule in validatingadmissionpolicy.yaml, or a reason here.
func TestAdmissionPolicyCoversRole(t *testing.T) {
	// Writes that the policies deliberately leave to RBAC alone.
	exempt := map[string]string{
		"/events": "Events are leakguard's own records; it changes no one else's",
	}
	r := renderLeakguard(t, lab.Components...)
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
	var roles int
	for _, obj := range r.typed {
		role, ok := obj.(*rbacv1.ClusterRole)
		if !ok || !strings.HasPrefix(role.Name, "leakguard-serve") {
			continue
		}
		roles++
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
						t.Errorf("ClusterRole %s may %s %s, which no admission policy narrows", role.Name, verb, key)
					}
				}
			}
		}
	}
	if want := 1 + len(lab.Components); roles != want {
		t.Errorf("%d serve ClusterRoles with every component, want %d", roles, want)
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

// secretRefs returns every {name, key} pair in the object's spec: the
// Secret (or ConfigMap) keys an AlertmanagerConfig or a monitor makes the
// operator read from the object's own namespace, as "name/key".
func secretRefs(obj *unstructured.Unstructured) []string {
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			name, okName := v["name"].(string)
			key, okKey := v["key"].(string)
			if okName && okKey {
				refs = append(refs, name+"/"+key)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(obj.Object["spec"])
	sort.Strings(refs)
	return refs
}

// settings reads a kustomization's settings.yaml (the local-config
// ConfigMap leakguard-settings) into its data.
func settings(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dir + "/settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		t.Fatalf("%s/settings.yaml: %v", dir, err)
	}
	if cm.Name != "leakguard-settings" || cm.Annotations["config.kubernetes.io/local-config"] != "true" {
		t.Fatalf("%s/settings.yaml: %s %v, want the local-config ConfigMap leakguard-settings", dir, cm.Name, cm.Annotations)
	}
	return cm.Data
}

// TestAlertmanagerConfigNamespace: the AlertmanagerConfig lives in the
// monitoring namespace (that of kube-prometheus-stack's Alertmanager), not
// in leakguard's, so that the operator's
// OnNamespaceExceptForAlertmanagerNamespace strategy lets it match every
// namespace's alerts; the Secrets it references, which the operator reads
// from its own namespace, are exactly the two docs/install.md has the user put
// there, with the names and keys serve's own objects use in leakguard.
func TestAlertmanagerConfigNamespace(t *testing.T) {
	for _, k := range []string{".", "overlays/kube-prometheus-stack"} {
		t.Run(k, func(t *testing.T) {
			r := render(t, k)
			want := settings(t, k)["monitoringNamespace"]
			var amcs []*unstructured.Unstructured
			for _, obj := range r.objs {
				if obj.GetKind() == "AlertmanagerConfig" {
					amcs = append(amcs, obj)
				}
			}
			if len(amcs) != 1 {
				t.Fatalf("%d AlertmanagerConfigs, want 1", len(amcs))
			}
			amc := amcs[0]
			if amc.GetNamespace() != want || want == "leakguard" {
				t.Errorf("AlertmanagerConfig in %q, want %q (the Alertmanager's namespace, settings.yaml)", amc.GetNamespace(), want)
			}
			if diff := cmp.Diff([]string{"leakguard-webhook-tls/ca.crt", "leakguard-webhook-token/token"}, secretRefs(amc)); diff != "" {
				t.Errorf("Secrets the AlertmanagerConfig references in %s (-want +got):\n%s", amc.GetNamespace(), diff)
			}
			// The same names as serve's copies in leakguard: the token
			// Secret serve mounts, the CA the ServiceMonitor checks.
			d := find[*appsv1.Deployment](t, r, "leakguard-serve")
			var mounted []string
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					mounted = append(mounted, v.Secret.SecretName)
				}
			}
			for _, name := range []string{"leakguard-webhook-token", "leakguard-webhook-tls"} {
				if !slices.Contains(mounted, name) {
					t.Errorf("serve mounts Secrets %v, not %s", mounted, name)
				}
			}
			for _, obj := range r.objs {
				if obj.GetKind() == "ServiceMonitor" {
					if diff := cmp.Diff([]string{"leakguard-webhook-tls/ca.crt"}, secretRefs(obj)); diff != "" {
						t.Errorf("ServiceMonitor's Secrets (-want +got):\n%s", diff)
					}
				}
			}
		})
	}
}

// TestValuesSnippet: the kube-prometheus-stack values snippet decodes into
// the operator's Alertmanager spec, keeps namespace isolation
// (OnNamespaceExceptForAlertmanagerNamespace, never None), and its
// selectors select the rendered AlertmanagerConfig by its labels and its
// namespace's.
func TestValuesSnippet(t *testing.T) {
	data, err := os.ReadFile("overlays/kube-prometheus-stack/values-snippet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Alertmanager struct {
			AlertmanagerSpec monitoringv1.AlertmanagerSpec `json:"alertmanagerSpec"`
		} `json:"alertmanager"`
	}
	if err := yaml.UnmarshalStrict(data, &values); err != nil {
		t.Fatalf("values-snippet.yaml: %v", err)
	}
	spec := values.Alertmanager.AlertmanagerSpec
	if got := spec.AlertmanagerConfigMatcherStrategy.Type; got != monitoringv1.OnNamespaceExceptForAlertmanagerNamespaceConfigMatcherStrategyType {
		t.Errorf("alertmanagerConfigMatcherStrategy.type = %q, want OnNamespaceExceptForAlertmanagerNamespace", got)
	}
	r := render(t, "overlays/kube-prometheus-stack")
	amc := find[*monitoringv1alpha1.AlertmanagerConfig](t, r, "leakguard")
	selects := func(what string, sel *metav1.LabelSelector, set map[string]string) {
		t.Helper()
		if sel == nil {
			t.Errorf("%s is unset", what)
			return
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if !s.Matches(labels.Set(set)) {
			t.Errorf("%s %s does not select %v", what, s, set)
		}
	}
	selects("alertmanagerConfigSelector", spec.AlertmanagerConfigSelector, amc.Labels)
	selects("alertmanagerConfigNamespaceSelector", spec.AlertmanagerConfigNamespaceSelector, map[string]string{"kubernetes.io/metadata.name": amc.Namespace})
}

// TestMonitoringNamespaceOnce: the overlay's settings.yaml is the one place
// that names the monitoring namespace and the release: changed there, every
// object, reference and URL that named them follows, and nothing in the
// render names the old namespace.
func TestMonitoringNamespaceOnce(t *testing.T) {
	const dir = "overlays/kube-prometheus-stack"
	data, err := os.ReadFile(dir + "/settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "monitoringNamespace: monitoring", "monitoringNamespace: observability", 1)
	edited = strings.Replace(edited, "release: kube-prometheus-stack", "release: kps", 1)
	if edited == string(data) || strings.Count(edited, "observability") != 1 || strings.Count(edited, "release: kps") != 1 {
		t.Fatalf("%s/settings.yaml: no monitoringNamespace: monitoring and release: kube-prometheus-stack to change", dir)
	}
	stream, objs, err := lab.RenderDeployWith(".", dir, map[string][]byte{dir + "/settings.yaml": []byte(edited)})
	if err != nil {
		t.Fatalf("render with observability: %v", err)
	}
	r := decodeAll(t, stream, objs)
	base := render(t, dir)
	if len(base.objs) != len(r.objs) {
		t.Fatalf("%d objects, want the overlay's %d", len(r.objs), len(base.objs))
	}
	for i, obj := range base.objs {
		wantNS := obj.GetNamespace()
		if wantNS == "monitoring" {
			wantNS = "observability"
		}
		if got := r.objs[i].GetNamespace(); got != wantNS {
			t.Errorf("%s: namespace %q, want %q", lab.Describe(obj), got, wantNS)
		}
		if obj.GetName() == "leakguard-settings" {
			t.Errorf("the local-config settings are rendered: %s", lab.Describe(obj))
		}
		switch obj.GetKind() {
		case "PrometheusRule", "PodMonitor", "ServiceMonitor":
			if got := r.objs[i].GetLabels()["release"]; got != "kps" {
				t.Errorf("%s: release label %q, want kps", lab.Describe(r.objs[i]), got)
			}
		}
	}
	// Every word "monitoring" left is the Operator's API group.
	if rest := regexp.MustCompile(`monitoring\.coreos\.com`).ReplaceAll(stream, nil); regexp.MustCompile(`\bmonitoring\b`).Match(rest) {
		for _, line := range strings.Split(string(rest), "\n") {
			if regexp.MustCompile(`\bmonitoring\b`).MatchString(line) {
				t.Errorf("the render still names monitoring: %s", strings.TrimSpace(line))
			}
		}
	}
	crb := find[*rbacv1.ClusterRoleBinding](t, r, "leakguard-agent")
	if len(crb.Subjects) != 1 || crb.Subjects[0].Namespace != "observability" {
		t.Errorf("agent's ClusterRoleBinding subjects %+v, want the ServiceAccount in observability", crb.Subjects)
	}
	np := find[*networkingv1.NetworkPolicy](t, r, "leakguard-serve")
	if got := np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]; got != "observability" {
		t.Errorf("NetworkPolicy admits from namespace %q, want observability", got)
	}
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--prometheus-url=http://prometheus-operated.observability.svc:9090") {
		t.Errorf("serve args %v, want --prometheus-url on prometheus-operated.observability.svc", d.Spec.Template.Spec.Containers[0].Args)
	}
}

// renderLeakguard renders deploy/leakguard with the named components, as
// an overlay that adds them does.
func renderLeakguard(t *testing.T, components ...string) rendered {
	t.Helper()
	stream, objs, err := lab.RenderLeakguard(".", components...)
	if err != nil {
		t.Fatalf("render leakguard with %v: %v", components, err)
	}
	return decodeAll(t, stream, objs)
}

func decodeAll(t *testing.T, stream []byte, objs []*unstructured.Unstructured) rendered {
	t.Helper()
	r := rendered{stream: stream, objs: objs}
	for _, obj := range objs {
		typed, err := lab.DecodeStrict(obj)
		if err != nil {
			t.Fatal(err)
		}
		r.typed = append(r.typed, typed)
	}
	return r
}

// grants is what RBAC grants serve's account in r: the rules of every
// ClusterRole bound to it, and of every Role bound to it in its namespace.
type grants struct {
	ns           string
	cluster, own []rbacv1.PolicyRule
}

func serveGrants(t *testing.T, r rendered) grants {
	t.Helper()
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	g := grants{ns: d.Namespace}
	bound := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == d.Namespace && s.Name == d.Spec.Template.Spec.ServiceAccountName
		})
	}
	for _, obj := range r.typed {
		switch b := obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			if bound(b.Subjects) {
				g.cluster = append(g.cluster, find[*rbacv1.ClusterRole](t, r, b.RoleRef.Name).Rules...)
			}
		case *rbacv1.RoleBinding:
			if bound(b.Subjects) && b.Namespace == d.Namespace {
				g.own = append(g.own, find[*rbacv1.Role](t, r, b.RoleRef.Name).Rules...)
			}
		}
	}
	return g
}

// ruleAllows matches a right against one rule as RBAC does: "*" or the
// value itself; a non-resource URL ending in "*" by its prefix.
func ruleAllows(rule rbacv1.PolicyRule, r remediate.Right) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	if !has(rule.Verbs, r.Verb) {
		return false
	}
	if r.NonResourceURL != "" {
		return slices.ContainsFunc(rule.NonResourceURLs, func(u string) bool {
			p, wild := strings.CutSuffix(u, "*")
			return u == r.NonResourceURL || wild && strings.HasPrefix(r.NonResourceURL, p)
		})
	}
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	return len(rule.ResourceNames) == 0 && has(rule.APIGroups, r.Group) && has(rule.Resources, res)
}

// allows reports whether g grants r: a cluster-wide right through a
// ClusterRole, one in serve's namespace through either.
func (g grants) allows(r remediate.Right) bool {
	rules := g.cluster
	if r.Namespace == g.ns {
		rules = slices.Concat(g.cluster, g.own)
	}
	return slices.ContainsFunc(rules, func(rule rbacv1.PolicyRule) bool { return ruleAllows(rule, r) })
}

// componentPolicies enable each component's remediators on every target
// they act on.
var componentPolicies = map[string]string{
	"restart": `
alerts:
  ContainerMemoryLeak: {target: workload, check: {name: working-set-slope}, remediators: [{name: annotate}, {name: restart, enabled: true}]}
`,
	"node": `
alerts:
  NodeOrphanCgroups: {target: node, check: {name: orphan-cgroups}, remediators: [{name: annotate}, {name: cordon, enabled: true, args: {uncordonOnResolve: true}}, {name: drain, enabled: true}]}
`,
	"profile": `
alerts:
  ContainerMemoryLeak: {target: workload, check: {name: working-set-slope}, remediators: [{name: profile}]}
  ContainerOOMKilled: {target: pod, check: {name: none}, remediators: [{name: profile}]}
  KubeAPIServerMemoryHigh: {target: apiserver, check: {name: apiserver-memory}, remediators: [{name: profile}]}
`,
}

func parsePolicy(t *testing.T, doc []byte) *remediate.Policy {
	t.Helper()
	p, err := remediate.ParsePolicy(doc, builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBaseGrantsShippedPolicy: the shipped policy (the base's ConfigMap)
// needs no component, and the base grants every right serve asks for at
// start-up with it; the base grants none of the components' rights.
func TestBaseGrantsShippedPolicy(t *testing.T) {
	r := render(t, "leakguard")
	g := serveGrants(t, r)
	var policy []byte
	for _, obj := range r.typed {
		if cm, ok := obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "leakguard-policy-") {
			policy = []byte(cm.Data["policy.yaml"])
		}
	}
	rights := remediate.RequiredRights(parsePolicy(t, policy), g.ns, false)
	if grants := remediate.RequiredGrants(rights); len(grants) != 0 {
		t.Errorf("the shipped policy needs %v beyond the base", grants)
	}
	for _, right := range rights {
		if !g.allows(right) {
			t.Errorf("the base does not grant %s (for %v)", right, right.For)
		}
	}
	for c, doc := range componentPolicies {
		for _, right := range remediate.RequiredRights(parsePolicy(t, []byte(doc)), g.ns, false) {
			if right.Grant != remediate.GrantBase && g.allows(right) {
				t.Errorf("the base grants %s, a right of components/%s", right, c)
			}
		}
	}
}

// TestComponents: each component adds one ClusterRole and its binding to
// serve's account, and nothing else; with it, serve has every right that
// a policy enabling its remediators asks for, and every rule of its role
// is one such right (least privilege: nothing the remediators do not use).
func TestComponents(t *testing.T) {
	base := renderLeakguard(t)
	if got, want := slices.Sorted(maps.Keys(componentPolicies)), slices.Sorted(slices.Values(lab.Components)); !slices.Equal(got, want) {
		t.Fatalf("component policies for %v, components %v", got, want)
	}
	entries, err := os.ReadDir("components")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		// The token's and the certificate's components grant serve no
		// right (TestComponentsListed lists every directory).
		if !slices.Contains(optionalComponents, e.Name()) {
			dirs = append(dirs, e.Name())
		}
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(lab.Components)), dirs); diff != "" {
		t.Errorf("deploy/components (-lab.Components +directories):\n%s", diff)
	}
	for _, c := range lab.Components {
		t.Run(c, func(t *testing.T) {
			r := renderLeakguard(t, c)
			var added []string
			for _, obj := range r.objs {
				if !slices.ContainsFunc(base.objs, func(b *unstructured.Unstructured) bool { return lab.Describe(b) == lab.Describe(obj) }) {
					added = append(added, lab.Describe(obj))
				}
			}
			name := "leakguard-serve-" + c
			if diff := cmp.Diff([]string{"ClusterRole " + name, "ClusterRoleBinding " + name}, added); diff != "" {
				t.Errorf("objects the component adds (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(len(base.objs)+2, len(r.objs)); diff != "" {
				t.Errorf("the component changes the base's objects (-want +got):\n%s", diff)
			}
			b := find[*rbacv1.ClusterRoleBinding](t, r, name)
			if b.RoleRef.Name != name || b.RoleRef.Kind != "ClusterRole" {
				t.Errorf("binding %s refers to %+v, want ClusterRole %s", name, b.RoleRef, name)
			}
			g := serveGrants(t, r)
			rights := remediate.RequiredRights(parsePolicy(t, []byte(componentPolicies[c])), g.ns, false)
			if diff := cmp.Diff([]string{"deploy/components/" + c}, remediate.RequiredGrants(rights)); diff != "" {
				t.Errorf("grants the policy needs (-want +got):\n%s", diff)
			}
			for _, right := range rights {
				if !g.allows(right) {
					t.Errorf("base and %s do not grant %s (for %v)", c, right, right.For)
				}
			}
			// Every verb on every resource the component's role grants
			// is a right the policy asks the component for.
			for _, rule := range find[*rbacv1.ClusterRole](t, r, name).Rules {
				for _, one := range splitRule(rule) {
					if !slices.ContainsFunc(rights, func(right remediate.Right) bool {
						return right.Grant == "deploy/components/"+c && ruleAllows(one, right)
					}) {
						t.Errorf("%s grants %v %v%v, which no remediator of the component needs", name, one.Verbs, one.Resources, one.NonResourceURLs)
					}
				}
			}
		})
	}
}

// splitRule splits a rule into one rule per verb, group and resource (or
// URL).
func splitRule(rule rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, v := range rule.Verbs {
		for _, u := range rule.NonResourceURLs {
			out = append(out, rbacv1.PolicyRule{Verbs: []string{v}, NonResourceURLs: []string{u}})
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				out = append(out, rbacv1.PolicyRule{Verbs: []string{v}, APIGroups: []string{g}, Resources: []string{res}})
			}
		}
	}
	return out
}

// TestAdmissionPolicyChecksComponents: the verbs that the update policy
// asks the authorizer for (a restart, a cordon) are granted by a
// component and never by the base, so that the base's patch on workloads
// and nodes cannot roll or cordon.
func TestAdmissionPolicyChecksComponents(t *testing.T) {
	r := renderLeakguard(t, lab.Components...)
	p := find[*admissionregistrationv1.ValidatingAdmissionPolicy](t, r, "leakguard-serve-updates")
	checked := map[string]bool{}
	for _, v := range p.Spec.Validations {
		for _, m := range regexp.MustCompile(`\.check\('([a-z]+)'\)`).FindAllStringSubmatch(v.Expression, -1) {
			checked[m[1]] = true
		}
	}
	if diff := cmp.Diff(map[string]bool{"restart": true, "cordon": true}, checked); diff != "" {
		t.Errorf("verbs the policy checks (-want +got):\n%s", diff)
	}
	for _, obj := range r.typed {
		role, ok := obj.(*rbacv1.ClusterRole)
		if !ok {
			continue
		}
		for _, rule := range role.Rules {
			for verb := range checked {
				if slices.Contains(rule.Verbs, verb) && role.Name == "leakguard-serve" {
					t.Errorf("the base ClusterRole grants %s", verb)
				}
			}
		}
	}
	want := map[string]string{"restart": "leakguard-serve-restart", "cordon": "leakguard-serve-node"}
	for verb, roleName := range want {
		role := find[*rbacv1.ClusterRole](t, r, roleName)
		if !slices.ContainsFunc(role.Rules, func(rule rbacv1.PolicyRule) bool { return slices.Contains(rule.Verbs, verb) }) {
			t.Errorf("%s does not grant the verb %s", roleName, verb)
		}
	}
}

// exampleMarkers delimit the overlay's commented example.
const (
	exampleStart = "# --- example: restart"
	exampleEnd   = "# --- end of example"
)

// TestOverlayExample: the commented example of the kube-prometheus-stack
// overlay, uncommented, renders; it adds the restart component, and its
// policy (make generate writes it) needs exactly that component.
func TestOverlayExample(t *testing.T) {
	const dir = "overlays/kube-prometheus-stack"
	stream, objs, err := lab.RenderDeployWith(".", dir, overlayExample(t))
	if err != nil {
		t.Fatalf("render the example: %v", err)
	}
	r := decodeAll(t, stream, objs)
	find[*rbacv1.ClusterRole](t, r, "leakguard-serve-restart")
	var policy []byte
	for _, obj := range r.typed {
		if cm, ok := obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "leakguard-policy-") {
			policy = []byte(cm.Data["policy.yaml"])
		}
	}
	g := serveGrants(t, r)
	rights := remediate.RequiredRights(parsePolicy(t, policy), g.ns, false)
	if diff := cmp.Diff([]string{remediate.GrantRestart}, remediate.RequiredGrants(rights)); diff != "" {
		t.Errorf("the example's policy needs (-want +got):\n%s", diff)
	}
	for _, right := range rights {
		if !g.allows(right) {
			t.Errorf("the example does not grant %s (for %v)", right, right.For)
		}
	}
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	var mounted bool
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		for _, obj := range r.typed {
			if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == v.ConfigMap.Name && cm.Data["policy.yaml"] == string(policy) {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the Deployment does not mount the example's policy ConfigMap")
	}
}

// overlayExample returns the files to write over deploy/ for the
// kube-prometheus-stack overlay with its commented example uncommented.
func overlayExample(t *testing.T) map[string][]byte {
	t.Helper()
	const dir = "overlays/kube-prometheus-stack"
	data, err := os.ReadFile(dir + "/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in, found := false, false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == exampleStart:
			in, found = true, true
		case line == exampleEnd:
			in = false
		case in:
			if !strings.HasPrefix(line, "#") {
				t.Fatalf("example line %q is not commented", line)
			}
			line = line[1:]
		}
		out = append(out, line)
	}
	if !found || in {
		t.Fatalf("%s/kustomization.yaml has no example between %q and %q", dir, exampleStart, exampleEnd)
	}
	return map[string][]byte{dir + "/kustomization.yaml": []byte(strings.Join(out, "\n"))}
}
