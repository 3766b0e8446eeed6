package test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestTemplateRefuses checks that values the chart cannot honour fail the
// render with a message naming the value.
func TestTemplateRefuses(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown tls.mode", map[string]any{"tls": map[string]any{"mode": "selfSigned"}}, `tls.mode is "selfSigned": want certManager, existingSecret or off`},
		{"token.create without a value", map[string]any{"token": map[string]any{"create": true}}, "token.value"},
		{"no token Secret", map[string]any{"token": map[string]any{"existingSecret": ""}}, "token.existingSecret"},
		// values.schema.json: a misspelt value and a value of the wrong type.
		{"a misspelt value", map[string]any{"serve": map[string]any{"replica": 3}}, "replica"},
		{"a value of the wrong type", map[string]any{"serve": map[string]any{"replicas": "three"}}, "replicas"},
		{"no TLS Secret", map[string]any{"tls": map[string]any{"existingSecret": ""}}, "tls.existingSecret"},
		{"token.create and token.trialJob", map[string]any{"token": map[string]any{"create": true, "value": "x", "trialJob": true}}, "token.create and token.trialJob: choose one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, _, err := renderChart(c, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %d objects, error %v; want an error naming %q", len(objs), err, tc.want)
			}
		})
	}
}

// TestTemplateTLSOff checks tls.mode off: serve speaks plain HTTP (no
// certificate flags, volume or mount; port http; probes, ServiceMonitor and
// Alertmanager's URL in http) and the defaults' certificate objects are
// gone.
func TestTemplateTLSOff(t *testing.T) {
	objs := byKey(mustRender(t, map[string]any{"tls": map[string]any{"mode": "off"}}))
	dep := get(t, objs, "Deployment leakguard/leakguard-serve")
	c := container(t, dep)
	for _, a := range c["args"].([]any) {
		if strings.HasPrefix(a.(string), "--tls-") {
			t.Errorf("argument %s with tls.mode off", a)
		}
	}
	for _, v := range field(t, dep, "spec", "template", "spec", "volumes").([]any) {
		if v.(map[string]any)["name"] == "tls" {
			t.Errorf("volume tls with tls.mode off")
		}
	}
	for _, m := range c["volumeMounts"].([]any) {
		if m.(map[string]any)["name"] == "tls" {
			t.Errorf("mount tls with tls.mode off")
		}
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"port", c["ports"], []any{map[string]any{"name": "http", "containerPort": int64(8443)}}},
		{"readiness probe", c["readinessProbe"].(map[string]any)["httpGet"], map[string]any{"path": "/readyz", "port": "http", "scheme": "HTTP"}},
		{"Service port", field(t, get(t, objs, "Service leakguard/leakguard"), "spec", "ports"), []any{map[string]any{"name": "http", "port": int64(8443), "targetPort": "http"}}},
		{"ServiceMonitor endpoint", field(t, get(t, objs, "ServiceMonitor leakguard/leakguard-serve"), "spec", "endpoints"), []any{map[string]any{"interval": "30s", "path": "/metrics", "port": "http", "scheme": "HTTP"}}},
		{"AlertmanagerConfig URL", field(t, get(t, objs, "AlertmanagerConfig monitoring/leakguard"), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)["url"], "http://leakguard.leakguard.svc:8443/api/v1/alerts"},
		{"AlertmanagerConfig TLS", field(t, get(t, objs, "AlertmanagerConfig monitoring/leakguard"), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)["httpConfig"].(map[string]any)["tlsConfig"], nil},
		{"NetworkPolicy port", field(t, get(t, objs, "NetworkPolicy leakguard/leakguard-serve"), "spec", "ingress").([]any)[0].(map[string]any)["ports"], []any{map[string]any{"port": "http", "protocol": "TCP"}}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestTemplateCertManager checks tls.mode certManager without an issuer
// of the user's: components/cert-manager's layout (a self-signed
// ClusterIssuer, the CA in cert-manager's namespace, the ClusterIssuer
// leakguard-ca) issues serve's certificate into the Secret that serve and
// the ServiceMonitor read, and the CA's copy into a Secret of that name in
// the monitoring namespace, which the AlertmanagerConfig there reads.
func TestTemplateCertManager(t *testing.T) {
	objs := byKey(mustRender(t, map[string]any{"tls": map[string]any{"mode": "certManager", "existingSecret": "unused"}}))
	for _, k := range []string{"ClusterIssuer leakguard-selfsigned", "Certificate cert-manager/leakguard-ca", "ClusterIssuer leakguard-ca"} {
		get(t, objs, k)
	}
	cert := get(t, objs, "Certificate leakguard/leakguard-webhook")
	caCopy := get(t, objs, "Certificate monitoring/leakguard-webhook-ca")
	issuer := map[string]any{"name": "leakguard-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", field(t, cert, "spec", "issuerRef"), issuer},
		{"secret", field(t, cert, "spec", "secretName"), "leakguard-webhook-tls"},
		{"names", field(t, cert, "spec", "dnsNames"), []any{"leakguard.leakguard.svc", "leakguard.leakguard.svc.cluster.local"}},
		{"CA copy's issuer", field(t, caCopy, "spec", "issuerRef"), issuer},
		{"CA copy's secret", field(t, caCopy, "spec", "secretName"), "leakguard-webhook-tls"},
		{"serve's volume", field(t, get(t, objs, "Deployment leakguard/leakguard-serve"), "spec", "template", "spec", "volumes").([]any)[1], map[string]any{"name": "tls", "secret": map[string]any{"secretName": "leakguard-webhook-tls"}}},
		{"ServiceMonitor CA", field(t, get(t, objs, "ServiceMonitor leakguard/leakguard-serve"), "spec", "endpoints").([]any)[0].(map[string]any)["tlsConfig"].(map[string]any)["ca"], map[string]any{"secret": map[string]any{"name": "leakguard-webhook-tls", "key": "ca.crt"}}},
		{"AlertmanagerConfig CA", webhookConfig(t, objs, "AlertmanagerConfig monitoring/leakguard")["httpConfig"].(map[string]any)["tlsConfig"].(map[string]any)["ca"], map[string]any{"secret": map[string]any{"name": "leakguard-webhook-tls", "key": "ca.crt"}}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

// webhookConfig is the first webhookConfig of the AlertmanagerConfig k.
func webhookConfig(t *testing.T, objs map[string]*unstructured.Unstructured, k string) map[string]any {
	t.Helper()
	return field(t, get(t, objs, k), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)
}

// TestTemplateTrialJob checks token.trialJob: components/trial-token's
// Job, account and Roles, in serve's and the monitoring namespace, with
// the Job's arguments following the values, and serve and the
// AlertmanagerConfig reading the Secret the Job makes. The Job's name
// changes with its image (a Job's template cannot be changed in place).
func TestTemplateTrialJob(t *testing.T) {
	vals := map[string]any{
		"namespace":  map[string]any{"name": "lg"},
		"monitoring": map[string]any{"namespace": "observability"},
		"token":      map[string]any{"trialJob": true, "existingSecret": "unused", "key": "bearer"},
	}
	render := func(vals map[string]any) (map[string]*unstructured.Unstructured, *unstructured.Unstructured) {
		objs := byKey(mustRender(t, vals))
		var job *unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == "Job" {
				if job != nil {
					t.Fatalf("two Jobs: %s, %s", key(job), key(o))
				}
				job = o
			}
		}
		if job == nil {
			t.Fatalf("no Job")
		}
		return objs, job
	}
	objs, job := render(vals)
	for _, k := range []string{"ServiceAccount lg/leakguard-token", "Role lg/leakguard-token", "RoleBinding lg/leakguard-token", "Role observability/leakguard-token", "RoleBinding observability/leakguard-token"} {
		get(t, objs, k)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Job's namespace", job.GetNamespace(), "lg"},
		{"Job's arguments", container(t, job)["args"], []any{"token", "ensure", "--namespace=lg", "--secret=leakguard-webhook-token", "--key=bearer", "--copy-to-namespace=observability"}},
		{"Job's account", field(t, job, "spec", "template", "spec", "serviceAccountName"), "leakguard-token"},
		{"binding's subject", field(t, get(t, objs, "RoleBinding observability/leakguard-token"), "subjects"), []any{map[string]any{"kind": "ServiceAccount", "name": "leakguard-token", "namespace": "lg"}}},
		{"serve's token volume", field(t, get(t, objs, "Deployment lg/leakguard-serve"), "spec", "template", "spec", "volumes").([]any)[0].(map[string]any)["secret"], map[string]any{"secretName": "leakguard-webhook-token"}},
		{"AlertmanagerConfig token", webhookConfig(t, objs, "AlertmanagerConfig observability/leakguard")["httpConfig"].(map[string]any)["authorization"], map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "leakguard-webhook-token", "key": "bearer"}}},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	if !strings.HasPrefix(job.GetName(), "leakguard-webhook-token-") {
		t.Errorf("Job %s, want leakguard-webhook-token-<hash>", job.GetName())
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Errorf("token.trialJob renders %s; the Job makes the Secret", key(o))
		}
	}
	_, notes, err := renderChart(loadChart(t), vals)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "The Job leakguard-webhook-token-* makes the webhook's bearer token") || strings.Contains(notes, "create secret generic leakguard-webhook-token") {
		t.Errorf("NOTES.txt with token.trialJob:\n%s", notes)
	}
	// Same values, same name (a sync changes nothing); another image, another Job.
	if _, again := render(vals); again.GetName() != job.GetName() {
		t.Errorf("two renders name the Job %s and %s", job.GetName(), again.GetName())
	}
	other := map[string]any{"image": map[string]any{"tag": "v9.9.9"}}
	for k, v := range vals {
		other[k] = v
	}
	if _, upgraded := render(other); upgraded.GetName() == job.GetName() {
		t.Errorf("another image keeps the Job's name %s: an upgrade would change its template", job.GetName())
	}
}

// TestTemplateDefaults checks what the defaults leave out: no Secret (the
// token's and the certificate's are the user's), no cert-manager object,
// no Namespace (Helm's --create-namespace makes it), no remediator
// rights beyond annotate, no GrafanaDashboard; and NOTES say how to make
// the token in both namespaces and the CA's copy in monitoring.
func TestTemplateDefaults(t *testing.T) {
	objs, notes, err := renderChart(loadChart(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Secret", o.GetKind() == "Namespace", o.GetKind() == "GrafanaDashboard",
			o.GetAPIVersion() == "cert-manager.io/v1",
			strings.HasPrefix(o.GetName(), "leakguard-serve-restart"), strings.HasPrefix(o.GetName(), "leakguard-serve-node"), strings.HasPrefix(o.GetName(), "leakguard-serve-profile"):
			t.Errorf("the defaults render %s", key(o))
		}
	}
	for _, want := range []string{
		"kubectl -n leakguard create secret generic leakguard-webhook-token", "--from-literal=token=",
		// Alertmanager's copies in the monitoring namespace.
		"kubectl -n monitoring create secret generic leakguard-webhook-token",
		"kubectl -n monitoring create secret generic leakguard-webhook-tls \\\n    --from-file=ca.crt=",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
}

// TestTemplateNamespace checks that namespace.name moves every reference
// to serve's namespace: the admission policies' account, the bindings'
// subjects, the TLS server names and the webhook's URL.
func TestTemplateNamespace(t *testing.T) {
	objs := byKey(mustRender(t, map[string]any{"namespace": map[string]any{"name": "lg"}}))
	for _, name := range []string{"leakguard-serve-updates", "leakguard-serve-evictions"} {
		conds := field(t, get(t, objs, "ValidatingAdmissionPolicy "+name), "spec", "matchConditions").([]any)
		if diff := cmp.Diff("request.userInfo.username == 'system:serviceaccount:lg:leakguard-serve'", conds[0].(map[string]any)["expression"]); diff != "" {
			t.Errorf("%s's matchCondition (-want +got):\n%s", name, diff)
		}
	}
	subject := field(t, get(t, objs, "RoleBinding lg/leakguard-serve"), "subjects").([]any)[0].(map[string]any)["namespace"]
	if subject != "lg" {
		t.Errorf("RoleBinding subject in %v, want lg", subject)
	}
	webhook := field(t, get(t, objs, "AlertmanagerConfig monitoring/leakguard"), "spec", "receivers").([]any)[0].(map[string]any)["webhookConfigs"].([]any)[0].(map[string]any)
	if got := webhook["httpConfig"].(map[string]any)["tlsConfig"].(map[string]any)["serverName"]; got != "leakguard.lg.svc" {
		t.Errorf("AlertmanagerConfig serverName %v, want leakguard.lg.svc", got)
	}
	sm := field(t, get(t, objs, "ServiceMonitor lg/leakguard-serve"), "spec", "endpoints").([]any)[0].(map[string]any)
	if got := sm["tlsConfig"].(map[string]any)["serverName"]; got != "leakguard.lg.svc" {
		t.Errorf("ServiceMonitor serverName %v, want leakguard.lg.svc", got)
	}
	for k, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != "lg" && ns != "monitoring" {
			t.Errorf("%s in namespace %s", k, ns)
		}
	}
}
